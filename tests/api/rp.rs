//! The relying-party side of the OpenID Connect tests: clients registered with the CLI, an
//! `openidconnect` client configured by discovery, a browser that walks the login, organization picker
//! and consent pages,
//! and helpers to call the token endpoint and to check JWTs against the JWKS.

// Not every test module uses every helper.
#![allow(dead_code)]

use std::time::Duration;

use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointNotSet, EndpointSet, IssuerUrl, PkceCodeChallenge, RedirectUrl,
    TokenUrl, UserInfoUrl,
};
use serde_json::Value;
use url::Url;

use crate::helpers::TestApp;

/// The redirect URI registered for test clients. Nothing listens there: redirects are never followed.
pub const REDIRECT_URI: &str = "https://rp.example.com/callback";
/// A second registered redirect URI, for mismatch tests.
pub const OTHER_REDIRECT_URI: &str = "https://rp.example.com/other";
/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery";

/// An `openidconnect` client with the endpoints found by discovery.
pub type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
>;

/// A client registered with `latchkey client create`.
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    /// `client_id`
    pub id: String,
    /// `client_secret` (confidential clients only).
    pub secret: Option<String>,
}

impl RegisteredClient {
    /// The secret of a confidential client.
    #[track_caller]
    pub fn secret(&self) -> &str {
        self.secret.as_deref().expect("a confidential client")
    }
}

impl TestApp {
    /// `latchkey client create --name "Test RP" --redirect-uri REDIRECT_URI --redirect-uri
    /// OTHER_REDIRECT_URI ARGS...`.
    pub async fn register_client(&self, args: &[&str]) -> RegisteredClient {
        let mut all = vec![
            "client",
            "create",
            "--name",
            "Test RP",
            "--redirect-uri",
            REDIRECT_URI,
            "--redirect-uri",
            OTHER_REDIRECT_URI,
        ];
        all.extend_from_slice(args);
        let json = self.cli(&all).await.json();
        RegisteredClient {
            id: json["client_id"].as_str().expect("client_id").to_owned(),
            secret: json["client_secret"].as_str().map(str::to_owned),
        }
    }

    /// A user named `name` with [`PASSWORD`]; returns its id (the `sub` of its tokens).
    pub async fn create_person(&self, email: &str, name: &str) -> String {
        self.cli_stdin(
            &[
                "user",
                "create",
                "--email",
                email,
                "--name",
                name,
                "--password-stdin",
            ],
            PASSWORD,
        )
        .await
        .json()["id"]
            .as_str()
            .expect("user id")
            .to_owned()
    }

    /// The configured issuer (`iss`).
    pub fn issuer(&self) -> String {
        self.env
            .get("LATCHKEY_ISSUER")
            .cloned()
            .unwrap_or_else(|| latchkey::config::DEFAULT_ISSUER.to_owned())
    }

    /// An `openidconnect` client for `client`, configured by discovery (which also checks that the
    /// issuer of the document is ours and fetches the JWKS). Needs
    /// [`TestApp::spawn_with_own_issuer`].
    pub async fn relying_party(&self, client: &RegisteredClient) -> Rp {
        let issuer = IssuerUrl::new(self.issuer()).expect("issuer URL");
        let metadata = CoreProviderMetadata::discover_async(issuer, &rp_http())
            .await
            .expect("discovery succeeds");
        let token = metadata.token_endpoint().expect("token endpoint").clone();
        let userinfo = metadata
            .userinfo_endpoint()
            .expect("userinfo endpoint")
            .clone();
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client.id.clone()),
            client.secret.clone().map(ClientSecret::new),
        )
        .set_token_uri(TokenUrl::from_url(token.url().clone()))
        .set_user_info_url(UserInfoUrl::from_url(userinfo.url().clone()))
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_owned()).expect("redirect URI"))
    }

    /// An authorization request URL with exactly `params`.
    pub fn authorize_url(&self, params: &[(&str, &str)]) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.url(&format!("/authorize?{query}"))
    }

    /// `POST /token` with a form body, authenticating with HTTP Basic when `basic` is given.
    pub async fn post_token(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = rp_http().post(self.url("/token")).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.expect("token request sent")
    }

    /// The JWK Set.
    pub async fn jwks(&self) -> Value {
        rp_http()
            .get(self.url("/jwks.json"))
            .send()
            .await
            .expect("JWKS fetched")
            .json()
            .await
            .expect("JWKS is JSON")
    }

    /// Verifies the signature of `jwt` with the JWKS key named by its `kid` (using the key's own
    /// alg, never the header's choice alone); returns the header and the claims.
    pub async fn verify_jwt(&self, jwt: &str) -> (Value, Value) {
        let (header, _) = decode_jwt(jwt);
        let kid = header["kid"].as_str().expect("kid in the header");
        let jwks = self.jwks().await;
        let key = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS: {jwks}"));
        let alg = key["alg"].as_str().expect("alg in the JWK");
        assert_eq!(header["alg"], alg, "the token is signed with its key's alg");
        let jwk = Jwk::from_map(key.as_object().expect("JWK object").clone()).expect("valid JWK");
        let verifier: Box<dyn JwsVerifier> = match alg {
            "RS256" => Box::new(jws::RS256.verifier_from_jwk(&jwk).expect("RS256 key")),
            "ES256" => Box::new(jws::ES256.verifier_from_jwk(&jwk).expect("ES256 key")),
            "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(&jwk).expect("EdDSA key")),
            other => panic!("unexpected alg {other}"),
        };
        let (payload, _) =
            jws::deserialize_compact(jwt, verifier.as_ref()).expect("the signature verifies");
        let claims: Value = serde_json::from_slice(&payload).expect("claims are JSON");
        (header, claims)
    }
}

/// An HTTP client as a relying party or resource server uses it: no cookies, no redirects.
pub fn rp_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A fresh browser: its own cookie store, redirects not followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("browser")
}

/// A fresh PKCE pair: `(verifier, S256 challenge)`.
pub fn pkce() -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (verifier.secret().clone(), challenge.as_str().to_owned())
}

/// Header and claims of a compact JWS, without verifying anything.
pub fn decode_jwt(jwt: &str) -> (Value, Value) {
    use base64::Engine;
    let part = |s: &str| -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    let mut parts = jwt.split('.');
    let header = part(parts.next().expect("header"));
    let claims = part(parts.next().expect("payload"));
    assert!(parts.next().is_some(), "a signature");
    (header, claims)
}

/// The value of a hidden `<input name="NAME" value="...">` of an HTML page.
#[track_caller]
pub fn hidden_input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no input {name} in the page:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// The `Location` of a redirect, resolved against the app's address.
#[track_caller]
pub fn location(app: &TestApp, response: &reqwest::Response) -> Url {
    let value = response
        .headers()
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("no Location in a {} response", response.status()))
        .to_str()
        .expect("ASCII Location");
    Url::parse(&app.address)
        .expect("app address")
        .join(value)
        .expect("valid Location")
}

/// The authorization response at the client's redirect URI.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The full URL the browser was sent to.
    pub url: Url,
}

impl Callback {
    /// A query parameter, decoded.
    pub fn get(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The authorization code (panics with the error otherwise).
    #[track_caller]
    pub fn code(&self) -> String {
        self.get("code")
            .unwrap_or_else(|| panic!("no code in the authorization response: {}", self.url))
    }

    /// The `error` of an error response (panics when there is none).
    #[track_caller]
    pub fn error(&self) -> String {
        self.get("error")
            .unwrap_or_else(|| panic!("not an error response: {}", self.url))
    }

    /// Asserts the response went to `redirect_uri` (exactly, before the query).
    #[track_caller]
    pub fn assert_at(&self, redirect_uri: &str) {
        let mut base = self.url.clone();
        base.set_query(None);
        assert_eq!(base.as_str(), redirect_uri, "{}", self.url);
    }
}

/// What to answer on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Press Allow.
    Allow,
    /// Press Deny.
    Deny,
}

/// An authorization as the browser lived it.
#[derive(Debug, Clone)]
pub struct Journey {
    /// Where the browser was finally sent.
    pub callback: Callback,
    /// Whether the login page was shown.
    pub saw_login: bool,
    /// Whether the consent page was shown.
    pub saw_consent: bool,
    /// The organization picker as last shown, if it was.
    pub picker_html: Option<String>,
}

impl Journey {
    /// Whether the organization picker was shown.
    pub fn saw_picker(&self) -> bool {
        self.picker_html.is_some()
    }
}

/// Opens `authorize_url` in `browser` and follows the server's redirects, signing in as `email` on
/// the login page, submitting the preselected organization on the organization picker and answering
/// `consent` on the consent page, until the server sends the browser away to the client.
pub async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    authorize_url: &str,
    email: &str,
    consent: Consent,
) -> Journey {
    authorize_choosing(app, browser, authorize_url, email, consent, None).await
}

/// Like [`authorize`], choosing the organization with id `org` on the picker (when it is shown)
/// instead of the preselected one.
pub async fn authorize_choosing(
    app: &TestApp,
    browser: &reqwest::Client,
    authorize_url: &str,
    email: &str,
    consent: Consent,
    org: Option<&str>,
) -> Journey {
    let mut to = Url::parse(authorize_url).expect("authorization URL");
    let mut saw_login = false;
    let mut saw_consent = false;
    let mut picker_html = None;
    for _ in 0..10 {
        to = match to.path() {
            "/login" => {
                saw_login = true;
                let response = submit_login(app, browser, &to, email, PASSWORD).await;
                assert_eq!(response.status(), 303, "login succeeds");
                location(app, &response)
            }
            "/consent" => {
                saw_consent = true;
                answer_consent(app, browser, &to, consent).await
            }
            "/organization" => {
                let (html, next) = answer_picker(app, browser, &to, org).await;
                picker_html = Some(html);
                next
            }
            _ => {
                let response = browser.get(to.clone()).send().await.expect("request sent");
                let status = response.status();
                if status != 303 {
                    let body = response.text().await.unwrap_or_default();
                    panic!("GET {to}: expected 303, got {status}:\n{body}");
                }
                location(app, &response)
            }
        };
        if !to.as_str().starts_with(&format!("{}/", app.address)) {
            return Journey {
                callback: Callback { url: to },
                saw_login,
                saw_consent,
                picker_html,
            };
        }
    }
    panic!("too many redirects from {authorize_url}");
}

/// GETs the login page at `page` and submits it with `email` and `password`; returns the answer.
pub async fn submit_login(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &Url,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let response = browser.get(page.clone()).send().await.expect("login page");
    assert_eq!(response.status(), 200, "login page {page}");
    let html = response.text().await.expect("login page body");
    let form = [
        ("csrf", hidden_input(&html, "csrf")),
        ("authz", hidden_input(&html, "authz")),
        ("email", email.to_owned()),
        ("password", password.to_owned()),
    ];
    browser
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .expect("login posted")
}

/// Signs `browser` in as `email` through the bare login page (no authorization request).
pub async fn sign_in(app: &TestApp, browser: &reqwest::Client, email: &str) {
    let page = Url::parse(&app.url("/login")).expect("login URL");
    let response = submit_login(app, browser, &page, email, PASSWORD).await;
    assert_eq!(response.status(), 303, "login succeeds");
    assert_eq!(location(app, &response).path(), "/");
}

/// GETs the consent page at `page`, presses `consent`, and returns where the server sends the
/// browser next.
async fn answer_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &Url,
    consent: Consent,
) -> Url {
    let response = browser
        .get(page.clone())
        .send()
        .await
        .expect("consent page");
    assert_eq!(response.status(), 200, "consent page {page}");
    let html = response.text().await.expect("consent page body");
    let decision = match consent {
        Consent::Allow => "allow",
        Consent::Deny => "deny",
    };
    let form = [
        ("csrf", hidden_input(&html, "csrf")),
        ("authz", hidden_input(&html, "authz")),
        ("decision", decision.to_owned()),
    ];
    let response = browser
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .expect("consent posted");
    assert_eq!(response.status(), 303, "consent answered");
    location(app, &response)
}

/// The organization ids offered by a picker page, in page order.
pub fn picker_options(html: &str) -> Vec<String> {
    let marker = "name=\"org\" value=\"";
    html.match_indices(marker)
        .map(|(at, _)| {
            let start = at + marker.len();
            let end = html[start..].find('"').expect("closing quote") + start;
            html[start..end].to_owned()
        })
        .collect()
}

/// The organization id preselected on a picker page, if any.
pub fn picker_checked(html: &str) -> Option<String> {
    picker_options(html)
        .into_iter()
        .find(|id| html.contains(&format!("name=\"org\" value=\"{id}\" checked")))
}

/// GETs the organization picker at `page` and submits `org` (default: the preselected option);
/// returns the page and where the server sends the browser next.
async fn answer_picker(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &Url,
    org: Option<&str>,
) -> (String, Url) {
    let response = browser.get(page.clone()).send().await.expect("picker page");
    assert_eq!(response.status(), 200, "organization picker {page}");
    let html = response.text().await.expect("picker page body");
    let choice = match org {
        Some(id) => id.to_owned(),
        None => picker_checked(&html).expect("an organization is preselected"),
    };
    let form = [
        ("csrf", hidden_input(&html, "csrf")),
        ("authz", hidden_input(&html, "authz")),
        ("org", choice),
    ];
    let response = browser
        .post(app.url("/organization"))
        .form(&form)
        .send()
        .await
        .expect("picker posted");
    assert_eq!(response.status(), 303, "organization chosen");
    let next = location(app, &response);
    (html, next)
}

/// A full authorization with PKCE (scopes `openid email profile`, consent allowed when asked):
/// returns the code and its verifier.
pub async fn code_with_pkce(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
    email: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email profile"),
        ("state", "st"),
        ("nonce", "n"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = authorize(app, browser, &url, email, Consent::Allow).await;
    (journey.callback.code(), verifier)
}

/// A full authorization without PKCE (confidential clients only).
pub async fn code_without_pkce(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
    email: &str,
) -> String {
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email"),
    ]);
    authorize(app, browser, &url, email, Consent::Allow)
        .await
        .callback
        .code()
}

/// The JSON body of a response, after asserting its status.
pub async fn json_with_status(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(actual, status, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A response header as text (empty when absent).
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_owned())
        .unwrap_or_default()
}
