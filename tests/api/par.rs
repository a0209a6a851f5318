//! Pushed authorization requests (RFC 9126): `/par` authenticates the client and validates the
//! request like `/authorize` (errors as JSON), the `request_uri` it answers is single use, expires,
//! belongs to its client, and a client registered with `--require-par` may use nothing else.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::rp::{
    self, Consent, OTHER_REDIRECT_URI, REDIRECT_URI, RegisteredClient, header, json_with_status,
};

on_both_databases!(
    confidential_client_pushes_then_runs_the_code_flow,
    public_client_pushes_with_pkce,
    request_uri_is_single_use,
    expired_request_uri_is_refused,
    another_clients_request_uri_is_refused,
    unauthenticated_push_is_invalid_client,
    bad_pushed_parameters_are_json_errors,
    foreign_request_uris_are_refused,
    require_par_client_must_push,
    concurrent_uses_of_a_request_uri_give_one_success,
    secret_posted_in_the_body_is_never_stored,
);

const EMAIL: &str = "ada@example.com";
const URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

async fn setup(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    app
}

/// `POST /par` with `form`, as `client` (Basic for a confidential client, `client_id` in the body
/// for a public one).
async fn push(
    app: &TestApp,
    client: &RegisteredClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut body: Vec<(&str, &str)> = form.to_vec();
    let mut request = rp::rp_http().post(app.url("/par"));
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => body.push(("client_id", &client.id)),
    }
    request.form(&body).send().await.expect("PAR sent")
}

/// Form parameters, owned.
type Form = Vec<(&'static str, String)>;

/// The usual authorization request parameters with a PKCE `challenge`.
fn request_params(challenge: &str) -> Form {
    vec![
        ("response_type", "code".to_owned()),
        ("redirect_uri", REDIRECT_URI.to_owned()),
        ("scope", "openid email".to_owned()),
        ("state", "st".to_owned()),
        ("nonce", "n".to_owned()),
        ("code_challenge", challenge.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
    ]
}

/// Pushes the usual request for `client`: the `request_uri` and the PKCE verifier.
async fn pushed(app: &TestApp, client: &RegisteredClient) -> (String, String) {
    let (verifier, challenge) = rp::pkce();
    let params = request_params(&challenge);
    let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = push(app, client, &form).await;
    assert_eq!(header(&response, "cache-control"), "no-store");
    let body = json_with_status(response, 201).await;
    assert_eq!(body["expires_in"], 60);
    let request_uri = body["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned();
    assert!(request_uri.starts_with(URN_PREFIX), "{request_uri}");
    (request_uri, verifier)
}

/// The front-channel URL of a pushed request.
fn front(app: &TestApp, client_id: &str, request_uri: &str) -> String {
    app.authorize_url(&[("client_id", client_id), ("request_uri", request_uri)])
}

/// Opens `url` in a fresh browser and expects the error page with `invalid_request_uri`.
async fn assert_refused_page(url: &str) {
    let response = rp::browser().get(url).send().await.expect("authorize");
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    let html = response.text().await.expect("page");
    assert!(html.contains("invalid_request_uri"), "{html}");
}

/// Redeems `code` for `client` and returns the token response.
async fn redeem(app: &TestApp, client: &RegisteredClient, code: &str, verifier: &str) -> Value {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
    ];
    let basic = client.secret.as_deref().map(|s| (client.id.as_str(), s));
    if basic.is_none() {
        form.push(("client_id", &client.id));
    }
    json_with_status(app.post_token(basic, &form).await, 200).await
}

async fn confidential_client_pushes_then_runs_the_code_flow(backend: Backend) {
    let app = setup(backend).await;
    let client = app.register_client(&[]).await;
    let (request_uri, verifier) = pushed(&app, &client).await;
    // RFC 9126 §4: parameters beside client_id and request_uri are ignored, the pushed ones rule.
    let url = app.authorize_url(&[
        ("client_id", &client.id),
        ("request_uri", &request_uri),
        ("state", "not-this-one"),
        ("redirect_uri", OTHER_REDIRECT_URI),
    ]);
    let journey = rp::authorize(&app, &rp::browser(), &url, EMAIL, Consent::Allow).await;
    journey.callback.assert_at(REDIRECT_URI);
    assert_eq!(journey.callback.get("state").as_deref(), Some("st"));
    let tokens = redeem(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(tokens["scope"], "openid email");
    let (_, claims) = app
        .verify_jwt(tokens["id_token"].as_str().expect("id_token"))
        .await;
    assert_eq!(claims["nonce"], "n");
    // Only the hash of the request_uri is stored.
    let stored: String =
        sqlx::query_scalar("select request_uri_hash from pushed_authorization_requests")
            .fetch_one(&app.db.pool)
            .await
            .expect("one pushed request");
    assert!(!request_uri.contains(&stored) && stored.len() == 64);
}

async fn public_client_pushes_with_pkce(backend: Backend) {
    let app = setup(backend).await;
    let client = app.register_client(&["--public"]).await;
    let (request_uri, verifier) = pushed(&app, &client).await;
    let url = front(&app, &client.id, &request_uri);
    let journey = rp::authorize(&app, &rp::browser(), &url, EMAIL, Consent::Allow).await;
    let tokens = redeem(&app, &client, &journey.callback.code(), &verifier).await;
    assert!(tokens["access_token"].is_string());
}

async fn request_uri_is_single_use(backend: Backend) {
    let app = setup(backend).await;
    let client = app.register_client(&[]).await;
    let (request_uri, _) = pushed(&app, &client).await;
    let url = front(&app, &client.id, &request_uri);
    // The first use sends the browser to the login page (the request waits in its session).
    let first = rp::browser().get(&url).send().await.expect("authorize");
    assert_eq!(first.status(), 303);
    assert_eq!(rp::location(&app, &first).path(), "/login");
    // A second use, from another browser or the same, is refused.
    assert_refused_page(&url).await;
}

async fn expired_request_uri_is_refused(backend: Backend) {
    let app = setup(backend).await;
    let client = app.register_client(&[]).await;
    let (request_uri, _) = pushed(&app, &client).await;
    app.clock.advance(61);
    assert_refused_page(&front(&app, &client.id, &request_uri)).await;
}

async fn another_clients_request_uri_is_refused(backend: Backend) {
    let app = setup(backend).await;
    let owner = app.register_client(&[]).await;
    let other = app.register_client(&[]).await;
    let (request_uri, verifier) = pushed(&app, &owner).await;
    assert_refused_page(&front(&app, &other.id, &request_uri)).await;
    // Without client_id the request_uri names no client.
    let response = rp::browser()
        .get(app.authorize_url(&[("request_uri", &request_uri)]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 400);
    // The refusals did not use it up: its own client still can.
    let url = front(&app, &owner.id, &request_uri);
    let journey = rp::authorize(&app, &rp::browser(), &url, EMAIL, Consent::Allow).await;
    redeem(&app, &owner, &journey.callback.code(), &verifier).await;
}

async fn unauthenticated_push_is_invalid_client(backend: Backend) {
    let app = setup(backend).await;
    let client = app.register_client(&[]).await;
    let (_, challenge) = rp::pkce();
    let params = request_params(&challenge);
    let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // No secret at all.
    form.push(("client_id", &client.id));
    let response = rp::rp_http()
        .post(app.url("/par"))
        .form(&form)
        .send()
        .await
        .expect("PAR sent");
    let body = json_with_status(response, 401).await;
    assert_eq!(body["error"], "invalid_client");
    // A wrong secret.
    let response = rp::rp_http()
        .post(app.url("/par"))
        .basic_auth(&client.id, Some("wrong"))
        .form(&form)
        .send()
        .await
        .expect("PAR sent");
    let body = json_with_status(response, 401).await;
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(app.count("pushed_authorization_requests").await, 0);
}

async fn bad_pushed_parameters_are_json_errors(backend: Backend) {
    let app = setup(backend).await;
    let confidential = app.register_client(&[]).await;
    let public = app.register_client(&["--public"]).await;
    let (_, challenge) = rp::pkce();
    let with = |changes: &[(&'static str, Option<&str>)]| -> Form {
        let mut params = request_params(&challenge);
        for (name, value) in changes {
            params.retain(|(k, _)| k != name);
            if let Some(v) = value {
                params.push((name, (*v).to_owned()));
            }
        }
        params
    };
    let cases: Vec<(&RegisteredClient, Form, &str)> = vec![
        (
            &confidential,
            with(&[("redirect_uri", Some("https://evil.example/cb"))]),
            "invalid_request",
        ),
        (
            &public,
            with(&[("code_challenge", None), ("code_challenge_method", None)]),
            "invalid_request",
        ),
        (
            &confidential,
            with(&[("scope", Some("openid admin"))]),
            "invalid_scope",
        ),
        (
            &confidential,
            with(&[("response_type", Some("token"))]),
            "unsupported_response_type",
        ),
        (
            &confidential,
            with(&[("request_uri", Some("urn:ietf:params:oauth:request_uri:x"))]),
            "invalid_request",
        ),
        (
            &confidential,
            with(&[("client_id", Some("someone-else"))]),
            "invalid_request",
        ),
    ];
    for (client, params, error) in cases {
        let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = push(&app, client, &form).await;
        assert_eq!(header(&response, "cache-control"), "no-store");
        let body = json_with_status(response, 400).await;
        assert_eq!(body["error"], error, "{params:?}: {body}");
    }
    assert_eq!(app.count("pushed_authorization_requests").await, 0);
}

async fn foreign_request_uris_are_refused(backend: Backend) {
    let app = setup(backend).await;
    let client = app.register_client(&[]).await;
    // OpenID Connect request objects by reference are not fetched, and unknown URNs are unknown.
    for uri in [
        "https://rp.example.com/request.jwt",
        "urn:ietf:params:oauth:request_uri:made-up",
    ] {
        assert_refused_page(&front(&app, &client.id, uri)).await;
    }
}

async fn require_par_client_must_push(backend: Backend) {
    let app = setup(backend).await;
    let client = app.register_client(&["--require-par"]).await;
    let (_, challenge) = rp::pkce();
    let params = request_params(&challenge);
    let mut query: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    query.push(("client_id", &client.id));
    // A plain request with a registered redirect URI: an error redirect to it.
    let response = rp::browser()
        .get(app.authorize_url(&query))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 303);
    let callback = rp::Callback {
        url: rp::location(&app, &response),
    };
    callback.assert_at(REDIRECT_URI);
    assert_eq!(callback.error(), "invalid_request");
    assert!(
        callback
            .get("error_description")
            .is_some_and(|d| d.contains("pushed authorization requests"))
    );
    assert_eq!(callback.get("state").as_deref(), Some("st"));
    // With an unregistered redirect URI: our error page, no redirect.
    query.retain(|(k, _)| *k != "redirect_uri");
    query.push(("redirect_uri", "https://evil.example/cb"));
    let response = rp::browser()
        .get(app.authorize_url(&query))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 400);
    // Pushed, it works.
    let (request_uri, verifier) = pushed(&app, &client).await;
    let url = front(&app, &client.id, &request_uri);
    let journey = rp::authorize(&app, &rp::browser(), &url, EMAIL, Consent::Allow).await;
    redeem(&app, &client, &journey.callback.code(), &verifier).await;
}

async fn concurrent_uses_of_a_request_uri_give_one_success(backend: Backend) {
    let app = setup(backend).await;
    let client = app.register_client(&[]).await;
    let (request_uri, _) = pushed(&app, &client).await;
    let url = front(&app, &client.id, &request_uri);
    // Eight browsers race for the same request_uri: the conditional claim lets exactly one in.
    let attempts = (0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            rp::browser()
                .get(&url)
                .send()
                .await
                .expect("authorize")
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.expect("task"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 400, 400, 400, 400, 400, 400, 400]);
}

async fn secret_posted_in_the_body_is_never_stored(backend: Backend) {
    let app = setup(backend).await;
    let client = app.register_client(&[]).await;
    let (verifier, challenge) = rp::pkce();
    let params = request_params(&challenge);
    let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("client_id", &client.id));
    form.push(("client_secret", client.secret()));
    let response = rp::rp_http()
        .post(app.url("/par"))
        .form(&form)
        .send()
        .await
        .expect("PAR sent");
    let body = json_with_status(response, 201).await;
    let stored: String = sqlx::query_scalar("select params from pushed_authorization_requests")
        .fetch_one(&app.db.pool)
        .await
        .expect("one pushed request");
    assert!(!stored.contains(client.secret()), "{stored}");
    assert!(stored.contains(&client.id));
    let request_uri = body["request_uri"].as_str().expect("request_uri");
    let url = front(&app, &client.id, request_uri);
    let journey = rp::authorize(&app, &rp::browser(), &url, EMAIL, Consent::Allow).await;
    redeem(&app, &client, &journey.callback.code(), &verifier).await;
}
