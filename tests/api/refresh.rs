//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2): a
//! refresh token is single use, a replay outside the grace window revokes its whole family, and
//! concurrent refreshes never fork a family.

use std::collections::HashSet;

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient, decode_jwt, header};

on_both_databases!(
    rotation_issues_a_new_token_and_the_old_one_then_fails,
    reuse_outside_the_grace_window_revokes_the_family,
    reuse_inside_the_grace_window_returns_the_same_successor,
    scope_may_shrink_but_never_grow,
    another_clients_refresh_token_is_invalid_grant,
    expired_family_is_invalid_grant,
    disabled_user_is_invalid_grant,
    code_replay_revokes_the_family,
    refresh_token_only_with_offline_access_or_first_party,
    concurrent_refreshes_without_grace_give_at_most_one_success,
    concurrent_refreshes_within_grace_share_one_successor,
);

const EMAIL: &str = "ada@example.com";
/// The scope every test asks for: `offline_access` is what earns a refresh token.
const SCOPE: &str = "openid email offline_access";
/// `LATCHKEY_REFRESH_REUSE_GRACE` for the grace-window tests.
const GRACE: &[(&str, &str)] = &[("LATCHKEY_REFRESH_REUSE_GRACE", "60s")];
/// 30 days (the default `LATCHKEY_REFRESH_TOKEN_TTL`) and a second.
const PAST_TTL: i64 = 30 * 86_400 + 1;

/// An app with one user and one (non-first-party, confidential) client.
async fn setup(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, RegisteredClient) {
    let app = TestApp::spawn_with(backend, extra).await;
    app.create_person(EMAIL, "Ada").await;
    let client = app.register_client(&[]).await;
    (app, client)
}

/// Walks the browser through authorization with `scope` (consent allowed); returns code and verifier.
async fn authorize(app: &TestApp, client: &RegisteredClient, scope: &str) -> (String, String) {
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", scope),
        ("state", "st"),
        ("nonce", "n"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = rp::authorize(app, &rp::browser(), &url, EMAIL, Consent::Allow).await;
    (journey.callback.code(), verifier)
}

/// Redeems a code as `client`.
async fn redeem(
    app: &TestApp,
    client: &RegisteredClient,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    app.post_token(
        Some((&client.id, client.secret())),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Authorizes with [`SCOPE`] and redeems: the token response, which carries a refresh token.
async fn first_tokens(app: &TestApp, client: &RegisteredClient) -> Value {
    let (code, verifier) = authorize(app, client, SCOPE).await;
    let tokens = rp::json_with_status(redeem(app, client, &code, &verifier).await, 200).await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    tokens
}

/// `POST /token` with `grant_type=refresh_token` as `client`, with an optional `scope`.
async fn refresh(
    app: &TestApp,
    client: &RegisteredClient,
    token: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    app.post_token(Some((&client.id, client.secret())), &form)
        .await
}

/// Asserts an RFC 6749 §5.2 error with `Cache-Control: no-store`.
async fn assert_error(response: reqwest::Response, error: &str) {
    assert_eq!(header(&response, "cache-control"), "no-store");
    let body = rp::json_with_status(response, 400).await;
    assert_eq!(body["error"], error, "{body}");
}

/// Asserts success and returns the new refresh token.
async fn refreshed(response: reqwest::Response) -> (String, Value) {
    assert_eq!(header(&response, "cache-control"), "no-store");
    let body = rp::json_with_status(response, 200).await;
    let token = body["refresh_token"]
        .as_str()
        .expect("a new refresh token")
        .to_owned();
    (token, body)
}

fn refresh_token(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().expect("refresh_token")
}

async fn rotation_issues_a_new_token_and_the_old_one_then_fails(backend: Backend) {
    let (app, client) = setup(backend, &[]).await;
    let first = first_tokens(&app, &client).await;
    let t0 = refresh_token(&first);

    let (t1, body) = refreshed(refresh(&app, &client, t0, None).await).await;

    assert_ne!(t1, t0);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], SCOPE);
    let (header, at) = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(at["client_id"], client.id.as_str());
    // OIDC Core §12.2: a new ID token, same sub and auth_time, no nonce.
    let (_, original) = decode_jwt(first["id_token"].as_str().unwrap());
    let (_, renewed) = app.verify_jwt(body["id_token"].as_str().unwrap()).await;
    assert_eq!(renewed["sub"], original["sub"]);
    assert_eq!(renewed["auth_time"], original["auth_time"]);
    assert_eq!(
        renewed["amr"], original["amr"],
        "the original login's methods"
    );
    assert_eq!(renewed["amr"], serde_json::json!(["pwd"]));
    assert!(renewed.get("nonce").is_none(), "{renewed}");
    // The old token is spent; the new one works.
    assert_error(refresh(&app, &client, t0, None).await, "invalid_grant").await;
    assert_eq!(app.count("refresh_tokens").await, 2);
}

async fn reuse_outside_the_grace_window_revokes_the_family(backend: Backend) {
    let (app, client) = setup(backend, &[]).await;
    let first = first_tokens(&app, &client).await;
    let t0 = refresh_token(&first);
    let (t1, _) = refreshed(refresh(&app, &client, t0, None).await).await;

    assert_error(refresh(&app, &client, t0, None).await, "invalid_grant").await;

    // The newest token of the family dies with it.
    assert_error(refresh(&app, &client, &t1, None).await, "invalid_grant").await;
    let reason: Option<String> = sqlx::query_scalar("select revoked_reason from refresh_families")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("refresh token reuse"));
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where action = 'refresh_token.reuse_detected'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

async fn reuse_inside_the_grace_window_returns_the_same_successor(backend: Backend) {
    let (app, client) = setup(backend, GRACE).await;
    let first = first_tokens(&app, &client).await;
    let t0 = refresh_token(&first);
    let (t1, _) = refreshed(refresh(&app, &client, t0, None).await).await;

    let (again, body) = refreshed(refresh(&app, &client, t0, None).await).await;

    assert_eq!(again, t1);
    assert!(body["access_token"].is_string());
    // The successor still rotates normally.
    let (t2, _) = refreshed(refresh(&app, &client, &t1, None).await).await;
    assert_ne!(t2, t1);
    // Once the successor is spent, the old token is a replay even within the window.
    assert_error(refresh(&app, &client, t0, None).await, "invalid_grant").await;
    assert_error(refresh(&app, &client, &t2, None).await, "invalid_grant").await;
}

async fn scope_may_shrink_but_never_grow(backend: Backend) {
    let (app, client) = setup(backend, &[]).await;
    let first = first_tokens(&app, &client).await;

    let (t1, body) =
        refreshed(refresh(&app, &client, refresh_token(&first), Some("email")).await).await;

    assert_eq!(body["scope"], "email");
    assert!(body.get("id_token").is_none(), "no openid, no ID token");
    let (_, at) = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(at["scope"], "email");
    // The family keeps its original scope (RFC 6749 §6): asking it back works, more does not.
    assert_error(
        refresh(&app, &client, &t1, Some("openid profile")).await,
        "invalid_scope",
    )
    .await;
    let (_, body) = refreshed(refresh(&app, &client, &t1, Some(SCOPE)).await).await;
    assert_eq!(body["scope"], SCOPE);
}

async fn another_clients_refresh_token_is_invalid_grant(backend: Backend) {
    let (app, client) = setup(backend, &[]).await;
    let other = app.register_client(&[]).await;
    let first = first_tokens(&app, &client).await;
    let t0 = refresh_token(&first);

    assert_error(refresh(&app, &other, t0, None).await, "invalid_grant").await;

    // Not a replay by the holder: the rightful client can still refresh.
    refreshed(refresh(&app, &client, t0, None).await).await;
}

async fn expired_family_is_invalid_grant(backend: Backend) {
    let (app, client) = setup(backend, &[]).await;
    let first = first_tokens(&app, &client).await;

    app.clock.advance(PAST_TTL);

    assert_error(
        refresh(&app, &client, refresh_token(&first), None).await,
        "invalid_grant",
    )
    .await;
}

async fn disabled_user_is_invalid_grant(backend: Backend) {
    let (app, client) = setup(backend, &[]).await;
    let first = first_tokens(&app, &client).await;

    sqlx::query("update users set disabled = 1")
        .execute(&app.db.pool)
        .await
        .unwrap();

    assert_error(
        refresh(&app, &client, refresh_token(&first), None).await,
        "invalid_grant",
    )
    .await;
}

async fn code_replay_revokes_the_family(backend: Backend) {
    let (app, client) = setup(backend, &[]).await;
    let (code, verifier) = authorize(&app, &client, SCOPE).await;
    let tokens = rp::json_with_status(redeem(&app, &client, &code, &verifier).await, 200).await;

    assert_error(
        redeem(&app, &client, &code, &verifier).await,
        "invalid_grant",
    )
    .await;

    assert_error(
        refresh(&app, &client, refresh_token(&tokens), None).await,
        "invalid_grant",
    )
    .await;
}

async fn refresh_token_only_with_offline_access_or_first_party(backend: Backend) {
    let (app, client) = setup(backend, &[]).await;
    let (code, verifier) = authorize(&app, &client, "openid email").await;
    let tokens = rp::json_with_status(redeem(&app, &client, &code, &verifier).await, 200).await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");

    let first_party = app.register_client(&["--first-party"]).await;
    let (code, verifier) = authorize(&app, &first_party, "openid email").await;
    let tokens =
        rp::json_with_status(redeem(&app, &first_party, &code, &verifier).await, 200).await;
    let (_, body) =
        refreshed(refresh(&app, &first_party, refresh_token(&tokens), None).await).await;
    assert_eq!(body["scope"], "openid email");
    let offline: i64 = sqlx::query_scalar("select offline from refresh_families")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(offline, 0);
}

/// Sends `n` refreshes of `token` at once; returns each answer's status and body.
async fn concurrent_refreshes(
    app: &TestApp,
    client: &RegisteredClient,
    token: &str,
    n: usize,
) -> Vec<(u16, Value)> {
    // Every request is ready before any is sent, so that they really overlap.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = rp::rp_http()
            .post(app.url("/token"))
            .basic_auth(&client.id, Some(client.secret()))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            let response = request.send().await.expect("token request sent");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON body"))
        });
    }
    tasks.join_all().await
}

async fn concurrent_refreshes_without_grace_give_at_most_one_success(backend: Backend) {
    let (app, client) = setup(backend, &[]).await;
    let first = first_tokens(&app, &client).await;

    let answers = concurrent_refreshes(&app, &client, refresh_token(&first), 8).await;

    let successes = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(successes <= 1, "{answers:?}");
    for (status, body) in &answers {
        assert!(
            *status == 200 || (*status == 400 && body["error"] == "invalid_grant"),
            "{answers:?}"
        );
    }
    // One rotation at most: never two successors in the family.
    assert!(app.count("refresh_tokens").await <= 2);
}

async fn concurrent_refreshes_within_grace_share_one_successor(backend: Backend) {
    let (app, client) = setup(backend, GRACE).await;
    let first = first_tokens(&app, &client).await;

    let answers = concurrent_refreshes(&app, &client, refresh_token(&first), 8).await;

    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let successors: HashSet<&str> = answers
        .iter()
        .map(|(_, b)| b["refresh_token"].as_str().expect("refresh_token"))
        .collect();
    assert_eq!(successors.len(), 1, "{answers:?}");
    assert_eq!(app.count("refresh_tokens").await, 2);
}
