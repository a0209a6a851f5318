//! Your account, through the pages and `DELETE /api/v1/me`: the name, changing the sign-in address
//! by a mailed link, changing the password, and deleting the account (with the last-owner rule).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{call, cli_member, cli_org, client_token};
use crate::rp::{self, PASSWORD, REDIRECT_URI, RegisteredClient, hidden_input, location};
use crate::support::mail::{mails_to, wait_for_mail};

on_both_databases!(
    email_change_is_confirmed_by_the_link_sent_to_the_new_address,
    email_change_refusals_and_expired_links,
    email_change_refused_when_the_address_was_taken_meanwhile,
    wrong_passwords_are_throttled_on_the_account,
    password_change_checks_the_current_and_the_new_password,
    password_change_can_sign_out_the_other_browsers,
    profile_name_shows_in_userinfo,
    deletion_page_refuses_the_last_owner_then_deletes,
    deletion_api_answers_problems_then_deletes,
);

const EMAIL: &str = "alice@example.com";
const NEW_EMAIL: &str = "alice.new@example.org";
const NEW_PASSWORD: &str = "quiet violet harbour lamp";

/// The page at `path` in `browser`: 200 and its HTML.
async fn page(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    let response = browser.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}:\n{html}");
    html
}

/// GETs the form at `path` and posts `fields` with its CSRF token; returns the answer.
async fn submit(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = page(app, browser, path).await;
    let mut form: Vec<(String, String)> = vec![("csrf".into(), hidden_input(&html, "csrf"))];
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    browser
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The status and the body of an answer.
async fn status_and_body(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// A browser signed in as `email` (with [`PASSWORD`]).
async fn signed_in(app: &TestApp, email: &str) -> reqwest::Client {
    let browser = rp::browser();
    rp::sign_in(app, &browser, email).await;
    browser
}

/// The status of a sign-in with `email` and `password` from a fresh browser.
async fn login_status(app: &TestApp, email: &str, password: &str) -> StatusCode {
    let page = Url::parse(&app.url("/login")).unwrap();
    rp::submit_login(app, &rp::browser(), &page, email, password)
        .await
        .status()
}

/// A fresh code flow in `browser` (signing in as `email` when asked): the ID token's claims and the
/// userinfo answer.
async fn tokens(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
    email: &str,
) -> (Value, Value) {
    let (code, verifier) = rp::code_with_pkce(app, browser, client, email).await;
    let body = rp::json_with_status(
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
    let (_, claims) = rp::decode_jwt(body["id_token"].as_str().expect("id_token"));
    let access = body["access_token"].as_str().expect("access_token");
    let userinfo = rp::rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    (claims, rp::json_with_status(userinfo, 200).await)
}

/// The audit events with `action`: `(actor_user_id, target_id, details)`.
async fn audit(app: &TestApp, action: &str) -> Vec<(Option<String>, Option<String>, Value)> {
    let rows: Vec<(Option<String>, Option<String>, String)> = sqlx::query_as(
        "select actor_user_id, target_id, details from audit_events where action = $1 \
         order by created_at, id",
    )
    .bind(action)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(a, t, d)| (a, t, serde_json::from_str(&d).unwrap()))
        .collect()
}

/// The `Retry-After` of a 429, in seconds.
fn retry_after(response: &reqwest::Response) -> i64 {
    rp::header(response, "retry-after")
        .parse()
        .expect("a Retry-After in seconds")
}

/// The mailed link, on the app's own address.
fn local(app: &TestApp, link: &str) -> String {
    assert!(link.starts_with(&app.issuer()), "{link}");
    link.replacen(&app.issuer(), &app.address, 1)
}

/// Asks for `new_email` on the email page; returns the answer.
async fn ask_email_change(
    app: &TestApp,
    browser: &reqwest::Client,
    new_email: &str,
    password: &str,
) -> reqwest::Response {
    submit(
        app,
        browser,
        "/account/email",
        &[("new_email", new_email), ("password", password)],
    )
    .await
}

/// POSTs the confirm button of the page at `link` (in a fresh browser); returns the answer.
async fn confirm(app: &TestApp, link: &str) -> reqwest::Response {
    let browser = rp::browser();
    let response = browser.get(link).send().await.unwrap();
    assert_eq!(response.status(), 200, "confirm page {link}");
    let html = response.text().await.unwrap();
    assert!(html.contains("Confirm the new address"), "{html}");
    browser
        .post(app.url("/account/email/confirm"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("token", hidden_input(&html, "token")),
        ])
        .send()
        .await
        .unwrap()
}

async fn email_change_is_confirmed_by_the_link_sent_to_the_new_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Alice").await;
    let client = app.register_client(&[]).await;
    let browser = signed_in(&app, EMAIL).await;

    let html = page(&app, &browser, "/account/email").await;
    assert!(html.contains(EMAIL), "{html}");
    let asked = ask_email_change(&app, &browser, NEW_EMAIL, PASSWORD).await;
    assert_eq!(asked.status(), 303);
    assert_eq!(location(&app, &asked).path(), "/account/email/sent");
    let sent = page(&app, &browser, "/account/email/sent").await;
    assert!(sent.contains("Check your inbox"), "{sent}");
    assert!(sent.contains(NEW_EMAIL), "{sent}");

    let mail = wait_for_mail(&app, NEW_EMAIL, "Confirm your new email address").await;
    assert!(
        mail.html.contains("Confirm the new address"),
        "{}",
        mail.html
    );
    let link = local(&app, &mail.link("/account/email/confirm"));
    let asked_notice = wait_for_mail(&app, EMAIL, "A change of your email address").await;
    assert!(asked_notice.text.contains("a…@e…"), "{}", asked_notice.text);
    assert!(
        asked_notice.text.contains("/password/forgot"),
        "{}",
        asked_notice.text
    );
    let requested = audit(&app, "user.email_change_requested").await;
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0].1.as_deref(), Some(user_id.as_str()));

    // Until the link is used, everything keeps the old address.
    let (claims, userinfo) = tokens(&app, &browser, &client, EMAIL).await;
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(userinfo["email"], EMAIL);
    // The GET (a mail scanner) changes nothing.
    let opened = rp::browser().get(&link).send().await.unwrap();
    assert_eq!(opened.status(), 200);
    let (claims, _) = tokens(&app, &browser, &client, EMAIL).await;
    assert_eq!(claims["email"], EMAIL);

    let (status, body) = status_and_body(confirm(&app, &link).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Your address was changed"), "{body}");
    assert!(body.contains(NEW_EMAIL), "{body}");

    // Next tokens carry the new, verified address; sign-in works with it only.
    let (claims, userinfo) = tokens(&app, &browser, &client, NEW_EMAIL).await;
    assert_eq!(claims["email"], NEW_EMAIL);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(userinfo["email"], NEW_EMAIL);
    let (claims, _) = tokens(&app, &rp::browser(), &client, NEW_EMAIL).await;
    assert_eq!(claims["sub"], user_id);
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 401);

    // The old address was told, with the new one masked.
    let changed = wait_for_mail(&app, EMAIL, "Your sign-in address was changed").await;
    assert!(changed.text.contains("a…@e…"), "{}", changed.text);
    assert!(!changed.text.contains(NEW_EMAIL), "{}", changed.text);
    let events = audit(&app, "user.email_changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.as_deref(), Some(user_id.as_str()));
    assert_eq!(events[0].2["to"], NEW_EMAIL);

    // Single use: the link no longer works, and nothing changes.
    let again = rp::browser().get(&link).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("no longer works"));
    let html = page(&app, &browser, "/account/email").await;
    let replay = browser
        .post(app.url("/account/email/confirm"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            (
                "token",
                Url::parse(&link)
                    .unwrap()
                    .query_pairs()
                    .next()
                    .unwrap()
                    .1
                    .into_owned(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(audit(&app, "user.email_changed").await.len(), 1);
}

async fn email_change_refusals_and_expired_links(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Alice").await;
    app.create_person("bob@example.com", "Bob").await;
    let browser = signed_in(&app, EMAIL).await;

    // Wrong password: the form again, no mail.
    let (status, body) =
        status_and_body(ask_email_change(&app, &browser, NEW_EMAIL, "not my password").await).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("The password is not correct."), "{body}");
    // Another account's address, in any letter case: said to be taken.
    let (status, body) =
        status_and_body(ask_email_change(&app, &browser, "BOB@example.com", PASSWORD).await).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("belongs to another account"), "{body}");
    // Not an address; the own address.
    let (status, body) =
        status_and_body(ask_email_change(&app, &browser, "no-at-sign", PASSWORD).await).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Invalid email address"), "{body}");
    let (status, _) =
        status_and_body(ask_email_change(&app, &browser, "Alice@Example.com", PASSWORD).await)
            .await;
    assert_eq!(status, 400);
    assert!(mails_to(&app, NEW_EMAIL).await.is_empty());
    assert_eq!(app.count("email_changes").await, 0);
    // Without the CSRF field: refused.
    let forged = browser
        .post(app.url("/account/email"))
        .form(&[("new_email", NEW_EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    // Signed out: to the login page, which comes back.
    let signed_out = rp::browser()
        .get(app.url("/account/email"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 303);
    assert_eq!(
        location(&app, &signed_out).as_str(),
        app.url("/login?next=%2Faccount%2Femail")
    );

    // A link expires after 24 hours.
    let asked = ask_email_change(&app, &browser, NEW_EMAIL, PASSWORD).await;
    assert_eq!(asked.status(), 303);
    let mail = wait_for_mail(&app, NEW_EMAIL, "Confirm your new email address").await;
    let link = local(&app, &mail.link("/account/email/confirm"));
    let confirm_page = rp::browser().get(&link).send().await.unwrap();
    let html = confirm_page.text().await.unwrap();
    app.clock.advance(24 * 60 * 60 + 1);
    let expired = rp::browser().get(&link).send().await.unwrap();
    assert_eq!(expired.status(), 400);
    assert!(expired.text().await.unwrap().contains("no longer works"));
    let late = rp::browser();
    // The form fetched before the expiry, posted after it (its CSRF cookie is that browser's).
    let late_page = late
        .get(app.url("/account/email/confirm?token=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(late_page.status(), 400);
    let csrf_page = page(&app, &late, "/login").await;
    let posted = late
        .post(app.url("/account/email/confirm"))
        .form(&[
            ("csrf", hidden_input(&csrf_page, "csrf")),
            ("token", hidden_input(&html, "token")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 400);
    assert!(posted.text().await.unwrap().contains("no longer works"));
    let (status, body) = status_and_body(
        rp::browser()
            .get(app.url("/account/email/confirm"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 303);
    assert!(audit(&app, "user.email_changed").await.is_empty());
}

async fn email_change_refused_when_the_address_was_taken_meanwhile(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Alice").await;
    let browser = signed_in(&app, EMAIL).await;
    assert_eq!(
        ask_email_change(&app, &browser, NEW_EMAIL, PASSWORD)
            .await
            .status(),
        303
    );
    let mail = wait_for_mail(&app, NEW_EMAIL, "Confirm your new email address").await;
    let link = local(&app, &mail.link("/account/email/confirm"));
    // Someone signs up with the address before the link is used: the unique index decides.
    app.create_person(&NEW_EMAIL.to_uppercase(), "Squatter")
        .await;
    let (status, body) = status_and_body(confirm(&app, &link).await).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("This address is taken"), "{body}");
    assert!(body.contains("Nothing was changed"), "{body}");
    let email: String = sqlx::query_scalar("select email from users where id = $1")
        .bind(&user_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(email, EMAIL);
    assert!(audit(&app, "user.email_changed").await.is_empty());
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 303);
}

async fn wrong_passwords_are_throttled_on_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Alice").await;
    let browser = signed_in(&app, EMAIL).await;
    // A stolen session cannot guess the password faster than the login allows: nine wrong
    // guesses (the server's clock skips each delay) leave the account blocked for 16 seconds.
    let mut failures = 0;
    while failures < 9 {
        let answer = ask_email_change(&app, &browser, NEW_EMAIL, "guess").await;
        match answer.status().as_u16() {
            400 => failures += 1,
            429 => app.clock.advance(retry_after(&answer)),
            other => panic!("unexpected {other}"),
        }
    }
    let (status, body) = {
        let answer = ask_email_change(&app, &browser, NEW_EMAIL, PASSWORD).await;
        assert!(answer.headers().contains_key("retry-after"));
        status_and_body(answer).await
    };
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("Too many wrong passwords"), "{body}");
    let answer = submit(
        &app,
        &browser,
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(answer.status(), 429);
    let answer = submit(&app, &browser, "/account/delete", &[("password", PASSWORD)]).await;
    assert_eq!(answer.status(), 429);
    // The same counter as the login's (a browser that never signed in to the account).
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 429);
    assert!(mails_to(&app, NEW_EMAIL).await.is_empty());
    // After the delay, the right password works and clears the count.
    app.clock.advance(60);
    assert_eq!(
        ask_email_change(&app, &browser, NEW_EMAIL, PASSWORD)
            .await
            .status(),
        303
    );
}

async fn password_change_checks_the_current_and_the_new_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Alice").await;
    let browser = signed_in(&app, EMAIL).await;
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        let app = &app;
        let browser = &browser;
        async move {
            let answer = submit(
                app,
                browser,
                "/account/password",
                &[
                    ("current_password", current),
                    ("password", new),
                    ("password_confirm", confirm),
                ],
            )
            .await;
            status_and_body(answer).await
        }
    };
    let html = page(&app, &browser, "/account/password").await;
    assert!(html.contains("name=\"current_password\""), "{html}");
    assert!(html.contains("name=\"sign_out_others\""), "{html}");

    let (status, body) = change("wrong password", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("The current password is not correct."),
        "{body}"
    );
    let (status, body) = change(PASSWORD, "password", "password").await;
    assert_eq!(status, 400);
    assert!(body.contains("field-error"), "{body}");
    let (status, body) = change(PASSWORD, "alice@example.com!", "alice@example.com!").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = change(PASSWORD, NEW_PASSWORD, "something else entirely").await;
    assert_eq!(status, 400);
    assert!(body.contains("not the same"), "{body}");
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 303);
    assert!(audit(&app, "user.password_changed").await.is_empty());

    let answer = submit(
        &app,
        &browser,
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(answer.status(), 303);
    assert_eq!(location(&app, &answer).path(), "/account/password");
    let html = page(&app, &browser, "/account/password").await;
    assert!(html.contains("Your password was changed."), "{html}");
    // Shown once.
    let html = page(&app, &browser, "/account/password").await;
    assert!(!html.contains("Your password was changed."), "{html}");

    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 401);
    assert_eq!(login_status(&app, EMAIL, NEW_PASSWORD).await, 303);
    let mail = wait_for_mail(&app, EMAIL, "Your password was changed").await;
    assert!(mail.text.contains("on your account page"), "{}", mail.text);
    let events = audit(&app, "user.password_changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0.as_deref(), Some(user_id.as_str()));
    assert_eq!(events[0].2["signed_out_others"], false);
    // The address was not proven by this change.
    let verified: i64 = sqlx::query_scalar("select email_verified from users where id = $1")
        .bind(&user_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(verified, 0);
}

async fn password_change_can_sign_out_the_other_browsers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Alice").await;
    let here = signed_in(&app, EMAIL).await;
    let elsewhere = signed_in(&app, EMAIL).await;
    page(&app, &elsewhere, "/account").await;
    // A reset link asked for before the change stops working with it.
    let forgot = crate::recovery::request_reset(&app, EMAIL).await;
    assert_eq!(forgot.status(), 303);
    let reset = wait_for_mail(&app, EMAIL, "Reset your password").await;
    let reset_link = local(&app, &reset.link("/password/reset"));

    let answer = submit(
        &app,
        &here,
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
            ("sign_out_others", "on"),
        ],
    )
    .await;
    assert_eq!(answer.status(), 303);
    let html = page(&app, &here, "/account/password").await;
    assert!(html.contains("other browsers were signed out"), "{html}");
    let gone = elsewhere.get(app.url("/account")).send().await.unwrap();
    assert_eq!(gone.status(), 303);
    assert_eq!(location(&app, &gone).path(), "/login");
    page(&app, &here, "/account").await;
    let events = audit(&app, "user.password_changed").await;
    assert_eq!(events[0].2["signed_out_others"], true);
    assert_eq!(events[0].2["sessions_ended"], 1);
    assert_eq!(
        rp::browser()
            .get(&reset_link)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

async fn profile_name_shows_in_userinfo(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Alice").await;
    let client = app.register_client(&[]).await;
    let browser = signed_in(&app, EMAIL).await;
    let (_, userinfo) = tokens(&app, &browser, &client, EMAIL).await;
    assert_eq!(userinfo["name"], "Alice");

    let too_long = "x".repeat(201);
    let (status, body) =
        status_and_body(submit(&app, &browser, "/account/profile", &[("name", &too_long)]).await)
            .await;
    assert_eq!(status, 400);
    assert!(body.contains("at most 200 characters"), "{body}");

    let answer = submit(
        &app,
        &browser,
        "/account/profile",
        &[("name", "  Alice Liddell  ")],
    )
    .await;
    assert_eq!(answer.status(), 303);
    assert_eq!(location(&app, &answer).path(), "/account/profile");
    let html = page(&app, &browser, "/account/profile").await;
    assert!(html.contains("Your profile was saved."), "{html}");
    assert!(html.contains("value=\"Alice Liddell\""), "{html}");

    let (claims, userinfo) = tokens(&app, &browser, &client, EMAIL).await;
    assert_eq!(userinfo["name"], "Alice Liddell");
    assert_eq!(claims["name"], "Alice Liddell");
    let events = audit(&app, "user.profile_updated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.as_deref(), Some(user_id.as_str()));
    assert_eq!(events[0].2["name"]["to"], "Alice Liddell");
}

async fn deletion_page_refuses_the_last_owner_then_deletes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Alice").await;
    app.create_person("bob@example.com", "Bob").await;
    let org = cli_org(&app, "Acme Corp", "acme", EMAIL).await;
    let browser = signed_in(&app, EMAIL).await;

    let html = page(&app, &browser, "/account/delete").await;
    assert!(html.contains("only owner of"), "{html}");
    assert!(html.contains("Acme Corp"), "{html}");
    let (status, body) =
        status_and_body(submit(&app, &browser, "/account/delete", &[("password", "wrong")]).await)
            .await;
    assert_eq!(status, 400);
    assert!(body.contains("The password is not correct."), "{body}");
    let (status, body) =
        status_and_body(submit(&app, &browser, "/account/delete", &[("password", PASSWORD)]).await)
            .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("You are the only owner of Acme Corp (acme)"),
        "{body}"
    );
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 303);

    cli_member(&app, &org, "bob@example.com", "owner").await;
    let answer = submit(&app, &browser, "/account/delete", &[("password", PASSWORD)]).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(location(&app, &answer).path(), "/account/deleted");
    let html = page(&app, &browser, "/account/deleted").await;
    assert!(html.contains("Your account was deleted"), "{html}");
    // Signed out here, and no way back in.
    let gone = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(gone.status(), 303);
    assert_eq!(location(&app, &gone).path(), "/login");
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 401);
    let users: i64 = sqlx::query_scalar("select count(*) from users where id = $1")
        .bind(&user_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
    let events = audit(&app, "user.deleted").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0.as_deref(), Some(user_id.as_str()));
    assert_eq!(events[0].1.as_deref(), Some(user_id.as_str()));
    assert_eq!(events[0].2["email"], EMAIL);
    // The organization's log keeps that its member went with the account.
    let removed = audit(&app, "member.removed").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].1.as_deref(), Some(user_id.as_str()));
    assert_eq!(removed[0].2["account_deleted"], true);
    let goodbye = wait_for_mail(&app, EMAIL, "Your account was deleted").await;
    assert!(goodbye.text.contains("was deleted"), "{}", goodbye.text);
}

/// A first-party client that may ask for the account scopes.
async fn account_client(app: &TestApp) -> RegisteredClient {
    app.register_client(&[
        "--first-party",
        "--scope",
        "openid",
        "--scope",
        "email",
        "--scope",
        "account:read",
        "--scope",
        "account:write",
    ])
    .await
}

async fn deletion_api_answers_problems_then_deletes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person(EMAIL, "Alice").await;
    let client = account_client(&app).await;
    let token = crate::mgmt_helpers::user_token(&app, &client, EMAIL, "openid account:write").await;
    let read_only =
        crate::mgmt_helpers::user_token(&app, &client, EMAIL, "openid account:read").await;
    let machine = client_token(&app, &["account:write"]).await;
    let org = cli_org(&app, "Acme Corp", "acme", EMAIL).await;
    let body = json!({ "password": PASSWORD });

    call(&app, Method::DELETE, "/api/v1/me", None, Some(body.clone()))
        .await
        .problem(401, "invalid-token");
    call(
        &app,
        Method::DELETE,
        "/api/v1/me",
        Some(&read_only),
        Some(body.clone()),
    )
    .await
    .problem(403, "insufficient-scope");
    call(
        &app,
        Method::DELETE,
        "/api/v1/me",
        Some(&machine),
        Some(body.clone()),
    )
    .await
    .problem(403, "user-token-required");
    call(&app, Method::DELETE, "/api/v1/me", Some(&token), None)
        .await
        .problem(400, "missing-body");
    let malformed = rp::rp_http()
        .delete(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"password\": ")
        .send()
        .await
        .unwrap();
    crate::mgmt_helpers::answer(malformed)
        .await
        .problem(400, "malformed-json");
    call(
        &app,
        Method::DELETE,
        "/api/v1/me",
        Some(&token),
        Some(json!({ "password": PASSWORD, "force": true })),
    )
    .await
    .problem(400, "invalid-body");
    call(
        &app,
        Method::DELETE,
        "/api/v1/me",
        Some(&token),
        Some(json!({ "password": "wrong" })),
    )
    .await
    .problem(403, "wrong-password");
    let refused = call(
        &app,
        Method::DELETE,
        "/api/v1/me",
        Some(&token),
        Some(body.clone()),
    )
    .await;
    refused.problem(409, "last-owner");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("Acme Corp (acme)"),
        "{}",
        refused.body
    );
    // GET /api/v1/me still answers (same route).
    assert_eq!(
        call(&app, Method::GET, "/api/v1/me", Some(&token), None)
            .await
            .status,
        403
    );

    // Throttled after repeated wrong passwords (the server's clock skips the delays until the
    // block is long): 429 with Retry-After.
    let mut failures = 1;
    while failures < 9 {
        let answer = rp::rp_http()
            .delete(app.url("/api/v1/me"))
            .bearer_auth(&token)
            .json(&json!({ "password": "wrong" }))
            .send()
            .await
            .unwrap();
        match answer.status().as_u16() {
            403 => failures += 1,
            429 => app.clock.advance(retry_after(&answer)),
            other => panic!("unexpected {other}"),
        }
    }
    let throttled = rp::rp_http()
        .delete(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(retry_after(&throttled) > 1);
    crate::mgmt_helpers::answer(throttled)
        .await
        .problem(429, "too-many-attempts");
    app.clock.advance(60);

    // Once the organization is deleted (by its owner, through the management API), the deletion
    // goes through.
    let orgs_client = crate::mgmt_helpers::org_client(&app).await;
    let org_token =
        crate::mgmt_helpers::user_token(&app, &orgs_client, EMAIL, crate::mgmt_helpers::ORG_SCOPES)
            .await;
    let gone = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/orgs/{org}"),
        Some(&org_token),
        None,
    )
    .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    let deleted = call(
        &app,
        Method::DELETE,
        "/api/v1/me",
        Some(&token),
        Some(body.clone()),
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let events = audit(&app, "user.deleted").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.as_deref(), Some(user_id.as_str()));
    assert_eq!(login_status(&app, EMAIL, PASSWORD).await, 401);
    // The token speaks for nobody any more.
    let after = call(&app, Method::DELETE, "/api/v1/me", Some(&token), Some(body)).await;
    assert_eq!(after.status, 401, "{}", after.body);
}
