//! Dynamic client registration (RFC 7591) behind an initial access token from `latchkey client
//! registration-token`, and the client configuration endpoint (RFC 7592): off unless switched on,
//! refusals with the RFC 7591 error codes, a registration through the `openidconnect` crate followed
//! by a whole code flow, and GET/PUT/DELETE with the registration access token.

use openidconnect::core::{CoreClientRegistrationRequest, CoreGrantType, CoreProviderMetadata};
use openidconnect::registration::EmptyAdditionalClientMetadata;
use openidconnect::{AccessToken, IssuerUrl, RedirectUrl};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient, header, json_with_status};

on_both_databases!(
    switched_off_is_404_and_not_advertised,
    switched_on_is_advertised_and_needs_an_initial_access_token,
    invalid_metadata_is_refused_with_its_error_code,
    registered_client_runs_the_code_flow,
    registration_is_read_replaced_and_deleted_with_its_token,
    only_the_clients_own_registration_token_is_accepted,
    id_token_algorithm_gets_its_signing_key,
);

const EMAIL: &str = "ada@example.com";
const ON: &[(&str, &str)] = &[("LATCHKEY_DYNAMIC_REGISTRATION", "initial-access-token")];

/// A new initial access token from the CLI.
async fn initial_token(app: &TestApp, args: &[&str]) -> String {
    let mut all = vec!["client", "registration-token"];
    all.extend_from_slice(args);
    let out = app.cli(&all).await.json();
    let object = out.as_object().expect("an object");
    assert_eq!(object.len(), 1, "only the token: {out}");
    out["token"].as_str().expect("token").to_owned()
}

/// `POST /register` with `body`, with `token` as Bearer when given.
async fn register(app: &TestApp, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = rp::rp_http().post(app.url("/register")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("registration sent")
}

/// A request to `/register/{client_id}` with `token`.
fn configuration(
    app: &TestApp,
    method: reqwest::Method,
    client_id: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    rp::rp_http()
        .request(method, app.url(&format!("/register/{client_id}")))
        .bearer_auth(token)
}

/// Asserts a 401 `invalid_token` with the RFC 6750 challenge.
async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(
        header(&response, "www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
    let body = json_with_status(response, 401).await;
    assert_eq!(body["error"], "invalid_token");
}

/// Metadata of a confidential web client at [`REDIRECT_URI`].
fn web_client() -> Value {
    json!({
        "client_name": "Registered RP",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid email offline_access",
    })
}

async fn switched_off_is_404_and_not_advertised(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let discovery: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("JSON");
    assert!(discovery.get("registration_endpoint").is_none());
    // Even a valid initial access token finds nothing.
    let token = initial_token(&app, &[]).await;
    let response = register(&app, Some(&token), &web_client()).await;
    assert_eq!(response.status(), 404);
    let response = configuration(&app, reqwest::Method::GET, "any", &token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 404);
    assert_eq!(app.count("clients").await, 0);
}

async fn switched_on_is_advertised_and_needs_an_initial_access_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, ON).await;
    let discovery: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        discovery["registration_endpoint"],
        format!("{}/register", app.issuer())
    );
    // No token, a made-up token, another scheme.
    assert_invalid_token(register(&app, None, &web_client()).await).await;
    assert_invalid_token(register(&app, Some("made-up"), &web_client()).await).await;
    let token = initial_token(&app, &["--expires-in", "1h"]).await;
    let response = rp::rp_http()
        .post(app.url("/register"))
        .basic_auth("someone", Some(&token))
        .json(&web_client())
        .send()
        .await
        .expect("sent");
    assert_invalid_token(response).await;
    // The token registers several clients while it lasts.
    for _ in 0..2 {
        json_with_status(register(&app, Some(&token), &web_client()).await, 201).await;
    }
    // Then it has expired.
    app.clock.advance(3601);
    assert_invalid_token(register(&app, Some(&token), &web_client()).await).await;
    assert_eq!(app.count("clients").await, 2);
    // Issuing was audited, without the token; only its hash is stored.
    let details: Vec<String> = sqlx::query_scalar(
        "select details from audit_events where action = 'client.registration_token_created'",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("audit events");
    assert_eq!(details.len(), 1);
    assert!(!details[0].contains(&token));
    let stored: String = sqlx::query_scalar("select token_hash from registration_initial_tokens")
        .fetch_one(&app.db.pool)
        .await
        .expect("one token");
    assert_ne!(stored, token);
    // A lifetime that is not one is refused by the CLI.
    for bad in ["soon", "0s", "400d"] {
        app.cli(&["client", "registration-token", "--expires-in", bad])
            .await
            .refused();
    }
}

async fn invalid_metadata_is_refused_with_its_error_code(backend: Backend) {
    let app = TestApp::spawn_with(backend, ON).await;
    let token = initial_token(&app, &[]).await;
    let with = |member: &str, value: Value| {
        let mut body = web_client();
        body[member] = value;
        body
    };
    let cases = [
        (
            with("redirect_uris", json!(["http://rp.example.com/cb"])),
            "invalid_redirect_uri",
        ),
        (with("redirect_uris", json!([])), "invalid_redirect_uri"),
        (
            with("response_types", json!(["token"])),
            "invalid_client_metadata",
        ),
        (
            with("scope", json!("openid admin")),
            "invalid_client_metadata",
        ),
        (
            with("grant_types", json!(["client_credentials"])),
            "invalid_client_metadata",
        ),
        (
            with("token_endpoint_auth_method", json!("private_key_jwt")),
            "invalid_client_metadata",
        ),
        (
            with("redirect_uris", json!(REDIRECT_URI)),
            "invalid_client_metadata",
        ),
        (
            with("backchannel_logout_uri", json!("http://rp.example.com/bcl")),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ];
    for (body, error) in cases {
        let response = register(&app, Some(&token), &body).await;
        assert_eq!(header(&response, "cache-control"), "no-store");
        let answer = json_with_status(response, 400).await;
        assert_eq!(answer["error"], error, "{body}: {answer}");
    }
    assert_eq!(app.count("clients").await, 0);
}

async fn registered_client_runs_the_code_flow(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, ON).await;
    app.create_person(EMAIL, "Ada").await;
    let token = initial_token(&app, &[]).await;
    // The relying party finds the endpoint by discovery and registers with openidconnect.
    let issuer = IssuerUrl::new(app.issuer()).expect("issuer");
    let metadata = CoreProviderMetadata::discover_async(issuer, &rp::rp_http())
        .await
        .expect("discovery");
    let endpoint = metadata
        .registration_endpoint()
        .expect("registration endpoint")
        .clone();
    let registered = CoreClientRegistrationRequest::new(
        vec![RedirectUrl::new(REDIRECT_URI.to_owned()).expect("URL")],
        EmptyAdditionalClientMetadata::default(),
    )
    .set_grant_types(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ]))
    .set_initial_access_token(Some(AccessToken::new(token)))
    .register_async(&endpoint, &rp::rp_http())
    .await
    .expect("registered");
    let client = RegisteredClient {
        id: registered.client_id().as_str().to_owned(),
        secret: registered.client_secret().map(|s| s.secret().to_owned()),
    };
    assert!(client.secret.is_some(), "client_secret_basic by default");
    assert!(registered.registration_access_token().is_some());
    assert_eq!(
        registered
            .registration_client_uri()
            .expect("registration_client_uri")
            .as_str(),
        format!("{}/register/{}", app.issuer(), client.id)
    );
    // A registered client is never first-party: the person is asked.
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = rp::authorize(&app, &rp::browser(), &url, EMAIL, Consent::Allow).await;
    assert!(journey.saw_consent);
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &journey.callback.code()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let tokens = json_with_status(response, 200).await;
    let (_, claims) = app
        .verify_jwt(tokens["id_token"].as_str().expect("id_token"))
        .await;
    assert_eq!(claims["aud"], client.id.as_str());
}

async fn registration_is_read_replaced_and_deleted_with_its_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, ON).await;
    app.create_person(EMAIL, "Ada").await;
    let token = initial_token(&app, &[]).await;
    let created = json_with_status(register(&app, Some(&token), &web_client()).await, 201).await;
    let id = created["client_id"].as_str().expect("client_id").to_owned();
    let access = created["registration_access_token"]
        .as_str()
        .expect("registration_access_token")
        .to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_eq!(created["client_secret_expires_at"], 0);
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(created["response_types"], json!(["code"]));
    // GET: the metadata as registered, never the secret.
    let response = configuration(&app, reqwest::Method::GET, &id, &access)
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&response, "cache-control"), "no-store");
    let read = json_with_status(response, 200).await;
    assert!(read.get("client_secret").is_none());
    for member in [
        "client_name",
        "redirect_uris",
        "grant_types",
        "scope",
        "client_id",
    ] {
        assert_eq!(read[member], created[member], "{member}");
    }
    assert_eq!(
        read["registration_client_uri"],
        created["registration_client_uri"]
    );
    // PUT: the body replaces the metadata; what it omits goes back to the default.
    let replacement = json!({
        "client_id": id,
        "client_name": "Renamed RP",
        "redirect_uris": [REDIRECT_URI, "https://rp.example.com/new"],
        "token_endpoint_auth_method": "client_secret_post",
        "client_secret": secret,
    });
    let response = configuration(&app, reqwest::Method::PUT, &id, &access)
        .json(&replacement)
        .send()
        .await
        .expect("sent");
    let replaced = json_with_status(response, 200).await;
    assert_eq!(replaced["client_name"], "Renamed RP");
    assert_eq!(replaced["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(replaced["grant_types"], json!(["authorization_code"]));
    assert_eq!(replaced["scope"], "openid profile email offline_access");
    let shown = app
        .cli(&["client", "show", "--client-id", &id])
        .await
        .json();
    assert_eq!(shown["name"], "Renamed RP");
    assert_eq!(shown["first_party"], false);
    // PUT refusals: another client_id, a wrong secret, becoming public, bad metadata.
    let refusals = [
        (
            json!({"client_id": "other", "redirect_uris": [REDIRECT_URI]}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_id": id, "client_secret": "wrong", "redirect_uris": [REDIRECT_URI]}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_id": id, "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_id": id, "redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
    ];
    for (body, error) in refusals {
        let response = configuration(&app, reqwest::Method::PUT, &id, &access)
            .json(&body)
            .send()
            .await
            .expect("sent");
        let answer = json_with_status(response, 400).await;
        assert_eq!(answer["error"], error, "{body}: {answer}");
    }
    // A code obtained before the deletion cannot be redeemed after it.
    let client = RegisteredClient {
        id: id.clone(),
        secret: Some(secret.clone()),
    };
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &client, EMAIL).await;
    let response = configuration(&app, reqwest::Method::DELETE, &id, &access)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204);
    let response = app
        .post_token(
            Some((&id, &secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let answer = json_with_status(response, 401).await;
    assert_eq!(answer["error"], "invalid_client");
    // The registration went with the client: its token opens nothing any more.
    let response = configuration(&app, reqwest::Method::GET, &id, &access)
        .send()
        .await
        .expect("sent");
    assert_invalid_token(response).await;
    assert_eq!(app.count("client_registrations").await, 0);
}

async fn only_the_clients_own_registration_token_is_accepted(backend: Backend) {
    let app = TestApp::spawn_with(backend, ON).await;
    let token = initial_token(&app, &[]).await;
    let public = json!({
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
    });
    let first = json_with_status(register(&app, Some(&token), &public).await, 201).await;
    assert!(first.get("client_secret").is_none());
    assert_eq!(first["token_endpoint_auth_method"], "none");
    let second = json_with_status(register(&app, Some(&token), &web_client()).await, 201).await;
    let first_id = first["client_id"].as_str().expect("id");
    let second_access = second["registration_access_token"].as_str().expect("token");
    // Another client's registration token, the initial access token, a made-up one.
    for wrong in [second_access, token.as_str(), "made-up"] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let response = configuration(&app, method, first_id, wrong)
                .json(&json!({"client_id": first_id, "redirect_uris": [REDIRECT_URI]}))
                .send()
                .await
                .expect("sent");
            assert_invalid_token(response).await;
        }
    }
    // No token at all.
    let response = rp::rp_http()
        .get(app.url(&format!("/register/{first_id}")))
        .send()
        .await
        .expect("sent");
    assert_invalid_token(response).await;
    // A client an operator registered has no registration: 401, like an unknown one.
    let operator = app.register_client(&[]).await;
    for id in [operator.id.as_str(), "no-such-client"] {
        let response = configuration(&app, reqwest::Method::DELETE, id, second_access)
            .send()
            .await
            .expect("sent");
        assert_invalid_token(response).await;
    }
    assert_eq!(app.count("clients").await, 3);
}

async fn id_token_algorithm_gets_its_signing_key(backend: Backend) {
    let app = TestApp::spawn_with(backend, ON).await;
    let token = initial_token(&app, &[]).await;
    let has_eddsa = |jwks: &Value| {
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["alg"] == "EdDSA")
    };
    assert!(!has_eddsa(&app.jwks().await));
    let mut body = web_client();
    body["id_token_signed_response_alg"] = json!("EdDSA");
    let created = json_with_status(register(&app, Some(&token), &body).await, 201).await;
    assert_eq!(created["id_token_signed_response_alg"], "EdDSA");
    // This server signs with it at once: the key is in its JWKS already.
    assert!(has_eddsa(&app.jwks().await));
    // A PUT without the member goes back to the server's algorithm.
    let id = created["client_id"].as_str().expect("client_id");
    let access = created["registration_access_token"]
        .as_str()
        .expect("registration_access_token");
    let mut replacement = web_client();
    replacement["client_id"] = json!(id);
    let response = configuration(&app, reqwest::Method::PUT, id, access)
        .json(&replacement)
        .send()
        .await
        .expect("sent");
    let replaced = json_with_status(response, 200).await;
    assert!(replaced.get("id_token_signed_response_alg").is_none());
    let shown = app.cli(&["client", "show", "--client-id", id]).await.json();
    assert_eq!(shown["id_token_alg"], Value::Null);
    body["id_token_signed_response_alg"] = json!("HS256");
    let refused = json_with_status(register(&app, Some(&token), &body).await, 400).await;
    assert_eq!(refused["error"], "invalid_client_metadata");
}
