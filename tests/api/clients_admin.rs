//! The operator API `/api/v1/clients`: list (paginated), create (the secret shown once), read,
//! PATCH, DELETE, rotate-secret with a grace after which the old secret is `invalid_client`; only
//! operators (`client_credentials` with `admin`) may call it; bad bodies are 400 problems that
//! change nothing; every write is audited without a secret; another server on the same database sees
//! a rotation within the registry's one-second cache.

use std::time::Duration;

use serde_json::{Value, json};

use crate::clients_cli::client_credentials;
use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{self as m, call, delete, get, patch, post};
use crate::rp::{self, REDIRECT_URI};

on_both_databases!(
    create_list_read_patch_delete,
    rotation_grace_expires,
    only_operators_and_good_bodies,
    writes_are_audited_without_secrets,
    a_sibling_server_sees_a_rotation,
    a_deleted_clients_refresh_token_no_longer_refreshes,
    introspection_and_revocation_follow_rotation_and_deletion,
    api_settings_are_checked_as_the_cli_checks_them,
    a_deleted_operators_token_stops_working,
);

const CLIENTS: &str = "/api/v1/clients";

/// `POST /api/v1/clients` with `body` as `operator`: asserts 201 with `Location` and returns the
/// answer's body.
async fn create(app: &TestApp, operator: &str, body: Value) -> Value {
    let created = post(app, CLIENTS, operator, body).await;
    let body = created.ok(201).clone();
    let id = body["client_id"].as_str().expect("client_id");
    assert_eq!(created.location, format!("{CLIENTS}/{id}"));
    body
}

/// A machine client with `scopes` created through the API: `(client_id, client_secret)`.
async fn machine_with(
    app: &TestApp,
    operator: &str,
    name: &str,
    scopes: &[&str],
) -> (String, String) {
    let body = create(
        app,
        operator,
        json!({"name": name, "grant_types": ["client_credentials"], "scopes": scopes}),
    )
    .await;
    let id = body["client_id"].as_str().expect("client_id").to_owned();
    let secret = body["client_secret"].as_str().expect("secret").to_owned();
    (id, secret)
}

/// A machine client allowed `org:read`, created through the API: `(client_id, client_secret)`.
async fn create_machine(app: &TestApp, operator: &str, name: &str) -> (String, String) {
    machine_with(app, operator, name, &["org:read"]).await
}

/// Asserts that `(status, body)` is a token answer.
#[track_caller]
fn token_ok((status, body): (u16, Value)) {
    assert_eq!(status, 200, "{body}");
}

/// Asserts a failed client authentication.
#[track_caller]
fn refused((status, body): (u16, Value)) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
}

async fn create_list_read_patch_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = m::operator_token(&app).await;
    let (id, secret) = create_machine(&app, &operator, "Billing").await;
    token_ok(client_credentials(&app, &id, &secret).await);

    // A public web client with everything given.
    let public = create(
        &app,
        &operator,
        json!({
            "name": "SPA",
            "redirect_uris": [REDIRECT_URI],
            "post_logout_redirect_uris": ["https://rp.example.com/bye"],
            "public": true,
            "first_party": true,
            "scopes": ["openid", "email"],
        }),
    )
    .await;
    assert!(
        public.get("client_secret").is_none_or(Value::is_null),
        "{public}"
    );
    assert_eq!(public["public"], true);
    let public_id = public["client_id"].as_str().expect("id").to_owned();

    // Read never shows the secret.
    let read = get(&app, &format!("{CLIENTS}/{id}"), &operator).await;
    let read = read.ok(200).clone();
    assert_eq!(read["client_id"], id);
    assert_eq!(read["name"], "Billing");
    assert!(read.get("client_secret").is_none());
    assert!(!read.to_string().contains(&secret));

    // The list: oldest first (the operator's own client first), one per page with `limit=1`.
    let all = get(&app, CLIENTS, &operator).await;
    let all_ids = m::ids(all.ok(200), "client_id");
    assert_eq!(all_ids.len(), 3);
    assert_eq!(&all_ids[1..], [id.clone(), public_id.clone()]);
    assert!(!all.body.to_string().contains(&secret));
    let mut paged = Vec::new();
    let mut next = Some(format!("{CLIENTS}?limit=1"));
    while let Some(path) = next {
        let page = get(&app, &path, &operator).await;
        let ids = m::ids(page.ok(200), "client_id");
        assert!(ids.len() <= 1);
        paged.extend(ids);
        next = page.next.clone();
    }
    assert_eq!(paged, all_ids);

    // PATCH changes what is given.
    let patched = patch(
        &app,
        &format!("{CLIENTS}/{id}"),
        &operator,
        json!({"name": "Billing v2", "scopes": ["org:read", "org:write"]}),
    )
    .await;
    let patched = patched.ok(200).clone();
    assert_eq!(patched["name"], "Billing v2");
    assert_eq!(patched["scopes"], json!(["org:read", "org:write"]));
    assert_eq!(patched["grant_types"], json!(["client_credentials"]));

    // DELETE: 204, then 404, and the token endpoint refuses it.
    let gone = delete(&app, &format!("{CLIENTS}/{id}"), &operator).await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    get(&app, &format!("{CLIENTS}/{id}"), &operator)
        .await
        .problem(404, "client-not-found");
    delete(&app, &format!("{CLIENTS}/{id}"), &operator)
        .await
        .problem(404, "client-not-found");
    patch(
        &app,
        &format!("{CLIENTS}/{id}"),
        &operator,
        json!({"name": "X"}),
    )
    .await
    .problem(404, "client-not-found");
    post(
        &app,
        &format!("{CLIENTS}/{id}/rotate-secret"),
        &operator,
        json!({}),
    )
    .await
    .problem(404, "client-not-found");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    refused(client_credentials(&app, &id, &secret).await);

    // A public client has no secret to rotate.
    post(
        &app,
        &format!("{CLIENTS}/{public_id}/rotate-secret"),
        &operator,
        json!({}),
    )
    .await
    .problem(409, "public-client");
}

async fn rotation_grace_expires(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = m::operator_token(&app).await;
    let (id, old) = create_machine(&app, &operator, "Billing").await;

    let rotated = post(
        &app,
        &format!("{CLIENTS}/{id}/rotate-secret"),
        &operator,
        json!({"grace_seconds": 2}),
    )
    .await;
    let rotated = rotated.ok(200).clone();
    assert_eq!(rotated["client_id"], id);
    let new = rotated["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_ne!(new, old);
    let expires = rotated["previous_secret_expires_at"]
        .as_i64()
        .expect("expiry");
    let now = app.clock.now();
    assert!((now + 1..=now + 3).contains(&expires), "{expires} vs {now}");
    let read = get(&app, &format!("{CLIENTS}/{id}"), &operator).await;
    assert_eq!(read.ok(200)["previous_secret_expires_at"], expires);

    token_ok(client_credentials(&app, &id, &old).await);
    token_ok(client_credentials(&app, &id, &new).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    refused(client_credentials(&app, &id, &old).await);
    token_ok(client_credentials(&app, &id, &new).await);

    // No body means no grace.
    let rotated = call(
        &app,
        reqwest::Method::POST,
        &format!("{CLIENTS}/{id}/rotate-secret"),
        Some(&operator),
        None,
    )
    .await;
    let rotated = rotated.ok(200).clone();
    assert!(rotated["previous_secret_expires_at"].is_null(), "{rotated}");
    let newest = rotated["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    refused(client_credentials(&app, &id, &new).await);
    token_ok(client_credentials(&app, &id, &newest).await);
}

async fn only_operators_and_good_bodies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = m::operator_token(&app).await;
    let (id, secret) = create_machine(&app, &operator, "Billing").await;
    let one = format!("{CLIENTS}/{id}");
    let rotate = format!("{CLIENTS}/{id}/rotate-secret");

    // A person's token and a machine token without `admin`: 403; no token: 401.
    let web = m::org_client(&app).await;
    let (_, user) = m::person(&app, &web, "ada@example.com").await;
    let machine = m::client_token(&app, &["org:read"]).await;
    for token in [&user, &machine] {
        get(&app, CLIENTS, token)
            .await
            .problem(403, "operator-required");
        get(&app, &one, token)
            .await
            .problem(403, "operator-required");
        post(&app, CLIENTS, token, json!({"name": "X"}))
            .await
            .problem(403, "operator-required");
        patch(&app, &one, token, json!({"name": "X"}))
            .await
            .problem(403, "operator-required");
        post(&app, &rotate, token, json!({}))
            .await
            .problem(403, "operator-required");
        delete(&app, &one, token)
            .await
            .problem(403, "operator-required");
    }
    let anonymous = call(&app, reqwest::Method::GET, CLIENTS, None, None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let anonymous = call(&app, reqwest::Method::DELETE, &one, None, None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);

    // Bad bodies: nothing changes.
    let before = get(&app, &one, &operator).await.ok(200).clone();
    post(
        &app,
        CLIENTS,
        &operator,
        json!({"name": "X", "colour": "red"}),
    )
    .await
    .problem(400, "invalid-body");
    post(
        &app,
        CLIENTS,
        &operator,
        json!({"name": "X", "redirect_uris": ["not a uri"]}),
    )
    .await
    .problem(400, "invalid-client-metadata");
    post(
        &app,
        CLIENTS,
        &operator,
        json!({"name": "X", "public": true, "grant_types": ["client_credentials"]}),
    )
    .await
    .problem(400, "invalid-client-metadata");
    patch(&app, &one, &operator, json!({}))
        .await
        .problem(400, "invalid-body");
    patch(&app, &one, &operator, json!({"public": true}))
        .await
        .problem(400, "invalid-body");
    patch(&app, &one, &operator, json!({"colour": "red"}))
        .await
        .problem(400, "invalid-body");
    patch(
        &app,
        &one,
        &operator,
        json!({"redirect_uris": ["not a uri"]}),
    )
    .await
    .problem(400, "invalid-client-metadata");
    patch(&app, &one, &operator, json!({"grant_types": ["password"]}))
        .await
        .problem(400, "invalid-client-metadata");
    for grace in [json!(-1), json!(31 * 24 * 3600)] {
        post(&app, &rotate, &operator, json!({"grace_seconds": grace}))
            .await
            .problem(400, "invalid-grace");
    }
    post(
        &app,
        &rotate,
        &operator,
        json!({"grace_seconds": 1, "x": 1}),
    )
    .await
    .problem(400, "invalid-body");
    assert_eq!(get(&app, &one, &operator).await.ok(200), &before);
    token_ok(client_credentials(&app, &id, &secret).await);
    assert_eq!(
        m::ids(get(&app, CLIENTS, &operator).await.ok(200), "client_id").len(),
        4
    );
}

async fn writes_are_audited_without_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = m::operator_token(&app).await;
    let (id, first) = create_machine(&app, &operator, "Billing").await;
    patch(
        &app,
        &format!("{CLIENTS}/{id}"),
        &operator,
        json!({"name": "Billing v2"}),
    )
    .await
    .ok(200);
    let rotated = post(
        &app,
        &format!("{CLIENTS}/{id}/rotate-secret"),
        &operator,
        json!({"grace_seconds": 3600}),
    )
    .await;
    let second = rotated.ok(200)["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let cli = app
        .cli(&["client", "rotate-secret", "--client-id", &id])
        .await
        .json();
    let third = cli["client_secret"].as_str().expect("secret").to_owned();
    assert_eq!(
        delete(&app, &format!("{CLIENTS}/{id}"), &operator)
            .await
            .status,
        204
    );

    let created = events(&app, &operator, "client.created", &id).await;
    assert_eq!(created.len(), 1, "{created:?}");
    let updated = events(&app, &operator, "client.updated", &id).await;
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(
        updated[0]["details"]["changes"]["name"],
        json!({"old": "Billing", "new": "Billing v2"})
    );
    let rotations = events(&app, &operator, "client.secret_rotated", &id).await;
    assert_eq!(rotations.len(), 2, "{rotations:?}");
    // Newest first: the CLI's (no grace), then the API's (one hour).
    assert_eq!(rotations[0]["details"]["grace_seconds"], 0);
    assert_eq!(rotations[1]["details"]["grace_seconds"], 3600);
    assert!(rotations[1]["details"]["previous_secret_expires_at"].is_i64());
    assert_eq!(
        events(&app, &operator, "client.deleted", &id).await.len(),
        1
    );

    let everything = get(&app, "/api/v1/audit-log?limit=100", &operator)
        .await
        .ok(200)
        .to_string();
    for secret in [&first, &second, &third] {
        assert!(
            !everything.contains(secret.as_str()),
            "a secret in the audit log"
        );
    }
}

/// The audit events `action` about client `id`, newest first.
async fn events(app: &TestApp, operator: &str, action: &str, id: &str) -> Vec<Value> {
    get(app, &format!("/api/v1/audit-log?action={action}"), operator)
        .await
        .ok(200)
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["target_id"] == id || e["details"].to_string().contains(id))
        .cloned()
        .collect()
}

async fn a_sibling_server_sees_a_rotation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = m::operator_token(&app).await;
    let (id, old) = create_machine(&app, &operator, "Billing").await;
    let sibling = app.spawn_sibling(&[]).await.expect("sibling starts");
    let at_sibling = |secret: String| {
        let url = format!("{}/token", sibling.address);
        let id = id.clone();
        async move {
            let response = rp::rp_http()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // The sibling caches the client now.
    token_ok(at_sibling(old.clone()).await);
    let rotated = post(
        &app,
        &format!("{CLIENTS}/{id}/rotate-secret"),
        &operator,
        json!({}),
    )
    .await;
    let new = rotated.ok(200)["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    // The registry caches a client for one second; polling would trip the client-auth throttle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    token_ok(at_sibling(new).await);
    refused(at_sibling(old).await);
}

async fn a_deleted_clients_refresh_token_no_longer_refreshes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = m::operator_token(&app).await;
    let client = app.register_client(&["--first-party"]).await;
    app.create_person("ada@example.com", "Ada").await;
    let (code, verifier) =
        rp::code_with_pkce(&app, &rp::browser(), &client, "ada@example.com").await;
    let tokens = rp::json_with_status(
        app.post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", REDIRECT_URI),
            ],
        )
        .await,
        200,
    )
    .await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let access = tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    assert_eq!(
        rp::rp_http()
            .get(app.url("/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("sent")
            .status(),
        200
    );

    assert_eq!(
        delete(&app, &format!("{CLIENTS}/{}", client.id), &operator)
            .await
            .status,
        204
    );
    assert_eq!(app.count("refresh_families").await, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 401);
    // Its access token dies with it.
    assert_eq!(
        rp::rp_http()
            .get(app.url("/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("sent")
            .status(),
        401
    );
}

/// `POST path` (`/introspect` or `/revoke`) authenticated as `id:secret` with `token`; the status and
/// body.
async fn with_client(
    app: &TestApp,
    path: &str,
    id: &str,
    secret: &str,
    token: &str,
) -> (u16, Value) {
    let response = rp::rp_http()
        .post(app.url(path))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn introspection_and_revocation_follow_rotation_and_deletion(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = m::operator_token(&app).await;
    let introspector = app
        .register_client(&[
            "--grant-type",
            "client_credentials",
            "--scope",
            "org:read",
            "--introspect",
        ])
        .await;
    let (id, first) = create_machine(&app, &operator, "Billing").await;
    let (status, body) = client_credentials(&app, &id, &first).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("token").to_owned();

    // During the grace the old secret authenticates at introspection and revocation too.
    let rotate = format!("{CLIENTS}/{id}/rotate-secret");
    let second = post(&app, &rotate, &operator, json!({"grace_seconds": 3600}))
        .await
        .ok(200)["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let (status, body) = with_client(&app, "/introspect", &id, &first, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true, "{body}");
    let (status, body) = with_client(&app, "/revoke", &id, &first, "not-a-token").await;
    assert_eq!(status, 200, "{body}");

    // Rotating again within the grace keeps only the secret just replaced.
    let third = post(&app, &rotate, &operator, json!({"grace_seconds": 3600}))
        .await
        .ok(200)["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    refused(client_credentials(&app, &id, &first).await);
    token_ok(client_credentials(&app, &id, &second).await);
    token_ok(client_credentials(&app, &id, &third).await);

    // Deleted: its access token is inactive for another introspecting client.
    let (status, body) = with_client(
        &app,
        "/introspect",
        &introspector.id,
        introspector.secret(),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["active"].clone()),
        (200, json!(true)),
        "{body}"
    );
    assert_eq!(
        delete(&app, &format!("{CLIENTS}/{id}"), &operator)
            .await
            .status,
        204
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = with_client(
        &app,
        "/introspect",
        &introspector.id,
        introspector.secret(),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false, "{body}");
    let (status, body) = with_client(&app, "/revoke", &id, &third, &token).await;
    assert_eq!(status, 401, "{body}");
}

async fn api_settings_are_checked_as_the_cli_checks_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = m::operator_token(&app).await;

    // An algorithm of its own brings a signing key of that algorithm.
    let created = create(
        &app,
        &operator,
        json!({"name": "Edwards", "redirect_uris": [REDIRECT_URI], "id_token_alg": "EdDSA"}),
    )
    .await;
    assert_eq!(created["id_token_alg"], "EdDSA");
    let id = created["client_id"].as_str().expect("id").to_owned();
    let jwks = app.jwks().await;
    assert!(
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["alg"] == "EdDSA"),
        "{jwks}"
    );
    let one = format!("{CLIENTS}/{id}");
    let patched = patch(
        &app,
        &one,
        &operator,
        json!({"id_token_alg": "ES256", "first_party": true}),
    )
    .await;
    assert_eq!(patched.ok(200)["id_token_alg"], "ES256");

    let public = create(
        &app,
        &operator,
        json!({"name": "SPA", "redirect_uris": [REDIRECT_URI], "public": true}),
    )
    .await;
    let public_id = public["client_id"].as_str().expect("id").to_owned();

    let before = get(&app, &one, &operator).await.ok(200).clone();
    for body in [
        json!({"id_token_alg": "HS256"}),
        json!({"scopes": ["bad\"scope"]}),
        json!({"post_logout_redirect_uris": ["javascript:alert(1)"]}),
    ] {
        patch(&app, &one, &operator, body)
            .await
            .problem(400, "invalid-client-metadata");
    }
    for body in [json!({"name": 7}), json!({"first_party": "yes"}), json!([])] {
        patch(&app, &one, &operator, body)
            .await
            .problem(400, "invalid-body");
    }
    patch(
        &app,
        &format!("{CLIENTS}/{public_id}"),
        &operator,
        json!({"allow_no_pkce": true}),
    )
    .await
    .problem(400, "invalid-client-metadata");
    assert_eq!(get(&app, &one, &operator).await.ok(200), &before);

    for query in ["limit=0", "limit=201", "limit=x"] {
        get(&app, &format!("{CLIENTS}?{query}"), &operator)
            .await
            .problem(400, "invalid-query");
    }
    get(&app, &format!("{CLIENTS}?cursor=garbage"), &operator)
        .await
        .problem(400, "invalid-cursor");
}

async fn a_deleted_operators_token_stops_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = m::operator_token(&app).await;
    let (id, secret) = machine_with(&app, &operator, "ops", &["admin"]).await;
    let (status, body) = client_credentials(&app, &id, &secret).await;
    assert_eq!(status, 200, "{body}");
    let second = body["access_token"].as_str().expect("token").to_owned();
    get(&app, CLIENTS, &second).await.ok(200);

    assert_eq!(
        delete(&app, &format!("{CLIENTS}/{id}"), &operator)
            .await
            .status,
        204
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = get(&app, CLIENTS, &second).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    get(&app, CLIENTS, &operator).await.ok(200);
}
