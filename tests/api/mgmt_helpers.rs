//! Shared helpers of the management-API tests (`mgmt_*`): tokens for people and operators, calls
//! with a Bearer token, and problem+json assertions.

// Not every test module uses every helper.
#![allow(dead_code)]

use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient};

/// The `User-Agent` of API calls (the audit log records it).
pub const USER_AGENT: &str = "latchkey-mgmt-tests/1";

/// Scopes of a user token that may read and write organizations.
pub const ORG_SCOPES: &str = "openid email org:read org:write";

/// A first-party client that may ask for the organization scopes.
pub async fn org_client(app: &TestApp) -> RegisteredClient {
    app.register_client(&[
        "--first-party",
        "--scope",
        "openid",
        "--scope",
        "profile",
        "--scope",
        "email",
        "--scope",
        "offline_access",
        "--scope",
        "org:read",
        "--scope",
        "org:write",
    ])
    .await
}

/// An access token of `email` for `client` with `scopes` (authorization code with PKCE).
pub async fn user_token(
    app: &TestApp,
    client: &RegisteredClient,
    email: &str,
    scopes: &str,
) -> String {
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", scopes),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = rp::authorize(app, &rp::browser(), &url, email, Consent::Allow).await;
    let code = journey.callback.code();
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", REDIRECT_URI),
            ],
        )
        .await;
    let body = rp::json_with_status(response, 200).await;
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// A person with a token holding [`ORG_SCOPES`]; returns `(user id, token)`.
pub async fn person(app: &TestApp, client: &RegisteredClient, email: &str) -> (String, String) {
    let id = app.create_person(email, email).await;
    let token = user_token(app, client, email, ORG_SCOPES).await;
    (id, token)
}

/// A `client_credentials` token of a new client with `scopes`.
pub async fn client_token(app: &TestApp, scopes: &[&str]) -> String {
    let mut args = vec!["--grant-type", "client_credentials"];
    for s in scopes {
        args.extend_from_slice(&["--scope", s]);
    }
    let client = app.register_client(&args).await;
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

/// An operator token (`client_credentials` with `admin`).
pub async fn operator_token(app: &TestApp) -> String {
    client_token(app, &["admin"]).await
}

/// `latchkey org create`; returns the organization id.
pub async fn cli_org(app: &TestApp, name: &str, slug: &str, owner: &str) -> String {
    app.cli(&[
        "org", "create", "--name", name, "--slug", slug, "--owner", owner,
    ])
    .await
    .json()["id"]
        .as_str()
        .expect("org id")
        .to_owned()
}

/// `latchkey org add-member`.
pub async fn cli_member(app: &TestApp, org: &str, email: &str, role: &str) {
    app.cli(&[
        "org",
        "add-member",
        "--org",
        org,
        "--email",
        email,
        "--role",
        role,
    ])
    .await
    .json();
}

/// An API answer: status, content type and body (JSON, or null when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub location: String,
    /// Path and query of the next page (the RFC 8288 `Link: <…>; rel="next"` of a list), if any.
    pub next: Option<String>,
}

impl Answer {
    /// Asserts `status` and returns the body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        &self.body
    }

    /// Asserts an RFC 9457 problem with `status` and the stable type `code`.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.body
        );
        assert_eq!(
            self.body["type"],
            format!("urn:latchkey:problem:{code}"),
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status, "{}", self.body);
        assert!(self.body["detail"].is_string(), "{}", self.body);
    }
}

/// Calls the API: `method path` with an optional Bearer `token` and JSON `body`. Every answer is
/// checked against the OpenAPI document (`crate::openapi_validation`): a status or body the
/// document does not describe fails the test.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let document = crate::openapi_validation::document(app).await;
    let mut request = rp::rp_http()
        .request(method.clone(), app.url(path))
        .header("user-agent", USER_AGENT);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = answer(request.send().await.expect("request sent")).await;
    crate::openapi_validation::assert_documented(
        &document,
        method.as_str(),
        path,
        answer.status,
        &answer.content_type,
        &answer.body,
    );
    answer
}

/// Reads an API answer.
pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let content_type = rp::header(&response, "content-type");
    let location = rp::header(&response, "location");
    let next = next_link(&rp::header(&response, "link"));
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    Answer {
        status,
        content_type,
        body,
        location,
        next,
    }
}

/// The target of `rel="next"` in a `Link` header value.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

/// `GET path` with `token`.
pub async fn get(app: &TestApp, path: &str, token: &str) -> Answer {
    call(app, Method::GET, path, Some(token), None).await
}

/// `POST path` with `token` and `body`.
pub async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> Answer {
    call(app, Method::POST, path, Some(token), Some(body)).await
}

/// `PATCH path` with `token` and `body`.
pub async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> Answer {
    call(app, Method::PATCH, path, Some(token), Some(body)).await
}

/// `DELETE path` with `token`.
pub async fn delete(app: &TestApp, path: &str, token: &str) -> Answer {
    call(app, Method::DELETE, path, Some(token), None).await
}

/// The ids (field `field`) of a list answer's items, in order.
pub fn ids(body: &Value, field: &str) -> Vec<String> {
    body.as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|i| i[field].as_str().expect("id").to_owned())
        .collect()
}
