//! Shared helpers of the multi-factor tests: RFC 6238 codes computed from the secret shown on the
//! enrolment page, enrolment, the second step of a sign-in, and an authorization walk that answers
//! the second step and the enrolment on its way.
//!
//! Codes depend on the server's clock: freeze it first (`app.clock.freeze()`). A code is accepted
//! once per 30-second step, so [`next_code`] moves the clock one step on before computing one.

// Not every test module uses every helper.
#![allow(dead_code)]

use totp_rs::{Algorithm, Secret, TOTP};
use url::Url;

use crate::helpers::TestApp;
use crate::rp::{self, PASSWORD, hidden_input, location};

/// The acr of a sign-in with two factors.
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";
/// The acr of a sign-in with one.
pub const ACR_PWD: &str = "urn:latchkey:acr:pwd";

/// The 6-digit RFC 6238 code (SHA-1, 30 s) of `secret_base32` at unix time `unix_time`.
pub fn totp_code(secret_base32: &str, unix_time: i64) -> String {
    let secret = Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .expect("a base32 secret");
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, secret, None, String::new())
        .generate(u64::try_from(unix_time).expect("a time after 1970"))
}

/// Moves the server's clock one step (30 s) on and returns the code of that step.
pub fn next_code(app: &TestApp, secret_base32: &str) -> String {
    app.clock.advance(30);
    totp_code(secret_base32, app.clock.now())
}

/// The secret in `<code id="totp-secret">…</code>` of the enrolment page.
#[track_caller]
pub fn totp_secret(html: &str) -> String {
    let at = html
        .find("id=\"totp-secret\"")
        .unwrap_or_else(|| panic!("no #totp-secret in the page:\n{html}"));
    let start = html[at..].find('>').expect("end of the tag") + at + 1;
    let end = html[start..].find('<').expect("end of the secret") + start;
    html[start..end].to_owned()
}

/// The recovery codes listed on a page that shows them once.
#[track_caller]
pub fn recovery_codes(html: &str) -> Vec<String> {
    let at = html
        .find("id=\"recovery-codes\"")
        .unwrap_or_else(|| panic!("no #recovery-codes in the page:\n{html}"));
    let end = html[at..].find("</ul>").expect("end of the list") + at;
    html[at..end]
        .split("<code>")
        .skip(1)
        .map(|part| part[..part.find("</code>").expect("end of a code")].to_owned())
        .collect()
}

/// Enrols an authenticator app on the page `page` (`/account/totp`, maybe with `?authz=`) for the
/// signed-in `browser`; returns the secret, the recovery codes and the page that shows them.
pub async fn enrol_at(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &Url,
) -> (String, Vec<String>, String) {
    let response = browser.get(page.clone()).send().await.expect("totp page");
    assert_eq!(response.status(), 200, "enrolment page {page}");
    let html = response.text().await.expect("body");
    assert!(html.contains("<svg"), "a QR code on the page");
    let secret = totp_secret(&html);
    let mut form = vec![
        ("csrf", hidden_input(&html, "csrf")),
        ("code", totp_code(&secret, app.clock.now())),
    ];
    if html.contains("name=\"authz\"") {
        form.push(("authz", hidden_input(&html, "authz")));
    }
    let response = browser
        .post(app.url("/account/totp"))
        .form(&form)
        .send()
        .await
        .expect("enrolment posted");
    let status = response.status();
    let shown = response.text().await.expect("body");
    assert_eq!(status, 200, "enrolment confirmed:\n{shown}");
    let codes = recovery_codes(&shown);
    assert_eq!(codes.len(), 10, "{shown}");
    (secret, codes, shown)
}

/// Enrols an authenticator app for the signed-in `browser`; returns its secret and recovery codes.
/// The code used is that of the current step: sign in with [`next_code`].
pub async fn enrol_totp(app: &TestApp, browser: &reqwest::Client) -> (String, Vec<String>) {
    let page = Url::parse(&app.url("/account/totp")).expect("URL");
    let (secret, codes, _) = enrol_at(app, browser, &page).await;
    (secret, codes)
}

/// GETs the second-step page (200) and posts `code` in its form; returns the answer.
pub async fn pass_second_step(
    app: &TestApp,
    browser: &reqwest::Client,
    code: &str,
) -> reqwest::Response {
    let response = browser
        .get(app.url("/login/second-factor"))
        .send()
        .await
        .expect("second step page");
    assert_eq!(response.status(), 200, "the second step is waiting");
    let html = response.text().await.expect("body");
    assert!(html.contains("name=\"code\""), "{html}");
    browser
        .post(app.url("/login/second-factor"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("code", code.to_owned()),
        ])
        .send()
        .await
        .expect("code posted")
}

/// Types `email` and the test password on the login page; asserts the browser is sent to the
/// second step.
pub async fn password_step(app: &TestApp, browser: &reqwest::Client, email: &str) {
    let page = Url::parse(&app.url("/login")).expect("URL");
    let response = rp::submit_login(app, browser, &page, email, PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(app, &response).path(), "/login/second-factor");
}

/// Signs `browser` in as `email` with the password and a fresh code of `secret`.
pub async fn sign_in_with_totp(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    secret: &str,
) {
    password_step(app, browser, email).await;
    let response = pass_second_step(app, browser, &next_code(app, secret)).await;
    assert_eq!(response.status(), 303, "the code is accepted");
    assert_eq!(location(app, &response).path(), "/");
}

/// An authorization as the browser lived it, second factors included.
#[derive(Debug)]
pub struct MfaJourney {
    /// Where the browser was finally sent (the client's redirect URI).
    pub callback: rp::Callback,
    /// The paths of our pages the browser was shown, in order.
    pub seen: Vec<String>,
    /// The TOTP secret: the one given, or the one enrolled on the way.
    pub secret: Option<String>,
}

impl MfaJourney {
    /// Whether the browser was shown `path`.
    pub fn saw(&self, path: &str) -> bool {
        self.seen.iter().any(|p| p == path)
    }
}

/// Opens `authorize_url` and follows the server: the login page (as `email`), the second step (a
/// fresh code of `secret`), the enrolment (a new authenticator, its secret returned), the
/// organization picker (choosing `org`, default the preselected one), until the browser leaves for
/// the client. Consent is not answered: use first-party clients.
pub async fn walk(
    app: &TestApp,
    browser: &reqwest::Client,
    authorize_url: &str,
    email: &str,
    secret: Option<String>,
    org: Option<&str>,
) -> MfaJourney {
    let mut secret = secret;
    let mut seen = Vec::new();
    let mut to = Url::parse(authorize_url).expect("authorization URL");
    for _ in 0..15 {
        if !to.as_str().starts_with(&format!("{}/", app.address)) {
            return MfaJourney {
                callback: rp::Callback { url: to },
                seen,
                secret,
            };
        }
        let path = to.path().to_owned();
        if path != "/authorize" && path != "/authorize/continue" {
            seen.push(path.clone());
        }
        to = match path.as_str() {
            "/login" => {
                let response = rp::submit_login(app, browser, &to, email, PASSWORD).await;
                assert_eq!(response.status(), 303, "login succeeds");
                location(app, &response)
            }
            "/login/second-factor" => {
                let s = secret.clone().expect("a secret for the second step");
                let page = browser.get(to.clone()).send().await.expect("page");
                assert_eq!(page.status(), 200, "second step {to}");
                let html = page.text().await.expect("body");
                let response = browser
                    .post(app.url("/login/second-factor"))
                    .form(&[
                        ("csrf", hidden_input(&html, "csrf")),
                        ("code", next_code(app, &s)),
                    ])
                    .send()
                    .await
                    .expect("code posted");
                assert_eq!(response.status(), 303, "the code is accepted");
                location(app, &response)
            }
            "/account/totp" => {
                let authz = to
                    .query_pairs()
                    .find(|(k, _)| k == "authz")
                    .map(|(_, v)| v.into_owned())
                    .expect("enrolment during an authorization carries authz");
                let (s, _, shown) = enrol_at(app, browser, &to).await;
                secret = Some(s);
                let next = format!("/authorize/continue?authz={authz}");
                assert!(
                    shown.contains(&next),
                    "Continue resumes the request:\n{shown}"
                );
                Url::parse(&app.url(&next)).expect("URL")
            }
            "/organization" => {
                let page = browser.get(to.clone()).send().await.expect("picker");
                assert_eq!(page.status(), 200, "picker {to}");
                let html = page.text().await.expect("body");
                let choice = match org {
                    Some(id) => id.to_owned(),
                    None => rp::picker_checked(&html).expect("a preselected organization"),
                };
                let response = browser
                    .post(app.url("/organization"))
                    .form(&[
                        ("csrf", hidden_input(&html, "csrf")),
                        ("authz", hidden_input(&html, "authz")),
                        ("org", choice),
                    ])
                    .send()
                    .await
                    .expect("picker posted");
                assert_eq!(response.status(), 303, "organization chosen");
                location(app, &response)
            }
            _ => {
                let response = browser.get(to.clone()).send().await.expect("request");
                let status = response.status();
                if status != 303 {
                    let body = response.text().await.unwrap_or_default();
                    panic!("GET {to}: expected 303, got {status}:\n{body}");
                }
                location(app, &response)
            }
        };
    }
    panic!("too many redirects from {authorize_url}");
}

/// The claims of the ID token that `code` (made with [`rp::pkce`]'s `verifier`) is redeemed for at
/// the confidential `client`; also the whole token response.
pub async fn id_token_claims(
    app: &TestApp,
    client: &rp::RegisteredClient,
    code: &str,
    verifier: &str,
) -> (serde_json::Value, serde_json::Value) {
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", rp::REDIRECT_URI),
                ("code_verifier", verifier),
            ],
        )
        .await;
    let tokens = rp::json_with_status(response, 200).await;
    let (_, claims) = rp::decode_jwt(tokens["id_token"].as_str().expect("id_token"));
    (claims, tokens)
}

/// The `amr` of ID token claims, as strings.
pub fn amr(claims: &serde_json::Value) -> Vec<String> {
    claims["amr"]
        .as_array()
        .expect("amr")
        .iter()
        .map(|v| v.as_str().expect("a method").to_owned())
        .collect()
}

/// An authorization URL of `client` (scopes `openid email`, PKCE with `challenge`) with `extra`.
pub fn authz_url(
    app: &TestApp,
    client: &rp::RegisteredClient,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", rp::REDIRECT_URI),
        ("scope", "openid email"),
        ("state", "st"),
        ("nonce", "n"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    app.authorize_url(&params)
}

/// Counts audit events of `action` about `user_id`.
pub async fn audit_count(app: &TestApp, action: &str, user_id: &str) -> i64 {
    sqlx::query_scalar("select count(*) from audit_events where action = $1 and target_id = $2")
        .bind(action)
        .bind(user_id)
        .fetch_one(&app.db.pool)
        .await
        .expect("count")
}
