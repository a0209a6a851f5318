//! Token revocation (RFC 7009) and introspection (RFC 7662): a client revokes its own tokens and
//! nobody else's, unknown tokens are no error, and introspection tells a confidential client about its
//! own tokens (a client registered with `--introspect` about everyone's) and nothing about the rest.

use latchkey::crypto::tokens::TokenHash;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient, header};

on_both_databases!(
    revoking_an_access_token_ends_userinfo_and_introspection,
    public_client_revokes_its_own_token_but_cannot_introspect,
    unknown_and_malformed_tokens_are_revoked_without_error,
    another_clients_token_is_not_revoked,
    malformed_requests_and_bad_clients_are_refused,
    introspection_describes_an_active_client_credentials_token,
    expired_access_token_is_inactive,
    only_the_owner_or_an_introspecting_client_sees_a_token,
    refresh_tokens_are_introspected_and_revoked_by_family,
    issued_refresh_token_is_introspected_and_revoked,
);

const EMAIL: &str = "ada@example.com";

/// Access-token TTL by default (`LATCHKEY_ACCESS_TOKEN_TTL` = 10m).
const ACCESS_TOKEN_TTL: i64 = 600;

/// A confidential client that may use `client_credentials`, with `scopes`.
async fn service_client(app: &TestApp, scopes: &[&str]) -> RegisteredClient {
    let mut args = vec!["--grant-type", "client_credentials"];
    for s in scopes {
        args.extend_from_slice(&["--scope", s]);
    }
    app.register_client(&args).await
}

/// A confidential client registered with `--introspect`: it may introspect every client's tokens.
async fn introspecting_client(app: &TestApp) -> RegisteredClient {
    app.register_client(&["--grant-type", "client_credentials", "--introspect"])
        .await
}

/// A `client_credentials` access token of `client`.
async fn service_token(app: &TestApp, client: &RegisteredClient) -> String {
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let body = rp::json_with_status(response, 200).await;
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// A user's access token for `client` (authorization code with PKCE).
async fn user_token(app: &TestApp, client: &RegisteredClient) -> String {
    let (code, verifier) = rp::code_with_pkce(app, &rp::browser(), client, EMAIL).await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", REDIRECT_URI),
    ];
    let response = match &client.secret {
        Some(secret) => app.post_token(Some((&client.id, secret)), &form).await,
        None => {
            form.push(("client_id", &client.id));
            app.post_token(None, &form).await
        }
    };
    let body = rp::json_with_status(response, 200).await;
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// `POST path` with a form, as `client` (Basic for confidential clients, `client_id` in the body for
/// public ones).
async fn post_as(
    app: &TestApp,
    path: &str,
    client: &RegisteredClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = form.to_vec();
    let mut request = rp::rp_http().post(app.url(path));
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => form.push(("client_id", &client.id)),
    }
    request.form(&form).send().await.expect("request sent")
}

/// Revokes `token` as `client` and asserts RFC 7009 §2.2's empty, uncacheable 200.
async fn revoke(app: &TestApp, client: &RegisteredClient, form: &[(&str, &str)]) {
    let response = post_as(app, "/revoke", client, form).await;
    assert_eq!(header(&response, "cache-control"), "no-store");
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
    assert!(body.is_empty(), "{body}");
}

/// Introspects `token` as `client`; asserts a 200 uncacheable JSON answer and returns it.
async fn introspect(app: &TestApp, client: &RegisteredClient, token: &str) -> Value {
    let response = post_as(app, "/introspect", client, &[("token", token)]).await;
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert!(header(&response, "content-type").starts_with("application/json"));
    rp::json_with_status(response, 200).await
}

/// `GET /userinfo` with a bearer token; returns the status.
async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    rp::rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo answered")
        .status()
        .as_u16()
}

async fn revoking_an_access_token_ends_userinfo_and_introspection(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    let client = app.register_client(&[]).await;
    let token = user_token(&app, &client).await;
    assert_eq!(userinfo_status(&app, &token).await, 200);
    assert_eq!(introspect(&app, &client, &token).await["active"], true);

    revoke(&app, &client, &[("token", &token)]).await;

    assert_eq!(userinfo_status(&app, &token).await, 401);
    assert_eq!(
        introspect(&app, &client, &token).await,
        json!({"active": false})
    );
    // Revoking again is no error (RFC 7009 §2.2).
    revoke(
        &app,
        &client,
        &[("token", &token), ("token_type_hint", "access_token")],
    )
    .await;
}

async fn public_client_revokes_its_own_token_but_cannot_introspect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    let client = app.register_client(&["--public"]).await;
    let token = user_token(&app, &client).await;

    // Introspection needs a confidential client (RFC 7662 §2.1).
    let response = post_as(&app, "/introspect", &client, &[("token", &token)]).await;
    let body = rp::json_with_status(response, 401).await;
    assert_eq!(body["error"], "invalid_client");

    // Revocation accepts a public client by its client_id (RFC 7009 §2.1).
    revoke(&app, &client, &[("token", &token)]).await;
    assert_eq!(userinfo_status(&app, &token).await, 401);
}

async fn unknown_and_malformed_tokens_are_revoked_without_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = service_client(&app, &["org:read"]).await;
    let token = service_token(&app, &client).await;
    let (header_part, claims_part) = token.split_once('.').expect("a JWT");
    let forged = format!("{header_part}.{claims_part}.c2lnbmF0dXJl");

    for garbage in ["garbage", "a.b.c", "%%%", forged.as_str()] {
        revoke(&app, &client, &[("token", garbage)]).await;
        assert_eq!(
            introspect(&app, &client, garbage).await,
            json!({"active": false})
        );
    }
    // An unknown hint is ignored, not refused (RFC 7009 §2.2.1).
    revoke(
        &app,
        &client,
        &[("token", "garbage"), ("token_type_hint", "id_token")],
    )
    .await;
    assert_eq!(introspect(&app, &client, &token).await["active"], true);
}

async fn another_clients_token_is_not_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = service_client(&app, &["org:read"]).await;
    let stranger = service_client(&app, &["org:read"]).await;
    let token = service_token(&app, &owner).await;

    revoke(&app, &stranger, &[("token", &token)]).await;

    assert_eq!(introspect(&app, &owner, &token).await["active"], true);
}

async fn malformed_requests_and_bad_clients_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = service_client(&app, &["org:read"]).await;
    let token = service_token(&app, &client).await;

    for path in ["/revoke", "/introspect"] {
        let missing = post_as(&app, path, &client, &[("token_type_hint", "access_token")]).await;
        assert_eq!(header(&missing, "cache-control"), "no-store");
        let body = rp::json_with_status(missing, 400).await;
        assert_eq!(body["error"], "invalid_request", "{path}");

        let repeated = rp::rp_http()
            .post(app.url(path))
            .basic_auth(&client.id, Some(client.secret()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&token={token}"))
            .send()
            .await
            .expect("request sent");
        let body = rp::json_with_status(repeated, 400).await;
        assert_eq!(body["error"], "invalid_request", "{path}");

        let bad_secret = rp::rp_http()
            .post(app.url(path))
            .basic_auth(&client.id, Some("not-the-secret"))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .expect("request sent");
        assert!(header(&bad_secret, "www-authenticate").starts_with("Basic"));
        let body = rp::json_with_status(bad_secret, 401).await;
        assert_eq!(body["error"], "invalid_client", "{path}");

        let anonymous = rp::rp_http()
            .post(app.url(path))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .expect("request sent");
        let body = rp::json_with_status(anonymous, 401).await;
        assert_eq!(body["error"], "invalid_client", "{path}");
    }
    // Nothing above revoked the token.
    assert_eq!(introspect(&app, &client, &token).await["active"], true);
}

async fn introspection_describes_an_active_client_credentials_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = service_client(&app, &["org:read"]).await;
    let token = service_token(&app, &client).await;
    let (_, claims) = rp::decode_jwt(&token);

    let body = introspect(&app, &client, &token).await;

    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "org:read");
    assert_eq!(body["client_id"], client.id.as_str());
    assert_eq!(body["sub"], client.id.as_str());
    assert_eq!(body["iss"], app.issuer().as_str());
    assert_eq!(body["aud"], claims["aud"]);
    assert_eq!(body["jti"], claims["jti"]);
    assert_eq!(body["exp"], claims["exp"]);
    assert_eq!(body["iat"], claims["iat"]);
    assert!(body["exp"].as_i64() > body["iat"].as_i64());
    assert!(body.get("org_id").is_none());
}

async fn expired_access_token_is_inactive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = service_client(&app, &["org:read"]).await;
    let token = service_token(&app, &client).await;

    app.clock.advance(ACCESS_TOKEN_TTL + 1);

    assert_eq!(
        introspect(&app, &client, &token).await,
        json!({"active": false})
    );
    // An expired token needs no revocation, and asking is still no error.
    revoke(&app, &client, &[("token", &token)]).await;
}

async fn only_the_owner_or_an_introspecting_client_sees_a_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = service_client(&app, &["org:read"]).await;
    let stranger = service_client(&app, &["org:read"]).await;
    // The operator scope is no introspection permission (RFC 7662 §4: the server decides per client).
    let admin = service_client(&app, &["admin"]).await;
    let operator = introspecting_client(&app).await;
    let token = service_token(&app, &owner).await;

    for other in [&stranger, &admin] {
        assert_eq!(
            introspect(&app, other, &token).await,
            json!({"active": false})
        );
    }
    let seen = introspect(&app, &operator, &token).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["client_id"], owner.id.as_str());
}

/// Inserts a refresh-token family of `client_id` for `user_id` with one token per `(token,
/// rotated)`; returns the family id. The refresh grant's own rows look the same (see the schema).
async fn insert_family(
    app: &TestApp,
    family_id: &str,
    client_id: &str,
    user_id: &str,
    expires_at: i64,
    tokens: &[(&str, bool)],
) {
    let now = app.clock.now();
    sqlx::query(
        "insert into refresh_families (id, client_id, user_id, scope, offline, auth_time, created_at, \
         last_used_at, expires_at) values ($1, $2, $3, $4, 0, $5, $6, $7, $8)",
    )
    .bind(family_id)
    .bind(client_id)
    .bind(user_id)
    .bind("openid offline_access")
    .bind(now)
    .bind(now)
    .bind(now)
    .bind(expires_at)
    .execute(&app.db.pool)
    .await
    .expect("family inserted");
    for (generation, (token, rotated)) in (0_i64..).zip(tokens) {
        sqlx::query(
            "insert into refresh_tokens (token_hash, family_id, generation, created_at, rotated_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(TokenHash::of(token).as_str())
        .bind(family_id)
        .bind(generation)
        .bind(now - 10 + generation)
        .bind(rotated.then_some(now))
        .execute(&app.db.pool)
        .await
        .expect("token inserted");
    }
}

async fn refresh_tokens_are_introspected_and_revoked_by_family(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Ada").await;
    let owner = app.register_client(&[]).await;
    let stranger = app.register_client(&[]).await;
    let operator = introspecting_client(&app).await;
    let now = app.clock.now();
    let expires_at = now + 86_400;
    insert_family(
        &app,
        "family-1",
        &owner.id,
        &user_id,
        expires_at,
        &[("rt-old", true), ("rt-current", false)],
    )
    .await;
    insert_family(
        &app,
        "family-expired",
        &owner.id,
        &user_id,
        now - 1,
        &[("rt-expired", false)],
    )
    .await;

    let body = introspect(&app, &owner, "rt-current").await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], owner.id.as_str());
    assert_eq!(body["sub"], user_id.as_str());
    assert_eq!(body["scope"], "openid offline_access");
    assert_eq!(body["exp"], expires_at);
    assert_eq!(body["iat"], now - 9);
    assert_eq!(
        introspect(&app, &operator, "rt-current").await["active"],
        true
    );
    let inactive = json!({"active": false});
    assert_eq!(introspect(&app, &stranger, "rt-current").await, inactive);
    assert_eq!(
        introspect(&app, &owner, "rt-old").await,
        inactive,
        "rotated"
    );
    assert_eq!(introspect(&app, &owner, "rt-expired").await, inactive);

    // Another client's revocation changes nothing.
    revoke(&app, &stranger, &[("token", "rt-current")]).await;
    assert_eq!(introspect(&app, &owner, "rt-current").await["active"], true);

    // Revoking even a rotated token revokes the whole family.
    revoke(
        &app,
        &owner,
        &[("token", "rt-old"), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(introspect(&app, &owner, "rt-current").await, inactive);
    let revoked_at: Option<i64> =
        sqlx::query_scalar("select revoked_at from refresh_families where id = $1")
            .bind("family-1")
            .fetch_one(&app.db.pool)
            .await
            .expect("family read");
    assert!(revoked_at.is_some());
    revoke(&app, &owner, &[("token", "rt-current")]).await;
}

async fn issued_refresh_token_is_introspected_and_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Ada").await;
    let client = app.register_client(&[]).await;
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid offline_access"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = rp::authorize(&app, &rp::browser(), &url, EMAIL, Consent::Allow).await;
    let code = journey.callback.code();
    let basic = Some((client.id.as_str(), client.secret()));
    let tokens = rp::json_with_status(
        app.post_token(
            basic,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await,
        200,
    )
    .await;
    let first = tokens["refresh_token"].as_str().expect("refresh_token");

    let body = introspect(&app, &client, first).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["sub"], user_id.as_str());
    assert_eq!(body["client_id"], client.id.as_str());

    let refreshed = rp::json_with_status(
        app.post_token(
            basic,
            &[("grant_type", "refresh_token"), ("refresh_token", first)],
        )
        .await,
        200,
    )
    .await;
    let second = refreshed["refresh_token"].as_str().expect("refresh_token");
    assert_eq!(
        introspect(&app, &client, first).await,
        json!({"active": false})
    );
    assert_eq!(introspect(&app, &client, second).await["active"], true);

    revoke(
        &app,
        &client,
        &[("token", second), ("token_type_hint", "refresh_token")],
    )
    .await;

    assert_eq!(
        introspect(&app, &client, second).await,
        json!({"active": false})
    );
    let refused = app
        .post_token(
            basic,
            &[("grant_type", "refresh_token"), ("refresh_token", second)],
        )
        .await;
    let body = rp::json_with_status(refused, 400).await;
    assert_eq!(body["error"], "invalid_grant");
}
