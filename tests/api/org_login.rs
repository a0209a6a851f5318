//! Choosing the organization at login (the documented interface (README) "Organizations and roles in tokens"): automatic
//! selection, the picker and its remembered choice, `organization=`, `--require-org`,
//! `prompt=select_account` and `prompt=none`, and the consent page naming the organization. The
//! claims themselves, refresh and userinfo are in `org_login_tokens`.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::rp::{
    self, Consent, Journey, REDIRECT_URI, RegisteredClient, hidden_input, json_with_status,
    location,
};

on_both_databases!(
    several_memberships_ask_and_the_last_choice_is_preselected,
    organization_parameter_by_slug_or_id_skips_the_picker,
    organization_the_user_is_not_in_is_access_denied,
    malformed_organization_parameter_is_invalid_request,
    require_org_client_without_membership_shows_a_page_and_no_code,
    prompt_select_account_reopens_the_picker,
    prompt_none_with_several_memberships_is_interaction_required,
    picker_refuses_foreign_org_missing_choice_and_bad_csrf,
    consent_page_names_the_organization,
);

pub(crate) const EMAIL: &str = "ada@example.com";
pub(crate) const OTHER: &str = "grace@example.com";
pub(crate) const SCOPE: &str = "openid email offline_access";

/// `latchkey org create`: the new organization's id.
pub(crate) async fn create_org(app: &TestApp, name: &str, slug: &str, owner: &str) -> String {
    let out = app
        .cli(&[
            "org", "create", "--name", name, "--slug", slug, "--owner", owner,
        ])
        .await
        .json();
    out["id"].as_str().expect("org id").to_owned()
}

/// `latchkey org add-member`.
pub(crate) async fn add_member(app: &TestApp, org: &str, email: &str, role: &str) {
    let out = app
        .cli(&[
            "org",
            "add-member",
            "--org",
            org,
            "--email",
            email,
            "--role",
            role,
        ])
        .await
        .json();
    assert_eq!(out["role"], role);
}

/// An app with Ada and a confidential client registered with `client_args`.
pub(crate) async fn setup(
    backend: Backend,
    client_args: &[&str],
) -> (TestApp, RegisteredClient, String) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person(EMAIL, "Ada").await;
    let client = app.register_client(client_args).await;
    (app, client, ada)
}

/// The PKCE verifier of every authorization made by [`url`] (RFC 7636 Appendix B; PKCE is not what
/// these tests are about, and one fixed pair keeps [`redeem`] a one-argument call).
pub(crate) const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The S256 challenge of [`PKCE_VERIFIER`].
pub(crate) const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An authorization URL for `client` with [`SCOPE`], state `st` and `extra` parameters.
pub(crate) fn url(app: &TestApp, client: &RegisteredClient, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", SCOPE),
        ("state", "st"),
        ("code_challenge", PKCE_CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    app.authorize_url(&params)
}

/// Redeems `journey`'s code: the token response.
pub(crate) async fn redeem(
    app: &TestApp,
    client: &RegisteredClient,
    journey: &Journey,
) -> reqwest::Response {
    let code = journey.callback.code();
    app.post_token(
        Some((&client.id, client.secret())),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", PKCE_VERIFIER),
        ],
    )
    .await
}

/// Claims of the access and ID tokens of a token response (signatures checked with the JWKS).
pub(crate) async fn token_claims(app: &TestApp, tokens: &Value) -> (Value, Value) {
    let (_, at) = app
        .verify_jwt(tokens["access_token"].as_str().unwrap())
        .await;
    let (_, id) = app.verify_jwt(tokens["id_token"].as_str().unwrap()).await;
    (at, id)
}

/// The organization claims of a claim set, as `(org_id, org_slug, roles)`.
pub(crate) fn org_of(claims: &Value) -> (Value, Value, Value) {
    (
        claims["org_id"].clone(),
        claims["org_slug"].clone(),
        claims["roles"].clone(),
    )
}

pub(crate) fn expected(org_id: &str, slug: &str, role: &str) -> (Value, Value, Value) {
    (
        Value::from(org_id),
        Value::from(slug),
        serde_json::json!([role]),
    )
}

pub(crate) async fn userinfo(app: &TestApp, access_token: &str) -> Value {
    let response = rp::rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    json_with_status(response, 200).await
}

async fn several_memberships_ask_and_the_last_choice_is_preselected(backend: Backend) {
    let (app, client, _) = setup(backend, &["--first-party"]).await;
    app.create_person(OTHER, "Grace").await;
    let acme = create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let globex = create_org(&app, "Globex", "globex", OTHER).await;
    add_member(&app, "globex", EMAIL, "member").await;
    let browser = rp::browser();

    let journey = rp::authorize_choosing(
        &app,
        &browser,
        &url(&app, &client, &[]),
        EMAIL,
        Consent::Allow,
        Some(&globex),
    )
    .await;
    let html = journey.picker_html.clone().expect("the picker is shown");
    for text in ["Acme Corp", "acme", "Owner", "Globex", "globex", "Member"] {
        assert!(html.contains(text), "{text} in the picker:\n{html}");
    }
    assert_eq!(rp::picker_options(&html), [acme.clone(), globex.clone()]);
    let tokens = json_with_status(redeem(&app, &client, &journey).await, 200).await;
    let (at, id) = token_claims(&app, &tokens).await;
    assert_eq!(org_of(&at), expected(&globex, "globex", "member"));
    assert_eq!(org_of(&id), expected(&globex, "globex", "member"));

    // Next login (same browser, already signed in): the picker again, Globex preselected.
    let again = rp::authorize(
        &app,
        &browser,
        &url(&app, &client, &[]),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(!again.saw_login);
    let html = again
        .picker_html
        .clone()
        .expect("the picker is shown again");
    assert_eq!(rp::picker_checked(&html), Some(globex.clone()));
    let tokens = json_with_status(redeem(&app, &client, &again).await, 200).await;
    assert_eq!(
        org_of(&token_claims(&app, &tokens).await.0).0,
        globex.as_str()
    );
}

async fn organization_parameter_by_slug_or_id_skips_the_picker(backend: Backend) {
    let (app, client, _) = setup(backend, &["--first-party"]).await;
    let acme = create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let globex = create_org(&app, "Globex", "globex", EMAIL).await;
    let browser = rp::browser();
    for (named, id, slug) in [
        ("globex", &globex, "globex"),
        (acme.as_str(), &acme, "acme"),
    ] {
        let journey = rp::authorize(
            &app,
            &browser,
            &url(&app, &client, &[("organization", named)]),
            EMAIL,
            Consent::Allow,
        )
        .await;
        assert!(
            !journey.saw_picker(),
            "organization={named} skips the picker"
        );
        let tokens = json_with_status(redeem(&app, &client, &journey).await, 200).await;
        let (at, id_token) = token_claims(&app, &tokens).await;
        assert_eq!(org_of(&at), expected(id, slug, "owner"));
        assert_eq!(org_of(&id_token), expected(id, slug, "owner"));
    }
}

async fn organization_the_user_is_not_in_is_access_denied(backend: Backend) {
    let (app, client, _) = setup(backend, &["--first-party"]).await;
    app.create_person(OTHER, "Grace").await;
    create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let globex = create_org(&app, "Globex", "globex", OTHER).await;
    let browser = rp::browser();
    for named in ["globex", globex.as_str(), "no-such-org"] {
        let journey = rp::authorize(
            &app,
            &browser,
            &url(&app, &client, &[("organization", named)]),
            EMAIL,
            Consent::Allow,
        )
        .await;
        let callback = &journey.callback;
        callback.assert_at(REDIRECT_URI);
        assert_eq!(callback.error(), "access_denied", "organization={named}");
        assert_eq!(callback.get("code"), None);
        assert_eq!(callback.get("state").as_deref(), Some("st"));
        assert_eq!(callback.get("iss"), Some(app.issuer()));
    }
}

async fn malformed_organization_parameter_is_invalid_request(backend: Backend) {
    let (app, client, _) = setup(backend, &["--first-party"]).await;
    // (An empty `organization=` is no parameter at all, RFC 6749 §3.1.)
    let long = "x".repeat(300);
    for bad in ["   ", long.as_str()] {
        let response = rp::browser()
            .get(url(&app, &client, &[("organization", bad)]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        let callback = rp::Callback {
            url: location(&app, &response),
        };
        assert_eq!(callback.error(), "invalid_request");
        assert_eq!(callback.get("state").as_deref(), Some("st"));
    }
}

async fn require_org_client_without_membership_shows_a_page_and_no_code(backend: Backend) {
    let (app, client, _) = setup(backend, &["--first-party", "--require-org"]).await;
    let browser = rp::browser();
    let response = browser.get(url(&app, &client, &[])).send().await.unwrap();
    let login = location(&app, &response);
    assert_eq!(login.path(), "/login");
    let response = rp::submit_login(&app, &browser, &login, EMAIL, rp::PASSWORD).await;
    let next = location(&app, &response);
    let response = browser.get(next).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none(), "no redirect");
    let html = response.text().await.unwrap();
    assert!(
        html.contains("You need to be in an organization to use <strong>Test RP</strong>"),
        "{html}"
    );
    assert!(html.contains("href=\"/logout\""), "a way to sign out");
    assert_eq!(app.count("authorization_codes").await, 0, "no code");

    // Once in an organization, the same client works and the tokens name it.
    let org = create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let journey = rp::authorize(
        &app,
        &browser,
        &url(&app, &client, &[]),
        EMAIL,
        Consent::Allow,
    )
    .await;
    let tokens = json_with_status(redeem(&app, &client, &journey).await, 200).await;
    assert_eq!(org_of(&token_claims(&app, &tokens).await.0).0, org.as_str());
}

async fn prompt_select_account_reopens_the_picker(backend: Backend) {
    let (app, client, _) = setup(backend, &["--first-party"]).await;
    let acme = create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let browser = rp::browser();
    let first = rp::authorize(
        &app,
        &browser,
        &url(&app, &client, &[]),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(!first.saw_picker());
    let again = rp::authorize(
        &app,
        &browser,
        &url(&app, &client, &[("prompt", "select_account")]),
        EMAIL,
        Consent::Allow,
    )
    .await;
    let html = again
        .picker_html
        .clone()
        .expect("select_account shows the picker");
    assert_eq!(rp::picker_options(&html), std::slice::from_ref(&acme));
    let tokens = json_with_status(redeem(&app, &client, &again).await, 200).await;
    assert_eq!(
        org_of(&token_claims(&app, &tokens).await.0).0,
        acme.as_str()
    );
}

async fn prompt_none_with_several_memberships_is_interaction_required(backend: Backend) {
    let (app, client, _) = setup(backend, &["--first-party"]).await;
    create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let globex = create_org(&app, "Globex", "globex", EMAIL).await;
    let browser = rp::browser();
    rp::sign_in(&app, &browser, EMAIL).await;
    let journey = rp::authorize(
        &app,
        &browser,
        &url(&app, &client, &[("prompt", "none")]),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert_eq!(journey.callback.error(), "interaction_required");
    assert_eq!(journey.callback.get("iss"), Some(app.issuer()));
    // Naming the organization needs no interaction.
    let named = rp::authorize(
        &app,
        &browser,
        &url(
            &app,
            &client,
            &[("prompt", "none"), ("organization", &globex)],
        ),
        EMAIL,
        Consent::Allow,
    )
    .await;
    named.callback.code();
}

/// Walks `browser` to the picker of a fresh request: the picker page's URL and HTML.
async fn open_picker(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
) -> String {
    let response = browser.get(url(app, client, &[])).send().await.unwrap();
    let login = location(app, &response);
    let response = rp::submit_login(app, browser, &login, EMAIL, rp::PASSWORD).await;
    let response = browser.get(location(app, &response)).send().await.unwrap();
    let picker = location(app, &response);
    assert_eq!(picker.path(), "/organization");
    let response = browser.get(picker).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn picker_refuses_foreign_org_missing_choice_and_bad_csrf(backend: Backend) {
    let (app, client, _) = setup(backend, &["--first-party"]).await;
    app.create_person(OTHER, "Grace").await;
    let acme = create_org(&app, "Acme Corp", "acme", EMAIL).await;
    create_org(&app, "Globex", "globex", EMAIL).await;
    let initech = create_org(&app, "Initech", "initech", OTHER).await;
    let browser = rp::browser();
    let html = open_picker(&app, &browser, &client).await;
    let csrf = hidden_input(&html, "csrf");
    let authz = hidden_input(&html, "authz");
    let post = |form: Vec<(&'static str, String)>| {
        let browser = browser.clone();
        let target = app.url("/organization");
        async move { browser.post(target).form(&form).send().await.unwrap() }
    };
    let cases = [
        (
            "an organization the user is not in",
            vec![
                ("csrf", csrf.clone()),
                ("authz", authz.clone()),
                ("org", initech.clone()),
            ],
        ),
        (
            "no choice",
            vec![("csrf", csrf.clone()), ("authz", authz.clone())],
        ),
        (
            "a wrong CSRF token",
            vec![
                ("csrf", "forged".to_owned()),
                ("authz", authz.clone()),
                ("org", acme.clone()),
            ],
        ),
        (
            "no CSRF token",
            vec![("authz", authz.clone()), ("org", acme.clone())],
        ),
    ];
    for (what, form) in cases {
        let response = post(form).await;
        assert_eq!(response.status(), 400, "{what}");
        assert!(
            response.text().await.unwrap().contains("<h1>"),
            "an error page for {what}"
        );
    }
    // The request still completes with a valid choice.
    let response = post(vec![("csrf", csrf), ("authz", authz), ("org", acme)]).await;
    assert_eq!(response.status(), 303);
    let response = browser.get(location(&app, &response)).send().await.unwrap();
    let callback = rp::Callback {
        url: location(&app, &response),
    };
    callback.code();
}

async fn consent_page_names_the_organization(backend: Backend) {
    let (app, client, _) = setup(backend, &["--scope", "openid", "--scope", "org:read"]).await;
    create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let browser = rp::browser();
    let response = browser
        .get(app.authorize_url(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid org:read"),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await
        .unwrap();
    let login = location(&app, &response);
    let response = rp::submit_login(&app, &browser, &login, EMAIL, rp::PASSWORD).await;
    let response = browser.get(location(&app, &response)).send().await.unwrap();
    let consent = location(&app, &response);
    assert_eq!(consent.path(), "/consent");
    let html = browser
        .get(consent)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<strong>Acme Corp</strong>"), "{html}");
    assert!(html.contains("your role: owner"), "{html}");
    assert!(
        html.contains("Read your organizations and their members"),
        "{html}"
    );
}
