//! Sign-up through the page and the JSON API: the new user is signed in, owns the organization they
//! named, gets a verification mail, and their tokens say `email_verified` false until they confirm;
//! invite-only servers refuse both doors; every malformed request is a 4xx with a stable type.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD, RegisteredClient, hidden_input, json_with_status, location};
use crate::support::mail::wait_for_mail;

on_both_databases!(
    page_signup_signs_in_and_the_mailed_link_verifies_the_address,
    page_signup_with_an_organization_makes_the_user_its_owner,
    page_signup_continues_a_pending_authorization_request,
    page_refusals_show_the_form_again_without_the_password,
    page_refuses_a_taken_email_in_any_case_with_links,
    page_signup_needs_the_confirmation_only_when_it_is_sent,
    invite_only_server_refuses_the_page_and_the_api,
);

/// Subject of the verification mail.
pub const VERIFY_SUBJECT: &str = "Confirm your email address";

/// Fills and posts the sign-up form in `browser`; returns the answer.
pub async fn submit_signup(
    app: &TestApp,
    browser: &reqwest::Client,
    query: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = browser
        .get(app.url(&format!("/signup{query}")))
        .send()
        .await
        .expect("sign-up page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("page body");
    let mut form: Vec<(String, String)> = vec![
        ("csrf".into(), hidden_input(&html, "csrf")),
        ("authz".into(), hidden_input(&html, "authz")),
    ];
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    browser
        .post(app.url("/signup"))
        .form(&form)
        .send()
        .await
        .expect("sign-up posted")
}

/// Signs up `email` through the page with [`PASSWORD`]; asserts the redirect to the welcome page.
pub async fn sign_up(app: &TestApp, browser: &reqwest::Client, email: &str, organization: &str) {
    let response = submit_signup(
        app,
        browser,
        "",
        &[
            ("email", email),
            ("name", "Grace Hopper"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("organization", organization),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(app, &response).path(), "/signup/welcome");
}

/// Opens a verification link in `browser` and presses the confirm button; returns the answer.
pub async fn confirm(app: &TestApp, browser: &reqwest::Client, link: &str) -> reqwest::Response {
    let page = browser.get(link).send().await.expect("verify page");
    assert_eq!(page.status(), 200, "a usable link shows the confirm page");
    let html = page.text().await.expect("verify page body");
    assert!(html.contains("Confirm my address"), "{html}");
    let form = [
        ("csrf", hidden_input(&html, "csrf")),
        ("token", hidden_input(&html, "token")),
    ];
    browser
        .post(app.url("/verify-email"))
        .form(&form)
        .send()
        .await
        .expect("confirm posted")
}

/// A code flow in `browser` (signed in already, or signing in with [`PASSWORD`]) with a public
/// first-party client: the ID token's claims and the userinfo answer.
pub async fn claims(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
    email: &str,
) -> (Value, Value) {
    let (code, verifier) = rp::code_with_pkce(app, browser, client, email).await;
    redeem(app, client, &code, &verifier).await
}

/// Redeems a code of the public `client`: the ID token's claims and the userinfo answer.
pub async fn redeem(
    app: &TestApp,
    client: &RegisteredClient,
    code: &str,
    verifier: &str,
) -> (Value, Value) {
    let response = app
        .post_token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", rp::REDIRECT_URI),
                ("client_id", &client.id),
                ("code_verifier", verifier),
            ],
        )
        .await;
    let tokens = json_with_status(response, 200).await;
    let (_, id_claims) = app
        .verify_jwt(tokens["id_token"].as_str().expect("id_token"))
        .await;
    let userinfo = rp::rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access_token"))
        .send()
        .await
        .expect("userinfo");
    (id_claims, json_with_status(userinfo, 200).await)
}

/// `(email_verified, user id)` of the account with `email`, read from the database.
pub async fn account(app: &TestApp, email: &str) -> Option<(bool, String)> {
    let row: Option<(i64, String)> =
        sqlx::query_as("select email_verified, id from users where email_lower = $1")
            .bind(email.to_lowercase())
            .fetch_optional(&app.db.pool)
            .await
            .expect("users query");
    row.map(|(v, id)| (v == 1, id))
}

async fn page_signup_signs_in_and_the_mailed_link_verifies_the_address(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let client = app.register_client(&["--public", "--first-party"]).await;
    let browser = rp::browser();
    let email = "grace@example.com";

    sign_up(&app, &browser, email, "").await;

    // Signed in: the welcome page and the home page know the user and offer a new link.
    let welcome = browser
        .get(app.url("/signup/welcome"))
        .send()
        .await
        .unwrap();
    assert_eq!(welcome.status(), 200);
    let welcome = welcome.text().await.unwrap();
    assert!(welcome.contains("Check your inbox") && welcome.contains(email));
    let home = browser
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("Confirm your email address"), "{home}");
    assert!(home.contains("/verify-email/resend"));
    // Unverified users can sign in to applications; their tokens say so.
    let (id_claims, userinfo) = claims(&app, &browser, &client, email).await;
    assert_eq!(id_claims["email"], email);
    assert_eq!(id_claims["email_verified"], false);
    assert_eq!(userinfo["email_verified"], false);
    assert_eq!(userinfo["name"], "Grace Hopper");

    let mail = wait_for_mail(&app, email, VERIFY_SUBJECT).await;
    assert!(
        mail.text.contains("If it was not you, ignore this mail"),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("Confirm my email address"));
    // Nothing the signer-up typed reaches an address nobody has proven yet.
    assert!(!mail.text.contains("Grace Hopper") && !mail.html.contains("Grace Hopper"));
    let link = mail.link("/verify-email");
    assert!(link.starts_with(&app.issuer()), "{link}");
    // Opening the link (as a mail scanner would) spends nothing.
    let prefetch = rp::browser().get(&link).send().await.unwrap();
    assert_eq!(prefetch.status(), 200);
    assert!(!account(&app, email).await.unwrap().0);

    let confirmed = confirm(&app, &browser, &link).await;

    assert_eq!(confirmed.status(), 303);
    let done = browser
        .get(location(&app, &confirmed))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("Email address verified")
    );
    let (id_claims, userinfo) = claims(&app, &browser, &client, email).await;
    assert_eq!(id_claims["email_verified"], true);
    assert_eq!(userinfo["email_verified"], true);
    let home = browser
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !home.contains("/verify-email/resend"),
        "no notice once verified"
    );
    // A fresh browser signs in with the chosen password.
    let (id_claims, _) = claims(&app, &rp::browser(), &client, email).await;
    assert_eq!(id_claims["email_verified"], true);
}

async fn page_signup_with_an_organization_makes_the_user_its_owner(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.create_person("first@example.com", "First").await;
    app.cli(&[
        "org",
        "create",
        "--name",
        "Acme",
        "--owner",
        "first@example.com",
    ])
    .await
    .json();
    let browser = rp::browser();

    sign_up(&app, &browser, "ceo@acme.example", "Acme").await;

    // The new user's token lists the one membership: owner of the new organization.
    let client = app
        .register_client(&[
            "--public",
            "--first-party",
            "--scope",
            "openid",
            "--scope",
            "org:read",
        ])
        .await;
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", rp::REDIRECT_URI),
        ("scope", "openid org:read"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = rp::authorize(&app, &browser, &url, "ceo@acme.example", rp::Consent::Allow).await;
    let tokens = app
        .post_token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &journey.callback.code()),
                ("redirect_uri", rp::REDIRECT_URI),
                ("client_id", &client.id),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let tokens = json_with_status(tokens, 200).await;
    let me = rp::rp_http()
        .get(app.url("/api/v1/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let me = json_with_status(me, 200).await;
    let memberships = me["memberships"].as_array().expect("memberships");
    assert_eq!(memberships.len(), 1, "{me}");
    // "acme" is taken: the new organization gets the next free slug.
    assert_eq!(memberships[0]["org_slug"], "acme-2");
    assert_eq!(memberships[0]["org_name"], "Acme");
    assert_eq!(memberships[0]["role"], "owner");
    let (_, user_id) = account(&app, "ceo@acme.example").await.unwrap();
    let actions: Vec<String> = sqlx::query_scalar(
        "select action from audit_events where actor_user_id = $1 order by action",
    )
    .bind(&user_id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(actions, vec!["member.added", "organization.created"]);
}

async fn page_signup_continues_a_pending_authorization_request(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let client = app.register_client(&["--public", "--first-party"]).await;
    let browser = rp::browser();
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", rp::REDIRECT_URI),
        ("scope", "openid email profile"),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let to_login = browser.get(&url).send().await.unwrap();
    let login = location(&app, &to_login);
    assert_eq!(login.path(), "/login");
    let authz = login
        .query_pairs()
        .find(|(k, _)| k == "authz")
        .map(|(_, v)| v.into_owned())
        .expect("authz in the login URL");

    let response = submit_signup(
        &app,
        &browser,
        &format!("?authz={authz}"),
        &[
            ("email", "new@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;

    assert_eq!(response.status(), 303);
    let next = location(&app, &response);
    assert_eq!(next.path(), "/authorize/continue");
    let back = browser.get(next).send().await.unwrap();
    assert_eq!(back.status(), 303);
    let callback = rp::Callback {
        url: location(&app, &back),
    };
    callback.assert_at(rp::REDIRECT_URI);
    assert_eq!(callback.get("state").as_deref(), Some("st"));
    let (id_claims, _) = redeem(&app, &client, &callback.code(), &verifier).await;
    assert_eq!(id_claims["email"], "new@example.com");
    assert_eq!(id_claims["email_verified"], false);
}

async fn page_refusals_show_the_form_again_without_the_password(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let browser = rp::browser();
    let secret = "sesame-open-wide";
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("email", "ada@example.com"),
                ("password", "short"),
                ("password_confirm", "short"),
            ],
            "at least 8 characters",
        ),
        (
            &[
                ("email", "ada@example.com"),
                ("password", secret),
                ("password_confirm", "other-words-here"),
            ],
            "do not match",
        ),
        (
            &[
                ("email", "not-an-address"),
                ("password", secret),
                ("password_confirm", secret),
            ],
            "valid email address",
        ),
        (
            &[
                ("email", "ada@example.com"),
                ("password", secret),
                ("password_confirm", secret),
                ("organization", "bad\u{7}name"),
            ],
            "Organization name must be",
        ),
    ];
    for (fields, message) in cases {
        let response = submit_signup(&app, &browser, "", fields).await;
        assert_eq!(response.status(), 400, "{fields:?}");
        let html = response.text().await.unwrap();
        assert!(html.contains(message), "{message:?} not in:\n{html}");
        assert!(
            html.contains(&format!("value=\"{}\"", fields[0].1)),
            "typed email kept"
        );
        assert!(
            !html.contains(secret) && !html.contains("short\""),
            "never the password"
        );
    }
    // Missing or wrong CSRF token: 400, nothing created.
    let response = browser
        .post(app.url("/signup"))
        .form(&[
            ("email", "ada@example.com"),
            ("password", secret),
            ("password_confirm", secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("mail_outbox").await, 0);
    // Nobody signed in: the welcome page sends the browser to the login page.
    let welcome = browser
        .get(app.url("/signup/welcome"))
        .send()
        .await
        .unwrap();
    assert_eq!(welcome.status(), 303);
    assert_eq!(location(&app, &welcome).path(), "/login");
}

async fn page_refuses_a_taken_email_in_any_case_with_links(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.create_person("taken@example.com", "Taken").await;

    let response = submit_signup(
        &app,
        &rp::browser(),
        "",
        &[
            ("email", "TAKEN@Example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;

    assert_eq!(response.status(), 409);
    let html = response.text().await.unwrap();
    assert!(html.contains("An account with this email exists: log in or reset your password"));
    assert!(html.contains("href=\"/login\"") && html.contains("href=\"/password/forgot\""));
    assert_eq!(app.count("users").await, 1);
}

async fn invite_only_server_refuses_the_page_and_the_api(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_SIGNUP", "invite-only")]).await;
    let browser = rp::browser();

    let page = browser.get(app.url("/signup")).send().await.unwrap();
    assert_eq!(page.status(), 403);
    let html = page.text().await.unwrap();
    assert!(html.contains("by invitation only") && !html.contains("name=\"password\""));
    let posted = browser
        .post(app.url("/signup"))
        .form(&[
            ("email", "a@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 403);
    let api = rp::rp_http()
        .post(app.url("/api/v1/signup"))
        .json(&json!({"email": "a@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(rp::header(&api, "content-type"), "application/problem+json");
    let problem = json_with_status(api, 403).await;
    assert_eq!(problem["type"], "urn:latchkey:problem:signup-disabled");
    assert_eq!(app.count("users").await, 0);
}

/// A person on the page always sends "confirm password"; a script posting the form without it is not
/// refused for that, but a confirmation that differs is.
async fn page_signup_needs_the_confirmation_only_when_it_is_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let mismatch = submit_signup(
        &app,
        &rp::browser(),
        "",
        &[
            ("email", "eve@example.com"),
            ("password", "a long password 1"),
            ("password_confirm", "a long password 2"),
        ],
    )
    .await;
    assert_eq!(mismatch.status(), 400);
    assert_eq!(app.count("users").await, 0);

    let scripted = submit_signup(
        &app,
        &rp::browser(),
        "",
        &[
            ("email", "eve@example.com"),
            ("password", "a long password 1"),
        ],
    )
    .await;
    assert_eq!(
        scripted.status(),
        303,
        "signed up without the confirmation field"
    );
    assert_eq!(app.count("users").await, 1);
}
