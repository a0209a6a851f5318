//! What a copy of the database cannot give away about browsers: an anonymous visitor's page views
//! write no row at all (CSRF tokens and the opened invitation live in signed cookies), and the
//! sessions of signed-in people are stored under the SHA-256 of their id, never the id itself.

use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD, browser, hidden_input};

on_both_databases!(
    anonymous_page_views_write_nothing,
    session_ids_are_stored_hashed,
    a_forged_or_foreign_csrf_cookie_is_refused,
    the_csrf_token_changes_at_sign_in
);

/// Rows in the tables a page view could write to.
async fn rows(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in ["sessions", "audit_events", "login_events", "mail_outbox"] {
        counts.push(app.count(table).await);
    }
    counts
}

/// The value of cookie `name` set by `response`, if any.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn anonymous_page_views_write_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let visitor = browser();
    let before = rows(&app).await;

    for path in [
        "/",
        "/login",
        "/login?next=/invitation",
        "/signup",
        "/password/forgot",
        "/invitation?token=not-a-real-token",
        "/invitation",
        "/logout",
        "/no-such-page",
    ] {
        let response = visitor.get(app.url(path)).send().await.unwrap();
        assert!(
            response.status().as_u16() < 500,
            "{path}: {}",
            response.status()
        );
    }

    assert_eq!(rows(&app).await, before, "an anonymous visit wrote rows");
    assert_eq!(app.count("sessions").await, 0);
    // The forms still work: the CSRF token of the login page (a cookie) is accepted.
    app.create_person("ada@example.com", "Ada").await;
    rp::sign_in(&app, &visitor, "ada@example.com").await;
    assert_eq!(app.count("sessions").await, 1);
}

async fn session_ids_are_stored_hashed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    let visitor = browser();
    let page = Url::parse(&app.url("/login")).unwrap();

    let response = rp::submit_login(&app, &visitor, &page, "ada@example.com", PASSWORD).await;

    assert_eq!(response.status(), 303);
    let id = set_cookie(&response, "latchkey_session").expect("session cookie set at login");
    let raw: i64 = sqlx::query_scalar("select count(*) from sessions where id = $1")
        .bind(&id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let hashed: i64 = sqlx::query_scalar("select count(*) from sessions where id = $1")
        .bind(latchkey::crypto::tokens::TokenHash::of(&id).into_inner())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        (raw, hashed),
        (0, 1),
        "the row is keyed by the id's hash only"
    );
    let data: Vec<String> = sqlx::query_scalar("select data from sessions")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(data.iter().all(|d| !d.contains(&id)));
}

async fn a_forged_or_foreign_csrf_cookie_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    let login = |cookie: Option<String>, csrf: String| {
        let mut request = rp::rp_http().post(app.url("/login")).form(&[
            ("csrf", csrf),
            ("email", "ada@example.com".to_owned()),
            ("password", PASSWORD.to_owned()),
        ]);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    // A real token and its cookie, from one browser's login page.
    let page = rp::rp_http().get(app.url("/login")).send().await.unwrap();
    let cookie = set_cookie(&page, "latchkey_csrf").expect("CSRF cookie on the login page");
    let token = hidden_input(&page.text().await.unwrap(), "csrf");

    // No cookie; a cookie whose signature does not match; the right token under another name.
    let forged = format!("{}.AAAA", cookie.split_once('.').unwrap().0);
    for (cookie, csrf) in [
        (None, token.clone()),
        (Some(format!("latchkey_csrf={forged}")), token.clone()),
        (Some(format!("latchkey_invitation={cookie}")), token.clone()),
        (Some(format!("latchkey_csrf={cookie}")), String::new()),
        (Some(format!("latchkey_csrf={cookie}")), format!("{token}x")),
    ] {
        let response = login(cookie.clone(), csrf).await.unwrap();
        assert_eq!(response.status(), 400, "{cookie:?}");
    }
    assert_eq!(app.count("login_events").await, 0, "nothing was tried");

    let response = login(Some(format!("latchkey_csrf={cookie}")), token)
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "the matching pair signs in");
}

async fn the_csrf_token_changes_at_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    let visitor = browser();
    let html = visitor
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let before = hidden_input(&html, "csrf");

    let page = Url::parse(&app.url("/login")).unwrap();
    let response = rp::submit_login(&app, &visitor, &page, "ada@example.com", PASSWORD).await;

    assert_eq!(response.status(), 303);
    assert!(set_cookie(&response, "latchkey_csrf").is_some(), "renewed");
    let html = visitor
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(hidden_input(&html, "csrf"), before);
}
