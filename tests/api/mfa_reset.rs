//! The operator's reset of a person's second factors (`latchkey user mfa-reset --email`, `DELETE
//! /api/v1/users/{id}/mfa`): every factor goes (the next login asks for none), every session and
//! refresh family ends, the owner is mailed, the audit log records it; unknown users, people and
//! clients without `admin`, and calls without a token are refused with the right error.

use serde_json::{Value, json};
use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::mfa_helpers::enrol_totp;
use crate::mgmt_helpers as m;
use crate::rp::{self, PASSWORD, RegisteredClient, location, submit_login};
use crate::support::mail::wait_for_mail;
use crate::users_admin::{ADA, SignedIn, account_page, audit, refresh_outcome, signed_in};

on_both_databases!(
    api_reset_of_an_account_without_factors_ends_sessions_mails_and_audits,
    cli_reset_of_an_account_without_factors,
    api_reset_removes_the_authenticator,
    cli_reset_removes_the_authenticator,
    refusals,
);

/// The subject of the owner's notice (`FactorChange::ResetByOperator`).
const SUBJECT: &str = "The second factors of your account were removed";

fn mfa_path(id: &str) -> String {
    format!("/api/v1/users/{id}/mfa")
}

/// Where a password login of `email` from a fresh browser leads: the second step, or home.
async fn after_password(app: &TestApp, email: &str) -> String {
    let page = Url::parse(&app.url("/login")).expect("login URL");
    let response = submit_login(app, &rp::browser(), &page, email, PASSWORD).await;
    assert_eq!(response.status(), 303, "the password is accepted");
    location(app, &response).path().to_owned()
}

async fn api_reset_of_an_account_without_factors_ends_sessions_mails_and_audits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    let client = app.register_client(&[]).await;
    let operator = m::operator_token(&app).await;
    let ada = signed_in(&app, &client, ADA).await;
    assert_eq!(account_page(&app, &ada.browser).await, "account");

    let reset = m::delete(&app, &mfa_path(&id), &operator).await;
    let body = reset.ok(200);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["email"], ADA);
    assert_eq!(body["factors_removed"], 0);
    assert_eq!(
        body["removed"],
        json!({"totp": 0, "recovery_codes": 0, "passkeys": 0})
    );
    assert_eq!(body["sessions_ended"], 1, "{body}");
    assert_eq!(body["refresh_families_ended"], 1, "{body}");

    // Every sign-in ended.
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant"
    );
    assert_eq!(account_page(&app, &ada.browser).await, "/login");
    // The owner is told, the audit log has it.
    let mail = wait_for_mail(&app, ADA, SUBJECT).await;
    assert!(mail.text.contains("administrator"), "{}", mail.text);
    let events = audit(&app, &operator, "mfa.reset").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target_id"], id.as_str());
    assert_eq!(
        events[0]["details"]["factors_removed"],
        json!({"totp": 0, "recovery_codes": 0, "passkeys": 0})
    );
    assert_eq!(events[0]["details"]["had_second_factor"], false);
    assert!(events[0]["actor_client_id"].is_string(), "{}", events[0]);
    // The account itself is untouched: the password still signs in, straight home.
    assert_eq!(after_password(&app, ADA).await, "/");
}

async fn cli_reset_of_an_account_without_factors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    let client = app.register_client(&[]).await;
    let ada = signed_in(&app, &client, ADA).await;

    let out = app
        .cli(&["user", "mfa-reset", "--email", "ADA@Example.com"])
        .await
        .json();
    assert_eq!(out["id"], id.as_str());
    assert_eq!(out["email"], ADA);
    assert_eq!(out["factors_removed"], 0);
    assert_eq!(out["sessions_ended"], 1, "{out}");
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant"
    );
    // The running server's delivery loop sends the notice the command queued.
    wait_for_mail(&app, ADA, SUBJECT).await;
    let operator = m::operator_token(&app).await;
    let events = audit(&app, &operator, "mfa.reset").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["actor_client_id"],
        Value::Null,
        "the command line"
    );
}

/// Ada, signed in at `client` (a browser session and a refresh token), who then enrols an
/// authenticator app through the account page.
async fn ada_with_totp(app: &TestApp, client: &RegisteredClient) -> (String, SignedIn) {
    let id = app.create_person(ADA, "Ada").await;
    let ada = signed_in(app, client, ADA).await;
    enrol_totp(app, &ada.browser).await;
    // From now on, a password alone is not enough.
    assert_eq!(after_password(app, ADA).await, "/login/second-factor");
    (id, ada)
}

async fn api_reset_removes_the_authenticator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.register_client(&[]).await;
    let (id, ada) = ada_with_totp(&app, &client).await;
    let operator = m::operator_token(&app).await;

    // The operator sees the factors before resetting them.
    let shown = m::get(&app, &format!("/api/v1/users/{id}"), &operator).await;
    assert_eq!(
        shown.ok(200)["mfa"],
        json!({"totp": true, "passkeys": 0, "recovery_codes": 10})
    );

    let reset = m::delete(&app, &mfa_path(&id), &operator).await;
    let body = reset.ok(200);
    assert_eq!(body["removed"]["totp"], 1, "{body}");
    assert_eq!(body["removed"]["recovery_codes"], 10, "{body}");
    assert!(body["factors_removed"].as_u64() >= Some(1), "{body}");
    assert!(body["sessions_ended"].as_u64() >= Some(1), "{body}");
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant"
    );
    assert_eq!(account_page(&app, &ada.browser).await, "/login");
    // The second step is no longer asked; the owner is told; the audit log says what went.
    assert_eq!(after_password(&app, ADA).await, "/");
    wait_for_mail(&app, ADA, SUBJECT).await;
    let events = audit(&app, &operator, "mfa.reset").await;
    assert_eq!(events[0]["details"]["factors_removed"]["totp"], 1);
    assert_eq!(events[0]["details"]["had_second_factor"], true);
    // A second reset finds nothing left.
    let again = m::delete(&app, &mfa_path(&id), &operator).await;
    assert_eq!(again.ok(200)["factors_removed"], 0);
    let shown = m::get(&app, &format!("/api/v1/users/{id}"), &operator).await;
    assert_eq!(
        shown.ok(200)["mfa"],
        json!({"totp": false, "passkeys": 0, "recovery_codes": 0})
    );
}

async fn cli_reset_removes_the_authenticator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.register_client(&[]).await;
    let (_id, ada) = ada_with_totp(&app, &client).await;
    let shown = app.cli(&["user", "show", "--email", ADA]).await.json();
    assert_eq!(shown["mfa"]["totp"], true, "{shown}");
    let out = app.cli(&["user", "mfa-reset", "--email", ADA]).await.json();
    assert_eq!(out["removed"]["totp"], 1, "{out}");
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant"
    );
    assert_eq!(after_password(&app, ADA).await, "/");
    wait_for_mail(&app, ADA, SUBJECT).await;
}

async fn refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    let operator = m::operator_token(&app).await;

    // Unknown user: 404 problem; unknown address: exit 1 with one line.
    m::delete(&app, &mfa_path("no-such-user"), &operator)
        .await
        .problem(404, "user-not-found");
    let out = app
        .cli(&["user", "mfa-reset", "--email", "nobody@example.com"])
        .await;
    let refused = out.refused();
    assert!(refused.contains("nobody@example.com"), "{refused}");
    assert_eq!(out.code, Some(1));
    let out = app.cli(&["user", "mfa-reset"]).await;
    assert!(!out.success, "--email is required");

    // No token: 401; a person's token, a client without admin: 403 operator-required.
    let anonymous = reqwest::Client::new()
        .delete(app.url(&mfa_path(&id)))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), 401);
    let person = m::user_token(&app, &m::org_client(&app).await, ADA, m::ORG_SCOPES).await;
    m::delete(&app, &mfa_path(&id), &person)
        .await
        .problem(403, "operator-required");
    let client = m::client_token(&app, &["org:read"]).await;
    m::delete(&app, &mfa_path(&id), &client)
        .await
        .problem(403, "operator-required");
    // Other methods on the path: 405 problem.
    m::get(&app, &mfa_path(&id), &operator)
        .await
        .problem(405, "method-not-allowed");
    // Nothing was reset: no audit event, no mail.
    assert!(audit(&app, &operator, "mfa.reset").await.is_empty());
}
