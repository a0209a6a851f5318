//! The invitation accept pages: a new person creates an account, an existing user logs in and
//! accepts, another account is told so, and dead links (unknown, used, revoked, expired) get their
//! own page.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::invitations::{Org, audit_actions, invitation_link, path_of, tokens_in};
use crate::rp::{self, PASSWORD, hidden_input, location};
use crate::support::smtp::SmtpSink;

/// Opens the mailed link in `browser`: the token moves to the session (303 to `/invitation`), then
/// the page is fetched; returns its status and HTML.
async fn open(app: &TestApp, browser: &reqwest::Client, link: &str) -> (u16, String) {
    let response = browser
        .get(app.url(link))
        .send()
        .await
        .expect("link opened");
    assert_eq!(response.status(), 303, "the link redirects");
    assert_eq!(location(app, &response).as_str(), app.url("/invitation"));
    page(app, browser).await
}

/// `GET /invitation`: status and HTML.
async fn page(app: &TestApp, browser: &reqwest::Client) -> (u16, String) {
    let response = browser
        .get(app.url("/invitation"))
        .send()
        .await
        .expect("page");
    let status = response.status().as_u16();
    (status, response.text().await.expect("html"))
}

/// Posts `form` to `path` in `browser`.
async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .expect("form posted")
}

/// The membership role of `email` in the organization, if any.
async fn role_of(app: &TestApp, org_id: &str, email: &str) -> Option<String> {
    sqlx::query_scalar(
        "select m.role from memberships m join users u on u.id = m.user_id \
         where m.org_id = $1 and u.email_lower = $2",
    )
    .bind(org_id)
    .bind(email.to_lowercase())
    .fetch_optional(&app.db.pool)
    .await
    .expect("membership query")
}

/// The state column of the only invitation.
async fn stored_state(app: &TestApp) -> String {
    sqlx::query_scalar("select state from invitations")
        .fetch_one(&app.db.pool)
        .await
        .expect("invitation state")
}

/// An owner's token and an invitation of `email` as `role`; returns the link.
async fn invite(org: &Org, email: &str, role: &str) -> String {
    let token = org.token("owner@example.com").await;
    org.invite_ok(&token, email, role).await;
    invitation_link(&org.app, email).await
}

on_both_databases!(
    an_invitation_through_smtp_lets_a_new_person_in,
    a_new_person_creates_an_account_and_gets_the_invited_role,
    the_account_form_checks_its_input,
    an_existing_user_logs_in_then_accepts,
    another_account_is_told_and_nothing_changes,
    an_expired_link_has_its_page_and_a_new_invitation_works,
    a_used_link_has_its_page,
    forms_without_csrf_are_refused,
    unknown_links_have_their_page,
    a_member_already_keeps_their_role,
    invite_only_servers_admit_the_invited,
);

/// Creates the account on the page opened by `link` in a fresh browser; returns the browser.
async fn register(app: &TestApp, link: &str, name: &str) -> reqwest::Client {
    let browser = rp::browser();
    let (status, html) = open(app, &browser, link).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden_input(&html, "csrf");
    let response = post(
        app,
        &browser,
        "/invitation/register",
        &[
            ("csrf", &csrf),
            ("name", name),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(app, &response).path(), "/invitation/accepted");
    browser
}

async fn an_invitation_through_smtp_lets_a_new_person_in(backend: Backend) {
    let sink = SmtpSink::start().await;
    let org = Org::spawn_with(backend, &[("LATCHKEY_SMTP_URL", &sink.url())]).await;
    let token = org.token("owner@example.com").await;
    org.invite_ok(&token, "smtp.person@example.com", "member")
        .await;

    let mail = sink
        .wait_for("smtp.person@example.com", "invited you to join Acme Corp")
        .await;
    assert!(mail.text.contains("as member"), "{}", mail.text);
    let browser = register(&org.app, &path_of(&mail.link("/invitation")), "Sam Smtp").await;

    assert_eq!(
        role_of(&org.app, &org.org_id, "smtp.person@example.com")
            .await
            .as_deref(),
        Some("member")
    );
    let tokens = tokens_in(
        &org.app,
        &browser,
        &org.client,
        "smtp.person@example.com",
        "openid email",
    )
    .await;
    let (_, access) = rp::decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["roles"], serde_json::json!(["member"]), "{access}");
    assert_eq!(access["org_slug"], "acme");
}

async fn a_new_person_creates_an_account_and_gets_the_invited_role(backend: Backend) {
    let org = Org::spawn(backend).await;
    let link = invite(&org, "Newcomer@Example.com", "admin").await;
    let browser = rp::browser();

    let (status, html) = open(&org.app, &browser, &link).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Acme Corp") && html.contains("admin") && html.contains("Olive Owner"));
    assert!(
        html.contains("name=\"password_confirm\""),
        "the account form: {html}"
    );
    let csrf = hidden_input(&html, "csrf");
    let response = post(
        &org.app,
        &browser,
        "/invitation/register",
        &[
            ("csrf", &csrf),
            ("name", "Nina Newcomer"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&org.app, &response).path(), "/invitation/accepted");
    let done = browser
        .get(org.app.url("/invitation/accepted"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(
        done.contains("You joined") && done.contains("Acme Corp"),
        "{done}"
    );

    let (verified, name): (i64, String) =
        sqlx::query_as("select email_verified, name from users where email_lower = $1")
            .bind("newcomer@example.com")
            .fetch_one(&org.app.db.pool)
            .await
            .unwrap();
    assert_eq!(verified, 1, "the link proved the address");
    assert_eq!(name, "Nina Newcomer");
    assert_eq!(
        role_of(&org.app, &org.org_id, "newcomer@example.com")
            .await
            .as_deref(),
        Some("admin")
    );
    assert_eq!(stored_state(&org.app).await, "accepted");
    let actions = audit_actions(&org.app, &org.org_id).await;
    assert!(
        actions.ends_with(&["invitation.accepted".into(), "member.added".into()]),
        "{actions:?}"
    );

    // Signed in by the acceptance; the tokens carry the invited role.
    let tokens = tokens_in(
        &org.app,
        &browser,
        &org.client,
        "newcomer@example.com",
        "openid email",
    )
    .await;
    let (_, id_token) = rp::decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["email"], "Newcomer@Example.com");
    let (_, access) = rp::decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["roles"], serde_json::json!(["admin"]), "{access}");
    assert_eq!(access["org_id"], org.org_id.as_str());
    let (_, id_token_claims) = rp::decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token_claims["roles"], serde_json::json!(["admin"]));
    // The new password works on the login page too.
    rp::sign_in(&org.app, &rp::browser(), "newcomer@example.com").await;
}

async fn the_account_form_checks_its_input(backend: Backend) {
    let org = Org::spawn(backend).await;
    let link = invite(&org, "careful@example.com", "member").await;
    let browser = rp::browser();
    let (_, html) = open(&org.app, &browser, &link).await;
    let csrf = hidden_input(&html, "csrf");

    let mismatch = post(
        &org.app,
        &browser,
        "/invitation/register",
        &[
            ("csrf", &csrf),
            ("name", "Carl"),
            ("password", PASSWORD),
            ("password_confirm", "something else entirely"),
        ],
    )
    .await;
    assert_eq!(mismatch.status(), 400);
    let html = mismatch.text().await.unwrap();
    assert!(html.contains("do not match"), "{html}");
    assert!(html.contains("value=\"Carl\""), "keeps the name");

    let short = post(
        &org.app,
        &browser,
        "/invitation/register",
        &[
            ("csrf", &csrf),
            ("name", "Carl"),
            ("password", "short"),
            ("password_confirm", "short"),
        ],
    )
    .await;
    assert_eq!(short.status(), 400);
    assert!(short.text().await.unwrap().contains("at least"));

    // Common, or built from the address or the name: refused under the password field.
    for weak in ["password123", "Summer2024!", "careful2024", "Carlsson1999"] {
        let refused = post(
            &org.app,
            &browser,
            "/invitation/register",
            &[
                ("csrf", &csrf),
                ("name", "Carl Carlsson"),
                ("password", weak),
                ("password_confirm", weak),
            ],
        )
        .await;
        assert_eq!(refused.status(), 400, "{weak}");
        let html = refused.text().await.unwrap();
        assert!(html.contains("aria-invalid=\"true\""), "{html}");
        assert!(html.contains("id=\"password-error\""), "{html}");
        assert!(
            html.contains("too easy to guess") || html.contains("name or email"),
            "{weak}: {html}"
        );
    }
    assert_eq!(org.app.count("users").await, 1, "no account yet");
    assert_eq!(stored_state(&org.app).await, "pending");
}

async fn an_existing_user_logs_in_then_accepts(backend: Backend) {
    let org = Org::spawn(backend).await;
    org.app.create_person("bob@example.com", "Bob").await;
    let link = invite(&org, "bob@example.com", "viewer").await;
    let browser = rp::browser();

    let (status, html) = open(&org.app, &browser, &link).await;
    assert_eq!(status, 200);
    assert!(html.contains("Sign in to accept"), "{html}");
    assert!(html.contains("/login?next=%2Finvitation"), "{html}");
    assert!(
        !html.contains("password_confirm"),
        "no account form for an existing account"
    );

    // The page's login link brings the person back to the invitation.
    let login = browser
        .get(org.app.url("/login?next=%2Finvitation"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hidden_input(&login, "next"), "/invitation");
    let response = post(
        &org.app,
        &browser,
        "/login",
        &[
            ("csrf", &hidden_input(&login, "csrf")),
            ("next", "/invitation"),
            ("email", "bob@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&org.app, &response).path(), "/invitation");
    let (status, html) = page(&org.app, &browser).await;
    assert_eq!(status, 200);
    assert!(html.contains("Accept the invitation"), "{html}");
    let csrf = hidden_input(&html, "csrf");
    let response = post(&org.app, &browser, "/invitation", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&org.app, &response).path(), "/invitation/accepted");

    assert_eq!(
        role_of(&org.app, &org.org_id, "bob@example.com")
            .await
            .as_deref(),
        Some("viewer")
    );
    let verified: i64 = sqlx::query_scalar(
        "select email_verified from users where email_lower = 'bob@example.com'",
    )
    .fetch_one(&org.app.db.pool)
    .await
    .unwrap();
    assert_eq!(verified, 1);
    let accepted_by: Option<String> = sqlx::query_scalar("select accepted_by from invitations")
        .fetch_one(&org.app.db.pool)
        .await
        .unwrap();
    assert!(accepted_by.is_some());

    let tokens: Value =
        tokens_in(&org.app, &browser, &org.client, "bob@example.com", "openid").await;
    let (_, access) = rp::decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["roles"], serde_json::json!(["viewer"]), "{access}");
}

async fn another_account_is_told_and_nothing_changes(backend: Backend) {
    let org = Org::spawn(backend).await;
    org.app.create_person("dave@example.com", "Dave").await;
    let link = invite(&org, "carol@example.com", "member").await;
    let browser = rp::browser();
    rp::sign_in(&org.app, &browser, "dave@example.com").await;

    let (status, html) = open(&org.app, &browser, &link).await;

    assert_eq!(status, 403);
    assert!(
        html.contains("This invitation is for <strong>carol@example.com</strong>; you are signed in as <strong>dave@example.com</strong>"),
        "{html}"
    );
    assert!(html.contains("action=\"/logout\""), "a way to sign out");
    let csrf = hidden_input(&html, "csrf");
    let response = post(&org.app, &browser, "/invitation", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), 303, "sent back to the explanation");
    let register = post(
        &org.app,
        &browser,
        "/invitation/register",
        &[
            ("csrf", &csrf),
            ("name", "X"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(register.status(), 303);
    assert_eq!(stored_state(&org.app).await, "pending");
    assert_eq!(
        role_of(&org.app, &org.org_id, "dave@example.com").await,
        None
    );
    assert_eq!(org.app.count("memberships").await, 1);
}

async fn an_expired_link_has_its_page_and_a_new_invitation_works(backend: Backend) {
    let org = Org::spawn_with(backend, &[("LATCHKEY_INVITE_TTL", "1h")]).await;
    let token = org.token("owner@example.com").await;
    let first = org.invite_ok(&token, "late@example.com", "member").await;
    let link = invitation_link(&org.app, "late@example.com").await;
    org.app.clock.advance(60 * 60);

    let browser = rp::browser();
    let (status, html) = open(&org.app, &browser, &link).await;
    assert_eq!(status, 410);
    assert!(html.contains("expired"), "{html}");
    assert!(!html.contains("<form"), "no form on a dead link");

    let token = org.token("owner@example.com").await;
    let again = org.invite_ok(&token, "late@example.com", "member").await;
    assert_eq!(
        again["id"], first["id"],
        "the expired invitation is renewed"
    );
    assert_eq!(again["state"], "pending");
    let link = invitation_link(&org.app, "late@example.com").await;
    let (status, _) = open(&org.app, &browser, &link).await;
    assert_eq!(status, 200);
}

async fn a_used_link_has_its_page(backend: Backend) {
    let org = Org::spawn(backend).await;
    org.app.create_person("erin@example.com", "Erin").await;
    let link = invite(&org, "erin@example.com", "member").await;
    let browser = rp::browser();
    rp::sign_in(&org.app, &browser, "erin@example.com").await;
    let (_, html) = open(&org.app, &browser, &link).await;
    let csrf = hidden_input(&html, "csrf");
    let first = post(&org.app, &browser, "/invitation", &[("csrf", &csrf)]).await;
    assert_eq!(first.status(), 303);

    let twice = post(&org.app, &browser, "/invitation", &[("csrf", &csrf)]).await;
    assert_eq!(twice.status(), 410, "accepting twice");
    assert!(twice.text().await.unwrap().contains("already used"));
    let (status, html) = open(&org.app, &rp::browser(), &link).await;
    assert_eq!(status, 410);
    assert!(html.contains("already used"), "{html}");
    assert_eq!(org.app.count("memberships").await, 2);
}

async fn forms_without_csrf_are_refused(backend: Backend) {
    let org = Org::spawn(backend).await;
    org.app.create_person("fay@example.com", "Fay").await;
    let link = invite(&org, "fay@example.com", "member").await;
    let browser = rp::browser();
    rp::sign_in(&org.app, &browser, "fay@example.com").await;
    open(&org.app, &browser, &link).await;

    let response = post(&org.app, &browser, "/invitation", &[]).await;
    assert_eq!(response.status(), 400);
    let response = post(&org.app, &browser, "/invitation", &[("csrf", "forged")]).await;
    assert_eq!(response.status(), 400);
    let stranger = rp::browser();
    open(&org.app, &stranger, &link).await;
    let response = post(
        &org.app,
        &stranger,
        "/invitation/register",
        &[
            ("name", "X"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(stored_state(&org.app).await, "pending");
}

async fn unknown_links_have_their_page(backend: Backend) {
    let org = Org::spawn(backend).await;
    let browser = rp::browser();

    let (status, html) = page(&org.app, &browser).await;
    assert_eq!(status, 404, "nothing opened yet");
    assert!(html.contains("No invitation"), "{html}");
    let (status, html) = open(&org.app, &browser, "/invitation?token=made-up").await;
    assert_eq!(status, 404);
    assert!(html.contains("not valid"), "{html}");
    let response = browser
        .get(org.app.url("/invitation?token="))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = browser
        .get(org.app.url("/invitation/accepted"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "nothing accepted: home");
}

async fn a_member_already_keeps_their_role(backend: Backend) {
    let org = Org::spawn(backend).await;
    org.app.create_person("gil@example.com", "Gil").await;
    let link = invite(&org, "gil@example.com", "viewer").await;
    // Added with a stronger role after the invitation was sent.
    org.app
        .cli(&[
            "org",
            "add-member",
            "--org",
            "acme",
            "--email",
            "gil@example.com",
            "--role",
            "admin",
        ])
        .await
        .json();
    let browser = rp::browser();
    rp::sign_in(&org.app, &browser, "gil@example.com").await;
    let (_, html) = open(&org.app, &browser, &link).await;
    let csrf = hidden_input(&html, "csrf");

    let response = post(&org.app, &browser, "/invitation", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), 303);
    let done = browser
        .get(org.app.url("/invitation/accepted"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        done.contains("already a member") && done.contains("admin"),
        "{done}"
    );
    assert_eq!(
        role_of(&org.app, &org.org_id, "gil@example.com")
            .await
            .as_deref(),
        Some("admin")
    );
    assert_eq!(stored_state(&org.app).await, "accepted");
}

async fn invite_only_servers_admit_the_invited(backend: Backend) {
    let org = Org::spawn_with(backend, &[("LATCHKEY_SIGNUP", "invite-only")]).await;
    let link = invite(&org, "vip@example.com", "member").await;

    register(&org.app, &link, "Vera Vip").await;

    assert_eq!(
        role_of(&org.app, &org.org_id, "vip@example.com")
            .await
            .as_deref(),
        Some("member")
    );
}
