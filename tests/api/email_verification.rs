//! Email verification links: single use, 24 hours, bound to the account they were mailed to, CSRF on
//! the confirm button, and a rate-limited "send a new link" for signed-in unverified users.

use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD, hidden_input, location};
use crate::signup::{VERIFY_SUBJECT, account, confirm, sign_up};
use crate::support::mail::{mails_to, wait_for_mail};

on_both_databases!(
    a_replayed_link_shows_the_used_page,
    an_expired_link_shows_the_expired_page,
    the_link_of_one_user_does_not_verify_another,
    unknown_links_and_missing_csrf_verify_nothing,
    new_links_are_limited_to_one_a_minute,
);

/// Signs up `email` through the API (no browser session).
async fn api_sign_up(app: &TestApp, email: &str) {
    let response = rp::rp_http()
        .post(app.url("/api/v1/signup"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// The body of a page, after asserting its status.
async fn page(response: reqwest::Response, status: u16) -> String {
    let actual = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body
}

async fn a_replayed_link_shows_the_used_page(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    api_sign_up(&app, "ada@example.com").await;
    let link = wait_for_mail(&app, "ada@example.com", VERIFY_SUBJECT)
        .await
        .link("/verify-email");
    let browser = rp::browser();
    // Two tabs opened the link; the first confirms.
    let second_tab = page(browser.get(&link).send().await.unwrap(), 200).await;
    assert_eq!(confirm(&app, &browser, &link).await.status(), 303);
    assert!(account(&app, "ada@example.com").await.unwrap().0);

    // Opening the link again, or pressing the button of the older tab, finds it used.
    let again = page(browser.get(&link).send().await.unwrap(), 410).await;
    assert!(again.contains("already used"), "{again}");
    let replay = browser
        .post(app.url("/verify-email"))
        .form(&[
            ("csrf", hidden_input(&second_tab, "csrf")),
            ("token", hidden_input(&second_tab, "token")),
        ])
        .send()
        .await
        .unwrap();
    assert!(page(replay, 410).await.contains("already used"));
}

async fn an_expired_link_shows_the_expired_page(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    api_sign_up(&app, "grace@example.com").await;
    let link = wait_for_mail(&app, "grace@example.com", VERIFY_SUBJECT)
        .await
        .link("/verify-email");
    let browser = rp::browser();
    page(browser.get(&link).send().await.unwrap(), 200).await;

    // 24 h 30 min later: past the lifetime, still inside the purge job's grace hour. (Browser
    // sessions cannot be used once the test clock is 8 h ahead: the session store compares their
    // wall-clock expiry with the test clock; so only the link page is checked here, and the
    // "send a new link" path is tested without moving the clock.)
    app.clock.advance(24 * 3600 + 30 * 60);

    let expired = page(browser.get(&link).send().await.unwrap(), 410).await;
    assert!(expired.contains("This link has expired"), "{expired}");
    assert!(
        expired.contains("log in</a>"),
        "tells how to get a new link"
    );
    assert!(!account(&app, "grace@example.com").await.unwrap().0);
}

async fn the_link_of_one_user_does_not_verify_another(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    api_sign_up(&app, "alice@example.com").await;
    let alice_link = wait_for_mail(&app, "alice@example.com", VERIFY_SUBJECT)
        .await
        .link("/verify-email");
    let bob = rp::browser();
    sign_up(&app, &bob, "bob@example.com", "").await;

    // Bob, signed in, opens Alice's link: it names Alice's address and verifies only hers.
    let html = page(bob.get(&alice_link).send().await.unwrap(), 200).await;
    assert!(html.contains("alice@example.com") && !html.contains("bob@example.com"));
    assert_eq!(confirm(&app, &bob, &alice_link).await.status(), 303);

    assert!(account(&app, "alice@example.com").await.unwrap().0);
    assert!(!account(&app, "bob@example.com").await.unwrap().0);
    let home = page(bob.get(app.url("/")).send().await.unwrap(), 200).await;
    assert!(
        home.contains("/verify-email/resend"),
        "Bob is still asked to verify"
    );
}

async fn unknown_links_and_missing_csrf_verify_nothing(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    api_sign_up(&app, "ada@example.com").await;
    let link = wait_for_mail(&app, "ada@example.com", VERIFY_SUBJECT)
        .await
        .link("/verify-email");
    let browser = rp::browser();

    for path in [
        "/verify-email",
        "/verify-email?token=",
        "/verify-email?token=nope",
    ] {
        let html = page(browser.get(app.url(path)).send().await.unwrap(), 404).await;
        assert!(html.contains("not valid"), "{path}: {html}");
        assert!(
            !html.contains("/verify-email/resend"),
            "not signed in: no resend button"
        );
    }
    let html = page(browser.get(&link).send().await.unwrap(), 200).await;
    let token = hidden_input(&html, "token");
    let no_csrf = browser
        .post(app.url("/verify-email"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 400);
    let wrong_csrf = browser
        .post(app.url("/verify-email"))
        .form(&[("token", token.as_str()), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_csrf.status(), 400);
    let unknown = browser
        .post(app.url("/verify-email"))
        .form(&[
            ("token", "x".repeat(43)),
            ("csrf", hidden_input(&html, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(!account(&app, "ada@example.com").await.unwrap().0);
    // The real link still works.
    assert_eq!(confirm(&app, &browser, &link).await.status(), 303);
}

async fn new_links_are_limited_to_one_a_minute(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let browser = rp::browser();
    sign_up(&app, &browser, "grace@example.com", "").await;
    let first = wait_for_mail(&app, "grace@example.com", VERIFY_SUBJECT)
        .await
        .link("/verify-email");
    let home = page(browser.get(app.url("/")).send().await.unwrap(), 200).await;
    let csrf = hidden_input(&home, "csrf");
    let resend = || {
        browser
            .post(app.url("/verify-email/resend"))
            .form(&[("csrf", csrf.as_str())])
            .send()
    };

    let too_soon = page(resend().await.unwrap(), 429).await;
    assert!(too_soon.contains("less than a minute ago"));
    app.clock.advance(61);
    let later = resend().await.unwrap();
    assert_eq!(later.status(), 303);
    let again = resend().await.unwrap();
    assert_eq!(again.status(), 429);

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while mails_to(&app, "grace@example.com").await.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second mail arrives"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.count("email_verification_tokens").await, 2);
    let newest = mails_to(&app, "grace@example.com")
        .await
        .iter()
        .map(|m| m.link("/verify-email"))
        .find(|link| *link != first)
        .expect("a second, different link");
    assert_eq!(confirm(&app, &browser, &newest).await.status(), 303);
    assert!(account(&app, "grace@example.com").await.unwrap().0);
    // Verified: the button does nothing more.
    let done = resend().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(location(&app, &done).path(), "/");
    // Not signed in: no new link, just the login page.
    let stranger = rp::browser();
    let html = page(stranger.get(app.url("/login")).send().await.unwrap(), 200).await;
    let anonymous = stranger
        .post(app.url("/verify-email/resend"))
        .form(&[("csrf", hidden_input(&html, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(location(&app, &anonymous).path(), "/login");
    assert_eq!(app.count("email_verification_tokens").await, 2);
}
