//! The device authorization grant (RFC 8628, docs/device.md): the device's part with the
//! `openidconnect` client (endpoint from discovery) and over raw HTTP for the refusals; the person's
//! part through the `/device` page in a cookie-keeping browser.

use std::time::Duration;

use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse, Scope,
    TokenResponse, TokenUrl,
};
use serde_json::Value;
use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::mfa_helpers;
use crate::mgmt_helpers;
use crate::org_login::{EMAIL, OTHER, add_member, create_org};
use crate::rp::{
    self, PASSWORD, RegisteredClient, hidden_input, json_with_status, location, rp_http,
};

on_both_databases!(
    whole_flow_with_the_openidconnect_client_carries_the_org_claims,
    device_authorization_answer_and_its_refusals,
    polling_pending_slow_down_and_expired,
    denied_is_access_denied,
    approved_code_is_redeemed_once,
    another_clients_device_code_is_invalid_grant,
    wrong_codes_show_the_form_then_the_limit_applies,
    signed_out_goes_to_login_and_csrf_is_required,
    organization_choice_and_policies_at_approval,
    second_factor_required_by_the_organization_signs_in_again,
    a_registered_resource_named_at_the_poll_is_the_audience,
);

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A confidential client ("Test RP") allowed the device grant (and refresh tokens).
pub(crate) async fn device_client(app: &TestApp) -> RegisteredClient {
    app.register_client(&[
        "--grant-type",
        DEVICE_GRANT,
        "--grant-type",
        "refresh_token",
    ])
    .await
}

/// `POST /device_authorization` as `client` with `extra` parameters (scope `openid email
/// offline_access` unless `extra` names one).
async fn start(
    app: &TestApp,
    client: &RegisteredClient,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = extra.to_vec();
    if !extra.iter().any(|(name, _)| *name == "scope") {
        form.push(("scope", "openid email offline_access"));
    }
    if client.secret.is_none() {
        form.push(("client_id", client.id.as_str()));
    }
    let mut request = rp_http().post(app.url("/device_authorization")).form(&form);
    if let Some(secret) = &client.secret {
        request = request.basic_auth(&client.id, Some(secret));
    }
    request.send().await.expect("device authorization sent")
}

/// A started device authorization's JSON.
pub(crate) async fn started(app: &TestApp, client: &RegisteredClient) -> Value {
    json_with_status(start(app, client, &[]).await, 200).await
}

/// One poll of the token endpoint with `device_code`, as `client`.
pub(crate) async fn poll(
    app: &TestApp,
    client: &RegisteredClient,
    device_code: &str,
) -> reqwest::Response {
    app.post_token(
        Some((&client.id, client.secret())),
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
    )
    .await
}

/// The `error` of a refused poll (status 400).
async fn poll_error(app: &TestApp, client: &RegisteredClient, device_code: &str) -> String {
    let response = poll(app, client, device_code).await;
    assert_eq!(rp::header(&response, "cache-control"), "no-store");
    let body = json_with_status(response, 400).await;
    body["error"].as_str().expect("error").to_owned()
}

/// A browser signed in as `email` through the login page, sent there by `/device` (which the
/// login page then returns to).
async fn signed_in_browser(app: &TestApp, email: &str) -> reqwest::Client {
    let browser = rp::browser();
    let response = browser
        .get(app.url("/device"))
        .send()
        .await
        .expect("device page");
    assert_eq!(response.status(), 303, "signed out: to the login page");
    let to = location(app, &response);
    assert_eq!(to.path(), "/login");
    let landed = submit_login_with_next(app, &browser, &to, email).await;
    assert_eq!(landed.path(), "/device");
    browser
}

/// Submits the login page at `page` (with its `next`) as `email`; returns where the server sends
/// the browser.
async fn submit_login_with_next(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &Url,
    email: &str,
) -> Url {
    let response = browser.get(page.clone()).send().await.expect("login page");
    assert_eq!(response.status(), 200, "login page {page}");
    let html = response.text().await.expect("login page body");
    let form = [
        ("csrf", hidden_input(&html, "csrf")),
        ("authz", hidden_input(&html, "authz")),
        ("next", hidden_input(&html, "next")),
        ("email", email.to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let response = browser
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .expect("login posted");
    assert_eq!(response.status(), 303, "login succeeds");
    location(app, &response)
}

/// GETs `/device` (with `user_code` prefilled when given) and returns the form's CSRF token.
async fn device_form(app: &TestApp, browser: &reqwest::Client, user_code: Option<&str>) -> String {
    let url = match user_code {
        Some(code) => format!("{}?user_code={code}", app.url("/device")),
        None => app.url("/device"),
    };
    let response = browser.get(url).send().await.expect("device page");
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("device page body");
    if let Some(code) = user_code {
        assert!(
            html.contains(&format!("value=\"{code}\"")),
            "prefilled: {html}"
        );
    }
    hidden_input(&html, "csrf")
}

/// POSTs the `/device` form; returns the status and the page.
async fn post_device(
    app: &TestApp,
    browser: &reqwest::Client,
    form: &[(&str, &str)],
) -> (u16, String) {
    let response = browser
        .post(app.url("/device"))
        .form(form)
        .send()
        .await
        .expect("device form posted");
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

/// Types `user_code` and answers `decision` (`approve` / `deny`) on the confirmation page, keeping
/// the organization it offers; returns the confirmation page and the last one.
async fn answer(
    app: &TestApp,
    browser: &reqwest::Client,
    user_code: &str,
    decision: &str,
    org: Option<&str>,
) -> (String, u16, String) {
    let csrf = device_form(app, browser, Some(user_code)).await;
    let (status, confirm) =
        post_device(app, browser, &[("csrf", &csrf), ("user_code", user_code)]).await;
    assert_eq!(status, 200, "{confirm}");
    let csrf = hidden_input(&confirm, "csrf");
    let offered = rp::picker_checked(&confirm).or_else(|| {
        confirm
            .contains("type=\"hidden\" name=\"org\"")
            .then(|| hidden_input(&confirm, "org"))
    });
    let org = org.map(str::to_owned).or(offered).unwrap_or_default();
    let (status, page) = post_device(
        app,
        browser,
        &[
            ("csrf", &csrf),
            ("user_code", &hidden_input(&confirm, "user_code")),
            ("decision", decision),
            ("org", &org),
        ],
    )
    .await;
    (confirm, status, page)
}

async fn whole_flow_with_the_openidconnect_client_carries_the_org_claims(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.clock.freeze();
    let ada = app.create_person(EMAIL, "Ada").await;
    let org = create_org(&app, "Acme", "acme", EMAIL).await;
    let client = device_client(&app).await;

    // The device: the endpoint from discovery, through the openidconnect client.
    let http = rp_http();
    let discovery: Value = http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("JSON");
    let device_url = discovery["device_authorization_endpoint"]
        .as_str()
        .expect("device_authorization_endpoint");
    assert_eq!(device_url, format!("{}/device_authorization", app.issuer()));
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .expect("grant types")
            .iter()
            .any(|g| g == DEVICE_GRANT)
    );
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer()).expect("issuer"), &http)
            .await
            .expect("discovery succeeds");
    let token_url = metadata.token_endpoint().expect("token endpoint").clone();
    let oidc = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        Some(ClientSecret::new(client.secret().to_owned())),
    )
    .set_token_uri(TokenUrl::from_url(token_url.url().clone()))
    .set_device_authorization_url(
        DeviceAuthorizationUrl::new(device_url.to_owned()).expect("device URL"),
    );
    let details: CoreDeviceAuthorizationResponse = oidc
        .exchange_device_code()
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    let user_code = details.user_code().secret().clone();
    assert_eq!(
        details.verification_uri().as_str(),
        format!("{}/device", app.issuer())
    );
    let complete = details
        .verification_uri_complete()
        .expect("verification_uri_complete")
        .secret()
        .clone();
    assert_eq!(
        complete,
        format!("{}/device?user_code={user_code}", app.issuer())
    );

    // The person opens the complete URI, signs in, confirms.
    let browser = rp::browser();
    let response = browser.get(&complete).send().await.expect("device page");
    assert_eq!(response.status(), 303);
    let login = location(&app, &response);
    assert_eq!(login.path(), "/login");
    let back = submit_login_with_next(&app, &browser, &login, EMAIL).await;
    assert_eq!(
        back.as_str(),
        format!("{}/device?user_code={user_code}", app.address)
    );
    let (confirm, status, done) = answer(&app, &browser, &user_code, "approve", None).await;
    assert!(confirm.contains("Test RP"), "{confirm}");
    assert!(
        confirm.contains(&user_code),
        "the code is shown to compare: {confirm}"
    );
    assert!(
        confirm.contains("Acme"),
        "the only organization is named: {confirm}"
    );
    assert!(confirm.contains(EMAIL), "signed in as: {confirm}");
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("return to your device"), "{done}");

    // The device polls (each of the client's waits moves the server's clock).
    let clock = app.clock.clone();
    let tokens = oidc
        .exchange_device_access_token(&details)
        .request_async(
            &http,
            move |wait: Duration| {
                clock.advance(i64::try_from(wait.as_secs()).expect("secs"));
                async {}
            },
            None,
        )
        .await
        .expect("tokens");
    assert!(
        tokens.refresh_token().is_some(),
        "offline_access: a refresh token"
    );
    let id_token = tokens.id_token().expect("an ID token with openid");
    let claims = id_token
        .claims(&oidc.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .expect("ID token verifies");
    assert_eq!(claims.subject().as_str(), ada);
    assert!(
        claims.auth_time().is_some(),
        "auth_time of the approving sign-in"
    );
    assert!(claims.nonce().is_none());
    let (_, access) = app.verify_jwt(tokens.access_token().secret()).await;
    assert_eq!(access["sub"], ada.as_str());
    assert_eq!(access["client_id"], client.id.as_str());
    assert_eq!(access["org_id"], org.as_str());
    assert_eq!(access["org_slug"], "acme");
    assert!(
        access.get("sid").is_none(),
        "not tied to the browser session: {access}"
    );

    // The refresh token works, with the organization kept.
    let refreshed = json_with_status(
        app.post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens.refresh_token().expect("rt").secret(),
                ),
            ],
        )
        .await,
        200,
    )
    .await;
    let (_, access) = rp::decode_jwt(refreshed["access_token"].as_str().expect("access"));
    assert_eq!(access["org_id"], org.as_str());

    // The approval is in the organization's audit log, by the person, for the client.
    let operator = mgmt_helpers::operator_token(&app).await;
    let logged = mgmt_helpers::get(
        &app,
        &format!("/api/v1/orgs/{org}/audit-log?action=device.approved"),
        &operator,
    )
    .await;
    let events = logged.ok(200).as_array().expect("a list").clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor_user_id"], ada.as_str());
    assert_eq!(events[0]["target_id"], client.id.as_str());
    assert_eq!(events[0]["details"]["scope"], "openid email offline_access");
}

async fn device_authorization_answer_and_its_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = device_client(&app).await;
    let response = start(&app, &client, &[]).await;
    assert_eq!(rp::header(&response, "cache-control"), "no-store");
    let body = json_with_status(response, 200).await;
    let user_code = body["user_code"].as_str().expect("user_code");
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );
    assert!(body["device_code"].as_str().expect("device_code").len() >= 43);
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);
    assert_eq!(body["verification_uri"], format!("{}/device", app.issuer()));
    // Only hashes are stored.
    assert_eq!(app.count("device_authorizations").await, 1);

    // A public client sends its client_id alone.
    let public = app
        .register_client(&["--public", "--grant-type", DEVICE_GRANT])
        .await;
    json_with_status(start(&app, &public, &[]).await, 200).await;

    // A client without the grant.
    let plain = app.register_client(&[]).await;
    let refused = json_with_status(start(&app, &plain, &[]).await, 400).await;
    assert_eq!(refused["error"], "unauthorized_client");
    // A scope the client may not ask for.
    let refused = json_with_status(
        start(&app, &client, &[("scope", "openid admin")]).await,
        400,
    )
    .await;
    assert_eq!(refused["error"], "invalid_scope");
    // A wrong secret.
    let wrong = RegisteredClient {
        id: client.id.clone(),
        secret: Some("not-the-secret".into()),
    };
    let refused = json_with_status(start(&app, &wrong, &[]).await, 401).await;
    assert_eq!(refused["error"], "invalid_client");
    // A malformed organization hint.
    let long = "x".repeat(200);
    let refused =
        json_with_status(start(&app, &client, &[("organization", &long)]).await, 400).await;
    assert_eq!(refused["error"], "invalid_request");
    // The grant without a device_code.
    let refused = json_with_status(
        app.post_token(
            Some((&client.id, client.secret())),
            &[("grant_type", DEVICE_GRANT)],
        )
        .await,
        400,
    )
    .await;
    assert_eq!(refused["error"], "invalid_request");
}

async fn polling_pending_slow_down_and_expired(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    let client = device_client(&app).await;
    let device_code = started(&app, &client).await["device_code"]
        .as_str()
        .expect("device_code")
        .to_owned();
    assert_eq!(
        poll_error(&app, &client, &device_code).await,
        "authorization_pending"
    );
    // Sooner than the interval: slow_down, and the interval is now 10 seconds.
    assert_eq!(poll_error(&app, &client, &device_code).await, "slow_down");
    app.clock.advance(5);
    assert_eq!(poll_error(&app, &client, &device_code).await, "slow_down");
    app.clock.advance(15);
    assert_eq!(
        poll_error(&app, &client, &device_code).await,
        "authorization_pending"
    );
    app.clock.advance(600);
    assert_eq!(
        poll_error(&app, &client, &device_code).await,
        "expired_token"
    );
    // An unknown code.
    assert_eq!(
        poll_error(&app, &client, "no-such-code").await,
        "invalid_grant"
    );
    // The purge keeps an expired row an hour (a late poll still reads `expired_token`), then
    // deletes it.
    let now = app.clock.now();
    let purged = latchkey::jobs::purge::run(&app.db, now)
        .await
        .expect("purge");
    assert!(
        !purged
            .rows
            .iter()
            .any(|(t, _)| *t == "device_authorizations")
    );
    let purged = latchkey::jobs::purge::run(&app.db, now + 3600)
        .await
        .expect("purge");
    assert!(
        purged.rows.contains(&("device_authorizations", 1)),
        "{purged:?}"
    );
    assert_eq!(app.count("device_authorizations").await, 0);
}

async fn denied_is_access_denied(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    let client = device_client(&app).await;
    let body = started(&app, &client).await;
    let browser = signed_in_browser(&app, EMAIL).await;
    let user_code = body["user_code"].as_str().expect("user_code");
    let (_, status, page) = answer(&app, &browser, user_code, "deny", None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("not given access"), "{page}");
    let device_code = body["device_code"].as_str().expect("device_code");
    assert_eq!(
        poll_error(&app, &client, device_code).await,
        "access_denied"
    );
    // A denied code cannot be approved afterwards.
    let csrf = device_form(&app, &browser, None).await;
    let (status, page) = post_device(
        &app,
        &browser,
        &[
            ("csrf", &csrf),
            ("user_code", user_code),
            ("decision", "approve"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("already used"), "{page}");

    // One answer, one audit event (the refused second answer records nothing).
    let operator = mgmt_helpers::operator_token(&app).await;
    let denied = mgmt_helpers::get(&app, "/api/v1/audit-log?action=device.denied", &operator).await;
    assert_eq!(denied.ok(200).as_array().map(Vec::len), Some(1));
    let approved =
        mgmt_helpers::get(&app, "/api/v1/audit-log?action=device.approved", &operator).await;
    assert_eq!(approved.ok(200).as_array().map(Vec::len), Some(0));
}

async fn approved_code_is_redeemed_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    let ada = app.create_person(EMAIL, "Ada").await;
    let client = device_client(&app).await;
    let body = started(&app, &client).await;
    let device_code = body["device_code"].as_str().expect("device_code");
    let browser = signed_in_browser(&app, EMAIL).await;
    let (confirm, status, _) = answer(
        &app,
        &browser,
        body["user_code"].as_str().expect("user_code"),
        "approve",
        None,
    )
    .await;
    assert!(
        !confirm.contains("name=\"org\""),
        "no organization to offer: {confirm}"
    );
    assert_eq!(status, 200);
    let response = poll(&app, &client, device_code).await;
    assert_eq!(rp::header(&response, "cache-control"), "no-store");
    let tokens = json_with_status(response, 200).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid email offline_access");
    assert!(tokens["refresh_token"].is_string());
    let (_, id) = app
        .verify_jwt(tokens["id_token"].as_str().expect("id_token"))
        .await;
    assert_eq!(id["sub"], ada.as_str());
    assert!(id.get("nonce").is_none());
    assert!(
        id.get("org_id").is_none(),
        "no membership, no org claims: {id}"
    );
    app.clock.advance(5);
    assert_eq!(
        poll_error(&app, &client, device_code).await,
        "invalid_grant"
    );
}

async fn another_clients_device_code_is_invalid_grant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    let client = device_client(&app).await;
    let thief = device_client(&app).await;
    let body = started(&app, &client).await;
    let device_code = body["device_code"].as_str().expect("device_code");
    assert_eq!(poll_error(&app, &thief, device_code).await, "invalid_grant");
    let browser = signed_in_browser(&app, EMAIL).await;
    answer(
        &app,
        &browser,
        body["user_code"].as_str().expect("user_code"),
        "approve",
        None,
    )
    .await;
    assert_eq!(poll_error(&app, &thief, device_code).await, "invalid_grant");
    // The rightful client still gets its tokens.
    json_with_status(poll(&app, &client, device_code).await, 200).await;
}

async fn wrong_codes_show_the_form_then_the_limit_applies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    app.create_person(EMAIL, "Ada").await;
    let client = device_client(&app).await;
    let body = started(&app, &client).await;
    let user_code = body["user_code"].as_str().expect("user_code");
    let browser = signed_in_browser(&app, EMAIL).await;
    let csrf = device_form(&app, &browser, None).await;
    for wrong in ["BBBB-BBBB", "not a code", "", "bbbb bbbc", "ZZZZ-ZZZZ"] {
        let (status, page) =
            post_device(&app, &browser, &[("csrf", &csrf), ("user_code", wrong)]).await;
        assert_eq!(status, 400, "{wrong}: {page}");
        assert!(page.contains("That code is not valid"), "{page}");
        assert!(
            page.contains("name=\"user_code\""),
            "the form again: {page}"
        );
    }
    // The sixth attempt is refused, even with the right code.
    let response = browser
        .post(app.url("/device"))
        .form(&[("csrf", csrf.as_str()), ("user_code", user_code)])
        .send()
        .await
        .expect("posted");
    assert_eq!(response.status(), 429);
    assert!(!rp::header(&response, "retry-after").is_empty());
    let page = response.text().await.expect("page");
    assert!(page.contains("Too many wrong codes"), "{page}");
    // Lowercase, without the dash, after the window: accepted.
    app.clock.advance(601);
    let loose = user_code.replace('-', "").to_lowercase();
    let (status, page) =
        post_device(&app, &browser, &[("csrf", &csrf), ("user_code", &loose)]).await;
    assert_eq!(status, 400, "the code expired meanwhile: {page}");
    assert!(page.contains("expired"), "{page}");
    let fresh = started(&app, &client).await;
    let loose = fresh["user_code"]
        .as_str()
        .expect("user_code")
        .replace('-', " ")
        .to_lowercase();
    let (status, page) =
        post_device(&app, &browser, &[("csrf", &csrf), ("user_code", &loose)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Approve"), "{page}");
}

async fn signed_out_goes_to_login_and_csrf_is_required(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    let client = device_client(&app).await;
    let body = started(&app, &client).await;
    let user_code = body["user_code"].as_str().expect("user_code");
    let browser = rp::browser();
    let response = browser
        .get(format!("{}?user_code={user_code}", app.url("/device")))
        .send()
        .await
        .expect("device page");
    assert_eq!(response.status(), 303);
    let to = location(&app, &response);
    assert_eq!(to.path(), "/login");
    let next: String = to
        .query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .expect("next");
    assert_eq!(next, format!("/device?user_code={user_code}"));

    let browser = signed_in_browser(&app, EMAIL).await;
    device_form(&app, &browser, None).await;
    for form in [
        vec![("user_code", user_code)],
        vec![("csrf", "forged"), ("user_code", user_code)],
    ] {
        let (status, page) = post_device(&app, &browser, &form).await;
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("This form has expired"), "{page}");
    }
    // Nothing was answered.
    let device_code = body["device_code"].as_str().expect("device_code");
    assert_eq!(
        poll_error(&app, &client, device_code).await,
        "authorization_pending"
    );
}

async fn organization_choice_and_policies_at_approval(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    app.create_person(OTHER, "Grace").await;
    let acme = create_org(&app, "Acme", "acme", EMAIL).await;
    let globex = create_org(&app, "Globex", "globex", OTHER).await;
    add_member(&app, &globex, EMAIL, "member").await;
    let client = device_client(&app).await;

    // Several memberships: a choice, the client's hint preselected; the chosen one in the tokens.
    let body = json_with_status(
        start(&app, &client, &[("organization", "globex")]).await,
        200,
    )
    .await;
    let browser = signed_in_browser(&app, EMAIL).await;
    let user_code = body["user_code"].as_str().expect("user_code");
    let csrf = device_form(&app, &browser, Some(user_code)).await;
    let (status, confirm) =
        post_device(&app, &browser, &[("csrf", &csrf), ("user_code", user_code)]).await;
    assert_eq!(status, 200);
    assert_eq!(rp::picker_options(&confirm).len(), 2, "{confirm}");
    assert_eq!(
        rp::picker_checked(&confirm).as_deref(),
        Some(globex.as_str())
    );
    // No choice, or one the person is not in: the page again.
    for org in ["", "not-an-org"] {
        let (status, page) = post_device(
            &app,
            &browser,
            &[
                ("csrf", &csrf),
                ("user_code", user_code),
                ("decision", "approve"),
                ("org", org),
            ],
        )
        .await;
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("Approve"), "{page}");
    }
    let (_, status, _) = answer(&app, &browser, user_code, "approve", Some(&acme)).await;
    assert_eq!(status, 200);
    let tokens = json_with_status(
        poll(&app, &client, body["device_code"].as_str().expect("dc")).await,
        200,
    )
    .await;
    let (_, access) = rp::decode_jwt(tokens["access_token"].as_str().expect("access"));
    assert_eq!(access["org_id"], acme.as_str());

    // An organization requiring a second factor refuses a password-only session.
    let strict = app
        .cli(&[
            "org",
            "create",
            "--name",
            "Strict",
            "--slug",
            "strict",
            "--owner",
            EMAIL,
            "--require-mfa",
        ])
        .await
        .json()["id"]
        .as_str()
        .expect("org id")
        .to_owned();
    let body = started(&app, &client).await;
    let user_code = body["user_code"].as_str().expect("user_code");
    let (_, status, page) = answer(&app, &browser, user_code, "approve", Some(&strict)).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("requires a second factor"), "{page}");
    assert_eq!(
        poll_error(&app, &client, body["device_code"].as_str().expect("dc")).await,
        "authorization_pending"
    );

    // A client that requires an organization refuses a person in none.
    let loner = "lin@example.com";
    app.create_person(loner, "Lin").await;
    let strict = app
        .register_client(&["--grant-type", DEVICE_GRANT, "--require-org"])
        .await;
    let body = started(&app, &strict).await;
    let browser = signed_in_browser(&app, loner).await;
    let csrf = device_form(&app, &browser, None).await;
    let (status, page) = post_device(
        &app,
        &browser,
        &[
            ("csrf", &csrf),
            ("user_code", body["user_code"].as_str().expect("uc")),
        ],
    )
    .await;
    assert_eq!(status, 403, "{page}");
}

async fn second_factor_required_by_the_organization_signs_in_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    app.create_person(EMAIL, "Ada").await;
    let strict = app
        .cli(&[
            "org",
            "create",
            "--name",
            "Strict",
            "--slug",
            "strict",
            "--owner",
            EMAIL,
            "--require-mfa",
        ])
        .await
        .json()["id"]
        .as_str()
        .expect("org id")
        .to_owned();
    let client = device_client(&app).await;
    let browser = signed_in_browser(&app, EMAIL).await;
    let (secret, _) = mfa_helpers::enrol_totp(&app, &browser).await;

    // The session signed in with a password only: the page sends the person to sign in again.
    let body = started(&app, &client).await;
    let user_code = body["user_code"].as_str().expect("user_code");
    let (_, status, page) = answer(&app, &browser, user_code, "approve", None).await;
    assert_eq!(status, 403, "{page}");
    let marker = "<p class=\"remedy\"><a class=\"button\" href=\"";
    let start = page.find(marker).expect("a link out") + marker.len();
    let href = page[start..][..page[start..].find('"').expect("quote")].replace("&amp;", "&");
    let login = Url::parse(&app.address)
        .expect("address")
        .join(&href)
        .expect("link");
    assert_eq!(login.path(), "/login");
    let second = submit_login_with_next(&app, &browser, &login, EMAIL).await;
    assert_eq!(second.path(), "/login/second-factor");
    let response =
        mfa_helpers::pass_second_step(&app, &browser, &mfa_helpers::next_code(&app, &secret)).await;
    assert_eq!(response.status(), 303);
    let back = location(&app, &response);
    assert_eq!(back.path(), "/device");
    assert_eq!(
        back.query(),
        Some(format!("user_code={user_code}").as_str())
    );

    // Now with both factors: approved, and the tokens say so.
    let (_, status, page) = answer(&app, &browser, user_code, "approve", None).await;
    assert_eq!(status, 200, "{page}");
    let tokens = json_with_status(
        poll(&app, &client, body["device_code"].as_str().expect("dc")).await,
        200,
    )
    .await;
    let (_, access) = rp::decode_jwt(tokens["access_token"].as_str().expect("access"));
    assert_eq!(access["org_id"], strict.as_str());
    let (_, id) = rp::decode_jwt(tokens["id_token"].as_str().expect("id"));
    assert!(mfa_helpers::amr(&id).contains(&"mfa".to_owned()), "{id}");
}

async fn a_registered_resource_named_at_the_poll_is_the_audience(backend: Backend) {
    const API: &str = "https://api.example.com/";
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    app.create_person(EMAIL, "Ada").await;
    let client = app
        .register_client(&[
            "--grant-type",
            DEVICE_GRANT,
            "--grant-type",
            "refresh_token",
            "--resource",
            API,
        ])
        .await;
    let body = started(&app, &client).await;
    let device_code = body["device_code"].as_str().expect("device_code");
    let browser = signed_in_browser(&app, EMAIL).await;
    let user_code = body["user_code"].as_str().expect("user_code");
    let (_, status, _) = answer(&app, &browser, user_code, "approve", None).await;
    assert_eq!(status, 200);
    // A resource the client did not register: refused, and the approval stays redeemable.
    let refused = json_with_status(
        poll_for(&app, &client, device_code, "https://other.example.com/").await,
        400,
    )
    .await;
    assert_eq!(refused["error"], "invalid_target");
    let tokens = json_with_status(poll_for(&app, &client, device_code, API).await, 200).await;
    let (_, access) = rp::decode_jwt(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(access["aud"], API);
    // The refresh-token family keeps it.
    let refreshed = json_with_status(
        app.post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().expect("rt"),
                ),
            ],
        )
        .await,
        200,
    )
    .await;
    let (_, access) = rp::decode_jwt(refreshed["access_token"].as_str().expect("access token"));
    assert_eq!(access["aud"], API);
}

/// One poll naming `resource` (RFC 8707).
async fn poll_for(
    app: &TestApp,
    client: &RegisteredClient,
    device_code: &str,
    resource: &str,
) -> reqwest::Response {
    app.post_token(
        Some((&client.id, client.secret())),
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("resource", resource),
        ],
    )
    .await
}
