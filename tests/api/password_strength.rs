//! Password strength (NIST SP 800-63B §5.1.1.2): common, guessable and personal passwords are
//! refused with the reason on the sign-up page, the sign-up API and the CLI (the invitation and
//! reset forms are covered with their other refusals); a strong passphrase is accepted.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD};
use crate::signup::submit_signup;

on_both_databases!(
    the_signup_api_refuses_weak_passwords_with_a_weak_password_problem,
    the_signup_page_shows_why_next_to_the_password_field,
    the_cli_refuses_a_weak_password_in_one_line,
);

/// The person signing up in these tests.
const EMAIL: &str = "grace.hopper@example.com";
/// Their name.
const NAME: &str = "Ada Lovelace";

/// Passwords every path refuses for [`EMAIL`] and [`NAME`]: common ones, a common pattern, the
/// email's local part with digits, the name with digits.
const WEAK: [&str; 6] = [
    "password",
    "password123",
    "Summer2024!",
    "grace.hopper1906",
    "Hopper2024",
    "lovelace1815",
];

async fn the_signup_api_refuses_weak_passwords_with_a_weak_password_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let http = rp::rp_http();
    for weak in WEAK {
        let response = http
            .post(app.url("/api/v1/signup"))
            .json(&json!({"email": EMAIL, "name": NAME, "password": weak}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{weak}");
        assert_eq!(
            rp::header(&response, "content-type"),
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            problem["type"], "urn:latchkey:problem:weak-password",
            "{weak}"
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("too easy to guess") || detail.contains("name or email"),
            "{weak}: {detail}"
        );
        assert!(
            weak == "password" || !detail.contains(weak),
            "the detail never echoes the password"
        );
    }
    assert_eq!(app.count("users").await, 0);

    let created = http
        .post(app.url("/api/v1/signup"))
        .json(&json!({"email": EMAIL, "name": NAME, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

async fn the_signup_page_shows_why_next_to_the_password_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for weak in WEAK {
        let browser = rp::browser();
        let response = submit_signup(
            &app,
            &browser,
            "",
            &[
                ("email", EMAIL),
                ("name", NAME),
                ("password", weak),
                ("password_confirm", weak),
            ],
        )
        .await;
        assert_eq!(response.status(), 400, "{weak}");
        let html = response.text().await.unwrap();
        assert!(html.contains("aria-invalid=\"true\""), "{html}");
        assert!(
            html.contains("aria-describedby=\"password-error password-help\""),
            "{html}"
        );
        let error = html
            .split("<p id=\"password-error\" class=\"field-error\" role=\"alert\">")
            .nth(1)
            .and_then(|rest| rest.split("</p>").next())
            .unwrap_or_else(|| panic!("no field error for {weak}: {html}"));
        assert!(
            error.contains("too easy to guess") || error.contains("name or email"),
            "{weak}: {error}"
        );
        assert!(
            html.contains(&format!("value=\"{EMAIL}\"")),
            "keeps the email"
        );
    }
    assert_eq!(app.count("users").await, 0);

    let accepted = submit_signup(
        &app,
        &rp::browser(),
        "",
        &[
            ("email", EMAIL),
            ("name", NAME),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(accepted.status(), 303);
}

async fn the_cli_refuses_a_weak_password_in_one_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for weak in WEAK {
        let refused = app
            .cli_stdin(
                &[
                    "user",
                    "create",
                    "--email",
                    EMAIL,
                    "--name",
                    NAME,
                    "--password-stdin",
                ],
                weak,
            )
            .await
            .refused();
        assert!(
            refused.contains("too easy to guess") || refused.contains("name or email"),
            "{weak}: {refused}"
        );
    }
    assert_eq!(app.count("users").await, 0);
    app.create_person(EMAIL, NAME).await;
    assert_eq!(app.count("users").await, 1);
}
