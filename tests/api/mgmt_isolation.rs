//! Management API, tenant isolation and authentication: every `/api/v1/orgs/{org}/…` route answers
//! a non-member exactly like a nonexistent organization (404, no data); missing, malformed, expired,
//! revoked and disabled-user tokens get 401; missing scopes 403; an operator token sees everything.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{self as m, call, get, ids, patch, post};

on_both_databases!(
    non_members_get_the_same_404_as_for_no_organization,
    bad_tokens_get_401_and_missing_scopes_403,
    operators_see_every_organization,
    a_nul_byte_in_a_path_or_parameter_is_a_client_error,
);

/// Every route under `/api/v1/orgs/{org}`, with a body where one is needed; `{u}` is a member id.
fn org_routes(org: &str, u: &str) -> Vec<(Method, String, Option<Value>)> {
    let base = format!("/api/v1/orgs/{org}");
    vec![
        (Method::GET, base.clone(), None),
        (Method::PATCH, base.clone(), Some(json!({"name": "Stolen"}))),
        (Method::DELETE, base.clone(), None),
        (Method::GET, format!("{base}/members"), None),
        (Method::GET, format!("{base}/members/{u}"), None),
        (
            Method::PATCH,
            format!("{base}/members/{u}"),
            Some(json!({"role": "viewer"})),
        ),
        (Method::DELETE, format!("{base}/members/{u}"), None),
        (Method::GET, format!("{base}/audit-log"), None),
        (Method::GET, format!("{base}/invitations"), None),
        (
            Method::POST,
            format!("{base}/invitations"),
            Some(json!({"email": "eve@example.com", "role": "admin"})),
        ),
        (
            Method::DELETE,
            format!("{base}/invitations/0192f0e2-0000-7000-8000-000000000000"),
            None,
        ),
    ]
}

/// The problem without its request id.
fn without_request_id(mut body: Value) -> Value {
    if let Some(o) = body.as_object_mut() {
        o.remove("request_id");
    }
    body
}

async fn non_members_get_the_same_404_as_for_no_organization(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (alice, _alice_token) = m::person(&app, &client, "alice@example.com").await;
    let (_, bob) = m::person(&app, &client, "bob@example.com").await;
    let (_, carol) = m::person(&app, &client, "carol@example.com").await;
    let acme = m::cli_org(&app, "Acme Secret", "acme", "alice@example.com").await;
    m::cli_org(&app, "Bobco", "bobco", "bob@example.com").await;
    let stranger = m::client_token(&app, &["org:read", "org:write"]).await;

    for token in [&bob, &carol, &stranger] {
        for org in ["acme", acme.as_str()] {
            for ((method, path, body), (_, missing_path, missing_body)) in org_routes(org, &alice)
                .into_iter()
                .zip(org_routes("no-such-org", &alice))
            {
                let seen = call(&app, method.clone(), &path, Some(token), body).await;
                let missing = call(
                    &app,
                    method.clone(),
                    &missing_path,
                    Some(token),
                    missing_body,
                )
                .await;
                assert_eq!(seen.status, 404, "{method} {path}: {}", seen.body);
                assert_eq!(
                    seen.content_type, "application/problem+json",
                    "{method} {path}"
                );
                assert_eq!(
                    without_request_id(seen.body.clone()),
                    without_request_id(missing.body),
                    "{method} {path} tells a stranger apart from nothing"
                );
                let text = seen.body.to_string();
                assert!(
                    !text.contains("Acme Secret") && !text.contains("alice"),
                    "{text}"
                );
            }
        }
    }
    // Nothing changed.
    assert_eq!(app.count("organizations").await, 2);
    assert_eq!(app.count("memberships").await, 2);
    // The strangers' own lists do not mention it either.
    assert_eq!(
        ids(get(&app, "/api/v1/orgs", &bob).await.ok(200), "slug"),
        vec!["bobco"]
    );
    assert!(ids(get(&app, "/api/v1/orgs", &carol).await.ok(200), "slug").is_empty());
    let me = get(&app, "/api/v1/me", &carol).await;
    assert_eq!(me.ok(200)["memberships"], json!([]));
}

async fn bad_tokens_get_401_and_missing_scopes_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (_, token) = m::person(&app, &client, "ada@example.com").await;
    post(&app, "/api/v1/orgs", &token, json!({"name": "Acme"}))
        .await
        .ok(201);

    let unauthorized = |a: m::Answer| {
        a.problem(401, "invalid-token");
    };
    unauthorized(call(&app, Method::GET, "/api/v1/orgs", None, None).await);
    unauthorized(get(&app, "/api/v1/orgs", "not-a-jwt").await);
    unauthorized(get(&app, "/api/v1/roles", "a.b.c").await);
    let raw = crate::rp::rp_http()
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .expect("sent");
    assert_eq!(raw.status(), 401);
    assert!(crate::rp::header(&raw, "www-authenticate").starts_with("Bearer"));

    // Scopes: no org scope at all, then read without write.
    let no_scope = m::user_token(&app, &client, "ada@example.com", "openid email").await;
    get(&app, "/api/v1/orgs", &no_scope)
        .await
        .problem(403, "insufficient-scope");
    get(&app, "/api/v1/orgs/acme", &no_scope)
        .await
        .problem(403, "insufficient-scope");
    get(&app, "/api/v1/me", &no_scope)
        .await
        .problem(403, "insufficient-scope");
    // Roles are public to any authenticated caller.
    get(&app, "/api/v1/roles", &no_scope).await.ok(200);
    let read_only = m::user_token(&app, &client, "ada@example.com", "openid org:read").await;
    get(&app, "/api/v1/orgs/acme", &read_only).await.ok(200);
    patch(&app, "/api/v1/orgs/acme", &read_only, json!({"name": "X"}))
        .await
        .problem(403, "insufficient-scope");
    post(&app, "/api/v1/orgs", &read_only, json!({"name": "X"}))
        .await
        .problem(403, "insufficient-scope");
    // A client token without `admin` is neither a user nor an operator.
    let service = m::client_token(&app, &["org:read"]).await;
    get(&app, "/api/v1/me", &service)
        .await
        .problem(403, "user-token-required");
    get(&app, "/api/v1/audit-log", &service)
        .await
        .problem(403, "operator-required");
    get(&app, "/api/v1/stats", &token)
        .await
        .problem(403, "operator-required");

    // Revoked (RFC 7009): 401 at once.
    let revoked = m::user_token(&app, &client, "ada@example.com", m::ORG_SCOPES).await;
    get(&app, "/api/v1/orgs", &revoked).await.ok(200);
    let response = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .expect("revoked");
    assert_eq!(response.status(), 200);
    unauthorized(get(&app, "/api/v1/orgs", &revoked).await);

    // A disabled user's token stops working.
    sqlx::query("update users set disabled = 1 where email = 'ada@example.com'")
        .execute(&app.db.pool)
        .await
        .expect("disabled");
    unauthorized(get(&app, "/api/v1/orgs", &token).await);
    sqlx::query("update users set disabled = 0 where email = 'ada@example.com'")
        .execute(&app.db.pool)
        .await
        .expect("enabled");
    get(&app, "/api/v1/orgs", &token).await.ok(200);

    // Expired (LATCHKEY_ACCESS_TOKEN_TTL = 10m).
    app.clock.advance(601);
    unauthorized(get(&app, "/api/v1/orgs", &token).await);
}

async fn operators_see_every_organization(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (alice, alice_token) = m::person(&app, &client, "alice@example.com").await;
    let (_, bob_token) = m::person(&app, &client, "bob@example.com").await;
    post(&app, "/api/v1/orgs", &alice_token, json!({"name": "Acme"}))
        .await
        .ok(201);
    post(&app, "/api/v1/orgs", &bob_token, json!({"name": "Bobco"}))
        .await
        .ok(201);
    let operator = m::operator_token(&app).await;

    let all = get(&app, "/api/v1/orgs", &operator).await;
    let mut slugs = ids(all.ok(200), "slug");
    slugs.sort();
    assert_eq!(slugs, vec!["acme", "bobco"]);
    let acme = get(&app, "/api/v1/orgs/acme", &operator).await;
    assert_eq!(acme.ok(200)["role"], Value::Null, "an operator has no role");
    let members = get(&app, "/api/v1/orgs/acme/members", &operator).await;
    assert_eq!(ids(members.ok(200), "user_id"), vec![alice.clone()]);
    patch(
        &app,
        "/api/v1/orgs/bobco",
        &operator,
        json!({"name": "Bob & Co"}),
    )
    .await
    .ok(200);
    get(&app, "/api/v1/orgs/bobco/audit-log", &operator)
        .await
        .ok(200);
    let log = get(&app, "/api/v1/audit-log", &operator).await;
    let orgs: Vec<Value> = log
        .ok(200)
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| e["org_id"].clone())
        .collect();
    let distinct: std::collections::HashSet<String> = orgs.iter().map(|o| o.to_string()).collect();
    assert!(
        distinct.len() >= 2,
        "events of both organizations: {orgs:?}"
    );
    // An operator is not a person: it creates no organization of its own.
    post(&app, "/api/v1/orgs", &operator, json!({"name": "Ops"}))
        .await
        .problem(403, "user-token-required");
    // The last owner stays protected against operators too.
    patch(
        &app,
        &format!("/api/v1/orgs/acme/members/{alice}"),
        &operator,
        json!({"role": "admin"}),
    )
    .await
    .problem(409, "last-owner");
    let deleted = call(
        &app,
        Method::DELETE,
        "/api/v1/orgs/bobco",
        Some(&operator),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        ids(get(&app, "/api/v1/orgs", &bob_token).await.ok(200), "slug").len(),
        0
    );
}

/// PostgreSQL refuses text with a NUL character (SQLSTATE 22021); that is the caller's bad input, not
/// our failure: a 4xx in the endpoint's own error format, never a 500.
async fn a_nul_byte_in_a_path_or_parameter_is_a_client_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (_, token) = m::person(&app, &client, "ada@example.com").await;

    for path in ["/api/v1/orgs/a%00b", "/api/v1/orgs/a%00b/members"] {
        let answer = get(&app, path, &token).await;
        assert!(
            answer.status == 400 || answer.status == 404,
            "{path}: {} {}",
            answer.status,
            answer.body
        );
        assert_eq!(answer.content_type, "application/problem+json");
    }
    let response = app
        .post_token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "a\u{0}b"),
                ("client_secret", "x"),
            ],
        )
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("an OAuth error body");
    assert!(status == 400 || status == 401, "{status} {body}");
    assert!(body["error"].is_string(), "{body}");
}
