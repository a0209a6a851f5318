//! Your account's activity pages driven by a real browser (headless Chromium, see
//! [`crate::browser`]): the sign-in history after a failed and a successful attempt, "Sign out
//! everywhere else" ending another browser's session, "Remove access" ending an application's
//! offline refresh token, and leaving an organization (and being refused as its last owner). Every
//! step is a click, as a person would; no page needs JavaScript. Pages are captured desktop-wide and
//! phone-wide as `target/screenshots/account-<step>-<backend>[-narrow].png`.

use crate::browser::{Browser, backend_name, browser};
use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{cli_member, cli_org};
use crate::rp::{self, Consent, PASSWORD, REDIRECT_URI, RegisteredClient, location};

on_both_databases!(account_activity_pages_in_a_browser);

const ADA: &str = "ada@example.com";

/// Opens `path`, checks that its title contains `title`, and captures it as step `step`.
async fn open(b: &Browser, app: &TestApp, path: &str, title: &str, step: &str, backend: Backend) {
    b.goto(&app.url(path)).await;
    shown(b, title, step, backend).await;
}

/// Checks the current page's title and captures it as step `step`.
async fn shown(b: &Browser, title: &str, step: &str, backend: Backend) {
    let actual = b.title().await;
    assert!(
        actual.contains(title),
        "{step}: title {actual:?} should contain {title:?}\n{}",
        b.text().await
    );
    b.capture(&format!("account-{step}-{}", backend_name(backend)))
        .await;
}

async fn account_activity_pages_in_a_browser(backend: Backend) {
    let Some(b) = browser().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.create_person(ADA, "Ada").await;
    app.create_person("olive@example.com", "Olive").await;
    cli_org(&app, "Acme Corp", "acme", ADA).await;
    cli_org(&app, "Globex", "globex", "olive@example.com").await;
    cli_member(&app, "globex", ADA, "member").await;
    let photos = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Photo Album",
            "--redirect-uri",
            REDIRECT_URI,
        ])
        .await
        .json();
    let photos = RegisteredClient {
        id: photos["client_id"].as_str().expect("client_id").to_owned(),
        secret: photos["client_secret"].as_str().map(str::to_owned),
    };

    // Another browser signs in first and gives the photo app offline access (code flow).
    let other = rp::browser();
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &photos.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid offline_access"),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = rp::authorize(&app, &other, &url, ADA, Consent::Allow).await;
    // Ada belongs to two organizations: the photo app acts for the preselected one.
    let code = journey.callback.code();
    let tokens = app
        .post_token(
            Some((&photos.id, photos.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", REDIRECT_URI),
            ],
        )
        .await;
    let tokens = rp::json_with_status(tokens, 200).await;
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("offline refresh token");
    let other_account = other.get(app.url("/account")).send().await.expect("GET");
    assert_eq!(
        other_account.status(),
        200,
        "the other browser is signed in"
    );

    // Chromium: a wrong password, then the right one.
    b.goto(&app.url("/login")).await;
    b.fill("email", ADA).await;
    b.fill("password", "wrong horse battery").await;
    b.submit().await;
    b.wait_for("[role=alert]").await;
    b.fill("email", ADA).await;
    b.fill("password", PASSWORD).await;
    b.submit().await;
    b.wait_for("a[href='/account']").await;

    // The history shows both attempts, newest first.
    open(
        &b,
        &app,
        "/account/history",
        "Sign-in history",
        "history",
        backend,
    )
    .await;
    let text = b.text().await;
    let succeeded = text.find("Succeeded").expect("a succeeded attempt");
    let failed = text.find("Failed").expect("a failed attempt");
    assert!(succeeded < failed, "newest first:\n{text}");
    assert!(text.contains("Password") && text.contains("UTC"), "{text}");

    // Sessions: two, this one marked; "Sign out everywhere else" ends the other browser's.
    open(
        &b,
        &app,
        "/account/sessions",
        "Sessions and devices",
        "sessions",
        backend,
    )
    .await;
    let text = b.text().await;
    assert!(text.contains("This browser"), "{text}");
    assert!(text.contains("Chrome on Linux"), "{text}");
    b.click("#end-others").await;
    b.wait_for("[role=status]").await;
    shown(&b, "Sessions and devices", "sessions-ended", backend).await;
    assert!(
        b.text()
            .await
            .contains("Every other session was signed out.")
    );
    let other_account = other.get(app.url("/account")).send().await.expect("GET");
    assert_eq!(other_account.status(), 303);
    assert_eq!(location(&app, &other_account).path(), "/login");

    // Connected apps: the photo app (its offline refresh token outlived the other browser's
    // session); "Remove access" ends it.
    open(&b, &app, "/account/apps", "Connected apps", "apps", backend).await;
    let text = b.text().await;
    assert!(
        text.contains("Photo Album") && text.contains("offline_access"),
        "{text}"
    );
    b.click("form[action='/account/apps/remove'] button").await;
    b.wait_for("[role=status]").await;
    shown(&b, "Connected apps", "apps-removed", backend).await;
    let text = b.text().await;
    assert!(!text.contains("Photo Album"), "{text}");
    let refresh = app
        .post_token(
            Some((&photos.id, photos.secret())),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await;
    assert_eq!(
        rp::json_with_status(refresh, 400).await["error"],
        "invalid_grant"
    );

    // Organizations: the last owner of Acme is refused, naming it; Globex can be left.
    open(
        &b,
        &app,
        "/account/organizations",
        "Organizations",
        "orgs",
        backend,
    )
    .await;
    b.click("button[aria-label='Leave Acme Corp']").await;
    b.wait_for("[role=alert]").await;
    shown(&b, "Organizations", "orgs-last-owner", backend).await;
    let text = b.text().await;
    assert!(
        text.contains("You are the only owner of Acme Corp (acme)"),
        "{text}"
    );
    b.click("button[aria-label='Leave Globex']").await;
    b.wait_for("[role=status]").await;
    shown(&b, "Organizations", "orgs-left", backend).await;
    let text = b.text().await;
    assert!(text.contains("You left the organization."), "{text}");
    assert!(
        !text.contains("Globex") && text.contains("Acme Corp"),
        "{text}"
    );

    b.close().await;
}
