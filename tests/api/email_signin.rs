//! Email sign-in (`/login/email`): the mailed link and 6-digit code, through the pages a browser
//! sees: a full OpenID Connect flow by link (the `openidconnect` relying party checks the ID token,
//! `amr` and `email_verified`), the code typed on the waiting page, expiry, single use, the end of a
//! request after five wrong codes, identical answers for unknown addresses and disabled accounts,
//! the sending limit, `LATCHKEY_EMAIL_SIGNIN=off`, and throttling.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, Scope, TokenResponse};
use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, Consent, hidden_input, location};
use crate::support::mail::{ReceivedMail, mails_to, wait_for_mail};

on_both_databases!(
    link_signs_in_and_the_relying_party_gets_amr_email_otp,
    code_on_the_waiting_page_continues_the_authorization,
    expired_link_and_code_are_refused,
    link_and_code_work_once,
    five_wrong_codes_end_the_request,
    unknown_and_disabled_addresses_get_the_same_page_and_no_mail,
    mails_are_limited_per_account,
    requests_are_limited_per_address,
    off_answers_404_and_hides_the_link,
    wrong_codes_are_throttled_with_retry_after,
);

const EMAIL: &str = "ada@example.com";
const NAME: &str = "Ada Lovelace";
/// Subject of the sign-in mail.
const SUBJECT: &str = "Your sign-in link";
/// The link text on the login page.
const LINK_TEXT: &str = "Email me a sign-in link";

/// Undoes the HTML escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#x2F;", "/")
}

/// The `href` of the "email me a sign-in link" link of a login page.
#[track_caller]
fn email_link_of(html: &str) -> String {
    let at = html
        .find(LINK_TEXT)
        .unwrap_or_else(|| panic!("no email sign-in link on the page:\n{html}"));
    let start = html[..at].rfind("href=\"").expect("href") + "href=\"".len();
    let end = html[start..].find('"').expect("closing quote") + start;
    unescape(&html[start..end])
}

/// GETs the request form at `page` (a path or URL), fills `email` and posts it; returns the answer.
async fn ask_for_mail(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    email: &str,
) -> reqwest::Response {
    let url = if page.starts_with("http") {
        page.to_owned()
    } else {
        app.url(page)
    };
    let response = browser.get(&url).send().await.expect("request form");
    assert_eq!(response.status(), 200, "request form {url}");
    let html = response.text().await.expect("form body");
    assert!(html.contains("name=\"email\""), "{html}");
    let mut form = vec![
        ("csrf", hidden_input(&html, "csrf")),
        ("authz", hidden_input(&html, "authz")),
        ("email", email.to_owned()),
    ];
    if html.contains("name=\"next\"") {
        form.push(("next", hidden_input(&html, "next")));
    }
    browser
        .post(app.url("/login/email"))
        .form(&form)
        .send()
        .await
        .expect("request posted")
}

/// Asks for a mail for `email` from the bare form and returns the mail (the waiting page answered).
async fn mail_for(app: &TestApp, browser: &reqwest::Client, email: &str) -> ReceivedMail {
    let before = mails_to(app, email).await.len();
    let response = ask_for_mail(app, browser, "/login/email", email).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Check your inbox"), "{html}");
    let deadline = tokio::time::Instant::now() + crate::support::mail::MAIL_DEADLINE;
    loop {
        let mails = mails_to(app, email).await;
        if mails.len() > before {
            return mails.last().cloned().expect("a mail");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new sign-in mail"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The 6-digit code of a sign-in mail.
#[track_caller]
fn code_of(mail: &ReceivedMail) -> String {
    mail.text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in the mail:\n{}", mail.text))
        .to_owned()
}

/// The mailed link, on this test server (the mail names the configured issuer).
fn link_of(app: &TestApp, mail: &ReceivedMail) -> String {
    let link = Url::parse(&mail.link("/login/email/confirm")).expect("link URL");
    app.url(&format!(
        "{}?{}",
        link.path(),
        link.query().unwrap_or_default()
    ))
}

/// A code other than `code`.
fn wrong(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:06}", (n + 1) % 1_000_000)
}

/// This browser's CSRF token (any form page shows it).
async fn csrf_of(app: &TestApp, browser: &reqwest::Client) -> String {
    let html = browser
        .get(app.url("/login/email"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    hidden_input(&html, "csrf")
}

/// Posts `code` on the waiting page's form.
async fn type_code(app: &TestApp, browser: &reqwest::Client, code: &str) -> reqwest::Response {
    let csrf = csrf_of(app, browser).await;
    browser
        .post(app.url("/login/email/code"))
        .form(&[("csrf", csrf.as_str()), ("code", code)])
        .send()
        .await
        .expect("code posted")
}

/// GETs the mailed link (a page with a button) and presses the button; returns the answer.
async fn press_link(app: &TestApp, browser: &reqwest::Client, link: &str) -> reqwest::Response {
    let response = browser.get(link).send().await.expect("link opened");
    assert_eq!(response.status(), 200, "link page");
    let html = response.text().await.unwrap();
    browser
        .post(app.url("/login/email/confirm"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("token", hidden_input(&html, "token")),
        ])
        .send()
        .await
        .expect("confirm posted")
}

/// The one-row answer of `sql` with `bind`.
async fn scalar_str(app: &TestApp, sql: &str, bind: &str) -> String {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(&app.db.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Where a signed-in `/` leaves the browser: the home page names the account.
async fn signed_in_as(app: &TestApp, browser: &reqwest::Client) -> String {
    browser
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn link_signs_in_and_the_relying_party_gets_amr_email_otp(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let user_id = app.create_person(EMAIL, NAME).await;
    let client = app.register_client(&[]).await;
    let rp = app.relying_party(&client).await;
    let browser = rp::browser();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    // /authorize → the login page → "Email me a sign-in link", which carries the request.
    let response = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let login = location(&app, &response);
    assert_eq!(login.path(), "/login");
    let authz = login
        .query_pairs()
        .find(|(k, _)| k == "authz")
        .map(|(_, v)| v.into_owned())
        .expect("authz");
    let html = browser
        .get(login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = email_link_of(&html);
    assert_eq!(link, format!("/login/email?authz={authz}"));
    let response = ask_for_mail(&app, &browser, &link, EMAIL).await;
    assert_eq!(response.status(), 200);
    let mail = wait_for_mail(&app, EMAIL, SUBJECT).await;
    let code = code_of(&mail);
    assert!(mail.html.contains(&code), "the HTML part has the code too");

    // Only hashes are stored: neither the link's token nor the code is in the row.
    let token = Url::parse(&mail.link("/login/email/confirm"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .expect("token");
    let (token_hash, code_hash): (String, String) =
        sqlx::query_as("select token_hash, code_hash from email_signin_requests")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(!token_hash.contains(&token) && !code_hash.contains(&code));

    // Opening the link (as a mail scanner would) shows a button and signs nobody in.
    let link = link_of(&app, &mail);
    let page = browser.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(EMAIL) && html.contains("<button"), "{html}");
    assert_eq!(
        count(
            &app,
            "select count(*) from login_events where outcome = 'succeeded'"
        )
        .await,
        0
    );

    // The button signs in and continues the authorization.
    let response = press_link(&app, &browser, &link).await;
    assert_eq!(response.status(), 303);
    let next = location(&app, &response);
    assert_eq!(next.path(), "/authorize/continue");
    let journey = rp::authorize(&app, &browser, next.as_str(), EMAIL, Consent::Allow).await;
    assert!(!journey.saw_login, "no password asked");
    let tokens = rp
        .exchange_code(AuthorizationCode::new(journey.callback.code()))
        .set_pkce_verifier(verifier)
        .request_async(&rp::rp_http())
        .await
        .expect("the code is exchanged");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("the ID token validates");
    assert_eq!(claims.subject().as_str(), user_id);
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .expect("amr")
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert!(amr.contains(&"otp") && amr.contains(&"email"), "{amr:?}");
    assert!(!amr.contains(&"pwd"), "{amr:?}");
    assert_eq!(claims.email_verified(), Some(true), "the mail proved it");

    // Recorded like a password login, with the method.
    let (method, outcome): (String, String) =
        sqlx::query_as("select method, outcome from login_events where user_id = $1")
            .bind(&user_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((method.as_str(), outcome.as_str()), ("email", "succeeded"));
    let details = scalar_str(
        &app,
        "select details from audit_events where action = 'login.succeeded' and target_id = $1",
        &user_id,
    )
    .await;
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["method"], "email");
    assert_eq!(
        count(&app, "select count(*) from known_devices").await,
        1,
        "the browser is recognised"
    );
}

async fn code_on_the_waiting_page_continues_the_authorization(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, NAME).await;
    let client = app.register_client(&[]).await;
    let (_verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", rp::REDIRECT_URI),
        ("scope", "openid email"),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let laptop = rp::browser();
    let response = laptop.get(&url).send().await.unwrap();
    let login = location(&app, &response);
    let html = laptop
        .get(login.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = email_link_of(&html);
    let response = ask_for_mail(&app, &laptop, &link, EMAIL).await;
    let page = response.text().await.unwrap();
    assert!(
        page.contains("name=\"code\"") && page.contains(EMAIL),
        "{page}"
    );
    // Starting over from here keeps the authorization: "ask for a new mail" and "back to sign in"
    // carry it.
    let authz = login
        .query_pairs()
        .find(|(k, _)| k == "authz")
        .map(|(_, v)| v.into_owned())
        .expect("the login page names the waiting authorization");
    assert!(
        page.contains(&format!("href=\"/login?authz={authz}\""))
            && page.contains(&format!("href=\"/login/email?authz={authz}\"")),
        "{page}"
    );
    let mail = wait_for_mail(&app, EMAIL, SUBJECT).await;
    let code = code_of(&mail);

    // Another browser (no cookie naming the request) cannot use the code.
    let other = rp::browser();
    let response = type_code(&app, &other, &code).await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("not known in this browser")
    );

    // Typed on the laptop, with spaces: signed in, and the authorization continues.
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let response = type_code(&app, &laptop, &spaced).await;
    assert_eq!(response.status(), 303);
    let next = location(&app, &response);
    assert_eq!(next.path(), "/authorize/continue");
    let journey = rp::authorize(&app, &laptop, next.as_str(), EMAIL, Consent::Allow).await;
    assert!(!journey.saw_login);
    journey.callback.assert_at(rp::REDIRECT_URI);
    let amr = scalar_str(
        &app,
        "select amr from authorization_codes where client_id = $1",
        &client.id,
    )
    .await;
    assert_eq!(amr, r#"["email","otp"]"#);
    assert!(signed_in_as(&app, &laptop).await.contains(EMAIL));
    let verified: i64 = sqlx::query_scalar("select email_verified from users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(verified, 1);
}

async fn expired_link_and_code_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, NAME).await;
    let browser = rp::browser();
    let mail = mail_for(&app, &browser, EMAIL).await;
    app.clock.advance(10 * 60 + 1);

    let response = browser.get(link_of(&app, &mail)).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("no longer works"), "{html}");
    assert!(!html.contains("name=\"token\""), "no button");

    let response = type_code(&app, &browser, &code_of(&mail)).await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("has expired"), "{html}");
    assert!(!signed_in_as(&app, &browser).await.contains(EMAIL));
    let reason = scalar_str(
        &app,
        "select details from audit_events where action = 'login.failed' and details like $1",
        "%expired%",
    )
    .await;
    assert!(reason.contains("\"method\":\"email\""), "{reason}");

    // The purge removes the request an hour after it expired.
    let now = app.clock.now();
    let purged = latchkey::jobs::purge::run(&app.db, now).await.unwrap();
    assert!(
        !purged
            .rows
            .iter()
            .any(|(t, _)| *t == "email_signin_requests"),
        "{purged:?}"
    );
    let purged = latchkey::jobs::purge::run(&app.db, now + 3600)
        .await
        .unwrap();
    assert!(
        purged.rows.contains(&("email_signin_requests", 1)),
        "{purged:?}"
    );
}

async fn link_and_code_work_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, NAME).await;

    // The code, twice.
    let browser = rp::browser();
    let mail = mail_for(&app, &browser, EMAIL).await;
    let code = code_of(&mail);
    let response = type_code(&app, &browser, &code).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/");
    let response = type_code(&app, &browser, &code).await;
    assert_eq!(response.status(), 400);
    // ... and its link after it.
    let response = browser.get(link_of(&app, &mail)).send().await.unwrap();
    assert_eq!(response.status(), 400);

    // The link, twice (the second press from the page shown before the first).
    let laptop = rp::browser();
    let mail = mail_for(&app, &laptop, EMAIL).await;
    let link = link_of(&app, &mail);
    let phone = rp::browser();
    let page = phone.get(&link).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf", hidden_input(&page, "csrf")),
        ("token", hidden_input(&page, "token")),
    ];
    let first = phone
        .post(app.url("/login/email/confirm"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 303);
    assert!(signed_in_as(&app, &phone).await.contains(EMAIL));
    let again = rp::browser();
    let response = again.get(&link).send().await.unwrap();
    assert_eq!(response.status(), 400);
    // ... and its code, on the laptop that asked: already used.
    let response = type_code(&app, &laptop, &code_of(&mail)).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("already used"));
    assert!(!signed_in_as(&app, &laptop).await.contains(EMAIL));
}

async fn five_wrong_codes_end_the_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, NAME).await;
    let browser = rp::browser();
    let mail = mail_for(&app, &browser, EMAIL).await;
    let code = code_of(&mail);
    let bad = wrong(&code);
    for left in (1..=4).rev() {
        let response = type_code(&app, &browser, &bad).await;
        assert_eq!(response.status(), 401);
        let html = response.text().await.unwrap();
        assert!(html.contains("That code is not correct."), "{html}");
        let tries = if left == 1 {
            "One more try.".to_owned()
        } else {
            format!("{left} more tries.")
        };
        assert!(html.contains(&tries), "{tries}: {html}");
    }
    let response = type_code(&app, &browser, "not a code").await;
    assert_eq!(response.status(), 400, "the fifth wrong code ends it");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("too many wrong codes")
    );
    let attempts: i64 = sqlx::query_scalar("select attempts from email_signin_requests")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 5);

    // Past the throttling delay of the fifth failure, the right code and the link are refused.
    app.clock.advance(3);
    let response = type_code(&app, &browser, &code).await;
    assert_eq!(response.status(), 400);
    let response = browser.get(link_of(&app, &mail)).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(!signed_in_as(&app, &browser).await.contains(EMAIL));
    assert_eq!(
        count(
            &app,
            "select count(*) from login_events where method = 'email' and outcome = 'failed'"
        )
        .await,
        6
    );

    // A new mail works.
    app.clock.advance(10);
    let mail = mail_for(&app, &browser, EMAIL).await;
    let response = type_code(&app, &browser, &code_of(&mail)).await;
    assert_eq!(response.status(), 303);
}

/// A page with the echoed address and the CSRF token taken out.
fn neutral(html: &str, email: &str) -> String {
    let csrf = hidden_input(html, "csrf");
    html.replace(email, "EMAIL").replace(&csrf, "CSRF")
}

async fn unknown_and_disabled_addresses_get_the_same_page_and_no_mail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, NAME).await;
    app.create_person("bob@example.com", "Bob").await;
    sqlx::query("update users set disabled = 1 where email = 'bob@example.com'")
        .execute(&app.db.pool)
        .await
        .unwrap();

    let mut answers = Vec::new();
    for email in [EMAIL, "nobody@example.com", "bob@example.com"] {
        let browser = rp::browser();
        let response = ask_for_mail(&app, &browser, "/login/email", email).await;
        let status = response.status();
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap_or_default().contains("email_signin="));
        let html = response.text().await.unwrap();
        assert!(html.contains(email), "the address is echoed");
        answers.push((status, cookie, neutral(&html, email)));

        // A wrong code typed for it is "not correct", as for a real account.
        let typed = if email == EMAIL {
            wrong(&code_of(&wait_for_mail(&app, EMAIL, SUBJECT).await))
        } else {
            "123456".to_owned()
        };
        let response = type_code(&app, &browser, &typed).await;
        let status = response.status();
        let html = response.text().await.unwrap();
        answers.push((status, true, neutral(&html, email)));
    }
    assert_eq!(answers[0].0, 200);
    assert!(answers[0].1, "a request cookie");
    for i in 2..answers.len() {
        assert_eq!(answers[i], answers[i % 2], "answer {i} differs");
    }
    assert_eq!(answers[1].0, 401);

    wait_for_mail(&app, EMAIL, SUBJECT).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(mails_to(&app, "nobody@example.com").await.is_empty());
    assert!(mails_to(&app, "bob@example.com").await.is_empty());
    // The same work: a request row for each, only the usable account's names it.
    assert_eq!(
        count(&app, "select count(*) from email_signin_requests").await,
        3
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from email_signin_requests where user_id is not null"
        )
        .await,
        1
    );

    // A malformed address is refused on the form itself.
    let browser = rp::browser();
    let response = ask_for_mail(&app, &browser, "/login/email", "not an address").await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("name=\"email\""));
}

async fn mails_are_limited_per_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, NAME).await;
    let browser = rp::browser();
    for _ in 0..5 {
        mail_for(&app, &browser, EMAIL).await;
    }
    // The sixth within the hour: the same page, no mail.
    let response = ask_for_mail(&app, &browser, "/login/email", EMAIL).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Check your inbox"));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(mails_to(&app, EMAIL).await.len(), 5);
    // An hour later, mail again.
    app.clock.advance(60 * 60 + 1);
    mail_for(&app, &browser, EMAIL).await;
}

async fn requests_are_limited_per_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = rp::browser();
    // Thirty requests an hour from one address, for any addresses (known or not)...
    for i in 0..30 {
        let email = format!("nobody{i}@example.com");
        let response = ask_for_mail(&app, &browser, "/login/email", &email).await;
        assert_eq!(response.status(), 200, "request {i}");
    }
    // ... then 429 with the wait until the oldest leaves the window.
    let response = ask_for_mail(&app, &browser, "/login/email", "late@example.com").await;
    assert_eq!(response.status(), 429);
    let retry: i64 = rp::header(&response, "retry-after").parse().unwrap();
    assert!((3000..=3600).contains(&retry), "{retry}");
    assert!(response.text().await.unwrap().contains("from your network"));
    assert_eq!(
        count(&app, "select count(*) from email_signin_requests").await,
        30
    );
    app.clock.advance(retry);
    let response = ask_for_mail(&app, &browser, "/login/email", "late@example.com").await;
    assert_eq!(response.status(), 200);
}

async fn off_answers_404_and_hides_the_link(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_EMAIL_SIGNIN", "off")]).await;
    app.create_person(EMAIL, NAME).await;
    let browser = rp::browser();
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(LINK_TEXT), "{html}");
    assert!(!html.contains("/login/email"), "{html}");
    let csrf = hidden_input(&html, "csrf");
    for path in ["/login/email", "/login/email/confirm?token=abc"] {
        assert_eq!(
            browser.get(app.url(path)).send().await.unwrap().status(),
            404
        );
    }
    for (path, field) in [
        ("/login/email", "email"),
        ("/login/email/code", "code"),
        ("/login/email/confirm", "token"),
    ] {
        let response = browser
            .post(app.url(path))
            .form(&[("csrf", csrf.as_str()), (field, EMAIL)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    assert!(mails_to(&app, EMAIL).await.is_empty());

    // On by default: the link is there.
    let on = TestApp::spawn(backend).await;
    let html = on.get("/login").await.text().await.unwrap();
    assert_eq!(email_link_of(&html), "/login/email");

    // Anything but on/off stops the process with one line naming the variable.
    let dir = tempfile::tempdir().unwrap();
    let mut env = std::collections::HashMap::new();
    env.insert(
        "LATCHKEY_DATABASE_URL".to_owned(),
        format!("sqlite://{}", dir.path().join("x.db").display()),
    );
    env.insert("LATCHKEY_EMAIL_SIGNIN".to_owned(), "yes".to_owned());
    let out = crate::helpers::run_cli(&env, &["migrate"], None).await;
    let line = out.refused();
    assert!(line.contains("LATCHKEY_EMAIL_SIGNIN"), "{line}");
}

async fn wrong_codes_are_throttled_with_retry_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, NAME).await;
    let browser = rp::browser();
    let mail = mail_for(&app, &browser, EMAIL).await;
    let bad = wrong(&code_of(&mail));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(type_code(&app, &browser, &bad).await.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 400]);

    // The account is now delayed, longer after each failure: past the delay, one more wrong
    // code (the seventh failure: 4 s), then the right one at once waits.
    let mail = mail_for(&app, &browser, EMAIL).await;
    let code = code_of(&mail);
    app.clock.advance(2);
    assert_eq!(type_code(&app, &browser, &wrong(&code)).await.status(), 401);
    app.clock.advance(3);
    assert_eq!(type_code(&app, &browser, &wrong(&code)).await.status(), 401);
    let response = type_code(&app, &browser, &code).await;
    assert_eq!(response.status(), 429);
    let retry: i64 = rp::header(&response, "retry-after").parse().unwrap();
    assert!((1..=4).contains(&retry), "{retry}");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Too many wrong codes. Try again in")
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from login_events where method = 'email' and outcome = 'throttled'"
        )
        .await,
        1
    );
    // The password login of the account is delayed by the same counter.
    let page = Url::parse(&app.url("/login")).unwrap();
    let other = rp::browser();
    let response = rp::submit_login(&app, &other, &page, EMAIL, rp::PASSWORD).await;
    assert_eq!(response.status(), 429);

    // After the wait the code works, and the request was not used up by the refusal.
    app.clock.advance(retry);
    let response = type_code(&app, &browser, &code).await;
    assert_eq!(response.status(), 303);
}
