//! The pages off the happy paths, in a real browser (see [`crate::browser`]): error and notice pages,
//! an address already taken, an invitation for an existing account and for another account, the
//! start page, the logout confirmation, and the page for a user without an organization. Each is
//! reached by clicking where a person would, checked by its title, and captured desktop- and
//! phone-wide as `target/screenshots/pages-<step>-<backend>[-narrow].png`.

use crate::browser::{Browser, backend_name, browser, closed_port};
use crate::helpers::Backend;
use crate::invitations::{Org, invitation_link};
use crate::rp::PASSWORD;

on_both_databases!(pages_off_the_happy_paths);

/// Captures the current page as `pages-<step>-<backend>` after checking its title.
async fn shot(browser: &Browser, backend: Backend, step: &str, title: &str) {
    let actual = browser.title().await;
    assert!(
        actual.contains(title),
        "{step}: title {actual:?} should contain {title:?}\n{}",
        browser.text().await
    );
    browser
        .capture(&format!("pages-{step}-{}", backend_name(backend)))
        .await;
}

/// Fills in and submits the login form on the current page.
async fn log_in(browser: &Browser, email: &str) {
    browser.wait_for("input[name=password]").await;
    browser.fill("email", email).await;
    browser.fill("password", PASSWORD).await;
    browser.submit().await;
}

async fn pages_off_the_happy_paths(backend: Backend) {
    let Some(b) = browser().await else {
        return;
    };
    let org = Org::spawn(backend).await;
    let app = &org.app;
    app.create_person("grace@example.com", "Grace").await;
    app.create_person("lone@example.com", "Lone").await;
    let owner = org.token("owner@example.com").await;
    org.invite_ok(&owner, "grace@example.com", "member").await;
    let invitation = app.url(&invitation_link(app, "grace@example.com").await);

    // A malformed authorization request: the error page.
    b.goto(&app.url("/authorize")).await;
    shot(&b, backend, "error", "Latchkey").await;
    // Links that lead nowhere.
    b.goto(&app.url("/invitation?token=not-a-real-token")).await;
    shot(&b, backend, "invitation-unknown", "Latchkey").await;
    b.goto(&app.url("/password/reset?token=not-a-real-token"))
        .await;
    shot(&b, backend, "reset-invalid", "Link expired").await;

    // Signing up with an address that has an account.
    b.goto(&app.url("/signup")).await;
    b.fill("email", "owner@example.com").await;
    b.fill("password", PASSWORD).await;
    b.fill("password_confirm", PASSWORD).await;
    b.submit().await;
    b.wait_for("[role=alert]").await;
    shot(&b, backend, "signup-taken", "Create an account").await;

    // The invitation of an existing account asks to sign in; the wrong account is told so.
    b.goto(&invitation).await;
    shot(&b, backend, "invitation-login", "Join Acme Corp").await;
    b.click_link("Sign in to accept").await;
    log_in(&b, "lone@example.com").await;
    b.wait_for("[role=alert]").await;
    shot(
        &b,
        backend,
        "invitation-mismatch",
        "Invitation for another account",
    )
    .await;
    b.click("button[value=yes]").await;
    b.wait_for_title("Signed out").await;
    shot(&b, backend, "signed-out", "Signed out").await;
    // The start page, signed out: what the service is.
    b.goto(&app.url("/")).await;
    shot(&b, backend, "home", "Latchkey").await;

    // The right account accepts with one click.
    b.goto(&invitation).await;
    b.click_link("Sign in to accept").await;
    log_in(&b, "grace@example.com").await;
    b.wait_for("form[action='/invitation']").await;
    shot(&b, backend, "invitation-accept", "Join Acme Corp").await;
    b.submit().await;
    b.wait_for_url(&app.url("/invitation/accepted")).await;
    shot(&b, backend, "invitation-accepted", "Welcome to Acme Corp").await;

    // The logout confirmation.
    b.goto(&app.url("/logout")).await;
    shot(&b, backend, "logout", "Sign out").await;
    b.submit().await;
    b.wait_for_title("Signed out").await;

    // A client that needs an organization, and a user in none.
    let redirect_uri = format!("http://127.0.0.1:{}/callback", closed_port());
    let client = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Team Board",
            "--redirect-uri",
            &redirect_uri,
            "--first-party",
            "--require-org",
        ])
        .await
        .json();
    let authorize = app.authorize_url(&[
        ("response_type", "code"),
        (
            "client_id",
            client["client_id"].as_str().expect("client_id"),
        ),
        ("redirect_uri", &redirect_uri),
        ("scope", "openid"),
        ("state", "st"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ]);
    b.goto(&authorize).await;
    log_in(&b, "lone@example.com").await;
    b.wait_for_title("Organization required").await;
    shot(&b, backend, "org-required", "Organization required").await;

    b.close().await;
}
