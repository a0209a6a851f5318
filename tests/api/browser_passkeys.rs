//! Passkeys in a real browser: headless Chromium (see [`crate::browser`]) with a virtual
//! authenticator of the WebDriver WebAuthn extension (WebAuthn L2 §11: CTAP2, internal transport,
//! resident keys, user verification). Registration of two passkeys on `/account/passkeys`, a
//! passkey as the second factor after the password, sign-in with a passkey alone from the login
//! page of an authorization request, and removal (the removed passkey no longer signs in). ID
//! tokens are checked for `amr` (RFC 8176) and `acr`.
//!
//! A WebAuthn RP ID cannot be an IP address, so the server runs with
//! `LATCHKEY_ISSUER=http://localhost:PORT` ([`spawn_on_localhost`]) and the browser uses that name.
//! Screenshots: `target/screenshots/passkeys-<step>-<backend>.png`.

use std::collections::HashMap;

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

use crate::browser::{Browser, backend_name, browser, closed_port};
use crate::helpers::{Backend, TestApp};
use crate::rp::{PASSWORD, decode_jwt, pkce};
use crate::support::mail::wait_for_mail;

on_both_databases!(passkeys_register_second_factor_passwordless_and_removal);

/// A server whose issuer is `http://localhost:PORT` (a free port picked first), bound on
/// 127.0.0.1: a domain name, as WebAuthn needs for its RP ID.
pub async fn spawn_on_localhost(backend: Backend) -> TestApp {
    let port = closed_port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://localhost:{port}");
    TestApp::spawn_with(
        backend,
        &[
            ("LATCHKEY_BIND", bind.as_str()),
            ("LATCHKEY_ISSUER", issuer.as_str()),
        ],
    )
    .await
}

/// A WebDriver WebAuthn extension command (W3C WebAuthn L2 §11.3): `POST` or `DELETE` at
/// `session/{id}/webauthn/{path}`.
#[derive(Debug)]
struct WebAuthnCommand {
    method: Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/{}",
            session.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// Adds a virtual authenticator that holds discoverable credentials and verifies its user (as a
/// platform authenticator unlocked by a fingerprint would); returns its id.
pub async fn add_virtual_authenticator(b: &Browser) -> String {
    let answer = b
        .client
        .issue_cmd(WebAuthnCommand {
            method: Method::POST,
            path: "authenticator".into(),
            body: Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "automaticPresenceSimulation": true,
            })),
        })
        .await
        .expect("virtual authenticator added");
    answer
        .as_str()
        .map(str::to_owned)
        .or_else(|| answer["authenticatorId"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("authenticator id in {answer}"))
}

/// Removes the virtual authenticator `id` (its credentials go with it).
pub async fn remove_virtual_authenticator(b: &Browser, id: &str) {
    b.client
        .issue_cmd(WebAuthnCommand {
            method: Method::DELETE,
            path: format!("authenticator/{id}"),
            body: None,
        })
        .await
        .expect("virtual authenticator removed");
}

/// The credentials a virtual authenticator holds.
async fn credentials_of(b: &Browser, id: &str) -> Vec<Value> {
    let answer = b
        .client
        .issue_cmd(WebAuthnCommand {
            method: Method::GET,
            path: format!("authenticator/{id}/credentials"),
            body: None,
        })
        .await
        .expect("credentials listed");
    answer.as_array().cloned().unwrap_or_default()
}

/// Adds a passkey named `name` on the account page (signed in), through the ceremony page.
async fn add_passkey(b: &Browser, app: &TestApp, name: &str) {
    b.goto(&app_url(app, "/account/passkeys")).await;
    b.wait_for("#passkey-add").await;
    // The add form's input (each row's rename form has an input `name` too).
    let input = b.wait_for("#passkey-name").await;
    input.clear().await.expect("clear the name");
    input.send_keys(name).await.expect("type the name");
    b.click("#passkey-add button[type=submit]").await;
    b.wait_for_title("Add a passkey").await;
    b.click("#passkey-start").await;
    b.wait_for("p.notice-ok").await;
    let text = b.text().await;
    assert!(
        text.contains(&format!("The passkey \"{name}\" was added.")),
        "{text}"
    );
    // The account's first factor comes with its recovery codes, shown once.
    if b.title().await.contains("recovery codes") {
        b.wait_for("#recovery-codes").await;
        b.click_link("Continue").await;
    }
    b.wait_for_title("Passkeys").await;
}

/// Forgets the server's cookies (WebDriver deletes the cookies of the current page's site, so the
/// browser goes there first): the next visit is a new, signed-out browser session.
async fn forget_cookies(b: &Browser, app: &TestApp) {
    b.goto(&app_url(app, "/healthz")).await;
    b.client
        .delete_all_cookies()
        .await
        .expect("cookies cleared");
}

/// `path` on the server as the browser reaches it (the issuer's `localhost` name).
fn app_url(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.issuer())
}

/// The query of the URL the browser landed on at the client.
fn query_of(landed: &url::Url) -> HashMap<String, String> {
    landed.query_pairs().into_owned().collect()
}

/// Redeems `code` and returns the ID token's claims.
async fn id_token_claims(
    app: &TestApp,
    client: &Value,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> Value {
    let id = client["client_id"].as_str().expect("client_id");
    let secret = client["client_secret"].as_str().expect("client_secret");
    let response = app
        .post_token(
            Some((id, secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ],
        )
        .await;
    let tokens = crate::rp::json_with_status(response, 200).await;
    decode_jwt(tokens["id_token"].as_str().expect("id_token")).1
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

async fn passkeys_register_second_factor_passwordless_and_removal(backend: Backend) {
    let Some(b) = browser().await else {
        return;
    };
    let app = spawn_on_localhost(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    let redirect_uri = format!("http://127.0.0.1:{}/callback", closed_port());
    let client = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Passkey RP",
            "--redirect-uri",
            &redirect_uri,
            "--first-party",
        ])
        .await
        .json();
    let client_id = client["client_id"].as_str().expect("client_id").to_owned();
    let authorize = |challenge: &str| {
        let mut url = url::Url::parse(&app_url(&app, "/authorize")).expect("authorize URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", "openid email")
            .append_pair("state", "st-pk")
            .append_pair("nonce", "n-pk")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    };
    let shot = |step: &str| format!("passkeys-{step}-{}", backend_name(backend));

    // Signed in with the password (no factor yet), two passkeys on two authenticators.
    let first = add_virtual_authenticator(&b).await;
    b.goto(&app_url(&app, "/login?next=/account/passkeys"))
        .await;
    b.fill("email", "ada@example.com").await;
    b.fill("password", PASSWORD).await;
    b.submit().await;
    b.wait_for("#passkey-add").await;
    assert!(b.text().await.contains("You have no passkey yet"));
    add_passkey(&b, &app, "Laptop").await;
    let held = credentials_of(&b, &first).await;
    assert_eq!(held.len(), 1, "one credential: {held:?}");
    assert_eq!(
        held[0]["isResidentCredential"], true,
        "discoverable: {held:?}"
    );
    wait_for_mail(&app, "ada@example.com", "A passkey was added").await;
    // The first authenticator holds a passkey of this account already (excludeCredentials), so
    // the second passkey is made by another one.
    remove_virtual_authenticator(&b, &first).await;
    let second = add_virtual_authenticator(&b).await;
    add_passkey(&b, &app, "Phone").await;
    let text = b.text().await;
    assert!(text.contains("Laptop") && text.contains("Phone"), "{text}");
    assert!(text.contains("never"), "last use: never: {text}");
    assert_eq!(app.count("passkeys").await, 2);
    b.capture(&shot("account")).await;

    // Password, then the passkey as the second factor: amr pwd + hwk|swk + user + mfa, acr mfa.
    forget_cookies(&b, &app).await;
    let (verifier, challenge) = pkce();
    b.goto(&authorize(&challenge)).await;
    b.wait_for("#passkey-sign-in").await;
    b.capture(&shot("login")).await;
    b.fill("email", "ada@example.com").await;
    b.fill("password", PASSWORD).await;
    b.submit().await;
    b.wait_for_url(&app_url(&app, "/login/second-factor")).await;
    b.goto(&app_url(&app, "/login/second-factor/passkey")).await;
    b.wait_for_title("Use your passkey").await;
    b.screenshot(&shot("second-factor")).await;
    b.click("#passkey-start").await;
    let landed = b.wait_for_url(&redirect_uri).await;
    let query = query_of(&landed);
    let claims = id_token_claims(&app, &client, &redirect_uri, &query["code"], &verifier).await;
    let amr = strings(&claims["amr"]);
    assert!(amr.contains(&"pwd".to_owned()), "{claims}");
    assert!(
        amr.contains(&"hwk".to_owned()) || amr.contains(&"swk".to_owned()),
        "{claims}"
    );
    assert!(amr.contains(&"user".to_owned()), "{claims}");
    assert!(amr.contains(&"mfa".to_owned()), "{claims}");
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa", "{claims}");

    // A passkey alone, from the login page: amr hwk|swk + user + mfa (no pwd), acr mfa.
    forget_cookies(&b, &app).await;
    let (verifier, challenge) = pkce();
    b.goto(&authorize(&challenge)).await;
    b.click("#passkey-sign-in").await;
    b.wait_for_title("Sign in with a passkey").await;
    b.screenshot(&shot("passwordless")).await;
    b.click("#passkey-start").await;
    let landed = b.wait_for_url(&redirect_uri).await;
    let query = query_of(&landed);
    assert_eq!(query.get("state").map(String::as_str), Some("st-pk"));
    let claims = id_token_claims(&app, &client, &redirect_uri, &query["code"], &verifier).await;
    let amr = strings(&claims["amr"]);
    assert!(!amr.contains(&"pwd".to_owned()), "{claims}");
    assert!(
        amr.contains(&"hwk".to_owned()) || amr.contains(&"swk".to_owned()),
        "{claims}"
    );
    assert!(amr.contains(&"user".to_owned()) && amr.contains(&"mfa".to_owned()));
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa", "{claims}");

    // The account page shows the last use; removing "Phone" asks for the password.
    b.goto(&app_url(&app, "/account/passkeys")).await;
    b.wait_for("#passkeys").await;
    let phone = b
        .client
        .execute(
            "return [...document.querySelectorAll('#passkeys tr[data-passkey-id]')]\
             .find(r => r.querySelector('.passkey-name').textContent === 'Phone')\
             .getAttribute('data-passkey-id');",
            vec![],
        )
        .await
        .expect("Phone's row");
    let phone = phone.as_str().expect("an id").to_owned();
    let row = format!("tr[data-passkey-id='{phone}']");
    let remove = format!("{row} details.passkey-remove");
    let last_used = b
        .wait_for(&format!("{row} .passkey-last-used"))
        .await
        .text()
        .await
        .expect("last use");
    assert_ne!(last_used, "never", "used twice");
    b.click(&format!("{remove} summary")).await;
    let password = b.wait_for(&format!("{remove} input[name=password]")).await;
    password
        .send_keys("wrong horse battery")
        .await
        .expect("type");
    b.click(&format!("{remove} button[type=submit]")).await;
    b.wait_for("p.alert").await;
    assert!(b.text().await.contains("The password is not correct."));
    assert_eq!(app.count("passkeys").await, 2, "nothing removed");
    b.click(&format!("{remove} summary")).await;
    let password = b.wait_for(&format!("{remove} input[name=password]")).await;
    password.send_keys(PASSWORD).await.expect("type");
    b.click(&format!("{remove} button[type=submit]")).await;
    b.wait_for("p.notice-ok").await;
    let text = b.text().await;
    assert!(
        text.contains("The passkey \"Phone\" was removed."),
        "{text}"
    );
    assert!(
        !text.contains("Phone\n") && text.contains("Laptop"),
        "{text}"
    );
    wait_for_mail(&app, "ada@example.com", "A passkey was removed").await;

    // The authenticator still holds the removed passkey: it no longer signs in.
    forget_cookies(&b, &app).await;
    let (_verifier, challenge) = pkce();
    b.goto(&authorize(&challenge)).await;
    b.click("#passkey-sign-in").await;
    b.wait_for_title("Sign in with a passkey").await;
    b.click("#passkey-start").await;
    b.wait_for_title("Sign in").await;
    b.wait_for("p.alert").await;
    let text = b.text().await;
    assert!(
        text.contains("That passkey could not sign you in."),
        "{text}"
    );
    b.screenshot(&shot("removed")).await;
    let _ = second;

    b.close().await;
}
