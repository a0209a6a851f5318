//! The account pages driven by a real browser (headless Chromium, see [`crate::browser`]): sign-up
//! and the emailed confirmation, the organization picker and consent, password reset by mail, and
//! joining by invitation. Every step is a click or typing, as a person would; no page needs
//! JavaScript. Each page is captured, desktop-wide and phone-wide, as
//! `target/screenshots/<test>-<step>-<backend>[-narrow].png`.

use std::collections::HashMap;

use crate::browser::{Browser, backend_name, browser, closed_port, issuer};
use crate::helpers::{Backend, TestApp};
use crate::invitations::{Org, invitation_link};
use crate::org_login::{add_member, create_org};
use crate::rp::{self, PASSWORD};
use crate::signup::VERIFY_SUBJECT;
use crate::support::mail::wait_for_mail;

on_both_databases!(
    sign_up_and_confirm_the_mailed_link,
    second_organization_chosen_then_consent_returns_a_code,
    forgotten_password_reset_by_mail_then_sign_in,
    invitation_link_creates_the_account_and_joins,
);

/// The password chosen on the sign-up, reset and invitation forms.
const NEW_PASSWORD: &str = "tangerine lighthouse sofa";
/// The notice the start page shows while the address is not confirmed.
const UNVERIFIED_NOTICE: &str = "Confirm your email address.";

/// One test's walk through the pages: names its screenshots `<test>-<step>-<backend>`.
struct Walk {
    browser: Browser,
    test: &'static str,
    backend: &'static str,
}

impl Walk {
    /// A browser for `test`, or `None` when Chromium is not installed (the test is then skipped).
    async fn start(test: &'static str, backend: Backend) -> Option<Walk> {
        Some(Walk {
            browser: browser().await?,
            test,
            backend: backend_name(backend),
        })
    }

    /// Captures the current page as step `step`, after checking that its title contains `title`.
    async fn page(&self, step: &str, title: &str) {
        let actual = self.browser.title().await;
        assert!(
            actual.contains(title),
            "{step}: title {actual:?} should contain {title:?}\n{}",
            self.browser.text().await
        );
        let name = format!("{}-{step}-{}", self.test, self.backend);
        self.browser.capture(&name).await;
    }

    /// The visible text of the page.
    async fn text(&self) -> String {
        self.browser.text().await
    }
}

/// The query of `url` as a map.
fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

async fn sign_up_and_confirm_the_mailed_link(backend: Backend) {
    let Some(walk) = Walk::start("signup", backend).await else {
        return;
    };
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let b = &walk.browser;

    // From the login page, the "Create an account" link.
    b.goto(&app.url("/login")).await;
    walk.page("login", "Sign in").await;
    b.click_link("Create an account").await;
    b.wait_for("input[name=password_confirm]").await;
    walk.page("form", "Create an account").await;

    // Mismatched passwords: the form comes back with one message and the typed address.
    b.fill("email", "ada@example.com").await;
    b.fill("name", "Ada Lovelace").await;
    b.fill("password", NEW_PASSWORD).await;
    b.fill("password_confirm", "something else entirely").await;
    b.submit().await;
    b.wait_for("[role=alert]").await;
    walk.page("error", "Create an account").await;

    // Corrected: the welcome page asks to check the inbox.
    b.fill("password", NEW_PASSWORD).await;
    b.fill("password_confirm", NEW_PASSWORD).await;
    b.fill("organization", "Analytical Engines").await;
    b.submit().await;
    b.wait_for_url(&app.url("/signup/welcome")).await;
    walk.page("welcome", "Check your inbox").await;
    assert!(walk.text().await.contains("ada@example.com"));

    // Signed in, the start page shows the unverified-address notice.
    b.goto(&app.url("/")).await;
    walk.page("home-unverified", "Latchkey").await;
    assert!(walk.text().await.contains(UNVERIFIED_NOTICE));

    // The mailed link, opened in the browser, asks for the confirm button.
    let link = wait_for_mail(&app, "ada@example.com", VERIFY_SUBJECT)
        .await
        .link("/verify-email");
    b.goto(&link).await;
    walk.page("confirm", "Confirm your email address").await;
    b.submit().await;
    b.wait_for_url(&app.url("/verify-email/verified")).await;
    walk.page("verified", "Email address verified").await;

    // The start page no longer asks to confirm.
    b.goto(&app.url("/")).await;
    walk.page("home-verified", "Latchkey").await;
    let home = walk.text().await;
    assert!(home.contains("You are signed in"), "{home}");
    assert!(!home.contains(UNVERIFIED_NOTICE), "{home}");

    walk.browser.close().await;
}

async fn second_organization_chosen_then_consent_returns_a_code(backend: Backend) {
    let Some(walk) = Walk::start("picker", backend).await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    app.create_person("owner@example.com", "Olive").await;
    create_org(&app, "Acme Corp", "acme", "ada@example.com").await;
    let globex = create_org(&app, "Globex", "globex", "owner@example.com").await;
    add_member(&app, &globex, "ada@example.com", "member").await;
    // A third-party client (so consent is asked) whose redirect URI refuses connections.
    let redirect_uri = format!("http://127.0.0.1:{}/callback", closed_port());
    let client = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Expense Reports",
            "--redirect-uri",
            &redirect_uri,
        ])
        .await
        .json();
    let client_id = client["client_id"].as_str().expect("client_id");
    let (_verifier, challenge) = rp::pkce();
    let authorize = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", &redirect_uri),
        ("scope", "openid email profile"),
        ("state", "st-42"),
        ("nonce", "n-42"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let b = &walk.browser;

    b.goto(&authorize).await;
    walk.page("login", "Sign in").await;
    b.fill("email", "ada@example.com").await;
    b.fill("password", PASSWORD).await;
    b.submit().await;

    // The picker lists both organizations; the second is chosen by its row.
    b.wait_for("input[name=org]").await;
    walk.page("choose", "Choose an organization").await;
    let text = walk.text().await;
    assert!(
        text.contains("Acme Corp") && text.contains("Globex"),
        "{text}"
    );
    b.click_label("Globex").await;
    let chosen = b
        .client
        .find(fantoccini::Locator::Css("input[name=org]:checked"))
        .await
        .expect("a checked organization");
    assert_eq!(
        chosen.attr("value").await.expect("value").as_deref(),
        Some(globex.as_str())
    );
    walk.page("chosen", "Choose an organization").await;
    b.submit().await;

    // Consent names the client and the chosen organization.
    b.wait_for("button[value=allow]").await;
    walk.page("consent", "Allow access").await;
    let text = walk.text().await;
    assert!(
        text.contains("Expense Reports") && text.contains("Globex"),
        "{text}"
    );
    assert!(!text.contains("Acme Corp"), "{text}");
    b.click("button[value=allow]").await;

    // Back at the client with a code, its state and our issuer (RFC 9207).
    let landed = b.wait_for_url(&redirect_uri).await;
    let params = query(&landed);
    assert!(
        params.get("code").is_some_and(|c| !c.is_empty()),
        "{landed}"
    );
    assert_eq!(params.get("iss"), Some(&issuer(&app)), "{landed}");
    assert_eq!(params.get("state").map(String::as_str), Some("st-42"));

    walk.browser.close().await;
}

async fn forgotten_password_reset_by_mail_then_sign_in(backend: Backend) {
    let Some(walk) = Walk::start("reset", backend).await else {
        return;
    };
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.create_person("ada@example.com", "Ada").await;
    let b = &walk.browser;

    // "Forgot password?" on the login page.
    b.goto(&app.url("/login")).await;
    b.click_link("Forgot password?").await;
    b.wait_for_url(&app.url("/password/forgot")).await;
    walk.page("forgot", "Reset your password").await;
    b.fill("email", "ada@example.com").await;
    b.submit().await;
    b.wait_for_url(&app.url("/password/forgot/sent")).await;
    walk.page("sent", "Check your inbox").await;

    // The mailed link; first two different passwords, then the same one twice.
    let link = wait_for_mail(&app, "ada@example.com", "Reset your password")
        .await
        .link("/password/reset");
    b.goto(&link).await;
    walk.page("choose", "Choose a new password").await;
    b.fill("password", NEW_PASSWORD).await;
    b.fill("password_confirm", "not the same at all").await;
    b.submit().await;
    b.wait_for("[role=alert]").await;
    walk.page("mismatch", "Choose a new password").await;
    b.fill("password", NEW_PASSWORD).await;
    b.fill("password_confirm", NEW_PASSWORD).await;
    b.submit().await;
    b.wait_for_url(&app.url("/password/reset/done")).await;
    walk.page("done", "Password changed").await;

    // "Sign in" with the new password reaches the signed-in start page.
    b.click_link("Sign in").await;
    b.wait_for("input[name=password]").await;
    b.fill("email", "ada@example.com").await;
    b.fill("password", NEW_PASSWORD).await;
    b.submit().await;
    b.wait_for("h1").await;
    let home = walk.text().await;
    assert!(home.contains("You are signed in"), "{home}");
    walk.page("signed-in", "Latchkey").await;

    walk.browser.close().await;
}

async fn invitation_link_creates_the_account_and_joins(backend: Backend) {
    let Some(walk) = Walk::start("invitation", backend).await else {
        return;
    };
    let org = Org::spawn(backend).await;
    let owner = org.token("owner@example.com").await;
    org.invite_ok(&owner, "grace@example.com", "admin").await;
    let path = invitation_link(&org.app, "grace@example.com").await;
    let b = &walk.browser;

    // The mailed link shows the sign-up form for the invited address.
    b.goto(&org.app.url(&path)).await;
    b.wait_for("input[name=password_confirm]").await;
    walk.page("register", "Join Acme Corp").await;
    let text = walk.text().await;
    assert!(
        text.contains("Olive Owner") && text.contains("admin"),
        "{text}"
    );

    // Too short a password first: the form says so.
    b.fill("name", "Grace Hopper").await;
    b.fill("password", "short").await;
    b.fill("password_confirm", "short").await;
    b.submit().await;
    b.wait_for("[role=alert]").await;
    walk.page("error", "Join Acme Corp").await;

    b.fill("password", NEW_PASSWORD).await;
    b.fill("password_confirm", NEW_PASSWORD).await;
    b.submit().await;
    b.wait_for_url(&org.app.url("/invitation/accepted")).await;
    walk.page("accepted", "Welcome to Acme Corp").await;
    let text = walk.text().await;
    assert!(text.contains("You joined Acme Corp as admin"), "{text}");

    // The new account signs in with the chosen password.
    b.click_link("Continue").await;
    b.wait_for("h1").await;
    assert!(walk.text().await.contains("You are signed in"));

    walk.browser.close().await;
}
