//! Password reset through the pages: request → mail → link → new password, with everything a reset
//! must revoke; expired and replayed links; no account enumeration; the limits; CSRF.

use reqwest::StatusCode;
use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD, REDIRECT_URI, hidden_input, location, submit_login};
use crate::support::mail::{mails_to, wait_for_mail};

on_both_databases!(
    reset_end_to_end_revokes_sessions_and_refresh_tokens,
    expired_and_replayed_links_are_refused,
    known_and_unknown_addresses_get_the_same_answer,
    requests_are_limited_per_account_and_per_address,
    forms_without_csrf_are_refused,
    weak_or_mismatched_passwords_are_refused,
);

const EMAIL: &str = "alice@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// Asks for a reset link for `email` from a fresh browser; returns the answer to the POST.
pub(crate) async fn request_reset(app: &TestApp, email: &str) -> reqwest::Response {
    let browser = rp::browser();
    let page = browser
        .get(app.url("/password/forgot"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"email\""), "{html}");
    browser
        .post(app.url("/password/forgot"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("email", email.into()),
        ])
        .send()
        .await
        .unwrap()
}

/// Opens `link` in `browser` and submits the new-password form; returns the answer to the POST.
pub(crate) async fn choose_password(
    app: &TestApp,
    browser: &reqwest::Client,
    link: &str,
    password: &str,
    confirm: &str,
) -> reqwest::Response {
    let page = browser.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200, "reset form at {link}");
    let html = page.text().await.unwrap();
    browser
        .post(app.url("/password/reset"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("token", hidden_input(&html, "token")),
            ("password", password.into()),
            ("password_confirm", confirm.into()),
        ])
        .send()
        .await
        .unwrap()
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> StatusCode {
    let page = Url::parse(&app.url("/login")).unwrap();
    submit_login(app, &rp::browser(), &page, email, password)
        .await
        .status()
}

async fn reset_end_to_end_revokes_sessions_and_refresh_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Alice").await;
    let client = app.register_client(&[]).await;
    // A signed-in browser and a refresh token from before the reset.
    let old_browser = rp::browser();
    rp::sign_in(&app, &old_browser, EMAIL).await;
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid offline_access"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let code = rp::authorize(&app, &old_browser, &url, EMAIL, rp::Consent::Allow)
        .await
        .callback
        .code();
    let tokens = rp::json_with_status(
        app.post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await,
        200,
    )
    .await;
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");

    // Request → neutral page → mail with a single-use link.
    let answer = request_reset(&app, "ALICE@example.com").await;
    assert_eq!(answer.status(), 303);
    assert_eq!(location(&app, &answer).path(), "/password/forgot/sent");
    let mail = wait_for_mail(&app, EMAIL, "Reset your password").await;
    assert!(
        mail.text.contains("You receive this because"),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("Choose a new password"), "{}", mail.html);
    let link = mail.link("/password/reset");
    assert!(link.starts_with(&app.issuer()), "{link}");
    let link = link.replacen(&app.issuer(), &app.address, 1);

    // New password, in another browser.
    let resetter = rp::browser();
    let done = choose_password(&app, &resetter, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&app, &done).path(), "/password/reset/done");
    let page = resetter
        .get(app.url("/password/reset/done"))
        .send()
        .await
        .unwrap();
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Your password was changed")
    );

    // The new password works, the old one does not.
    assert_eq!(login_status(&app, EMAIL, NEW_PASSWORD).await, 303);
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 401);
    // The browser signed in before is signed out.
    let home = old_browser.get(app.url("/")).send().await.unwrap();
    let home = home.text().await.unwrap();
    assert!(!home.contains(EMAIL), "still signed in:\n{home}");
    // The refresh token issued before is dead.
    let refused = rp::json_with_status(
        app.post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await,
        400,
    )
    .await;
    assert_eq!(refused["error"], "invalid_grant");
    // The owner is told, and the change is audited.
    let notice = wait_for_mail(&app, EMAIL, "Your password was changed").await;
    assert!(
        notice.text.contains("signed out everywhere"),
        "{}",
        notice.text
    );
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where action = 'password.reset' and target_id = $1",
    )
    .bind(&user_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

async fn expired_and_replayed_links_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Alice").await;

    // Expired: 16 minutes later the link shows a clear page with a way to ask again.
    request_reset(&app, EMAIL).await;
    let old = wait_for_mail(&app, EMAIL, "Reset your password").await;
    let old = old
        .link("/password/reset")
        .replacen(&app.issuer(), &app.address, 1);
    app.clock.advance(16 * 60);
    let page = rp::browser().get(&old).send().await.unwrap();
    assert_eq!(page.status(), 400);
    let html = page.text().await.unwrap();
    assert!(html.contains("This link no longer works"), "{html}");
    assert!(html.contains("href=\"/password/forgot\""), "{html}");

    // Replayed: a fresh link works once; the second use is refused and the password stays.
    request_reset(&app, EMAIL).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let fresh = loop {
        let mails = mails_to(&app, EMAIL).await;
        if mails.len() == 2 {
            break mails[1].link("/password/reset");
        }
        assert!(tokio::time::Instant::now() < deadline, "second mail");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let fresh = fresh.replacen(&app.issuer(), &app.address, 1);
    assert_ne!(fresh, old);
    let browser = rp::browser();
    let page = browser.get(&fresh).send().await.unwrap();
    let html = page.text().await.unwrap();
    let form = [
        ("csrf", hidden_input(&html, "csrf")),
        ("token", hidden_input(&html, "token")),
        ("password", NEW_PASSWORD.to_owned()),
        ("password_confirm", NEW_PASSWORD.to_owned()),
    ];
    let first = browser
        .post(app.url("/password/reset"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 303);
    let again = rp::browser().get(&fresh).send().await.unwrap();
    assert_eq!(again.status(), 400);
    // Posting the same form again (a new session, so a new CSRF token) is refused too.
    let other = rp::browser();
    let html = other
        .get(app.url("/password/forgot"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let replay = other
        .post(app.url("/password/reset"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("token", form[1].1.clone()),
            ("password", "yet another passphrase".to_owned()),
            ("password_confirm", "yet another passphrase".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(login_status(&app, EMAIL, NEW_PASSWORD).await, 303);
    // Unknown and malformed tokens get the same page.
    for token in ["", "nope", &"x".repeat(500)] {
        let page = rp::browser()
            .get(app.url(&format!("/password/reset?token={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 400, "{token}");
    }
}

async fn known_and_unknown_addresses_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Alice").await;
    let known = request_reset(&app, EMAIL).await;
    let unknown = request_reset(&app, "nobody@example.com").await;
    assert_eq!(known.status(), unknown.status());
    assert_eq!(location(&app, &known), location(&app, &unknown));
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    let sent = rp::browser()
        .get(app.url("/password/forgot/sent"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert!(
        sent.text()
            .await
            .unwrap()
            .contains("If an account uses that address")
    );
    // Once the real account's mail is out, nothing went to the unknown address.
    wait_for_mail(&app, EMAIL, "Reset your password").await;
    assert!(mails_to(&app, "nobody@example.com").await.is_empty());
    assert_eq!(app.count("password_reset_tokens").await, 1);
    // Both requests did the same work before the answer: one audit event each (the row the
    // per-address limit counts), naming the account only when there is one.
    let audited: Vec<(Option<String>, Option<String>, String)> = sqlx::query_as(
        "select target_type, target_id, ip from audit_events \
         where action = 'password.reset_requested' order by id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert_eq!(audited[0].0.as_deref(), Some("user"));
    assert!(audited[0].1.is_some());
    assert_eq!((&audited[1].0, &audited[1].1), (&None, &None));
    assert_eq!(audited[0].2, "127.0.0.1");
}

/// Reset links issued for `email` so far.
async fn links_for(app: &TestApp, email: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from password_reset_tokens t join users u on u.id = t.user_id \
         where u.email = $1",
    )
    .bind(email)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// Waits (links are issued after the answer) until `app` has issued `expected` reset links.
async fn wait_for_links(app: &TestApp, expected: i64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.count("password_reset_tokens").await < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{expected} reset links"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn requests_are_limited_per_account_and_per_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let others = ["b@example.com", "c@example.com"];
    app.create_person(EMAIL, "Alice").await;
    for email in others {
        app.create_person(email, "Other").await;
    }
    // Per account: the fourth request within 15 minutes looks the same but mails nothing.
    for issued in [1, 2, 3, 3] {
        let answer = request_reset(&app, EMAIL).await;
        assert_eq!(answer.status(), 303);
        wait_for_links(&app, issued).await;
    }
    // Per address: ten requests from one address, then 429. Every request counts, for an unknown
    // address too (else the refusal would reveal how many real accounts were asked for).
    for _ in 0..3 {
        assert_eq!(request_reset(&app, others[0]).await.status(), 303);
    }
    assert_eq!(
        request_reset(&app, "nobody@example.com").await.status(),
        303
    );
    for _ in 0..2 {
        assert_eq!(request_reset(&app, others[1]).await.status(), 303);
    }
    let refused = request_reset(&app, others[1]).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.text().await.unwrap().contains("Too many"));
    let refused = request_reset(&app, "nobody@example.com").await;
    assert_eq!(refused.status(), 429, "unknown addresses alike");
    wait_for_links(&app, 8).await;
    assert_eq!(links_for(&app, EMAIL).await, 3);
    // The window moves on.
    app.clock.advance(16 * 60);
    assert_eq!(request_reset(&app, others[1]).await.status(), 303);
    wait_for_links(&app, 9).await;
    assert_eq!(links_for(&app, others[1]).await, 3);
    assert_eq!(app.count("password_reset_tokens").await, 9);
}

async fn forms_without_csrf_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Alice").await;
    let browser = rp::browser();
    let forgot = browser
        .post(app.url("/password/forgot"))
        .form(&[("email", EMAIL)])
        .send()
        .await
        .unwrap();
    assert_eq!(forgot.status(), 400);
    let wrong = browser
        .post(app.url("/password/forgot"))
        .form(&[("email", EMAIL), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    assert_eq!(app.count("password_reset_tokens").await, 0);

    request_reset(&app, EMAIL).await;
    let link = wait_for_mail(&app, EMAIL, "Reset your password")
        .await
        .link("/password/reset")
        .replacen(&app.issuer(), &app.address, 1);
    let html = browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reset = browser
        .post(app.url("/password/reset"))
        .form(&[
            ("token", hidden_input(&html, "token")),
            ("password", NEW_PASSWORD.to_owned()),
            ("password_confirm", NEW_PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 400);
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 303);
    // Garbage bodies are a 4xx, never a 5xx.
    let garbage = browser
        .post(app.url("/password/forgot"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%%%")
        .send()
        .await
        .unwrap();
    assert!(garbage.status().is_client_error(), "{}", garbage.status());
}

async fn weak_or_mismatched_passwords_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Alice").await;
    request_reset(&app, EMAIL).await;
    let link = wait_for_mail(&app, EMAIL, "Reset your password")
        .await
        .link("/password/reset")
        .replacen(&app.issuer(), &app.address, 1);
    let browser = rp::browser();
    let short = choose_password(&app, &browser, &link, "short", "short").await;
    assert_eq!(short.status(), 400);
    assert!(
        short
            .text()
            .await
            .unwrap()
            .contains("at least 8 characters")
    );
    // Common, or built from the address or the name: refused under the password field.
    for weak in ["password", "Summer2024!", "alice2024", "Alice-1990!"] {
        let refused = choose_password(&app, &browser, &link, weak, weak).await;
        assert_eq!(refused.status(), 400, "{weak}");
        let html = refused.text().await.unwrap();
        assert!(html.contains("aria-invalid=\"true\""), "{html}");
        assert!(
            html.contains("too easy to guess") || html.contains("name or email"),
            "{weak}: {html}"
        );
    }
    let mismatch = choose_password(&app, &browser, &link, NEW_PASSWORD, "something else").await;
    assert_eq!(mismatch.status(), 400);
    assert!(mismatch.text().await.unwrap().contains("not the same"));
    // The link still works after those mistakes.
    let done = choose_password(&app, &browser, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status(), 303);
    assert_eq!(login_status(&app, EMAIL, NEW_PASSWORD).await, 303);
}
