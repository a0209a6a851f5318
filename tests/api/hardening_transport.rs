//! Protocol hardening, part two: RP-initiated logout by a cross-site POST, HSTS on `https` issuers,
//! STARTTLS required for `smtp://` off loopback, and ASCII-only email addresses.

use std::collections::HashMap;

use serde_json::json;

use crate::helpers::{Backend, TestApp, run_cli};
use crate::mgmt_helpers::{ORG_SCOPES, org_client, post, user_token};
use crate::rp::{self, REDIRECT_URI};
use crate::support::smtp::SmtpSink;

on_both_databases!(
    a_cross_site_logout_post_is_resent_from_our_origin_and_ends_the_session,
    hsts_only_on_an_https_issuer,
    smtp_with_tls_required_refuses_a_server_without_starttls,
    only_ascii_addresses_and_only_ascii_case_folding,
);

const EMAIL: &str = "ada@example.com";
const POST_LOGOUT_URI: &str = "https://rp.example.com/signed-out";

/// The `content` URL of a page's `<meta http-equiv="refresh">`, HTML entities decoded.
fn refresh_target(html: &str) -> String {
    let marker = "http-equiv=\"refresh\" content=\"0;url=";
    let start = html.find(marker).expect("a refresh") + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end]
        .replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
}

/// True when `browser` is signed in as [`EMAIL`] (the home page names the account).
async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    let home = browser.get(app.url("/")).send().await.expect("home page");
    home.text().await.expect("home body").contains(EMAIL)
}

async fn a_cross_site_logout_post_is_resent_from_our_origin_and_ends_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    let client = app
        .register_client(&[
            "--first-party",
            "--post-logout-redirect-uri",
            POST_LOGOUT_URI,
        ])
        .await;
    let browser = rp::browser();
    let (code, verifier) = rp::code_with_pkce(&app, &browser, &client, EMAIL).await;
    let tokens = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let tokens = rp::json_with_status(tokens, 200).await;
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    assert!(signed_in(&app, &browser).await);

    // The RP's page posts the form: SameSite=Lax keeps the session cookie out of that request.
    let form = [
        ("id_token_hint", id_token),
        ("post_logout_redirect_uri", POST_LOGOUT_URI),
        ("state", "bye & see you"),
    ];
    let page = rp::rp_http()
        .post(app.url("/logout"))
        .form(&form)
        .send()
        .await
        .expect("cross-site POST");
    assert_eq!(page.status(), 200);
    let csp = rp::header(&page, "content-security-policy");
    assert!(!csp.contains("script-src"), "no script allowed: {csp}");
    let html = page.text().await.expect("page");
    assert!(
        html.contains("<form method=\"get\" action=\"/logout\">"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    // Nothing ended yet: the browser's session was not in that request.
    assert!(signed_in(&app, &browser).await);

    // The browser follows the page: a same-site GET that carries the cookie.
    let next = app.url(&refresh_target(&html));
    let done = browser.get(&next).send().await.expect("same-site GET");
    assert_eq!(done.status(), 303, "{next}");
    let callback = rp::Callback {
        url: rp::location(&app, &done),
    };
    callback.assert_at(POST_LOGOUT_URI);
    assert_eq!(callback.get("state").as_deref(), Some("bye & see you"));
    assert!(!signed_in(&app, &browser).await, "the session has ended");
}

async fn hsts_only_on_an_https_issuer(backend: Backend) {
    const HSTS: &str = "max-age=31536000; includeSubDomains";
    let https =
        TestApp::spawn_with(backend, &[("LATCHKEY_ISSUER", "https://login.example.com")]).await;
    for path in [
        "/healthz",
        "/.well-known/openid-configuration",
        "/",
        "/nowhere",
    ] {
        let response = https.get(path).await;
        assert_eq!(
            rp::header(&response, "strict-transport-security"),
            HSTS,
            "{path}"
        );
    }
    let http = TestApp::spawn(backend).await;
    for path in ["/healthz", "/"] {
        let response = http.get(path).await;
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_none(),
            "{path}"
        );
    }
}

async fn smtp_with_tls_required_refuses_a_server_without_starttls(backend: Backend) {
    // The sink speaks plain SMTP and offers no STARTTLS: with tls=required nothing may be sent.
    let sink = SmtpSink::start().await;
    let url = format!("{}?tls=required", sink.url());
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_SMTP_URL", url.as_str())]).await;
    let mail = latchkey::mail::Mail {
        to: "erin@example.test".to_owned(),
        subject: "Secret link".to_owned(),
        text: "https://example.test/reset?token=x\n".to_owned(),
        html: None,
    };
    latchkey::mail::queue(&app.db.pool, &mail, app.clock.now())
        .await
        .expect("queued");

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let (attempts, sent_at, error) = loop {
        let row: (i64, Option<i64>, Option<String>) =
            sqlx::query_as("select attempts, sent_at, last_error from mail_outbox")
                .fetch_one(&app.db.pool)
                .await
                .expect("one outbox row");
        if row.0 >= 1 {
            break row;
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt made");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(attempts, 1);
    assert_eq!(sent_at, None);
    assert!(error.is_some(), "the failure is recorded");
    assert!(sink.received().is_empty(), "nothing went out in clear text");
}

#[tokio::test]
async fn an_unknown_smtp_tls_option_is_a_config_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = HashMap::from([
        (
            "LATCHKEY_DATABASE_URL".to_owned(),
            format!("sqlite://{}", dir.path().join("x.db").display()),
        ),
        (
            "LATCHKEY_SMTP_URL".to_owned(),
            "smtp://u:hunter2@mail.example.com:587?tls=sometimes".to_owned(),
        ),
    ]);
    let line = run_cli(&env, &["migrate"], None).await.refused();
    assert!(line.contains("LATCHKEY_SMTP_URL"), "{line}");
    assert!(line.contains("tls="), "{line}");
    assert!(!line.contains("hunter2"), "{line}");
}

/// `latchkey user create --email EMAIL --password-stdin`.
async fn create_user(app: &TestApp, email: &str) -> crate::helpers::CliOutput {
    app.cli_stdin(
        &["user", "create", "--email", email, "--password-stdin"],
        rp::PASSWORD,
    )
    .await
}

async fn only_ascii_addresses_and_only_ascii_case_folding(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.create_person("kelvin@example.com", "Kelvin").await;
    app.create_person(EMAIL, "Ada").await;
    // CLI: a Unicode look-alike of an existing account (KELVIN SIGN), and an accented address.
    for email in [
        "\u{212A}elvin@example.com",
        "jos\u{e9}@example.com",
        "ada@b\u{fc}cher.example",
    ] {
        let line = create_user(&app, email).await.refused();
        assert!(line.contains("ASCII"), "{email}: {line}");
    }
    // ASCII letters fold: the same account in other case is taken; login finds it in any case.
    let line = create_user(&app, "KELVIN@Example.COM").await.refused();
    assert!(line.contains("already exists"), "{line}");
    let browser = rp::browser();
    rp::sign_in(&app, &browser, "KELVIN@EXAMPLE.com").await;

    // Sign-up API.
    let response = rp::rp_http()
        .post(app.url("/api/v1/signup"))
        .json(&json!({"email": "\u{212A}elvin@example.com", "password": rp::PASSWORD}))
        .send()
        .await
        .expect("signup sent");
    let body = rp::json_with_status(response, 400).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ASCII"),
        "{body}"
    );

    // org add-member and invitations.
    let org = app
        .cli(&[
            "org", "create", "--name", "Acme", "--slug", "acme", "--owner", EMAIL,
        ])
        .await
        .json();
    let line = app
        .cli(&[
            "org",
            "add-member",
            "--org",
            "acme",
            "--email",
            "\u{212A}elvin@example.com",
            "--role",
            "member",
        ])
        .await
        .refused();
    assert!(line.contains("ASCII"), "{line}");
    let client = org_client(&app).await;
    let token = user_token(&app, &client, EMAIL, ORG_SCOPES).await;
    let path = format!(
        "/api/v1/orgs/{}/invitations",
        org["id"].as_str().expect("id")
    );
    let answer = post(
        &app,
        &path,
        &token,
        json!({"email": "jos\u{e9}@example.com", "role": "member"}),
    )
    .await;
    answer.problem(400, "invalid-email");
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ASCII")
    );
}
