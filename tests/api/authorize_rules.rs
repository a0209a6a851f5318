//! The rules of the authorization endpoint (RFC 6749 §4.1, OIDC Core §3.1.2, RFC 7636, RFC 9207,
//! RFC 9700) and of the login and consent pages behind it, one refusal at a time: untrusted clients
//! and redirect URIs get an error page and never a redirect; later errors travel back to the client
//! with `state` byte-exact and `iss`.

use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::rp::{
    self, Callback, Consent, PASSWORD, REDIRECT_URI, RegisteredClient, header, hidden_input,
    location,
};

on_both_databases!(
    untrusted_client_or_redirect_uri_gets_an_error_page_never_a_redirect,
    pkce_rules_are_enforced_with_error_redirects,
    unsupported_response_type_and_bad_scope_are_redirected,
    prompt_none_without_a_session_is_login_required,
    prompt_none_without_consent_is_consent_required,
    max_age_zero_forces_a_new_login,
    prompt_login_forces_a_new_login,
    unknown_parameters_are_ignored_and_state_and_nonce_echoed_exactly,
    wrong_password_and_unknown_email_look_the_same,
    login_without_a_valid_csrf_token_is_refused,
    session_cookie_is_http_only_lax_and_renewed_at_login,
    consent_deny_is_access_denied,
    consent_is_remembered_for_the_same_scopes,
);

const EMAIL: &str = "ada@example.com";
/// A state with characters that need encoding, to check the echo is byte-exact.
const STATE: &str = "a b&c=d/é+%20?#";

async fn app_with_user(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    app
}

/// `GET url` in a fresh browser, expecting an error redirect to the client; returns it after
/// checking `state`, `iss` and that no code came along.
async fn error_redirect(app: &TestApp, url: &str, error: &str) -> Callback {
    let response = rp::browser().get(url).send().await.unwrap();
    assert_eq!(response.status(), 303, "{url}");
    let callback = Callback {
        url: location(app, &response),
    };
    callback.assert_at(REDIRECT_URI);
    assert_eq!(callback.error(), error, "{}", callback.url);
    assert_eq!(
        callback.get("state").as_deref(),
        Some(STATE),
        "state byte-exact"
    );
    assert_eq!(callback.get("iss"), Some(app.issuer()), "RFC 9207");
    assert!(callback.get("code").is_none());
    assert!(callback.get("error_description").is_some());
    callback
}

/// Parameters of a valid request by `client` (with PKCE and [`STATE`]).
fn valid_params(client: &RegisteredClient, challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".to_owned()),
        ("client_id", client.id.clone()),
        ("redirect_uri", REDIRECT_URI.to_owned()),
        ("scope", "openid email".to_owned()),
        ("state", STATE.to_owned()),
        ("code_challenge", challenge.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
    ]
}

/// `params` with `name` replaced by `value` (or removed when `None`).
fn with(
    params: &[(&'static str, String)],
    name: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out: Vec<_> = params.iter().filter(|(k, _)| *k != name).cloned().collect();
    if let Some(v) = value {
        out.push((name, v.to_owned()));
    }
    out
}

fn url_of(app: &TestApp, params: &[(&'static str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.authorize_url(&pairs)
}

/// Redeems `code` for `client` (confidential) and returns the ID token's claims.
async fn id_token_claims(
    app: &TestApp,
    client: &RegisteredClient,
    code: &str,
    verifier: &str,
) -> serde_json::Value {
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", REDIRECT_URI),
            ],
        )
        .await;
    let tokens = rp::json_with_status(response, 200).await;
    let (_, claims) = app
        .verify_jwt(tokens["id_token"].as_str().expect("an ID token"))
        .await;
    claims
}

async fn untrusted_client_or_redirect_uri_gets_an_error_page_never_a_redirect(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (_, challenge) = rp::pkce();
    let valid = valid_params(&client, &challenge);
    let cases = [
        ("unknown client", with(&valid, "client_id", Some("nope"))),
        ("no client", with(&valid, "client_id", None)),
        (
            "unregistered redirect URI",
            with(&valid, "redirect_uri", Some("https://evil.example.com/cb")),
        ),
        (
            "redirect URI with a trailing slash",
            with(&valid, "redirect_uri", Some(&format!("{REDIRECT_URI}/"))),
        ),
        (
            "redirect URI with an extra query",
            with(&valid, "redirect_uri", Some(&format!("{REDIRECT_URI}?x=1"))),
        ),
        (
            "redirect URI in another case",
            with(
                &valid,
                "redirect_uri",
                Some("https://RP.example.com/callback"),
            ),
        ),
        ("no redirect URI", with(&valid, "redirect_uri", None)),
        (
            "bad redirect URI and a bad response type",
            with(
                &with(&valid, "redirect_uri", Some("https://evil.example.com/cb")),
                "response_type",
                Some("token"),
            ),
        ),
    ];

    for (what, params) in cases {
        let response = rp::browser()
            .get(url_of(&app, &params))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 400, "{what}");
        assert!(
            response.headers().get("location").is_none(),
            "{what}: never a redirect"
        );
        assert!(
            header(&response, "content-type").starts_with("text/html"),
            "{what}"
        );
        let html = response.text().await.unwrap();
        assert!(!html.contains("evil.example.com"), "{what}: {html}");
    }
    // Repeated parameters make the request malformed before anything is trusted.
    let doubled = format!(
        "{}&client_id={}",
        url_of(&app, &valid),
        urlencode(&client.id)
    );
    let response = rp::browser().get(doubled).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn pkce_rules_are_enforced_with_error_redirects(backend: Backend) {
    let app = app_with_user(backend).await;
    let public = app.register_client(&["--public"]).await;
    let confidential = app.register_client(&[]).await;
    let (verifier, challenge) = rp::pkce();
    let valid = valid_params(&public, &challenge);
    let cases = [
        (
            "public client without PKCE",
            with(
                &with(&valid, "code_challenge", None),
                "code_challenge_method",
                None,
            ),
        ),
        (
            "plain method",
            with(&valid, "code_challenge_method", Some("plain")),
        ),
        (
            "plain method with the verifier as challenge",
            with(
                &with(&valid, "code_challenge", Some(&verifier)),
                "code_challenge_method",
                Some("plain"),
            ),
        ),
        (
            "challenge without a method",
            with(&valid, "code_challenge_method", None),
        ),
        (
            "method without a challenge",
            with(&valid, "code_challenge", None),
        ),
        (
            "malformed challenge",
            with(&valid, "code_challenge", Some("short")),
        ),
        (
            "unknown method",
            with(&valid, "code_challenge_method", Some("S512")),
        ),
    ];

    for (what, params) in cases {
        let callback = error_redirect(&app, &url_of(&app, &params), "invalid_request").await;
        assert!(
            callback.get("error_description").is_some(),
            "{what}: {}",
            callback.url
        );
    }
    // A confidential client may not send a plain challenge either.
    let confidential_valid = valid_params(&confidential, &challenge);
    error_redirect(
        &app,
        &url_of(
            &app,
            &with(&confidential_valid, "code_challenge_method", Some("plain")),
        ),
        "invalid_request",
    )
    .await;
}

async fn unsupported_response_type_and_bad_scope_are_redirected(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app
        .register_client(&["--scope", "openid", "--scope", "email"])
        .await;
    let (_, challenge) = rp::pkce();
    let valid = valid_params(&client, &challenge);

    for response_type in ["token", "id_token", "code id_token", "code token"] {
        error_redirect(
            &app,
            &url_of(&app, &with(&valid, "response_type", Some(response_type))),
            "unsupported_response_type",
        )
        .await;
    }
    error_redirect(
        &app,
        &url_of(&app, &with(&valid, "response_type", None)),
        "invalid_request",
    )
    .await;
    for scope in ["openid profile", "openid org:write", "openid admin"] {
        error_redirect(
            &app,
            &url_of(&app, &with(&valid, "scope", Some(scope))),
            "invalid_scope",
        )
        .await;
    }
    error_redirect(
        &app,
        &url_of(&app, &with(&valid, "scope", None)),
        "invalid_scope",
    )
    .await;
    error_redirect(
        &app,
        &url_of(&app, &with(&valid, "response_mode", Some("fragment"))),
        "invalid_request",
    )
    .await;
    error_redirect(
        &app,
        &url_of(
            &app,
            &with(&valid, "request", Some("eyJhbGciOiJub25lIn0.e30.")),
        ),
        "request_not_supported",
    )
    .await;
}

async fn prompt_none_without_a_session_is_login_required(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&["--first-party"]).await;
    let (_, challenge) = rp::pkce();
    let valid = valid_params(&client, &challenge);

    error_redirect(
        &app,
        &url_of(&app, &with(&valid, "prompt", Some("none"))),
        "login_required",
    )
    .await;
    error_redirect(
        &app,
        &url_of(&app, &with(&valid, "prompt", Some("none login"))),
        "invalid_request",
    )
    .await;
}

async fn prompt_none_without_consent_is_consent_required(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let browser = rp::browser();
    rp::sign_in(&app, &browser, EMAIL).await;
    let (_, challenge) = rp::pkce();
    let silent = with(&valid_params(&client, &challenge), "prompt", Some("none"));

    let response = browser.get(url_of(&app, &silent)).send().await.unwrap();

    assert_eq!(response.status(), 303);
    let callback = Callback {
        url: location(&app, &response),
    };
    callback.assert_at(REDIRECT_URI);
    assert_eq!(callback.error(), "consent_required");
    assert_eq!(callback.get("state").as_deref(), Some(STATE));
    assert_eq!(callback.get("iss"), Some(app.issuer()));

    // Once the user has consented, the same silent request gets a code.
    let interactive = valid_params(&client, &challenge);
    let journey = rp::authorize(
        &app,
        &browser,
        &url_of(&app, &interactive),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(journey.saw_consent && !journey.saw_login);
    journey.callback.code();
    let again = rp::authorize(&app, &browser, &url_of(&app, &silent), EMAIL, Consent::Deny).await;
    assert!(!again.saw_login && !again.saw_consent);
    again.callback.code();
}

async fn max_age_zero_forces_a_new_login(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&["--first-party"]).await;
    let browser = rp::browser();
    let (_, challenge) = rp::pkce();
    let first = rp::authorize(
        &app,
        &browser,
        &url_of(&app, &valid_params(&client, &challenge)),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(first.saw_login);
    // The session is reused while no max_age asks otherwise.
    let (verifier, challenge) = rp::pkce();
    let reused = rp::authorize(
        &app,
        &browser,
        &url_of(
            &app,
            &with(&valid_params(&client, &challenge), "max_age", Some("3600")),
        ),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(!reused.saw_login);
    let claims = id_token_claims(&app, &client, &reused.callback.code(), &verifier).await;
    let first_login = claims["auth_time"]
        .as_i64()
        .expect("auth_time with max_age");

    let (verifier, challenge) = rp::pkce();
    let before_second_login = app.clock.now();
    let second = rp::authorize(
        &app,
        &browser,
        &url_of(
            &app,
            &with(&valid_params(&client, &challenge), "max_age", Some("0")),
        ),
        EMAIL,
        Consent::Allow,
    )
    .await;

    // OIDC Core §3.1.2.1: max_age=0 is equivalent to prompt=login.
    assert!(second.saw_login, "max_age=0 shows the login page again");
    let claims = id_token_claims(&app, &client, &second.callback.code(), &verifier).await;
    let auth_time = claims["auth_time"].as_i64().expect("auth_time");
    assert!(auth_time >= before_second_login, "{auth_time}");
    assert!(auth_time >= first_login);

    // A positive max_age asks again once that much time has passed since the login.
    app.clock.advance(120);
    let (_, challenge) = rp::pkce();
    let params = with(&valid_params(&client, &challenge), "max_age", Some("60"));
    let stale = rp::authorize(
        &app,
        &browser,
        &url_of(&app, &params),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(
        stale.saw_login,
        "120 s after the login, max_age=60 asks again"
    );
    let fresh = rp::authorize(
        &app,
        &browser,
        &url_of(&app, &params),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(!fresh.saw_login, "right after it, it does not");
}

async fn prompt_login_forces_a_new_login(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&["--first-party"]).await;
    let browser = rp::browser();
    let (_, challenge) = rp::pkce();
    let params = valid_params(&client, &challenge);
    let first = rp::authorize(
        &app,
        &browser,
        &url_of(&app, &params),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(first.saw_login);
    let silent = rp::authorize(
        &app,
        &browser,
        &url_of(&app, &params),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(!silent.saw_login, "the session is reused");

    let (verifier, challenge) = rp::pkce();
    let before = app.clock.now();
    let forced = rp::authorize(
        &app,
        &browser,
        &url_of(
            &app,
            &with(&valid_params(&client, &challenge), "prompt", Some("login")),
        ),
        EMAIL,
        Consent::Allow,
    )
    .await;

    assert!(forced.saw_login, "prompt=login shows the login page");
    let claims = id_token_claims(&app, &client, &forced.callback.code(), &verifier).await;
    assert!(claims["auth_time"].as_i64().unwrap() >= before);
}

async fn unknown_parameters_are_ignored_and_state_and_nonce_echoed_exactly(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&["--first-party"]).await;
    let (verifier, challenge) = rp::pkce();
    let nonce = "n-0S6_WzA2Mj é&=+/?";
    let mut params = with(&valid_params(&client, &challenge), "nonce", Some(nonce));
    params.extend([
        ("foo", "bar".to_owned()),
        ("ui_locales", "de fr".to_owned()),
        ("claims_locales", "de".to_owned()),
        ("acr_values", "urn:mace:incommon:iap:silver".to_owned()),
        ("display", "popup".to_owned()),
        ("empty", String::new()),
    ]);

    let journey = rp::authorize(
        &app,
        &rp::browser(),
        &url_of(&app, &params),
        EMAIL,
        Consent::Allow,
    )
    .await;

    let callback = journey.callback;
    callback.assert_at(REDIRECT_URI);
    assert_eq!(callback.get("state").as_deref(), Some(STATE));
    assert_eq!(callback.get("iss"), Some(app.issuer()));
    let names: Vec<String> = callback
        .url
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(names, ["code", "state", "iss"], "nothing else is echoed");
    let claims = id_token_claims(&app, &client, &callback.code(), &verifier).await;
    assert_eq!(claims["nonce"], nonce, "nonce byte-exact");
    // No state and no nonce: none comes back.
    let (verifier, challenge) = rp::pkce();
    let bare = with(&valid_params(&client, &challenge), "state", None);
    let journey = rp::authorize(
        &app,
        &rp::browser(),
        &url_of(&app, &bare),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(journey.callback.get("state").is_none());
    let claims = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert!(claims.get("nonce").is_none());
}

/// The text of the page's alert.
fn alert(html: &str) -> String {
    let start = html.find("role=\"alert\">").expect("an alert") + "role=\"alert\">".len();
    let end = html[start..].find('<').expect("end of alert") + start;
    html[start..end].to_owned()
}

async fn post_login(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = Url::parse(&app.url("/login")).unwrap();
    rp::submit_login(app, browser, &page, email, password).await
}

/// Whether a session row is signed in.
async fn signed_in_sessions(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from sessions where user_id is not null")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn wrong_password_and_unknown_email_look_the_same(backend: Backend) {
    let app = app_with_user(backend).await;
    let browser = rp::browser();

    let wrong = post_login(&app, &browser, EMAIL, "not the password").await;
    let unknown = post_login(&app, &browser, "nobody@example.com", PASSWORD).await;

    assert_eq!(wrong.status(), unknown.status());
    assert!(wrong.status().is_client_error(), "{}", wrong.status());
    assert!(wrong.headers().get("location").is_none());
    let (wrong, unknown) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(alert(&wrong), alert(&unknown));
    assert_eq!(
        alert(&wrong),
        latchkey::login::pages::LOGIN_FAILED.replace('\'', "&#39;")
    );
    // The form is shown again with a CSRF token, ready for another try.
    hidden_input(&wrong, "csrf");
    assert_eq!(signed_in_sessions(&app).await, 0);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from login_events where success = 0")
            .fetch_one(&app.db.pool)
            .await
            .unwrap(),
        2
    );
}

async fn login_without_a_valid_csrf_token_is_refused(backend: Backend) {
    let app = app_with_user(backend).await;
    let browser = rp::browser();
    let page = browser.get(app.url("/login")).send().await.unwrap();
    let csrf = hidden_input(&page.text().await.unwrap(), "csrf");
    let other_browser_csrf = {
        let other = rp::browser();
        let page = other.get(app.url("/login")).send().await.unwrap();
        hidden_input(&page.text().await.unwrap(), "csrf")
    };
    let forms: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no csrf", vec![]),
        ("empty csrf", vec![("csrf", String::new())]),
        ("wrong csrf", vec![("csrf", format!("{csrf}x"))]),
        ("another session's csrf", vec![("csrf", other_browser_csrf)]),
    ];

    for (what, mut form) in forms {
        form.extend([
            ("email", EMAIL.to_owned()),
            ("password", PASSWORD.to_owned()),
            ("authz", String::new()),
        ]);
        let response = browser
            .post(app.url("/login"))
            .form(&form)
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 400, "{what}");
        assert!(response.headers().get("location").is_none(), "{what}");
    }
    // Without any session cookie at all.
    let cookieless = rp::rp_http()
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cookieless.status(), 400);
    assert_eq!(signed_in_sessions(&app).await, 0, "nobody was signed in");
    let home = browser.get(app.url("/")).send().await.unwrap();
    assert!(!home.text().await.unwrap().contains(EMAIL));
}

/// The `latchkey_session` cookie set by a response, with its attributes.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("latchkey_session="))
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("latchkey_session=")
        .to_owned()
}

async fn session_cookie_is_http_only_lax_and_renewed_at_login(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (_, challenge) = rp::pkce();
    let browser = rp::browser();
    // The login page alone starts no session (its CSRF token is a cookie); a waiting authorization
    // request does, and that session must not survive the login (fixation, OWASP ASVS V3.2.1).
    let page = browser.get(app.url("/login")).send().await.unwrap();
    assert!(
        session_cookie(&page).is_none(),
        "no session for a page view"
    );
    let authorize = browser
        .get(url_of(&app, &valid_params(&client, &challenge)))
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), 303);
    let before = session_cookie(&authorize).expect("the waiting request starts a session");
    let login_page = location(&app, &authorize);
    let html = browser
        .get(login_page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let response = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("authz", hidden_input(&html, "authz")),
            ("email", EMAIL.to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 303);
    let after = session_cookie(&response).expect("a new session cookie at login");
    for cookie in [&before, &after] {
        let attributes: Vec<String> = cookie
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        assert!(attributes.contains(&"httponly".to_owned()), "{cookie}");
        assert!(attributes.contains(&"samesite=lax".to_owned()), "{cookie}");
        assert!(attributes.contains(&"path=/".to_owned()), "{cookie}");
    }
    let (old_id, new_id) = (cookie_value(&before), cookie_value(&after));
    assert_ne!(old_id, new_id, "the session id is renewed at login");
    // The old id is dead: presenting it is not a signed-in session.
    let fixated = rp::rp_http()
        .get(app.url("/"))
        .header("cookie", format!("latchkey_session={old_id}"))
        .send()
        .await
        .unwrap();
    assert!(!fixated.text().await.unwrap().contains(EMAIL));
    let signed_in = rp::rp_http()
        .get(app.url("/"))
        .header("cookie", format!("latchkey_session={new_id}"))
        .send()
        .await
        .unwrap();
    assert!(signed_in.text().await.unwrap().contains(EMAIL));
}

async fn consent_deny_is_access_denied(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let (_, challenge) = rp::pkce();

    let journey = rp::authorize(
        &app,
        &rp::browser(),
        &url_of(&app, &valid_params(&client, &challenge)),
        EMAIL,
        Consent::Deny,
    )
    .await;

    assert!(journey.saw_consent);
    let callback = journey.callback;
    callback.assert_at(REDIRECT_URI);
    assert_eq!(callback.error(), "access_denied");
    assert_eq!(callback.get("state").as_deref(), Some(STATE));
    assert_eq!(callback.get("iss"), Some(app.issuer()));
    assert!(callback.get("code").is_none());
    assert_eq!(app.count("consents").await, 0);
}

async fn consent_is_remembered_for_the_same_scopes(backend: Backend) {
    let app = app_with_user(backend).await;
    let client = app.register_client(&[]).await;
    let browser = rp::browser();
    let (_, challenge) = rp::pkce();
    let params = valid_params(&client, &challenge);
    let run = |params: Vec<(&'static str, String)>| {
        let url = url_of(&app, &params);
        let browser = browser.clone();
        let app = &app;
        async move { rp::authorize(app, &browser, &url, EMAIL, Consent::Allow).await }
    };

    let first = run(params.clone()).await;
    let second = run(params.clone()).await;
    let fewer = run(with(&params, "scope", Some("openid"))).await;
    let more = run(with(&params, "scope", Some("openid email profile"))).await;
    let forced = run(with(&params, "prompt", Some("consent"))).await;

    assert!(first.saw_consent);
    assert!(!second.saw_consent, "remembered");
    assert!(!fewer.saw_consent, "a subset is covered");
    assert!(more.saw_consent, "a new scope asks again");
    assert!(forced.saw_consent, "prompt=consent asks again");
    for journey in [first, second, fewer, more, forced] {
        journey.callback.code();
    }
    // Another client of the same user is asked separately.
    let other = app.register_client(&[]).await;
    let journey = run(valid_params(&other, &challenge)).await;
    assert!(journey.saw_consent);
}
