//! `POST /api/v1/signup`: 201 with the unverified account (and the organization it owns), and a
//! problem+json with a stable `type` for every malformed or refused body.

use serde_json::{Value, json};
use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD, json_with_status};
use crate::signup::{VERIFY_SUBJECT, claims, sign_up, submit_signup};
use crate::support::mail::wait_for_mail;

on_both_databases!(
    api_signup_answers_201_with_the_unverified_account,
    api_signup_refuses_malformed_and_invalid_bodies,
    invite_only_api_refuses_before_reading_the_body,
    signups_are_limited_per_address,
);

/// `POST /api/v1/signup` with a JSON body.
async fn api_signup(app: &TestApp, body: &Value) -> reqwest::Response {
    rp::rp_http()
        .post(app.url("/api/v1/signup"))
        .json(body)
        .send()
        .await
        .expect("signup sent")
}

async fn api_signup_answers_201_with_the_unverified_account(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;

    let plain = api_signup(
        &app,
        &json!({"email": " ada@example.com ", "password": PASSWORD}),
    )
    .await;
    let with_org = api_signup(
        &app,
        &json!({"email": "bob@example.com", "password": PASSWORD, "name": "Bob", "organization": "Bob's Bakery"}),
    )
    .await;

    let plain = json_with_status(plain, 201).await;
    assert_eq!(
        plain,
        json!({"id": plain["id"], "email": "ada@example.com", "name": "", "email_verified": false, "organization": null})
    );
    assert!(plain["id"].is_string());
    let with_org = json_with_status(with_org, 201).await;
    assert_eq!(with_org["name"], "Bob");
    assert_eq!(with_org["email_verified"], false);
    let org = &with_org["organization"];
    assert_eq!(org["slug"], "bob-s-bakery");
    assert_eq!(org["name"], "Bob's Bakery");
    assert_eq!(org.as_object().unwrap().len(), 3, "{org}");
    let role: String =
        sqlx::query_scalar("select role from memberships where org_id = $1 and user_id = $2")
            .bind(org["id"].as_str().unwrap())
            .bind(with_org["id"].as_str().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(role, "owner");
    let mail = wait_for_mail(&app, "bob@example.com", VERIFY_SUBJECT).await;
    let link = Url::parse(&mail.link("/verify-email")).unwrap();
    assert!(
        link.query_pairs()
            .any(|(k, v)| k == "token" && v.len() == 43)
    );
    // The stored token is its SHA-256, not the value in the link.
    let token = link
        .query_pairs()
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .into_owned();
    let stored: Vec<String> =
        sqlx::query_scalar("select token_hash from email_verification_tokens")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert!(!stored.contains(&token) && stored.iter().all(|h| h.len() == 64));
    // The account signs in with its password.
    let client = app.register_client(&["--public", "--first-party"]).await;
    let (id_claims, _) = claims(&app, &rp::browser(), &client, "ada@example.com").await;
    assert_eq!(id_claims["sub"], plain["id"]);
    assert_eq!(id_claims["email_verified"], false);
}

async fn api_signup_refuses_malformed_and_invalid_bodies(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let ok = api_signup(
        &app,
        &json!({"email": "taken@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(ok.status(), 201);

    let cases: Vec<(&str, &str, u16, &str)> = vec![
        ("application/json", "{\"email\": ", 400, "malformed-json"),
        ("application/json", "", 400, "missing-body"),
        ("application/json", "[1, 2]", 400, "invalid-body"),
        (
            "application/json",
            r#"{"email": 5, "password": "correct horse battery"}"#,
            400,
            "invalid-body",
        ),
        (
            "application/json",
            r#"{"email": "x@example.com"}"#,
            400,
            "invalid-body",
        ),
        (
            "application/json",
            r#"{"email": "x@example.com", "password": "correct horse battery", "role": "owner"}"#,
            400,
            "invalid-body",
        ),
        (
            "application/json",
            r#"{"email": "x@example.com", "password": "short"}"#,
            400,
            "weak-password",
        ),
        (
            "application/json",
            r#"{"email": "no-at-sign", "password": "correct horse battery"}"#,
            400,
            "invalid-email",
        ),
        (
            "application/json",
            r#"{"email": "x@example.com", "password": "correct horse battery", "organization": "\u0007"}"#,
            400,
            "invalid-organization-name",
        ),
        (
            "application/json",
            r#"{"email": "TAKEN@example.COM", "password": "correct horse battery"}"#,
            409,
            "email-taken",
        ),
        (
            "text/plain",
            r#"{"email": "x@example.com", "password": "correct horse battery"}"#,
            415,
            "unsupported-media-type",
        ),
    ];
    for (content_type, body, status, problem) in cases {
        let response = rp::rp_http()
            .post(app.url("/api/v1/signup"))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(
            rp::header(&response, "content-type"),
            "application/problem+json",
            "{body}"
        );
        let json = json_with_status(response, status).await;
        assert_eq!(
            json["type"],
            format!("urn:latchkey:problem:{problem}"),
            "{body}: {json}"
        );
        assert_eq!(json["status"], status);
        if body.contains("\"role\"") {
            assert!(
                json["detail"]
                    .as_str()
                    .unwrap()
                    .contains("unknown field `role`"),
                "{json}"
            );
        }
    }
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("organizations").await, 0);
}

async fn invite_only_api_refuses_before_reading_the_body(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_SIGNUP", "invite-only")]).await;

    let response = rp::rp_http()
        .post(app.url("/api/v1/signup"))
        .header("content-type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();

    let problem = json_with_status(response, 403).await;
    assert_eq!(problem["type"], "urn:latchkey:problem:signup-disabled");
}

/// Ten sign-ups per address per hour, page and API together; the eleventh is a 429 (a problem with
/// its own type for the API, a page for browsers); refusals for other reasons do not count.
async fn signups_are_limited_per_address(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    for n in 0..9 {
        let body = json!({"email": format!("user{n}@example.com"), "password": PASSWORD});
        json_with_status(api_signup(&app, &body).await, 201).await;
    }
    let taken = json!({"email": "user0@example.com", "password": PASSWORD});
    json_with_status(api_signup(&app, &taken).await, 409).await;
    sign_up(&app, &rp::browser(), "tenth@example.com", "").await;

    let body = json!({"email": "eleventh@example.com", "password": PASSWORD});
    let problem = json_with_status(api_signup(&app, &body).await, 429).await;
    assert_eq!(problem["type"], "urn:latchkey:problem:too-many-signups");
    assert!(
        problem["detail"].as_str().unwrap().contains("too many"),
        "{problem}"
    );
    let page = submit_signup(
        &app,
        &rp::browser(),
        "",
        &[
            ("email", "eleventh@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(page.status(), 429);
    assert!(page.text().await.unwrap().contains("Too many accounts"));
    assert_eq!(app.count("users").await, 10);
    let audited: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "select actor_user_id, ip from audit_events where action = 'user.signed_up'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 10);
    assert!(
        audited
            .iter()
            .all(|(actor, ip)| actor.is_none() && ip.as_deref() == Some("127.0.0.1")),
        "{audited:?}"
    );

    // An hour later (plus a margin for the real seconds the sign-ups took) the address may sign up
    // again.
    app.clock.advance(60 * 60 + 10 * 60);
    json_with_status(api_signup(&app, &body).await, 201).await;
}
