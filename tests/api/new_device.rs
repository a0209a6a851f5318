//! The login page beyond the password check: new-device alerts (on and off), the login audit trail,
//! the `next` parameter, and the links to password reset and sign-up.

use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD, hidden_input, location, submit_login};
use crate::support::mail::wait_for_mail;

on_both_databases!(
    a_second_browser_gets_an_alert_the_same_browser_does_not,
    alerts_can_be_switched_off,
    logins_are_audited_without_the_password,
    next_sends_a_signed_in_user_to_a_local_path_only,
    login_page_links_to_reset_and_signup,
);

const EMAIL: &str = "alice@example.com";
const SUBJECT: &str = "New sign-in to your account";

/// `action, actor_user_id, target_id, ip, user_agent, details` of an audit event.
type AuditRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

async fn alerts_queued(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from mail_outbox where subject = $1")
        .bind(SUBJECT)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// A browser with its own cookies and a recognisable `User-Agent`.
fn browser_called(agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent)
        .build()
        .unwrap()
}

async fn a_second_browser_gets_an_alert_the_same_browser_does_not(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Alice").await;

    // The first login ever registers the browser without an alert.
    let first = browser_called("FirstBrowser/1.0");
    rp::sign_in(&app, &first, EMAIL).await;
    assert_eq!(app.count("known_devices").await, 1);
    assert_eq!(alerts_queued(&app).await, 0);

    // Another browser: an alert with time, address and browser.
    let second = browser_called("SecondBrowser/2.0 (Test OS)");
    let page = Url::parse(&app.url("/login")).unwrap();
    let answer = submit_login(&app, &second, &page, EMAIL, PASSWORD).await;
    assert_eq!(answer.status(), 303);
    let cookie = rp::header(&answer, "set-cookie");
    assert!(cookie.contains("latchkey_device="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.contains("Max-Age=31536000"), "{cookie}");
    let alert = wait_for_mail(&app, EMAIL, SUBJECT).await;
    assert!(alert.text.contains("127.0.0.1"), "{}", alert.text);
    assert!(
        alert.text.contains("SecondBrowser/2.0 (Test OS)"),
        "{}",
        alert.text
    );
    assert!(alert.text.contains(" UTC"), "{}", alert.text);
    assert!(
        alert.text.contains("You receive this because"),
        "{}",
        alert.text
    );
    alert.link("/password/forgot");
    assert_eq!(app.count("known_devices").await, 2);

    // The same browsers again: no new alert.
    rp::sign_in(&app, &second, EMAIL).await;
    rp::sign_in(&app, &first, EMAIL).await;
    assert_eq!(alerts_queued(&app).await, 1);
    assert_eq!(app.count("known_devices").await, 2);
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where action = 'login.new_device' and target_id = $1",
    )
    .bind(&user_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // A failed login from a third browser registers nothing.
    let third = browser_called("Third/3.0");
    let refused = submit_login(&app, &third, &page, EMAIL, "wrong password").await;
    assert_eq!(refused.status(), 401);
    assert!(
        rp::header(&refused, "set-cookie").is_empty()
            || !rp::header(&refused, "set-cookie").contains("latchkey_device")
    );
    assert_eq!(app.count("known_devices").await, 2);
}

async fn alerts_can_be_switched_off(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_NEW_DEVICE_ALERTS", "off")]).await;
    app.create_person(EMAIL, "Alice").await;
    rp::sign_in(&app, &rp::browser(), EMAIL).await;
    rp::sign_in(&app, &rp::browser(), EMAIL).await;
    rp::sign_in(&app, &rp::browser(), EMAIL).await;
    assert_eq!(alerts_queued(&app).await, 0);
    assert_eq!(app.count("known_devices").await, 3);
    assert_eq!(app.count("mail_outbox").await, 0);
}

async fn logins_are_audited_without_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Alice").await;
    let page = Url::parse(&app.url("/login")).unwrap();
    let browser = browser_called("AuditBrowser/1.0");
    let wrong = submit_login(&app, &browser, &page, "Alice@Example.com", "hunter2 wrong").await;
    assert_eq!(wrong.status(), 401);
    let unknown = submit_login(&app, &browser, &page, "nobody@example.com", "whatever").await;
    assert_eq!(unknown.status(), 401);
    rp::sign_in(&app, &browser, EMAIL).await;

    let rows: Vec<AuditRow> = sqlx::query_as(
        "select action, actor_user_id, target_id, ip, user_agent, details from audit_events \
             where action like 'login.%' order by created_at, id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let (action, actor, target, ip, agent, details) = &rows[0];
    assert_eq!(action, "login.failed");
    assert_eq!(actor, &None);
    assert_eq!(target.as_deref(), Some(user_id.as_str()));
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(agent.as_deref(), Some("AuditBrowser/1.0"));
    let details: serde_json::Value = serde_json::from_str(details).unwrap();
    assert_eq!(details["email"], "Alice@Example.com");
    assert_eq!(details["reason"], "wrong_password");
    assert!(!rows[0].5.contains("hunter2"));
    assert_eq!(rows[1].0, "login.failed");
    assert_eq!(rows[1].2, None);
    assert!(rows[1].5.contains("nobody@example.com"));
    assert!(!rows[1].5.contains("whatever"));
    assert_eq!(rows[2].0, "login.succeeded");
    assert_eq!(rows[2].1.as_deref(), Some(user_id.as_str()));
    assert_eq!(rows[2].2.as_deref(), Some(user_id.as_str()));
    assert_eq!(app.count("login_events").await, 3);
}

/// Logs in from the page at `/login?next=NEXT`; returns where the server sends the browser.
async fn login_with_next(app: &TestApp, next: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    let page = Url::parse(&app.url(&format!("/login?{query}"))).unwrap();
    let browser = rp::browser();
    let html = browser
        .get(page.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form = vec![
        ("csrf", hidden_input(&html, "csrf")),
        ("authz", hidden_input(&html, "authz")),
        ("email", EMAIL.to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    if html.contains("name=\"next\"") {
        form.push(("next", hidden_input(&html, "next")));
    }
    let answer = browser
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let to = location(app, &answer);
    assert_eq!(to.origin().ascii_serialization(), app.address);
    match to.query() {
        Some(q) => format!("{}?{q}", to.path()),
        None => to.path().to_owned(),
    }
}

async fn next_sends_a_signed_in_user_to_a_local_path_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Alice").await;
    assert_eq!(login_with_next(&app, "/invitation").await, "/invitation");
    assert_eq!(
        login_with_next(&app, "/invitation?x=1").await,
        "/invitation?x=1"
    );
    for bad in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "evil",
    ] {
        assert_eq!(login_with_next(&app, bad).await, "/", "{bad}");
    }
    // A forged `next` in the POST body is checked the same way.
    let browser = rp::browser();
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("email", EMAIL.to_owned()),
            ("password", PASSWORD.to_owned()),
            ("next", "//evil.example/steal".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert_eq!(rp::header(&answer, "location"), "/");
}

async fn login_page_links_to_reset_and_signup(backend: Backend) {
    let open = TestApp::spawn(backend).await;
    let html = open.get("/login").await.text().await.unwrap();
    assert!(html.contains("href=\"/password/forgot\""), "{html}");
    assert!(html.contains("href=\"/signup\""), "{html}");
    let closed = TestApp::spawn_with(backend, &[("LATCHKEY_SIGNUP", "invite-only")]).await;
    let html = closed.get("/login").await.text().await.unwrap();
    assert!(html.contains("href=\"/password/forgot\""), "{html}");
    assert!(!html.contains("href=\"/signup\""), "{html}");
    // The forgot page links back.
    let forgot = open.get("/password/forgot").await.text().await.unwrap();
    assert!(forgot.contains("href=\"/login\""), "{forgot}");
}
