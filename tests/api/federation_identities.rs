//! The linked identities page (`/account/identities`): lists the upstream identities of the
//! signed-in account and removes one, never the last way to sign in.

use crate::federation_helpers::spawn_pair;
use crate::federation_signin::{acme_with_connection, audited, rp_signin, upstream_member};
use crate::helpers::Backend;
use crate::rp::{self, REDIRECT_URI};

on_both_databases!(
    page_lists_and_keeps_the_last_way_to_sign_in,
    linked_account_with_password_unlinks,
);

/// POSTs the remove form of the identities page `html` for its first row.
async fn remove_first(
    app: &crate::helpers::TestApp,
    browser: &reqwest::Client,
    html: &str,
) -> reqwest::Response {
    let form = [
        ("csrf", rp::hidden_input(html, "csrf")),
        ("id", rp::hidden_input(html, "id")),
    ];
    browser
        .post(app.url("/account/identities/remove"))
        .form(&form)
        .send()
        .await
        .expect("remove posted")
}

async fn identities_html(app: &crate::helpers::TestApp, browser: &reqwest::Client) -> String {
    let response = browser
        .get(app.url("/account/identities"))
        .send()
        .await
        .expect("identities page");
    assert_eq!(response.status(), 200);
    response.text().await.expect("body")
}

async fn page_lists_and_keeps_the_last_way_to_sign_in(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    upstream_member(&pair, "ann@acme.example", "member").await;
    let (_, conn) = acme_with_connection(&pair, None).await;
    let client = pair.app.register_client(&["--first-party"]).await;

    // Signed out: the page sends to the login page.
    let response = rp::browser()
        .get(pair.app.url("/account/identities"))
        .send()
        .await
        .expect("page");
    assert_eq!(response.status(), 303);
    assert_eq!(rp::location(&pair.app, &response).path(), "/login");

    let browser = rp::browser();
    let (landing, _) = rp_signin(&pair, &browser, &client, &conn, "ann@acme.example", None).await;
    assert!(landing.left().as_str().starts_with(REDIRECT_URI));
    let html = identities_html(&pair.app, &browser).await;
    assert!(html.contains("Acme SSO"), "{html}");
    assert!(html.contains("ann@acme.example"), "{html}");
    assert!(html.contains(&pair.upstream_issuer()), "{html}");
    assert!(html.contains("Linked sign-ins"), "the nav entry: {html}");

    // The only way to sign in (no password, no passkey): refused.
    let response = remove_first(&pair.app, &browser, &html).await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.expect("body");
    assert!(body.contains("Set a password first"), "{body}");
    assert_eq!(pair.app.count("federated_identities").await, 1);

    // A forged form and an unknown id are refused.
    let response = browser
        .post(pair.app.url("/account/identities/remove"))
        .form(&[("id", rp::hidden_input(&html, "id"))])
        .send()
        .await
        .expect("posted");
    assert_eq!(response.status(), 400);
    let response = browser
        .post(pair.app.url("/account/identities/remove"))
        .form(&[
            ("csrf", rp::hidden_input(&html, "csrf")),
            ("id", "nope".into()),
        ])
        .send()
        .await
        .expect("posted");
    assert_eq!(response.status(), 404);
    assert_eq!(pair.app.count("federated_identities").await, 1);
    assert_eq!(audited(&pair.app, "federation.identity_unlinked").await, 0);
}

async fn linked_account_with_password_unlinks(backend: Backend) {
    let pair = spawn_pair(backend, &[]).await;
    upstream_member(&pair, "ann@acme.example", "member").await;
    let (_, conn) = acme_with_connection(&pair, None).await;
    pair.app.create_person("ann@acme.example", "Ann Here").await;
    let client = pair.app.register_client(&["--first-party"]).await;
    let browser = rp::browser();
    let (landing, _) = rp_signin(&pair, &browser, &client, &conn, "ann@acme.example", None).await;
    let (login, _, _) = landing.page();
    pair.follow(
        &browser,
        login.as_str(),
        "ann@acme.example",
        Some("ann@acme.example"),
    )
    .await
    .left();
    assert_eq!(pair.app.count("federated_identities").await, 1);

    let html = identities_html(&pair.app, &browser).await;
    let response = remove_first(&pair.app, &browser, &html).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        rp::location(&pair.app, &response).path(),
        "/account/identities"
    );
    let html = identities_html(&pair.app, &browser).await;
    assert!(html.contains("Acme SSO is no longer linked"), "{html}");
    assert!(html.contains("No provider is linked"), "{html}");
    assert_eq!(pair.app.count("federated_identities").await, 0);
    assert_eq!(audited(&pair.app, "federation.identity_unlinked").await, 1);

    // Unlinked: the next upstream sign-in asks for the password here again.
    let (landing, _) = rp_signin(
        &pair,
        &rp::browser(),
        &client,
        &conn,
        "ann@acme.example",
        None,
    )
    .await;
    let (url, status, _) = landing.page();
    assert_eq!((url.path(), status), ("/login", 200));
}
