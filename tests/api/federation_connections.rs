//! Enterprise SSO, the management of connections: an organization's (`/api/v1/orgs/{org}/connections`,
//! admins and owners) and the instance's (`/api/v1/connections`, operators; `latchkey connection`),
//! with the issuer discovered at save time, the client secret write-only, and `keys rewrap`.

use serde_json::{Value, json};

use crate::federation_helpers::{Pair, spawn_pair};
use crate::helpers::{Backend, TestApp, new_kek};
use crate::mgmt_helpers::{self as m, Answer, delete, get, patch, post};

on_both_databases!(
    admins_create_read_list_update_and_delete_connections,
    bad_issuers_are_refused_and_nothing_is_stored,
    without_insecure_upstreams_a_loopback_issuer_is_refused,
    bad_bodies_are_refused_and_nothing_is_stored,
    connections_are_isolated_between_organizations,
    the_operator_api_manages_instance_wide_connections,
    the_cli_manages_connections,
    rewrap_reseals_connection_secrets,
    upstreams_the_code_flow_cannot_use_are_refused,
);

const ORG_PATH: &str = "/api/v1/orgs/acme/connections";

/// The pair, an organization `acme` owned by ada (token returned) with an admin bob, a member
/// mia and a viewer vic; returns (pair, org id, ada's, bob's, mia's, vic's tokens).
struct Setup {
    pair: Pair,
    org_id: String,
    owner: String,
    admin: String,
    member: String,
    viewer: String,
}

async fn setup(backend: Backend, extra: &[(&str, &str)]) -> Setup {
    let pair = spawn_pair(backend, extra).await;
    let app = &pair.app;
    let client = m::org_client(app).await;
    let (_, owner) = m::person(app, &client, "ada@example.com").await;
    let org_id = m::cli_org(app, "Acme", "acme", "ada@example.com").await;
    let mut tokens = Vec::new();
    for (email, role) in [
        ("bob@example.com", "admin"),
        ("mia@example.com", "member"),
        ("vic@example.com", "viewer"),
    ] {
        let (_, token) = m::person(app, &client, email).await;
        m::cli_member(app, "acme", email, role).await;
        tokens.push(token);
    }
    let [admin, member, viewer]: [String; 3] = tokens.try_into().expect("three tokens");
    Setup {
        pair,
        org_id,
        owner,
        admin,
        member,
        viewer,
    }
}

/// Every stored sealed secret, joined (to assert the secret never appears in it).
async fn sealed_column(app: &TestApp) -> String {
    let rows: Vec<String> = sqlx::query_scalar("select client_secret_sealed from connections")
        .fetch_all(&app.db.pool)
        .await
        .expect("sealed secrets");
    rows.join("\n")
}

/// Asserts that no answer body ever shows the secret.
#[track_caller]
fn no_secret(answer: &Answer, secret: &str) {
    let text = answer.body.to_string();
    assert!(!text.contains(secret), "the secret leaked: {text}");
    assert!(!text.contains("client_secret\""), "a secret field: {text}");
}

async fn admins_create_read_list_update_and_delete_connections(backend: Backend) {
    let s = setup(backend, &[]).await;
    let app = &s.pair.app;
    let secret = s.pair.client_secret.clone();

    // The admin creates one.
    let created = post(app, ORG_PATH, &s.admin, s.pair.connection_body("Acme IdP")).await;
    let conn = created.ok(201).clone();
    no_secret(&created, &secret);
    let id = conn["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.location,
        format!("/api/v1/orgs/{}/connections/{id}", s.org_id)
    );
    assert_eq!(conn["org_id"], s.org_id.as_str());
    assert_eq!(conn["name"], "Acme IdP");
    assert_eq!(conn["issuer"], s.pair.upstream_issuer().as_str());
    assert_eq!(conn["client_id"], s.pair.client_id.as_str());
    assert_eq!(conn["scopes"], json!(["openid", "email", "profile"]));
    assert_eq!(conn["role_mapping"], Value::Null);
    assert_eq!(conn["redirect_uri"], app.url("/federation/callback"));
    assert!(conn["created_at"].is_i64() && conn["updated_at"].is_i64());
    // The column holds the secret sealed, never in clear.
    let sealed = sealed_column(app).await;
    assert!(!sealed.is_empty() && !sealed.contains(&secret));

    // The owner creates one with scopes (openid added first) and a role mapping.
    let mut body = s.pair.connection_body("Second");
    body["scopes"] = json!(["email", "groups"]);
    body["role_mapping"] = json!({"claim": "groups", "map": {"idp-admins": "admin"}});
    let second = post(app, ORG_PATH, &s.owner, body).await;
    let second_body = second.ok(201).clone();
    no_secret(&second, &secret);
    assert_eq!(second_body["scopes"], json!(["openid", "email", "groups"]));
    assert_eq!(
        second_body["role_mapping"],
        json!({"claim": "groups", "map": {"idp-admins": "admin"}, "default_role": "member"})
    );
    let second_id = second_body["id"].as_str().expect("id").to_owned();

    // Read and list (oldest first), by id and by slug.
    let path = format!("{ORG_PATH}/{id}");
    let read = get(app, &path, &s.admin).await;
    assert_eq!(read.ok(200), &conn);
    no_secret(&read, &secret);
    let listed = get(
        app,
        &format!("/api/v1/orgs/{}/connections", s.org_id),
        &s.owner,
    )
    .await;
    let items = listed.ok(200).as_array().expect("a JSON array").clone();
    no_secret(&listed, &secret);
    assert_eq!(
        items.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(),
        vec![json!(id), json!(second_id)]
    );

    // Update: name, scopes, a new secret (sealed again, never shown), the mapping removed.
    let changed = patch(
        app,
        &format!("{ORG_PATH}/{second_id}"),
        &s.admin,
        json!({"name": "Renamed", "client_secret": "a-new-secret-value", "role_mapping": null,
               "scopes": ["openid", "profile"]}),
    )
    .await;
    let changed_body = changed.ok(200).clone();
    no_secret(&changed, "a-new-secret-value");
    assert_eq!(changed_body["name"], "Renamed");
    assert_eq!(changed_body["role_mapping"], Value::Null);
    assert_eq!(changed_body["scopes"], json!(["openid", "profile"]));
    assert_eq!(
        get(app, &format!("{ORG_PATH}/{second_id}"), &s.admin)
            .await
            .ok(200),
        &changed_body
    );
    let opened =
        latchkey::federation::connections::store::client_secret(&app.db.pool, &app.kek, &second_id)
            .await
            .expect("opens")
            .expect("a secret");
    assert_eq!(opened, "a-new-secret-value");
    assert!(!sealed_column(app).await.contains("a-new-secret-value"));
    // The issuer may be given again (re-discovered); nothing changed answers as it is.
    let same = patch(
        app,
        &path,
        &s.admin,
        json!({"issuer": s.pair.upstream_issuer()}),
    )
    .await;
    assert_eq!(same.ok(200), &conn);
    // An empty change is refused.
    patch(app, &path, &s.admin, json!({}))
        .await
        .problem(400, "invalid-body");

    // Delete: the identities linked through it go with it (as the sign-in flow would have linked
    // one; written here directly).
    let ada = get(app, "/api/v1/me", &s.owner).await.ok(200)["id"].clone();
    sqlx::query(
        "insert into federated_identities (id, user_id, connection_id, issuer, subject, email, \
         created_at) values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind("fi-1")
    .bind(ada.as_str().expect("id"))
    .bind(&id)
    .bind(s.pair.upstream_issuer())
    .bind("upstream-subject")
    .bind("ada@example.com")
    .bind(1_i64)
    .execute(&app.db.pool)
    .await
    .expect("identity linked");
    assert_eq!(delete(app, &path, &s.admin).await.status, 204);
    assert_eq!(app.count("federated_identities").await, 0);
    get(app, &path, &s.admin)
        .await
        .problem(404, "connection-not-found");
    delete(app, &path, &s.admin)
        .await
        .problem(404, "connection-not-found");
    assert_eq!(app.count("connections").await, 1);

    // The audit log has every write, without the secret.
    let log = get(app, "/api/v1/orgs/acme/audit-log", &s.owner).await;
    let log_text = log.ok(200).to_string();
    assert!(!log_text.contains(&secret) && !log_text.contains("a-new-secret-value"));
    let events: Vec<&Value> = log
        .body
        .as_array()
        .expect("a JSON array")
        .iter()
        .filter(|e| e["target_type"] == "connection")
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        vec![
            "connection.deleted",
            "connection.updated",
            "connection.created",
            "connection.created"
        ]
    );
    assert_eq!(events[0]["target_id"], id.as_str());
    assert_eq!(
        events[0]["details"],
        json!({"name": "Acme IdP", "issuer": s.pair.upstream_issuer(), "identities_removed": 1})
    );
    assert_eq!(events[1]["details"]["client_secret"], "changed");
    assert_eq!(events[1]["details"]["name"], "Renamed");
    assert_eq!(events[1]["details"]["role_mapping"], Value::Null);
    assert_eq!(
        events[3]["details"]["issuer"],
        s.pair.upstream_issuer().as_str()
    );
}

async fn bad_issuers_are_refused_and_nothing_is_stored(backend: Backend) {
    let s = setup(backend, &[]).await;
    let app = &s.pair.app;
    let with_issuer = |issuer: &str| {
        let mut body = s.pair.connection_body("Bad");
        body["issuer"] = json!(issuer);
        body
    };
    for (issuer, status, code) in [
        ("not a url", 400, "issuer-refused"),
        ("http://idp.example.com", 400, "issuer-refused"),
        ("https://10.0.0.1", 400, "issuer-refused"),
        ("https://169.254.169.254", 400, "issuer-refused"),
        ("https://[fd00::1]", 400, "issuer-refused"),
        ("https://user:pw@idp.example.com", 400, "issuer-refused"),
        ("http://127.0.0.1:1", 422, "issuer-unreachable"),
    ] {
        let answer = post(app, ORG_PATH, &s.admin, with_issuer(issuer)).await;
        answer.problem(status, code);
    }
    // The upstream's document names another issuer than the one given.
    let other = format!("{}/x", s.pair.upstream_issuer());
    post(app, ORG_PATH, &s.admin, with_issuer(&other))
        .await
        .problem(422, "issuer-invalid");
    // The document is found but names another issuer (`…/` is not `…`, Discovery §4.3).
    let slash = format!("{}/", s.pair.upstream_issuer());
    post(app, ORG_PATH, &s.admin, with_issuer(&slash))
        .await
        .problem(422, "issuer-invalid");
    // A server that is not an OpenID provider at all (this server's own health page has no
    // discovery document under it).
    let not_idp = app.url("/healthz");
    post(app, ORG_PATH, &s.admin, with_issuer(&not_idp))
        .await
        .problem(422, "issuer-invalid");
    assert_eq!(app.count("connections").await, 0);

    // PATCH re-discovers a new issuer and keeps the old one on refusal.
    let created = post(app, ORG_PATH, &s.admin, s.pair.connection_body("Good")).await;
    let id = created.ok(201)["id"].as_str().expect("id").to_owned();
    let path = format!("{ORG_PATH}/{id}");
    patch(app, &path, &s.admin, json!({"issuer": "https://10.0.0.1"}))
        .await
        .problem(400, "issuer-refused");
    patch(app, &path, &s.admin, json!({"issuer": other}))
        .await
        .problem(422, "issuer-invalid");
    assert_eq!(
        get(app, &path, &s.admin).await.ok(200)["issuer"],
        s.pair.upstream_issuer().as_str()
    );
}

async fn without_insecure_upstreams_a_loopback_issuer_is_refused(backend: Backend) {
    let s = setup(backend, &[("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "false")]).await;
    let app = &s.pair.app;
    let answer = post(app, ORG_PATH, &s.admin, s.pair.connection_body("Local")).await;
    answer.problem(400, "issuer-refused");
    assert!(
        answer.body["detail"]
            .as_str()
            .expect("detail")
            .contains("LATCHKEY_ALLOW_INSECURE_UPSTREAMS"),
        "{}",
        answer.body
    );
    assert_eq!(app.count("connections").await, 0);
}

async fn bad_bodies_are_refused_and_nothing_is_stored(backend: Backend) {
    let s = setup(backend, &[]).await;
    let app = &s.pair.app;
    let body = |change: Value| {
        let mut b = s.pair.connection_body("Acme IdP");
        for (k, v) in change.as_object().expect("object") {
            if v.is_null() {
                b.as_object_mut().expect("object").remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b
    };
    for change in [
        json!({"role_mapping": {"claim": "groups", "map": {"x": "owner"}}}),
        json!({"role_mapping": {"claim": "groups", "default_role": "owner"}}),
        json!({"role_mapping": {"claim": "groups", "map": {"x": "superuser"}}}),
        json!({"role_mapping": {"claim": ""}}),
        json!({"role_mapping": {"claim": "groups", "extra": 1}}),
        json!({"unknown": true}),
        json!({"client_secret": null}),
        json!({"client_secret": ""}),
        json!({"client_secret": "x".repeat(1025)}),
        json!({"client_id": ""}),
        json!({"client_id": "x".repeat(256)}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "bad\u{7}name"}),
        json!({"scopes": ["openid", "two words"]}),
        json!({"scopes": "openid"}),
    ] {
        let answer = post(app, ORG_PATH, &s.admin, body(change.clone())).await;
        assert_eq!(answer.status, 400, "{change}: {}", answer.body);
        answer.problem(400, "invalid-body");
    }
    // Not JSON, and no body.
    let raw = m::call(app, reqwest::Method::POST, ORG_PATH, Some(&s.admin), None).await;
    raw.problem(400, "missing-body");
    assert_eq!(app.count("connections").await, 0);
    let log = get(app, "/api/v1/orgs/acme/audit-log", &s.owner).await;
    assert!(!log.ok(200).to_string().contains("connection."));
}

async fn connections_are_isolated_between_organizations(backend: Backend) {
    let s = setup(backend, &[]).await;
    let app = &s.pair.app;
    let client = m::org_client(app).await;
    let (_, zed) = m::person(app, &client, "zed@example.com").await;
    m::cli_org(app, "Beta", "beta", "zed@example.com").await;

    let created = post(app, ORG_PATH, &s.admin, s.pair.connection_body("Acme IdP")).await;
    let id = created.ok(201)["id"].as_str().expect("id").to_owned();
    let b_created = post(
        app,
        "/api/v1/orgs/beta/connections",
        &zed,
        s.pair.connection_body("Beta IdP"),
    )
    .await;
    let b_id = b_created.ok(201)["id"].as_str().expect("id").to_owned();

    // Beta's owner: Acme is not theirs (404), Acme's connection under Beta's path is not found.
    get(app, ORG_PATH, &zed)
        .await
        .problem(404, "organization-not-found");
    let foreign = format!("/api/v1/orgs/beta/connections/{id}");
    get(app, &foreign, &zed)
        .await
        .problem(404, "connection-not-found");
    patch(app, &foreign, &zed, json!({"name": "Mine"}))
        .await
        .problem(404, "connection-not-found");
    delete(app, &foreign, &zed)
        .await
        .problem(404, "connection-not-found");
    let b_list = get(app, "/api/v1/orgs/beta/connections", &zed).await;
    assert_eq!(
        b_list.ok(200).as_array().expect("array").len(),
        1,
        "{}",
        b_list.body
    );
    assert_eq!(b_list.body[0]["id"], b_id.as_str());
    // Nor is an instance-wide connection reachable through an organization.
    let operator = m::operator_token(app).await;
    let instance = post(
        app,
        "/api/v1/connections",
        &operator,
        s.pair.connection_body("Everyone"),
    )
    .await;
    let instance_id = instance.ok(201)["id"].as_str().expect("id").to_owned();
    get(app, &format!("{ORG_PATH}/{instance_id}"), &s.admin)
        .await
        .problem(404, "connection-not-found");
    assert_eq!(
        get(app, ORG_PATH, &s.admin)
            .await
            .ok(200)
            .as_array()
            .expect("array")
            .len(),
        1
    );

    // Members and viewers of Acme: 403 on reads and writes (connections are the admins').
    let path = format!("{ORG_PATH}/{id}");
    for token in [&s.member, &s.viewer] {
        post(app, ORG_PATH, token, s.pair.connection_body("No"))
            .await
            .problem(403, "role-insufficient");
        patch(app, &path, token, json!({"name": "No"}))
            .await
            .problem(403, "role-insufficient");
        delete(app, &path, token)
            .await
            .problem(403, "role-insufficient");
        get(app, &path, token)
            .await
            .problem(403, "role-insufficient");
        get(app, ORG_PATH, token)
            .await
            .problem(403, "role-insufficient");
    }
    // A token without org:write cannot write.
    let read_only = m::user_token(app, &client, "bob@example.com", "openid org:read").await;
    get(app, &path, &read_only).await.ok(200);
    post(app, ORG_PATH, &read_only, s.pair.connection_body("No"))
        .await
        .problem(403, "insufficient-scope");
    assert_eq!(app.count("connections").await, 3);
}

async fn the_operator_api_manages_instance_wide_connections(backend: Backend) {
    let s = setup(backend, &[]).await;
    let app = &s.pair.app;
    let operator = m::operator_token(app).await;
    let secret = s.pair.client_secret.clone();

    // Anyone else: 403 operator-required, before the body is looked at.
    let not_operator = m::client_token(app, &["org:read"]).await;
    for token in [&s.owner, &not_operator] {
        post(
            app,
            "/api/v1/connections",
            token,
            s.pair.connection_body("X"),
        )
        .await
        .problem(403, "operator-required");
        get(app, "/api/v1/connections", token)
            .await
            .problem(403, "operator-required");
    }

    let created = post(
        app,
        "/api/v1/connections",
        &operator,
        s.pair.connection_body("Everyone"),
    )
    .await;
    let conn = created.ok(201).clone();
    no_secret(&created, &secret);
    let id = conn["id"].as_str().expect("id").to_owned();
    assert_eq!(conn["org_id"], Value::Null);
    assert_eq!(created.location, format!("/api/v1/connections/{id}"));
    let path = format!("/api/v1/connections/{id}");
    for token in [&s.owner, &not_operator] {
        get(app, &path, token)
            .await
            .problem(403, "operator-required");
        delete(app, &path, token)
            .await
            .problem(403, "operator-required");
    }
    // No role mapping without an organization.
    let mut mapped = s.pair.connection_body("Mapped");
    mapped["role_mapping"] = json!({"claim": "groups"});
    post(app, "/api/v1/connections", &operator, mapped)
        .await
        .problem(400, "invalid-body");
    patch(
        app,
        &path,
        &operator,
        json!({"role_mapping": {"claim": "groups"}}),
    )
    .await
    .problem(400, "invalid-body");
    // Bad issuers answer as for an organization.
    let mut bad = s.pair.connection_body("Bad");
    bad["issuer"] = json!("https://169.254.169.254");
    post(app, "/api/v1/connections", &operator, bad)
        .await
        .problem(400, "issuer-refused");

    let read = get(app, &path, &operator).await;
    assert_eq!(read.ok(200), &conn);
    let listed = get(app, "/api/v1/connections", &operator).await;
    assert_eq!(listed.ok(200), &json!([conn]));
    // An organization's connection is not among them, nor reachable here.
    let org_conn = post(app, ORG_PATH, &s.admin, s.pair.connection_body("Acme IdP")).await;
    let org_conn_id = org_conn.ok(201)["id"].as_str().expect("id").to_owned();
    get(
        app,
        &format!("/api/v1/connections/{org_conn_id}"),
        &operator,
    )
    .await
    .problem(404, "connection-not-found");
    assert_eq!(
        get(app, "/api/v1/connections", &operator)
            .await
            .ok(200)
            .as_array()
            .expect("array")
            .len(),
        1
    );
    // The operator may manage an organization's connections through its path.
    get(app, &format!("{ORG_PATH}/{org_conn_id}"), &operator)
        .await
        .ok(200);

    let renamed = patch(app, &path, &operator, json!({"name": "All of us"})).await;
    assert_eq!(renamed.ok(200)["name"], "All of us");
    assert_eq!(delete(app, &path, &operator).await.status, 204);
    get(app, &path, &operator)
        .await
        .problem(404, "connection-not-found");

    // Instance-wide events are in the full audit log, without the secret.
    let log = get(app, "/api/v1/audit-log", &operator).await;
    let text = log.ok(200).to_string();
    assert!(!text.contains(&secret));
    let actions: Vec<&str> = log
        .body
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["target_id"] == id.as_str())
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        vec![
            "connection.deleted",
            "connection.updated",
            "connection.created"
        ]
    );
}

async fn the_cli_manages_connections(backend: Backend) {
    let s = setup(backend, &[]).await;
    let app = &s.pair.app;
    let issuer = s.pair.upstream_issuer();
    let secret = s.pair.client_secret.clone();

    let out = app
        .cli(&[
            "connection",
            "create",
            "--name",
            "Everyone",
            "--issuer",
            &issuer,
            "--client-id",
            &s.pair.client_id,
            "--client-secret",
            &secret,
        ])
        .await;
    assert!(!out.stdout.contains(&secret), "{}", out.stdout);
    let conn = out.json();
    assert_eq!(conn["org_id"], Value::Null);
    assert_eq!(conn["issuer"], issuer.as_str());
    assert_eq!(conn["redirect_uri"], app.url("/federation/callback"));
    let id = conn["id"].as_str().expect("id").to_owned();

    let out = app
        .cli_stdin(
            &[
                "connection",
                "create",
                "--name",
                "Acme IdP",
                "--issuer",
                &issuer,
                "--client-id",
                &s.pair.client_id,
                "--client-secret-stdin",
                "--scope",
                "groups",
                "--org",
                "acme",
            ],
            &format!("{secret}\n"),
        )
        .await
        .json();
    assert_eq!(out["org_id"], s.org_id.as_str());
    assert_eq!(out["scopes"], json!(["openid", "groups"]));
    let org_conn_id = out["id"].as_str().expect("id").to_owned();
    let opened = latchkey::federation::connections::store::client_secret(
        &app.db.pool,
        &app.kek,
        &org_conn_id,
    )
    .await
    .expect("opens");
    assert_eq!(opened.as_deref(), Some(secret.as_str()), "no line end kept");

    let listed = app.cli(&["connection", "list"]).await.json();
    assert_eq!(listed["connections"].as_array().expect("array").len(), 1);
    assert_eq!(listed["connections"][0]["id"], id.as_str());
    let listed = app
        .cli(&["connection", "list", "--org", "acme"])
        .await
        .json();
    assert_eq!(listed["connections"][0]["id"], org_conn_id.as_str());
    // The organization's admin sees the CLI's connection; the audit log names no user.
    let read = get(app, &format!("{ORG_PATH}/{org_conn_id}"), &s.admin).await;
    assert_eq!(read.ok(200)["name"], "Acme IdP");

    // Refusals: one line on stderr, nothing on stdout, nothing stored.
    for (issuer, needle) in [
        ("https://10.0.0.1", "private"),
        ("ftp://idp.example.com", "https"),
        ("http://127.0.0.1:1", "127.0.0.1:1"),
    ] {
        let refused = app
            .cli(&[
                "connection",
                "create",
                "--name",
                "Bad",
                "--issuer",
                issuer,
                "--client-id",
                "c",
                "--client-secret",
                "s",
            ])
            .await
            .refused();
        assert!(refused.contains(needle), "{issuer}: {refused}");
    }
    let refused = app
        .cli(&["connection", "list", "--org", "nope"])
        .await
        .refused();
    assert!(refused.contains("organization"), "{refused}");
    assert_eq!(app.count("connections").await, 2);

    let deleted = app
        .cli(&["connection", "delete", "--id", &org_conn_id])
        .await
        .json();
    assert_eq!(deleted, json!({"id": org_conn_id, "deleted": true}));
    app.cli(&["connection", "delete", "--id", &org_conn_id])
        .await
        .refused();
    assert_eq!(app.count("connections").await, 1);
    let log = get(app, "/api/v1/orgs/acme/audit-log", &s.owner).await;
    let actions: Vec<&str> = log
        .ok(200)
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["target_id"] == org_conn_id.as_str())
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, vec!["connection.deleted", "connection.created"]);
}

async fn rewrap_reseals_connection_secrets(backend: Backend) {
    let s = setup(backend, &[]).await;
    let app = &s.pair.app;
    let created = post(app, ORG_PATH, &s.admin, s.pair.connection_body("Acme IdP")).await;
    let id = created.ok(201)["id"].as_str().expect("id").to_owned();
    let before = sealed_column(app).await;

    let new = new_kek();
    let out = app
        .cli_stdin(&["keys", "rewrap", "--new-key-stdin"], &new)
        .await
        .json();
    assert!(out["rewrapped"].is_i64(), "{out}");
    assert_ne!(sealed_column(app).await, before, "sealed again");
    let new_key = latchkey::crypto::kek::KeyEncryptionKey::from_base64(&new).expect("key");
    let opened =
        latchkey::federation::connections::store::client_secret(&app.db.pool, &new_key, &id)
            .await
            .expect("opens with the new key");
    assert_eq!(opened.as_deref(), Some(s.pair.client_secret.as_str()));
    assert!(
        latchkey::federation::connections::store::client_secret(&app.db.pool, &app.kek, &id)
            .await
            .is_err(),
        "no longer under the old key"
    );
}

/// A fake upstream on loopback serving, under `/{variant}`, a discovery document (`variant` names
/// what is wrong with it) and a JWKS; returns its address.
async fn fake_upstream(real_jwks: Value) -> String {
    use axum::extract::{Path, State};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;

    async fn discovery(
        State((base, _)): State<(String, Value)>,
        Path(variant): Path<String>,
    ) -> axum::response::Response {
        let issuer = format!("{base}/{variant}");
        if variant == "redirects" {
            return Redirect::temporary(&format!("{base}/good/.well-known/openid-configuration"))
                .into_response();
        }
        let mut doc = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        });
        match variant.as_str() {
            "no-code" => doc["response_types_supported"] = json!(["id_token"]),
            "no-token-endpoint" => {
                doc.as_object_mut()
                    .expect("object")
                    .remove("token_endpoint");
            }
            "plain-pkce-only" => doc["code_challenge_methods_supported"] = json!(["plain"]),
            "no-pkce-listed" => {
                doc.as_object_mut()
                    .expect("object")
                    .remove("code_challenge_methods_supported");
            }
            _ => {}
        }
        axum::Json(doc).into_response()
    }

    async fn keys(
        State((_, jwks)): State<(String, Value)>,
        Path(variant): Path<String>,
    ) -> axum::Json<Value> {
        if variant == "no-keys" {
            axum::Json(json!({"keys": []}))
        } else {
            axum::Json(jwks)
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new()
        .route(
            "/{variant}/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/{variant}/jwks", get(keys))
        .with_state((base.clone(), real_jwks));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

async fn upstreams_the_code_flow_cannot_use_are_refused(backend: Backend) {
    let s = setup(backend, &[]).await;
    let app = &s.pair.app;
    // Real keys, so that only the part of the document under test is wrong.
    let jwks: Value = s
        .pair
        .upstream
        .get("/jwks.json")
        .await
        .json()
        .await
        .expect("the upstream's JWKS");
    let base = fake_upstream(jwks).await;
    let with_issuer = |issuer: String| {
        let mut body = s.pair.connection_body("Fake");
        body["issuer"] = json!(issuer);
        body
    };
    for (variant, status, code, needle) in [
        ("no-code", 422, "issuer-invalid", "response_types_supported"),
        ("no-token-endpoint", 422, "issuer-invalid", "token_endpoint"),
        ("no-keys", 422, "issuer-invalid", "JWKS"),
        ("plain-pkce-only", 422, "issuer-invalid", "S256"),
        ("redirects", 400, "issuer-refused", "redirect"),
    ] {
        let answer = post(
            app,
            ORG_PATH,
            &s.admin,
            with_issuer(format!("{base}/{variant}")),
        )
        .await;
        answer.problem(status, code);
        let detail = answer.body["detail"].as_str().expect("detail");
        assert!(detail.contains(needle), "{variant}: {detail}");
    }
    assert_eq!(app.count("connections").await, 0);
    // The same server with a usable document is accepted (PKCE methods may go unlisted).
    for variant in ["good", "no-pkce-listed"] {
        post(
            app,
            ORG_PATH,
            &s.admin,
            with_issuer(format!("{base}/{variant}")),
        )
        .await
        .ok(201);
    }
}
