//! Passkeys over plain HTTP (no authenticator): the account page and the start of every ceremony
//! (options, Content Security Policy), and every refusal — a forged or replayed `credential`, a
//! finish without a started ceremony, a missing CSRF token, a bad name, another account's passkey,
//! an unknown or refused passkey at sign-in, throttling — with the right status and message. The
//! ceremonies that succeed need a real authenticator: `browser_passkeys` drives them in Chromium.
//!
//! Where a test needs a registered passkey without a browser, it stores one the browser test
//! registered ([`FIXTURE_CREDENTIAL`]: a public key, nothing secret), as the finish handler would.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD, hidden_input, location};
use crate::support::mail::wait_for_mail;

on_both_databases!(
    account_page_lists_passkeys_and_starts_a_discoverable_registration,
    registration_refuses_forged_replayed_and_unstarted_answers,
    removal_asks_the_password_and_refuses_another_accounts_passkey,
    passwordless_sign_in_refuses_unknown_and_unverified_passkeys,
    second_factor_offers_the_accounts_passkeys_and_counts_failures,
    a_disabled_account_cannot_sign_in_with_its_passkey,
    rename_checks_the_name_and_the_owner,
    an_ip_address_issuer_offers_no_passkeys
);

/// A passkey as webauthn-rs stores it (registered once by a Chromium virtual authenticator).
const FIXTURE_CREDENTIAL: &str = r#"{"cred":{"cred_id":"r4ARNZo4rkxjc-MNgRcRsj825KVe3KNj7qllj0MgFcY","cred":{"type_":"ES256","key":{"EC_EC2":{"curve":"SECP256R1","x":"3X43zAi_DmJc5ueXq4BP9B1SWH6jCOMUyNabfIvdXUg","y":"qnXBhqg-Nac-8XiWfMwcN9SGgew6XQPnFnHRjrRKDdM"}}},"counter":1,"transports":null,"user_verified":true,"backup_eligible":false,"backup_state":false,"registration_policy":"required","extensions":{"cred_protect":"Ignored","hmac_create_secret":"NotRequested","appid":"NotRequested","cred_props":{"Unsigned":{"rk":true}}},"attestation":{"data":"None","metadata":"None"},"attestation_format":"none"}}"#;
/// Its credential id.
const FIXTURE_ID: &str = "r4ARNZo4rkxjc-MNgRcRsj825KVe3KNj7qllj0MgFcY";

/// What the CSRF check answers (a 400 page).
const CSRF_REFUSED: &str = "This form has expired or was not sent by this site.";

/// Stores the fixture passkey for `user_id` under `name`, as the finish handler would; its id.
async fn seed_passkey(app: &TestApp, user_id: &str, name: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "insert into passkeys (id, user_id, credential_id, name, credential, created_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(FIXTURE_ID)
    .bind(name)
    .bind(FIXTURE_CREDENTIAL)
    .bind(1_700_000_000_i64)
    .execute(&app.db.pool)
    .await
    .expect("passkey stored");
    id
}

/// The `data-options` JSON of a ceremony page.
fn options_of(html: &str) -> Value {
    let marker = "data-options=\"";
    let start = html.find(marker).expect("data-options") + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    let json = html[start..end]
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("options JSON ({e}): {json}"))
}

fn csp(response: &reqwest::Response) -> String {
    rp::header(response, "content-security-policy")
}

/// A well-formed registration answer that no authenticator made.
fn forged_registration() -> String {
    json!({
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {
            "attestationObject": URL_SAFE_NO_PAD.encode(b"not cbor"),
            "clientDataJSON": URL_SAFE_NO_PAD.encode(br#"{"type":"webauthn.create"}"#),
        },
    })
    .to_string()
}

/// A well-formed assertion for `credential_id` with `user_handle`, signed by nobody.
fn forged_assertion(credential_id: &str, user_handle: &[u8]) -> String {
    json!({
        "id": credential_id,
        "rawId": credential_id,
        "type": "public-key",
        "response": {
            "authenticatorData": URL_SAFE_NO_PAD.encode([0u8; 37]),
            "clientDataJSON": URL_SAFE_NO_PAD.encode(br#"{"type":"webauthn.get"}"#),
            "signature": URL_SAFE_NO_PAD.encode([1u8; 64]),
            "userHandle": URL_SAFE_NO_PAD.encode(user_handle),
        },
    })
    .to_string()
}

/// The user handle of `user_id` (its UUID's 16 bytes).
fn handle_of(user_id: &str) -> Vec<u8> {
    uuid::Uuid::parse_str(user_id)
        .expect("a UUID id")
        .as_bytes()
        .to_vec()
}

async fn page(browser: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = browser.get(app.url(path)).send().await.expect("GET");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

async fn post(
    browser: &reqwest::Client,
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .expect("POST")
}

async fn account_page_lists_passkeys_and_starts_a_discoverable_registration(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_person("ada@example.com", "Ada").await;

    // Signed out: to the login page, which comes back here.
    let browser = rp::browser();
    let response = browser
        .get(app.url("/account/passkeys"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 303);
    assert_eq!(
        rp::header(&response, "location"),
        "/login?next=%2Faccount%2Fpasskeys"
    );

    rp::sign_in(&app, &browser, "ada@example.com").await;
    let response = browser
        .get(app.url("/account/passkeys"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    // The list page runs no script: the default policy, without script-src.
    let policy = csp(&response);
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(!policy.contains("script-src"), "{policy}");
    let html = response.text().await.expect("body");
    assert!(html.contains("You have no passkey yet"), "{html}");
    assert!(!html.contains("<script"), "no script on the list page");
    let csrf = hidden_input(&html, "csrf");

    // "Add a passkey": the ceremony page, its options in data-options, our script only.
    let response = post(
        &browser,
        &app,
        "/account/passkeys/add",
        &[("csrf", &csrf), ("name", "  Laptop  ")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let policy = csp(&response);
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    let html = response.text().await.expect("body");
    assert!(
        html.contains("<script src=\"/static/passkeys.js?v="),
        "{html}"
    );
    assert!(!html.contains("<script>"), "no inline script");
    assert!(html.contains("Laptop"), "{html}");
    assert_eq!(hidden_input(&html, "credential"), "");
    let options = options_of(&html);
    let pk = &options["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost", "{options}");
    assert_eq!(pk["user"]["name"], "ada@example.com");
    assert_eq!(
        pk["user"]["id"],
        URL_SAFE_NO_PAD.encode(handle_of(&user_id))
    );
    let selection = &pk["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{options}");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");
    assert!(pk["challenge"].as_str().is_some_and(|c| c.len() >= 22));

    // The script is served, as JavaScript.
    let script = app.get("/static/passkeys.js").await;
    assert_eq!(script.status(), 200);
    assert!(rp::header(&script, "content-type").starts_with("text/javascript"));

    // A registered passkey is listed, with its last use; the next ceremony excludes it.
    seed_passkey(&app, &user_id, "Laptop").await;
    let (status, html) = page(&browser, &app, "/account/passkeys").await;
    assert_eq!(status, 200);
    assert!(html.contains("Laptop") && html.contains("never"), "{html}");
    let response = post(
        &browser,
        &app,
        "/account/passkeys/add",
        &[("csrf", &csrf), ("name", "Phone")],
    )
    .await;
    let html = response.text().await.expect("body");
    let options = options_of(&html);
    assert_eq!(
        options["publicKey"]["excludeCredentials"][0]["id"], FIXTURE_ID,
        "{options}"
    );
    // The same name twice is refused.
    let response = post(
        &browser,
        &app,
        "/account/passkeys/add",
        &[("csrf", &csrf), ("name", "Laptop")],
    )
    .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.expect("body");
    assert!(
        html.contains("Another passkey already has this name."),
        "{html}"
    );
}

async fn registration_refuses_forged_replayed_and_unstarted_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    let browser = rp::browser();
    rp::sign_in(&app, &browser, "ada@example.com").await;
    let (_, html) = page(&browser, &app, "/account/passkeys").await;
    let csrf = hidden_input(&html, "csrf");
    let forged = forged_registration();

    // No ceremony started in this browser.
    let response = post(
        &browser,
        &app,
        "/account/passkeys/finish",
        &[("csrf", &csrf), ("credential", &forged)],
    )
    .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.expect("body");
    assert!(body.contains("No passkey is being added"), "{body}");

    // A missing CSRF token, on the start and on the finish.
    for path in ["/account/passkeys/add", "/account/passkeys/finish"] {
        let response = post(&browser, &app, path, &[("name", "Laptop")]).await;
        assert_eq!(response.status(), 400, "{path}");
        let body = response.text().await.expect("body");
        assert!(body.contains(CSRF_REFUSED), "{path}: {body}");
    }

    // Names: empty, too long, control characters.
    for (name, message) in [
        ("   ", "Give the passkey a name"),
        (&"x".repeat(65)[..], "The name is too long"),
        ("a\u{7}b", "control characters"),
    ] {
        let response = post(
            &browser,
            &app,
            "/account/passkeys/add",
            &[("csrf", &csrf), ("name", name)],
        )
        .await;
        assert_eq!(response.status(), 400, "{name:?}");
        let body = response.text().await.expect("body");
        assert!(body.contains(message), "{name:?}: {body}");
    }

    // Started, then answers that are not JSON, not a credential, or signed by nobody.
    for bad in ["", "not json", "{\"id\": 1}", forged.as_str()] {
        let response = post(
            &browser,
            &app,
            "/account/passkeys/add",
            &[("csrf", &csrf), ("name", "Laptop")],
        )
        .await;
        assert_eq!(response.status(), 200);
        let response = post(
            &browser,
            &app,
            "/account/passkeys/finish",
            &[("csrf", &csrf), ("credential", bad)],
        )
        .await;
        assert_eq!(response.status(), 400, "{bad:?}");
        // The ceremony is spent: the same answer again finds none (no replay).
        let again = post(
            &browser,
            &app,
            "/account/passkeys/finish",
            &[("csrf", &csrf), ("credential", bad)],
        )
        .await;
        assert_eq!(again.status(), 400);
        let body = again.text().await.expect("body");
        assert!(body.contains("No passkey is being added"), "{body}");
    }

    // A ceremony left too long expires.
    post(
        &browser,
        &app,
        "/account/passkeys/add",
        &[("csrf", &csrf), ("name", "Laptop")],
    )
    .await;
    app.clock.advance(7 * 60);
    let response = post(
        &browser,
        &app,
        "/account/passkeys/finish",
        &[("csrf", &csrf), ("credential", &forged)],
    )
    .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.expect("body");
    assert!(body.contains("took too long"), "{body}");

    assert_eq!(app.count("passkeys").await, 0);
    let added: i64 =
        sqlx::query_scalar("select count(*) from audit_events where action = 'mfa.passkey_added'")
            .fetch_one(&app.db.pool)
            .await
            .expect("count");
    assert_eq!(added, 0);
}

async fn removal_asks_the_password_and_refuses_another_accounts_passkey(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person("ada@example.com", "Ada").await;
    let bob = app.create_person("bob@example.com", "Bob").await;
    let browser = rp::browser();
    rp::sign_in(&app, &browser, "ada@example.com").await;
    let own = seed_passkey(&app, &ada, "Laptop").await;
    // Bob's row: a credential id must be unique, so his copy gets another one.
    let bobs = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "insert into passkeys (id, user_id, credential_id, name, credential, created_at) \
         values ($1, $2, 'b0b', 'Bob key', $3, 1)",
    )
    .bind(&bobs)
    .bind(&bob)
    .bind(FIXTURE_CREDENTIAL)
    .execute(&app.db.pool)
    .await
    .expect("Bob's passkey");
    let (_, html) = page(&browser, &app, "/account/passkeys").await;
    let csrf = hidden_input(&html, "csrf");
    assert!(
        html.contains(&own) && !html.contains(&bobs),
        "only Ada's passkeys"
    );

    // Another account's passkey id, even with the right password: not found, untouched.
    let response = post(
        &browser,
        &app,
        "/account/passkeys/remove",
        &[("csrf", &csrf), ("id", &bobs), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 404);
    assert_eq!(app.count("passkeys").await, 2);

    // No CSRF token; a wrong password; an empty one.
    let response = post(
        &browser,
        &app,
        "/account/passkeys/remove",
        &[("id", &own), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 400);
    for wrong in ["wrong horse battery", ""] {
        let response = post(
            &browser,
            &app,
            "/account/passkeys/remove",
            &[("csrf", &csrf), ("id", &own), ("password", wrong)],
        )
        .await;
        assert_eq!(response.status(), 400);
        let body = response.text().await.expect("body");
        assert!(body.contains("The password is not correct."), "{body}");
    }
    assert_eq!(app.count("passkeys").await, 2);

    // The right password: removed, audited, mailed; a second removal finds nothing.
    let response = post(
        &browser,
        &app,
        "/account/passkeys/remove",
        &[("csrf", &csrf), ("id", &own), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/account/passkeys");
    let (_, html) = page(&browser, &app, "/account/passkeys").await;
    assert!(
        html.contains("The passkey &#34;Laptop&#34; was removed."),
        "{html}"
    );
    assert!(html.contains("You have no passkey yet"), "{html}");
    assert_eq!(app.count("passkeys").await, 1);
    let removed: (String, String) = sqlx::query_as(
        "select actor_user_id, details from audit_events where action = 'mfa.passkey_removed'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("audited");
    assert_eq!(removed.0, ada);
    assert!(removed.1.contains(&own) && removed.1.contains("Laptop"));
    let mail = wait_for_mail(&app, "ada@example.com", "A passkey was removed").await;
    assert!(mail.text.contains("\"Laptop\""), "{}", mail.text);
    let response = post(
        &browser,
        &app,
        "/account/passkeys/remove",
        &[("csrf", &csrf), ("id", &own), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 404);
}

/// Starts a passwordless ceremony in `browser` from the login page; its finish form's CSRF token.
async fn start_passwordless(app: &TestApp, browser: &reqwest::Client) -> String {
    let (_, html) = page(browser, app, "/login").await;
    let csrf = hidden_input(&html, "csrf");
    let response = post(
        browser,
        app,
        "/login/passkey",
        &[("csrf", &csrf), ("authz", "")],
    )
    .await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("body");
    csrf
}

async fn passwordless_sign_in_refuses_unknown_and_unverified_passkeys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person("ada@example.com", "Ada").await;

    // The login page offers it, and looking at it makes no session.
    let browser = rp::browser();
    let response = browser.get(app.url("/login")).send().await.expect("GET");
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        !cookies.iter().any(|c| c.starts_with("latchkey_session=")),
        "{cookies:?}"
    );
    assert!(!csp(&response).contains("script-src"));
    let html = response.text().await.expect("body");
    assert!(html.contains("Sign in with a passkey"), "{html}");
    assert!(html.contains("action=\"/login/passkey\""), "{html}");
    let csrf = hidden_input(&html, "csrf");

    // The button's POST needs its CSRF token.
    let response = post(&browser, &app, "/login/passkey", &[("authz", "")]).await;
    assert_eq!(response.status(), 400);

    // Finishing without a started ceremony.
    let unknown = forged_assertion("AAAA", &handle_of(&ada));
    let response = post(
        &browser,
        &app,
        "/login/passkey/finish",
        &[("csrf", &csrf), ("credential", &unknown)],
    )
    .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.expect("body");
    assert!(body.contains("No passkey sign-in was started"), "{body}");

    // The ceremony page: our script, options without a list of credentials (discoverable).
    let response = post(&browser, &app, "/login/passkey", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), 200);
    assert!(csp(&response).contains("script-src 'self'"));
    let html = response.text().await.expect("body");
    let options = options_of(&html);
    assert!(options.get("mediation").is_none(), "{options}");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{options}"
    );

    // A forged answer that is not a credential: 400; the ceremony is spent.
    let response = post(
        &browser,
        &app,
        "/login/passkey/finish",
        &[("csrf", &csrf), ("credential", "{}")],
    )
    .await;
    assert_eq!(response.status(), 400);

    // An unknown passkey: the login page, one message; audited and in the login history.
    start_passwordless(&app, &browser).await;
    let response = post(
        &browser,
        &app,
        "/login/passkey/finish",
        &[("csrf", &csrf), ("credential", &unknown)],
    )
    .await;
    assert_eq!(response.status(), 401);
    let body = response.text().await.expect("body");
    assert!(
        body.contains("That passkey could not sign you in."),
        "{body}"
    );
    assert!(body.contains("name=\"password\""), "the login page: {body}");

    // A registered passkey whose signature does not verify: the same answer.
    seed_passkey(&app, &ada, "Laptop").await;
    start_passwordless(&app, &browser).await;
    let bad_signature = forged_assertion(FIXTURE_ID, &handle_of(&ada));
    let response = post(
        &browser,
        &app,
        "/login/passkey/finish",
        &[("csrf", &csrf), ("credential", &bad_signature)],
    )
    .await;
    assert_eq!(response.status(), 401);
    let body = response.text().await.expect("body");
    assert!(
        body.contains("That passkey could not sign you in."),
        "{body}"
    );
    // Replayed: the ceremony is gone.
    let response = post(
        &browser,
        &app,
        "/login/passkey/finish",
        &[("csrf", &csrf), ("credential", &bad_signature)],
    )
    .await;
    assert_eq!(response.status(), 400);
    // Someone else's user handle with Ada's credential id: refused alike.
    let bob = app.create_person("bob@example.com", "Bob").await;
    start_passwordless(&app, &browser).await;
    let response = post(
        &browser,
        &app,
        "/login/passkey/finish",
        &[
            ("csrf", &csrf),
            (
                "credential",
                &forged_assertion(FIXTURE_ID, &handle_of(&bob)),
            ),
        ],
    )
    .await;
    assert_eq!(response.status(), 401);

    let reasons: Vec<String> = sqlx::query_scalar(
        "select details from audit_events where action = 'login.failed' order by id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("audit");
    assert!(
        reasons.iter().any(|d| d.contains("unknown_passkey")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|d| d.contains("passkey_refused")),
        "{reasons:?}"
    );
    let failed: i64 = sqlx::query_scalar(
        "select count(*) from login_events where method = 'passkey' and user_id = $1",
    )
    .bind(&ada)
    .fetch_one(&app.db.pool)
    .await
    .expect("history");
    assert!(failed >= 1);

    // Failures on Ada's account are throttled like wrong passwords: 429 with Retry-After.
    let mut throttled = None;
    for _ in 0..12 {
        start_passwordless(&app, &browser).await;
        let response = post(
            &browser,
            &app,
            "/login/passkey/finish",
            &[("csrf", &csrf), ("credential", &bad_signature)],
        )
        .await;
        if response.status() == 429 {
            throttled = Some(response);
            break;
        }
        assert_eq!(response.status(), 401);
    }
    let throttled = throttled.expect("throttled after repeated failures");
    assert!(!rp::header(&throttled, "retry-after").is_empty());
    let body = throttled.text().await.expect("body");
    assert!(body.contains("Too many failed sign-ins."), "{body}");
}

async fn second_factor_offers_the_accounts_passkeys_and_counts_failures(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person("ada@example.com", "Ada").await;
    seed_passkey(&app, &ada, "Laptop").await;

    // Without a pending sign-in: to the login page; the finish is refused.
    let stranger = rp::browser();
    let response = stranger
        .get(app.url("/login/second-factor/passkey"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 303);
    assert_eq!(rp::header(&response, "location"), "/login");
    let (_, html) = page(&stranger, &app, "/login").await;
    let csrf = hidden_input(&html, "csrf");
    let forged = forged_assertion(FIXTURE_ID, &handle_of(&ada));
    let response = post(
        &stranger,
        &app,
        "/login/second-factor/passkey",
        &[("csrf", &csrf), ("credential", &forged)],
    )
    .await;
    assert_eq!(response.status(), 400);

    // The password of an account with a passkey leads to the second step.
    let browser = rp::browser();
    let login = url::Url::parse(&app.url("/login")).expect("URL");
    let response = rp::submit_login(&app, &browser, &login, "ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/login/second-factor");

    // The passkey page: a ceremony over the account's passkeys, our script.
    let response = browser
        .get(app.url("/login/second-factor/passkey"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert!(csp(&response).contains("script-src 'self'"));
    let html = response.text().await.expect("body");
    let csrf = hidden_input(&html, "csrf");
    let options = options_of(&html);
    assert_eq!(
        options["publicKey"]["allowCredentials"][0]["id"], FIXTURE_ID,
        "{options}"
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");

    // No CSRF token.
    let response = post(
        &browser,
        &app,
        "/login/second-factor/passkey",
        &[("credential", &forged)],
    )
    .await;
    assert_eq!(response.status(), 400);

    // A signature that does not verify: refused, audited mfa.failed, a new challenge offered.
    let response = post(
        &browser,
        &app,
        "/login/second-factor/passkey",
        &[("csrf", &csrf), ("credential", &forged)],
    )
    .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.expect("body");
    assert!(html.contains("could not be verified"), "{html}");
    assert!(html.contains("data-options"), "offered again: {html}");
    let failed: Vec<String> =
        sqlx::query_scalar("select details from audit_events where action = 'mfa.failed'")
            .fetch_all(&app.db.pool)
            .await
            .expect("audit");
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("passkey"), "{failed:?}");
    // Not signed in.
    let home = browser.get(app.url("/account")).send().await.expect("GET");
    assert_eq!(home.status(), 303);

    // Failures count on the login throttling: 429 with Retry-After.
    let mut throttled = None;
    for _ in 0..12 {
        let (_, html) = page(&browser, &app, "/login/second-factor/passkey").await;
        assert!(html.contains("data-options"));
        let response = post(
            &browser,
            &app,
            "/login/second-factor/passkey",
            &[("csrf", &csrf), ("credential", &forged)],
        )
        .await;
        if response.status() == 429 {
            throttled = Some(response);
            break;
        }
        assert_eq!(response.status(), 400);
    }
    let throttled = throttled.expect("throttled after repeated failures");
    assert!(!rp::header(&throttled, "retry-after").is_empty());
}

async fn an_ip_address_issuer_offers_no_passkeys(backend: Backend) {
    // An RP ID cannot be an IP address (WebAuthn L2 §5.1.4.1): nothing is offered, nothing starts.
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.create_person("ada@example.com", "Ada").await;
    let browser = rp::browser();
    let (_, html) = page(&browser, &app, "/login").await;
    assert!(!html.contains("Sign in with a passkey"), "{html}");
    let csrf = hidden_input(&html, "csrf");
    let response = post(&browser, &app, "/login/passkey", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.expect("body");
    assert!(body.contains("Passkeys are not available"), "{body}");

    rp::sign_in(&app, &browser, "ada@example.com").await;
    let (status, html) = page(&browser, &app, "/account/passkeys").await;
    assert_eq!(status, 200);
    assert!(html.contains("Passkeys are not available"), "{html}");
    assert!(!html.contains("/account/passkeys/add"), "{html}");
    let (_, html) = page(&browser, &app, "/account/password").await;
    let csrf = hidden_input(&html, "csrf");
    let response = post(
        &browser,
        &app,
        "/account/passkeys/add",
        &[("csrf", &csrf), ("name", "Laptop")],
    )
    .await;
    assert_eq!(response.status(), 400);
}

async fn a_disabled_account_cannot_sign_in_with_its_passkey(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person("ada@example.com", "Ada").await;
    seed_passkey(&app, &ada, "Laptop").await;
    app.cli(&["user", "disable", "--email", "ada@example.com"])
        .await
        .json();
    let browser = rp::browser();
    let csrf = start_passwordless(&app, &browser).await;
    let response = post(
        &browser,
        &app,
        "/login/passkey/finish",
        &[
            ("csrf", &csrf),
            (
                "credential",
                &forged_assertion(FIXTURE_ID, &handle_of(&ada)),
            ),
        ],
    )
    .await;
    assert_eq!(response.status(), 401);
    let body = response.text().await.expect("body");
    // The one message: nothing says the account exists or is disabled.
    assert!(
        body.contains("That passkey could not sign you in."),
        "{body}"
    );
    let details: String = sqlx::query_scalar(
        "select details from audit_events where action = 'login.failed' and target_id = $1",
    )
    .bind(&ada)
    .fetch_one(&app.db.pool)
    .await
    .expect("audited");
    assert!(details.contains("account_disabled"), "{details}");
    let account = browser.get(app.url("/account")).send().await.expect("GET");
    assert_eq!(account.status(), 303, "not signed in");
}

async fn rename_checks_the_name_and_the_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.create_person("ada@example.com", "Ada").await;
    let bob = app.create_person("bob@example.com", "Bob").await;
    let browser = rp::browser();
    rp::sign_in(&app, &browser, "ada@example.com").await;
    let own = seed_passkey(&app, &ada, "Laptop").await;
    let bobs = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "insert into passkeys (id, user_id, credential_id, name, credential, created_at) \
         values ($1, $2, 'b0b', 'Bob key', $3, 1)",
    )
    .bind(&bobs)
    .bind(&bob)
    .bind(FIXTURE_CREDENTIAL)
    .execute(&app.db.pool)
    .await
    .expect("Bob's passkey");
    let (_, html) = page(&browser, &app, "/account/passkeys").await;
    let csrf = hidden_input(&html, "csrf");
    let rename = "/account/passkeys/rename";

    // Another account's passkey: not found, untouched.
    let response = post(
        &browser,
        &app,
        rename,
        &[("csrf", &csrf), ("id", &bobs), ("name", "Mine now")],
    )
    .await;
    assert_eq!(response.status(), 404);
    // No CSRF token; an empty or too long name.
    let response = post(&browser, &app, rename, &[("id", &own), ("name", "Work")]).await;
    assert_eq!(response.status(), 400);
    for bad in ["  ", &"y".repeat(65)[..]] {
        let response = post(
            &browser,
            &app,
            rename,
            &[("csrf", &csrf), ("id", &own), ("name", bad)],
        )
        .await;
        assert_eq!(response.status(), 400, "{bad:?}");
    }
    let names: Vec<String> = sqlx::query_scalar("select name from passkeys order by name")
        .fetch_all(&app.db.pool)
        .await
        .expect("names");
    assert_eq!(names, ["Bob key", "Laptop"]);

    // Renamed, audited.
    let response = post(
        &browser,
        &app,
        rename,
        &[("csrf", &csrf), ("id", &own), ("name", " Work laptop ")],
    )
    .await;
    assert_eq!(response.status(), 303);
    let (_, html) = page(&browser, &app, "/account/passkeys").await;
    assert!(html.contains("Work laptop"), "{html}");
    assert!(html.contains("is now called"), "{html}");
    let details: String =
        sqlx::query_scalar("select details from audit_events where action = 'mfa.passkey_renamed'")
            .fetch_one(&app.db.pool)
            .await
            .expect("audited");
    assert!(details.contains("Laptop") && details.contains("Work laptop"));
}
