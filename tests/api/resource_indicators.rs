//! Resource indicators (RFC 8707, docs/tokens.md "Resource indicators"): a client registered with
//! `--resource URI` names it with `resource` at `/authorize` or `/token`; the access token's `aud` is
//! that resource (the ID token's stays the client), refreshes keep it, anything else is
//! `invalid_target`, and our own resource servers (userinfo, the management API) refuse a token
//! minted for another resource.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers;
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient, json_with_status};

on_both_databases!(
    authorized_resource_is_the_access_token_audience_and_refresh_keeps_it,
    authorize_refuses_unregistered_repeated_and_malformed_resources,
    token_request_may_name_a_resource_only_within_the_rules,
    client_credentials_with_a_resource,
    our_resource_servers_refuse_a_token_for_another_resource,
);

const EMAIL: &str = "ada@example.com";
const API: &str = "https://api.example.com/";
const REPORTS: &str = "https://reports.example.com/v1";
const SCOPE: &str = "openid email offline_access account:read";

/// Ada and a first-party client that registered [`API`] and [`REPORTS`].
async fn setup(backend: Backend) -> (TestApp, RegisteredClient) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    let client = app
        .register_client(&[
            "--first-party",
            "--resource",
            API,
            "--resource",
            REPORTS,
            "--scope",
            "openid",
            "--scope",
            "email",
            "--scope",
            "offline_access",
            "--scope",
            "account:read",
        ])
        .await;
    (app, client)
}

/// An authorization request with PKCE and `extra` parameters, walked in a fresh browser: the
/// callback and the verifier.
async fn authorize(
    app: &TestApp,
    client: &RegisteredClient,
    extra: &[(&str, &str)],
) -> (rp::Callback, String) {
    let (verifier, challenge) = rp::pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", SCOPE),
        ("state", "st"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let journey = rp::authorize(
        app,
        &rp::browser(),
        &app.authorize_url(&params),
        EMAIL,
        Consent::Allow,
    )
    .await;
    (journey.callback, verifier)
}

/// Redeems `code` with `extra` token parameters.
async fn redeem(
    app: &TestApp,
    client: &RegisteredClient,
    code: &str,
    verifier: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
    ];
    form.extend_from_slice(extra);
    app.post_token(Some((&client.id, client.secret())), &form)
        .await
}

/// `POST /token` with `grant_type=refresh_token`.
async fn refresh(
    app: &TestApp,
    client: &RegisteredClient,
    token: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    form.extend_from_slice(extra);
    app.post_token(Some((&client.id, client.secret())), &form)
        .await
}

/// Asserts a 400 `invalid_target` JSON error with a description.
async fn invalid_target(response: reqwest::Response) {
    let body = json_with_status(response, 400).await;
    assert_eq!(body["error"], "invalid_target", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

/// The verified claims of a token response's access token and ID token (if any).
async fn claims(app: &TestApp, tokens: &Value) -> (Value, Option<Value>) {
    let (_, at) = app
        .verify_jwt(tokens["access_token"].as_str().expect("access_token"))
        .await;
    let id = match tokens["id_token"].as_str() {
        Some(jwt) => Some(app.verify_jwt(jwt).await.1),
        None => None,
    };
    (at, id)
}

async fn authorized_resource_is_the_access_token_audience_and_refresh_keeps_it(backend: Backend) {
    let (app, client) = setup(backend).await;
    let (callback, verifier) = authorize(&app, &client, &[("resource", API)]).await;
    let tokens = json_with_status(
        redeem(&app, &client, &callback.code(), &verifier, &[]).await,
        200,
    )
    .await;
    let (at, id) = claims(&app, &tokens).await;
    assert_eq!(at["aud"], API, "access token for the resource");
    assert_eq!(at["client_id"], client.id.as_str());
    assert_eq!(id.expect("an ID token")["aud"], client.id.as_str());

    // Introspection tells the resource server the audience.
    let response = rp::rp_http()
        .post(app.url("/introspect"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("token", tokens["access_token"].as_str().unwrap_or_default())])
        .send()
        .await
        .expect("introspection sent");
    let answer = json_with_status(response, 200).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["aud"], API, "{answer}");

    // A refresh keeps it, named or not; another resource is refused (the token is not consumed).
    let token = tokens["refresh_token"].as_str().expect("a refresh token");
    invalid_target(refresh(&app, &client, token, &[("resource", REPORTS)]).await).await;
    let refreshed = json_with_status(refresh(&app, &client, token, &[]).await, 200).await;
    let (at, id) = claims(&app, &refreshed).await;
    assert_eq!(at["aud"], API);
    assert_eq!(id.expect("an ID token")["aud"], client.id.as_str());
    let token = refreshed["refresh_token"]
        .as_str()
        .expect("a refresh token");
    let named = json_with_status(
        refresh(&app, &client, token, &[("resource", API)]).await,
        200,
    )
    .await;
    assert_eq!(claims(&app, &named).await.0["aud"], API);
}

async fn authorize_refuses_unregistered_repeated_and_malformed_resources(backend: Backend) {
    let (app, client) = setup(backend).await;
    for (resource, why) in [
        ("https://evil.example.com/", "not registered"),
        ("/relative", "relative"),
        ("https://api.example.com/#frag", "fragment"),
    ] {
        let (callback, _) = authorize(&app, &client, &[("resource", resource)]).await;
        callback.assert_at(REDIRECT_URI);
        assert_eq!(callback.error(), "invalid_target", "{why}");
        assert_eq!(callback.get("state").as_deref(), Some("st"), "{why}");
    }
    let (callback, _) = authorize(&app, &client, &[("resource", API), ("resource", REPORTS)]).await;
    assert_eq!(callback.error(), "invalid_target");
    let description = callback.get("error_description").unwrap_or_default();
    assert!(description.contains("only one resource"), "{description}");
}

async fn token_request_may_name_a_resource_only_within_the_rules(backend: Backend) {
    let (app, client) = setup(backend).await;

    // A code without a resource: the token request may name any registered one.
    let (callback, verifier) = authorize(&app, &client, &[]).await;
    let code = callback.code();
    invalid_target(
        redeem(
            &app,
            &client,
            &code,
            &verifier,
            &[("resource", "https://evil.example.com/")],
        )
        .await,
    )
    .await;
    invalid_target(
        redeem(
            &app,
            &client,
            &code,
            &verifier,
            &[("resource", API), ("resource", REPORTS)],
        )
        .await,
    )
    .await;
    // The refusals left the code usable.
    let tokens = json_with_status(
        redeem(&app, &client, &code, &verifier, &[("resource", REPORTS)]).await,
        200,
    )
    .await;
    assert_eq!(claims(&app, &tokens).await.0["aud"], REPORTS);
    // The family has no resource of its own: a plain refresh is for the client again.
    let token = tokens["refresh_token"].as_str().expect("a refresh token");
    let plain = json_with_status(refresh(&app, &client, token, &[]).await, 200).await;
    assert_eq!(claims(&app, &plain).await.0["aud"], client.id.as_str());

    // A code bound to a resource: another registered one is refused.
    let (callback, verifier) = authorize(&app, &client, &[("resource", API)]).await;
    invalid_target(
        redeem(
            &app,
            &client,
            &callback.code(),
            &verifier,
            &[("resource", REPORTS)],
        )
        .await,
    )
    .await;
    let tokens = json_with_status(
        redeem(
            &app,
            &client,
            &callback.code(),
            &verifier,
            &[("resource", API)],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(claims(&app, &tokens).await.0["aud"], API);
}

async fn client_credentials_with_a_resource(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let service = app
        .register_client(&[
            "--grant-type",
            "client_credentials",
            "--scope",
            "org:read",
            "--resource",
            API,
        ])
        .await;
    let token = |extra: &'static [(&'static str, &'static str)]| {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        rp::rp_http()
            .post(app.url("/token"))
            .basic_auth(&service.id, Some(service.secret()))
            .form(&form)
            .send()
    };
    let sent = |r: reqwest::Result<reqwest::Response>| r.expect("token request sent");
    let with = json_with_status(sent(token(&[("resource", API)]).await), 200).await;
    assert_eq!(claims(&app, &with).await.0["aud"], API);
    let without = json_with_status(sent(token(&[]).await), 200).await;
    assert_eq!(claims(&app, &without).await.0["aud"], service.id.as_str());
    invalid_target(sent(token(&[("resource", REPORTS)]).await)).await;
    invalid_target(sent(token(&[("resource", "not a uri")]).await)).await;
    invalid_target(sent(token(&[("resource", API), ("resource", API)]).await)).await;
}

async fn our_resource_servers_refuse_a_token_for_another_resource(backend: Backend) {
    let (app, client) = setup(backend).await;
    let (callback, verifier) = authorize(&app, &client, &[("resource", API)]).await;
    let for_api = json_with_status(
        redeem(&app, &client, &callback.code(), &verifier, &[]).await,
        200,
    )
    .await;
    let for_api = for_api["access_token"].as_str().expect("access_token");
    let (callback, verifier) = authorize(&app, &client, &[]).await;
    let ours = json_with_status(
        redeem(&app, &client, &callback.code(), &verifier, &[]).await,
        200,
    )
    .await;
    let ours = ours["access_token"].as_str().expect("access_token");

    let userinfo = |token: String| {
        rp::rp_http()
            .get(app.url("/userinfo"))
            .bearer_auth(token)
            .send()
    };
    let refused = userinfo(for_api.to_owned()).await.expect("userinfo called");
    assert_eq!(refused.status(), 401);
    assert!(
        rp::header(&refused, "www-authenticate").contains("invalid_token"),
        "RFC 6750 challenge"
    );
    let accepted = userinfo(ours.to_owned()).await.expect("userinfo called");
    json_with_status(accepted, 200).await;

    mgmt_helpers::get(&app, "/api/v1/me", for_api)
        .await
        .problem(401, "invalid-token");
    mgmt_helpers::get(&app, "/api/v1/me", ours).await.ok(200);
}
