//! Email sign-in in a real browser (headless Chromium, see [`crate::browser`]): from an
//! authorization request's login page, "Email me a sign-in link", the address, then the code from
//! the mail typed on the "check your inbox" page, back at the client with a code. Screenshots:
//! `target/screenshots/email-signin-<step>-<backend>.png`.

use crate::browser::{backend_name, browser, closed_port};
use crate::helpers::{Backend, TestApp};
use crate::support::mail::wait_for_mail;

on_both_databases!(sign_in_by_code_through_the_pages);

async fn sign_in_by_code_through_the_pages(backend: Backend) {
    let Some(b) = browser().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    let redirect_uri = format!("http://127.0.0.1:{}/callback", closed_port());
    let client = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Browser RP",
            "--redirect-uri",
            &redirect_uri,
            "--first-party",
        ])
        .await
        .json();
    let client_id = client["client_id"].as_str().expect("client_id");
    let (_verifier, challenge) = crate::rp::pkce();
    let authorize = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", &redirect_uri),
        ("scope", "openid email"),
        ("state", "st-7"),
        ("nonce", "n-7"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let shot = |step: &str| format!("email-signin-{step}-{}", backend_name(backend));

    // The login page offers the mail instead of the password.
    b.goto(&authorize).await;
    b.wait_for("input[name=password]").await;
    b.click_link("Email me a sign-in link").await;
    b.wait_for_url(&app.url("/login/email")).await;
    b.wait_for("input[name=email]").await;
    assert!(b.title().await.contains("Sign in by email"));
    b.screenshot(&shot("ask")).await;
    b.fill("email", "ada@example.com").await;
    b.submit().await;

    // "Check your inbox", with the code form.
    b.wait_for_title("Check your inbox").await;
    b.wait_for("input[name=code]").await;
    let text = b.text().await;
    assert!(text.contains("ada@example.com"), "{text}");
    b.screenshot(&shot("sent")).await;
    let mail = wait_for_mail(&app, "ada@example.com", "Your sign-in link").await;
    let code = mail
        .text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|c| c.is_ascii_digit()))
        .expect("a code in the mail")
        .to_owned();

    // A wrong code first: the page says so and keeps the form.
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    b.fill("code", &wrong).await;
    b.submit().await;
    b.wait_for("p.alert").await;
    let text = b.text().await;
    assert!(text.contains("That code is not correct."), "{text}");
    b.screenshot(&shot("wrong")).await;

    // The right code: signed in, and back at the client with a code.
    b.fill("code", &code).await;
    b.submit().await;
    let landed = b.wait_for_url(&redirect_uri).await;
    let params: std::collections::HashMap<String, String> =
        landed.query_pairs().into_owned().collect();
    assert!(
        params.get("code").is_some_and(|c| !c.is_empty()),
        "{landed}"
    );
    assert_eq!(params.get("state").map(String::as_str), Some("st-7"));
    b.close().await;
}
