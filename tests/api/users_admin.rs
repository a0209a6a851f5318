//! The operator API over users (`/api/v1/users`): disabling ends every sign-in (refresh chain,
//! browser session, the API's tokens) and refuses the login with the neutral message, enabling
//! restores sign-in; deletion refuses the last owner of an organization; search and pagination;
//! only operators get in; every error is problem+json; every change is in the audit log.

use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{self as m, Answer};
use crate::recovery::request_reset;
use crate::rp::{self, Consent, PASSWORD, REDIRECT_URI, RegisteredClient, location, submit_login};
use crate::support::mail::{mails_to, wait_for_mail};

on_both_databases!(
    disable_ends_every_sign_in_and_enable_restores_sign_in,
    reset_links_do_not_outlive_disabling,
    delete_refuses_the_last_owner_then_works,
    sessions_revoke_ends_every_sign_in_but_not_the_account,
    patch_renames_and_is_audited,
    search_and_pagination,
    non_operators_are_refused,
    errors_are_problems,
);

pub(crate) const ADA: &str = "ada@example.com";
/// The message of every refused login (`login::pages::LOGIN_FAILED`).
pub(crate) const LOGIN_FAILED: &str = "The email or password is not correct.";
/// The scope that earns a refresh token.
const OFFLINE: &str = "openid email offline_access";

/// What a signed-in person holds: a browser with a session, and tokens from the code flow.
pub(crate) struct SignedIn {
    pub browser: reqwest::Client,
    pub access_token: String,
    pub refresh_token: String,
}

/// Signs `email` in with a fresh browser through an authorization with offline access, and
/// redeems the code at `client`.
pub(crate) async fn signed_in(app: &TestApp, client: &RegisteredClient, email: &str) -> SignedIn {
    let browser = rp::browser();
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", OFFLINE),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let code = rp::authorize(app, &browser, &url, email, Consent::Allow)
        .await
        .callback
        .code();
    let tokens = rp::json_with_status(redeem(app, client, &code, &verifier).await, 200).await;
    SignedIn {
        browser,
        access_token: tokens["access_token"].as_str().expect("access").to_owned(),
        refresh_token: tokens["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_owned(),
    }
}

/// Redeems an authorization code at `client`.
pub(crate) async fn redeem(
    app: &TestApp,
    client: &RegisteredClient,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    app.post_token(
        Some((&client.id, client.secret())),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The OAuth error of a refresh (or `"ok"`).
pub(crate) async fn refresh_outcome(
    app: &TestApp,
    client: &RegisteredClient,
    token: &str,
) -> String {
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("token endpoint JSON");
    if status == 200 {
        "ok".to_owned()
    } else {
        assert_eq!(status, 400, "{body}");
        body["error"].as_str().expect("error").to_owned()
    }
}

/// Where `GET /account` sends `browser`: `"account"` when the page shows, else the redirect's path.
pub(crate) async fn account_page(app: &TestApp, browser: &reqwest::Client) -> String {
    let response = browser
        .get(app.url("/account"))
        .send()
        .await
        .expect("account page");
    match response.status().as_u16() {
        200 => "account".to_owned(),
        303 => location(app, &response).path().to_owned(),
        other => panic!("GET /account answered {other}"),
    }
}

/// A login attempt from a fresh browser: status, and whether the page shows the neutral refusal.
pub(crate) async fn login(app: &TestApp, email: &str, password: &str) -> (u16, bool) {
    let page = Url::parse(&app.url("/login")).expect("login URL");
    let response = submit_login(app, &rp::browser(), &page, email, password).await;
    let status = response.status().as_u16();
    let body = response.text().await.expect("login answer");
    (status, body.contains(LOGIN_FAILED))
}

/// `GET /api/v1/roles` (any valid token) with `token`: 200, or 401 once the token's user is gone.
pub(crate) async fn api_status(app: &TestApp, token: &str) -> u16 {
    m::get(app, "/api/v1/roles", token).await.status
}

/// The operator audit log's events of `action`, newest first.
pub(crate) async fn audit(app: &TestApp, operator: &str, action: &str) -> Vec<Value> {
    let answer = m::get(app, &format!("/api/v1/audit-log?action={action}"), operator).await;
    answer.ok(200).as_array().expect("events").clone()
}

fn user_path(id: &str) -> String {
    format!("/api/v1/users/{id}")
}

async fn disable_ends_every_sign_in_and_enable_restores_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    app.create_person("bob@example.com", "Bob").await;
    let client = app.register_client(&[]).await;
    let operator = m::operator_token(&app).await;
    let ada = signed_in(&app, &client, ADA).await;
    // A code issued before the account is disabled, redeemed after.
    let (code, verifier) = rp::code_with_pkce(&app, &rp::browser(), &client, ADA).await;
    assert_eq!(account_page(&app, &ada.browser).await, "account");
    assert_eq!(api_status(&app, &ada.access_token).await, 200);

    let shown = m::get(&app, &user_path(&id), &operator).await;
    let shown = shown.ok(200);
    assert_eq!(shown["email"], ADA);
    assert_eq!(shown["disabled"], false);
    assert_eq!(shown["sessions"], 2, "{shown}");
    assert_eq!(shown["refresh_families"], 1, "{shown}");
    assert!(shown["last_sign_in_at"].is_i64(), "{shown}");
    assert_eq!(shown["memberships"], json!([]));

    let disabled = m::patch(&app, &user_path(&id), &operator, json!({"disabled": true})).await;
    let body = disabled.ok(200);
    assert_eq!(body["id"], id);
    assert_eq!(body["disabled"], true);
    assert_eq!(
        body["ended"],
        json!({"sessions": 2, "refresh_families": 1}),
        "{body}"
    );

    // Every way in is closed at once.
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant"
    );
    assert_eq!(account_page(&app, &ada.browser).await, "/login");
    assert_eq!(api_status(&app, &ada.access_token).await, 401);
    // Introspection (RFC 7662) says the same as the API: the token is no longer active.
    let introspected = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("token", ada.access_token.as_str())])
        .send()
        .await
        .expect("introspection sent");
    let introspected: Value = introspected.json().await.expect("introspection JSON");
    assert_eq!(introspected, json!({"active": false}));
    let redeemed = redeem(&app, &client, &code, &verifier).await;
    let redeemed = rp::json_with_status(redeemed, 400).await;
    assert_eq!(redeemed["error"], "invalid_grant");
    // The right password is refused exactly as a wrong one (for another account: no oracle).
    let refused = login(&app, ADA, PASSWORD).await;
    let wrong = login(&app, "bob@example.com", "not the password").await;
    assert_eq!(refused, wrong);
    assert!(refused.1, "the neutral message is shown");

    // Disabling again changes nothing and is not audited twice.
    let again = m::patch(&app, &user_path(&id), &operator, json!({"disabled": true})).await;
    assert_eq!(
        again.ok(200)["ended"],
        json!({"sessions": 0, "refresh_families": 0})
    );

    let enabled = m::patch(&app, &user_path(&id), &operator, json!({"disabled": false})).await;
    let body = enabled.ok(200);
    assert_eq!(body["disabled"], false);
    assert!(body.get("ended").is_none(), "{body}");
    // What disabling ended stays ended; signing in works again.
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant"
    );
    assert_eq!(account_page(&app, &ada.browser).await, "/login");
    rp::sign_in(&app, &ada.browser, ADA).await;
    assert_eq!(account_page(&app, &ada.browser).await, "account");
    let again = signed_in(&app, &client, ADA).await;
    assert_eq!(
        refresh_outcome(&app, &client, &again.refresh_token).await,
        "ok"
    );

    let disables = audit(&app, &operator, "user.disabled").await;
    assert_eq!(disables.len(), 1, "{disables:?}");
    assert_eq!(disables[0]["target_type"], "user");
    assert_eq!(disables[0]["target_id"], id);
    assert!(disables[0]["actor_client_id"].is_string());
    assert_eq!(disables[0]["actor_user_id"], Value::Null);
    assert_eq!(disables[0]["user_agent"], m::USER_AGENT);
    assert_eq!(disables[0]["details"]["ended"]["sessions"], 2);
    let enables = audit(&app, &operator, "user.enabled").await;
    assert_eq!(enables.len(), 1, "{enables:?}");
    assert_eq!(enables[0]["target_id"], id);
}

async fn reset_links_do_not_outlive_disabling(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    app.create_person("bob@example.com", "Bob").await;
    let operator = m::operator_token(&app).await;
    assert_eq!(request_reset(&app, ADA).await.status(), 303);
    let link = wait_for_mail(&app, ADA, "Reset your password")
        .await
        .link("/password/reset")
        .replacen(&app.issuer(), &app.address, 1);

    m::patch(&app, &user_path(&id), &operator, json!({"disabled": true}))
        .await
        .ok(200);
    let page = rp::browser().get(&link).send().await.expect("reset link");
    assert_eq!(page.status(), 400, "a disabled account's link is refused");

    // A new request gets the same answer as any other, but no mail.
    let disabled = request_reset(&app, ADA).await;
    let other = request_reset(&app, "bob@example.com").await;
    assert_eq!(disabled.status(), other.status());
    assert_eq!(location(&app, &disabled), location(&app, &other));
    wait_for_mail(&app, "bob@example.com", "Reset your password").await;
    assert_eq!(mails_to(&app, ADA).await.len(), 1);

    // Enabling the account does not revive the link mailed before it was disabled.
    m::patch(&app, &user_path(&id), &operator, json!({"disabled": false}))
        .await
        .ok(200);
    let page = rp::browser().get(&link).send().await.expect("reset link");
    assert_eq!(page.status(), 400, "the old link stays dead");
    assert_eq!(
        login(&app, ADA, PASSWORD).await.0,
        303,
        "password unchanged"
    );
}

async fn delete_refuses_the_last_owner_then_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (ada_id, ada_token) = m::person(&app, &client, ADA).await;
    app.create_person("bob@example.com", "Bob").await;
    let org_id = m::cli_org(&app, "Acme Corp", "acme", ADA).await;
    m::cli_org(&app, "Beta", "beta", ADA).await;
    m::cli_member(&app, "beta", "bob@example.com", "owner").await;
    m::cli_member(&app, "acme", "bob@example.com", "member").await;
    let operator = m::operator_token(&app).await;

    let refused = m::delete(&app, &user_path(&ada_id), &operator).await;
    refused.problem(409, "last-owner");
    let detail = refused.body["detail"].as_str().expect("detail");
    assert!(detail.contains("Acme Corp (acme)"), "{detail}");
    assert!(!detail.contains("Beta"), "Beta has another owner: {detail}");
    assert_eq!(api_status(&app, &ada_token).await, 200, "nothing changed");

    let shown = m::get(&app, &user_path(&ada_id), &operator).await;
    let memberships = shown.ok(200)["memberships"].clone();
    assert_eq!(
        memberships[0],
        json!({"org_id": org_id, "org_slug": "acme", "org_name": "Acme Corp", "role": "owner"})
    );

    // Ownership moves: Bob becomes an owner of Acme too.
    let promoted = m::patch(
        &app,
        &format!("/api/v1/orgs/acme/members/{}", bob_id(&app).await),
        &operator,
        json!({"role": "owner"}),
    )
    .await;
    promoted.ok(200);
    let deleted = m::delete(&app, &user_path(&ada_id), &operator).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(deleted.body, Value::Null);

    assert_eq!(api_status(&app, &ada_token).await, 401);
    m::get(&app, &user_path(&ada_id), &operator)
        .await
        .problem(404, "user-not-found");
    m::delete(&app, &user_path(&ada_id), &operator)
        .await
        .problem(404, "user-not-found");
    let events = audit(&app, &operator, "user.deleted").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target_id"], ada_id);
    assert_eq!(events[0]["details"]["email"], ADA);
    // Each organization's log tells its admins the member went with the account.
    let removed = m::get(
        &app,
        "/api/v1/orgs/acme/audit-log?action=member.removed",
        &operator,
    )
    .await;
    let removed = removed.ok(200).as_array().expect("events").clone();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["target_id"], ada_id);
    assert_eq!(removed[0]["details"]["account_deleted"], true);
}

async fn bob_id(app: &TestApp) -> String {
    sqlx::query_scalar("select id from users where email_lower = 'bob@example.com'")
        .fetch_one(&app.db.pool)
        .await
        .expect("bob")
}

async fn sessions_revoke_ends_every_sign_in_but_not_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    let client = app.register_client(&[]).await;
    let operator = m::operator_token(&app).await;
    let ada = signed_in(&app, &client, ADA).await;

    let path = format!("/api/v1/users/{id}/sessions/revoke");
    let ended = m::call(&app, Method::POST, &path, Some(&operator), None).await;
    assert_eq!(
        ended.ok(200),
        &json!({"ended": {"sessions": 1, "refresh_families": 1}})
    );
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant"
    );
    assert_eq!(account_page(&app, &ada.browser).await, "/login");
    let shown = m::get(&app, &user_path(&id), &operator).await;
    let shown = shown.ok(200);
    assert_eq!(
        (&shown["sessions"], &shown["refresh_families"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(shown["disabled"], false);
    rp::sign_in(&app, &ada.browser, ADA).await;

    let events = audit(&app, &operator, "user.sessions_ended").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target_id"], id);
    assert_eq!(events[0]["details"]["ended"]["refresh_families"], 1);
}

async fn patch_renames_and_is_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    let operator = m::operator_token(&app).await;
    let renamed = m::patch(
        &app,
        &user_path(&id),
        &operator,
        json!({"name": "  Ada Lovelace "}),
    )
    .await;
    let body = renamed.ok(200);
    assert_eq!(body["name"], "Ada Lovelace");
    assert_eq!(body["disabled"], false);
    m::patch(
        &app,
        &user_path(&id),
        &operator,
        json!({"name": "x".repeat(201)}),
    )
    .await
    .problem(400, "invalid-request");
    let events = audit(&app, &operator, "user.renamed").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["details"],
        json!({"old_name": "Ada", "new_name": "Ada Lovelace"})
    );
}

/// Follows `Link: rel="next"` from `first`, collecting the emails of every page.
async fn all_pages(app: &TestApp, token: &str, first: &str) -> (Vec<String>, usize) {
    let mut emails = Vec::new();
    let mut pages = 0;
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let answer: Answer = m::get(app, &path, token).await;
        let items = answer.ok(200).as_array().expect("a list").clone();
        emails.extend(
            items
                .iter()
                .map(|u| u["email"].as_str().expect("email").to_owned()),
        );
        pages += 1;
        assert!(pages < 20, "pagination does not end");
        next = answer.next.clone();
    }
    (emails, pages)
}

async fn search_and_pagination(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let all = [
        "ada@example.com",
        "adam@example.org",
        "Bob@Example.COM",
        "carol@example.net",
        "x_y@example.com",
        "xzy@example.com",
    ];
    for email in all {
        app.create_person(email, "Someone").await;
    }
    let operator = m::operator_token(&app).await;

    let (emails, pages) = all_pages(&app, &operator, "/api/v1/users?limit=2").await;
    assert_eq!(emails, all, "oldest first, every user once");
    assert_eq!(pages, 3);
    let first = m::get(&app, "/api/v1/users", &operator).await;
    let first = first.ok(200)[0].clone();
    assert_eq!(
        first.as_object().map(|o| {
            let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
            keys.sort_unstable();
            keys
        }),
        Some(vec![
            "created_at",
            "disabled",
            "email",
            "email_verified",
            "id",
            "name"
        ])
    );

    let (found, pages) =
        all_pages(&app, &operator, "/api/v1/users?email=EXAMPLE.COM&limit=1").await;
    assert_eq!(
        found,
        [
            "ada@example.com",
            "Bob@Example.COM",
            "x_y@example.com",
            "xzy@example.com"
        ],
        "case-insensitive, and the filter carries over to the next pages"
    );
    assert_eq!(pages, 4);
    let (found, _) = all_pages(&app, &operator, "/api/v1/users?email=ada").await;
    assert_eq!(found, ["ada@example.com", "adam@example.org"]);
    let (found, _) = all_pages(&app, &operator, "/api/v1/users?email=x_y").await;
    assert_eq!(found, ["x_y@example.com"], "_ is not a wildcard");
    let (found, _) = all_pages(&app, &operator, "/api/v1/users?email=%25").await;
    assert!(found.is_empty(), "% is not a wildcard: {found:?}");

    for bad in [
        "/api/v1/users?email=",
        "/api/v1/users?limit=0",
        "/api/v1/users?limit=201",
        "/api/v1/users?limit=many",
    ] {
        m::get(&app, bad, &operator)
            .await
            .problem(400, "invalid-query");
    }
    m::get(&app, "/api/v1/users?cursor=garbage", &operator)
        .await
        .problem(400, "invalid-cursor");
}

async fn non_operators_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    // A person's token that asked for (and got) `admin` is still a person's token.
    let client = app
        .register_client(&["--first-party", "--scope", "openid", "--scope", "admin"])
        .await;
    let user_token = m::user_token(&app, &client, ADA, "openid admin").await;
    let client_token = m::client_token(&app, &["org:read"]).await;
    for token in [&user_token, &client_token] {
        let refused: Vec<Answer> = vec![
            m::get(&app, "/api/v1/users", token).await,
            m::get(&app, &user_path(&id), token).await,
            m::patch(&app, &user_path(&id), token, json!({"disabled": true})).await,
            // Refused before the body is read.
            m::patch(&app, &user_path(&id), token, json!({"nonsense": 1})).await,
            m::delete(&app, &user_path(&id), token).await,
            m::call(
                &app,
                Method::POST,
                &format!("/api/v1/users/{id}/sessions/revoke"),
                Some(token),
                None,
            )
            .await,
        ];
        for answer in refused {
            answer.problem(403, "operator-required");
        }
    }
    let anonymous = m::call(&app, Method::GET, "/api/v1/users", None, None).await;
    anonymous.problem(401, "invalid-token");
    let operator = m::operator_token(&app).await;
    let shown = m::get(&app, &user_path(&id), &operator).await;
    assert_eq!(shown.ok(200)["disabled"], false, "nothing changed");
}

async fn errors_are_problems(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    let operator = m::operator_token(&app).await;
    let unknown = user_path("00000000-0000-0000-0000-000000000000");

    m::get(&app, &unknown, &operator)
        .await
        .problem(404, "user-not-found");
    m::patch(&app, &unknown, &operator, json!({"disabled": true}))
        .await
        .problem(404, "user-not-found");
    m::delete(&app, &unknown, &operator)
        .await
        .problem(404, "user-not-found");
    m::call(
        &app,
        Method::POST,
        &format!("{unknown}/sessions/revoke"),
        Some(&operator),
        None,
    )
    .await
    .problem(404, "user-not-found");

    let raw = |body: &'static str| {
        rp::rp_http()
            .patch(app.url(&user_path(&id)))
            .bearer_auth(&operator)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    m::answer(raw("{\"disabled\": tru").await.expect("sent"))
        .await
        .problem(400, "malformed-json");
    m::answer(
        raw("{\"disabled\": true, \"admin\": true}")
            .await
            .expect("sent"),
    )
    .await
    .problem(400, "invalid-body");
    m::answer(raw("{\"disabled\": \"yes\"}").await.expect("sent"))
        .await
        .problem(400, "invalid-body");
    m::answer(raw("{}").await.expect("sent"))
        .await
        .problem(400, "invalid-body");
    m::answer(raw("").await.expect("sent"))
        .await
        .problem(400, "missing-body");

    for (method, path) in [
        (Method::PUT, user_path(&id)),
        (Method::POST, user_path(&id)),
        (Method::POST, "/api/v1/users".to_owned()),
        (Method::DELETE, "/api/v1/users".to_owned()),
        (Method::GET, format!("/api/v1/users/{id}/sessions/revoke")),
    ] {
        m::call(&app, method, &path, Some(&operator), None)
            .await
            .problem(405, "method-not-allowed");
    }
    let shown = m::get(&app, &user_path(&id), &operator).await;
    assert_eq!(shown.ok(200)["disabled"], false, "nothing changed");
}
