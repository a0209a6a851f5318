//! Home-realm discovery on the login page: the email-first step once connections exist, an address
//! of a verified and connected domain sent to its organization's provider, `login_hint` routed the
//! same way, `organization=` offering its connection first (and going straight there when the
//! organization requires SSO), and instance-wide connections as "Continue with NAME".

use serde_json::json;
use url::Url;

use crate::federation_helpers::{Pair, spawn_pair};
use crate::helpers::Backend;
use crate::mgmt_helpers::{self, patch, post};
use crate::rp::{self, REDIRECT_URI, hidden_input};

on_both_databases!(
    login_page_asks_for_the_email_first_once_connections_exist,
    verified_domain_goes_to_its_provider,
    login_hint_routes_like_a_typed_address,
    named_organization_offers_its_connection_and_sso_required_goes_straight,
    instance_connections_are_continue_buttons,
);

/// Acme here (owner `owner@corp.test`), with the pair's upstream as its connection; returns the
/// owner's token and the connection id.
async fn acme_connected(pair: &Pair) -> (String, String) {
    let app = &pair.app;
    let client = mgmt_helpers::org_client(app).await;
    let (_, owner) = mgmt_helpers::person(app, &client, "owner@corp.test").await;
    let org = post(
        app,
        "/api/v1/orgs",
        &owner,
        json!({"name": "Acme", "slug": "acme"}),
    )
    .await;
    assert_eq!(org.status, 201, "{}", org.body);
    let created = post(
        app,
        "/api/v1/orgs/acme/connections",
        &owner,
        pair.connection_body("Acme SSO"),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"]
        .as_str()
        .expect("connection id")
        .to_owned();
    (owner, id)
}

/// `latchkey org verify-domain` (the operator's way, no DNS).
async fn verify_domain(pair: &Pair, org: &str, domain: &str) {
    pair.app
        .cli(&["org", "verify-domain", "--org", org, "--domain", domain])
        .await
        .json();
}

/// An authorization request of a fresh first-party client with `extra` parameters; returns the
/// browser and the login page it was sent to.
async fn authorize(pair: &Pair, extra: &[(&str, &str)]) -> (reqwest::Client, reqwest::Response) {
    let client = pair.app.register_client(&["--first-party"]).await;
    let (_, challenge) = rp::pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email"),
        ("state", "st"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let browser = rp::browser();
    let response = browser
        .get(pair.app.authorize_url(&params))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 303);
    let login = rp::location(&pair.app, &response);
    let page = browser.get(login).send().await.expect("login page");
    (browser, page)
}

fn location(response: &reqwest::Response) -> String {
    rp::header(response, "location")
}

async fn login_page_asks_for_the_email_first_once_connections_exist(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    let app = &pair.app;
    let browser = rp::browser();
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("name=\"password\""),
        "no connection: the classic form"
    );
    assert!(!html.contains("/login/identify"));

    acme_connected(&pair).await;
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("html");
    assert!(html.contains("action=\"/login/identify\""), "{html}");
    assert!(
        !html.contains("name=\"password\""),
        "the address comes first"
    );
    let csrf = hidden_input(&html, "csrf");

    // An address no organization verified: the password step, with the address filled in.
    let step = browser
        .post(app.url("/login/identify"))
        .form(&[("csrf", csrf.as_str()), ("email", "bob@elsewhere.test")])
        .send()
        .await
        .expect("identify");
    assert_eq!(step.status(), 200);
    let html = step.text().await.expect("html");
    assert!(html.contains("name=\"password\""), "{html}");
    assert!(html.contains("value=\"bob@elsewhere.test\""), "{html}");

    // Refusals: no address (400, the same step again), no CSRF token (400).
    let empty = browser
        .post(app.url("/login/identify"))
        .form(&[("csrf", csrf.as_str()), ("email", "  ")])
        .send()
        .await
        .expect("identify");
    assert_eq!(empty.status(), 400);
    let forged = browser
        .post(app.url("/login/identify"))
        .form(&[("email", "bob@elsewhere.test")])
        .send()
        .await
        .expect("identify");
    assert_eq!(forged.status(), 400);

    // The contract's form (email and password at once) still signs in.
    app.create_person("bob@elsewhere.test", "Bob").await;
    let page = Url::parse(&app.url("/login")).expect("url");
    let signed = rp::submit_login(app, &browser, &page, "bob@elsewhere.test", rp::PASSWORD).await;
    assert_eq!(signed.status(), 303);
}

async fn verified_domain_goes_to_its_provider(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    let (_, connection) = acme_connected(&pair).await;
    verify_domain(&pair, "acme", "acme.test").await;
    let (browser, page) = authorize(&pair, &[]).await;
    let html = page.text().await.expect("html");
    let authz = hidden_input(&html, "authz");
    let routed = browser
        .post(pair.app.url("/login/identify"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("authz", authz.clone()),
            ("email", "Ann@ACME.test".to_owned()),
        ])
        .send()
        .await
        .expect("identify");
    assert_eq!(routed.status(), 303);
    let to = Url::parse(&pair.app.url(&location(&routed))).expect("location");
    assert_eq!(to.path(), "/federation/start");
    let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["connection"], connection);
    assert_eq!(q["authz"], authz);
    assert_eq!(q["login_hint"], "Ann@ACME.test");

    // The start sends the browser to the upstream's authorization endpoint.
    let upstream = browser.get(to).send().await.expect("start");
    assert_eq!(upstream.status(), 303);
    let at = Url::parse(&location(&upstream)).expect("upstream URL");
    assert!(
        at.as_str()
            .starts_with(&format!("{}/authorize", pair.upstream_issuer())),
        "{at}"
    );
}

async fn login_hint_routes_like_a_typed_address(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    acme_connected(&pair).await;
    verify_domain(&pair, "acme", "acme.test").await;
    let (_, page) = authorize(&pair, &[("login_hint", "ann@acme.test")]).await;
    assert_eq!(page.status(), 303, "straight to the provider");
    assert!(
        location(&page).starts_with("/federation/start?"),
        "{}",
        location(&page)
    );
    assert!(location(&page).contains("login_hint=ann%40acme.test"));

    // A hint of another domain pre-fills the password step.
    let (_, page) = authorize(&pair, &[("login_hint", "bob@elsewhere.test")]).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("value=\"bob@elsewhere.test\""), "{html}");
    assert!(html.contains("name=\"password\""));
}

async fn named_organization_offers_its_connection_and_sso_required_goes_straight(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    let (owner, connection) = acme_connected(&pair).await;
    let (_, page) = authorize(&pair, &[("organization", "acme")]).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("id=\"org-sso\""), "{html}");
    assert!(html.contains("Continue with Acme SSO"));
    assert!(html.contains(&format!("connection={connection}")));

    let changed = patch(
        &pair.app,
        "/api/v1/orgs/acme",
        &owner,
        json!({"sso_required": true}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let (_, page) = authorize(&pair, &[("organization", "acme")]).await;
    assert_eq!(page.status(), 303, "straight to the provider");
    assert!(location(&page).contains(&format!("connection={connection}")));

    // Another organization's request is unaffected.
    let (_, page) = authorize(&pair, &[]).await;
    assert_eq!(page.status(), 200);
}

async fn instance_connections_are_continue_buttons(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    let operator = mgmt_helpers::operator_token(&pair.app).await;
    let created = post(
        &pair.app,
        "/api/v1/connections",
        &operator,
        pair.connection_body("Workforce"),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id");
    let (_, page) = authorize(&pair, &[]).await;
    let html = page.text().await.expect("html");
    assert!(html.contains("Continue with Workforce"), "{html}");
    assert!(
        html.contains(&format!("/federation/start?connection={id}&#38;authz=")),
        "{html}"
    );
}
