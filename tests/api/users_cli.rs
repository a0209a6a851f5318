//! `latchkey user list|show|disable|enable|delete|sessions-end`: each prints one JSON object, a
//! running server sees the change at once (disable ends the refresh chain and the browser session
//! and refuses the login with the neutral message; enable restores sign-in), deletion refuses the
//! last owner naming the organization, and an unknown address or bad input exits non-zero with one
//! line on stderr.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers as m;
use crate::rp::{self, PASSWORD};
use crate::users_admin::{ADA, account_page, api_status, audit, login, refresh_outcome, signed_in};

on_both_databases!(
    list_and_show_print_json,
    disable_and_enable_act_on_a_running_server,
    delete_refuses_the_last_owner_then_works,
    sessions_end_prints_what_ended,
    unknown_addresses_and_bad_input_are_refused,
);

async fn list_and_show_print_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada_id = app.create_person(ADA, "Ada").await;
    app.create_person("Bob@Example.ORG", "Bob").await;
    app.create_person("carol@example.com", "Carol").await;
    let org_id = m::cli_org(&app, "Acme", "acme", ADA).await;

    let listed = app.cli(&["user", "list"]).await.json();
    let users = listed["users"].as_array().expect("users").clone();
    let emails: Vec<&str> = users.iter().filter_map(|u| u["email"].as_str()).collect();
    assert_eq!(emails, [ADA, "Bob@Example.ORG", "carol@example.com"]);
    assert_eq!(users[0]["id"], ada_id);
    assert_eq!(users[0]["name"], "Ada");
    assert_eq!(users[0]["disabled"], false);
    assert_eq!(users[0]["email_verified"], false);
    assert!(users[0]["created_at"].is_i64());

    let found = app
        .cli(&["user", "list", "--email-contains", "EXAMPLE.org"])
        .await
        .json();
    assert_eq!(found["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["users"][0]["email"], "Bob@Example.ORG");
    let first = app.cli(&["user", "list", "--limit", "1"]).await.json();
    assert_eq!(first["users"].as_array().map(Vec::len), Some(1));
    let none = app
        .cli(&["user", "list", "--email-contains", "nobody"])
        .await
        .json();
    assert_eq!(none, json!({"users": []}));

    // A signed-in browser shows in `show`.
    rp::sign_in(&app, &rp::browser(), ADA).await;
    let shown = app
        .cli(&["user", "show", "--email", "ADA@example.com"])
        .await
        .json();
    assert_eq!(shown["id"], ada_id);
    assert_eq!(shown["email"], ADA);
    assert_eq!(shown["sessions"], 1);
    assert_eq!(shown["refresh_families"], 0);
    assert!(shown["last_sign_in_at"].is_i64(), "{shown}");
    assert_eq!(
        shown["memberships"],
        json!([{"org_id": org_id, "org_slug": "acme", "org_name": "Acme", "role": "owner"}])
    );
    let bob = app
        .cli(&["user", "show", "--email", "bob@example.org"])
        .await
        .json();
    assert_eq!(bob["last_sign_in_at"], Value::Null);
    assert_eq!(bob["memberships"], json!([]));
}

async fn disable_and_enable_act_on_a_running_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    app.create_person("bob@example.com", "Bob").await;
    let client = app.register_client(&[]).await;
    let ada = signed_in(&app, &client, ADA).await;

    let disabled = app.cli(&["user", "disable", "--email", ADA]).await.json();
    assert_eq!(disabled["id"], id);
    assert_eq!(disabled["email"], ADA);
    assert_eq!(disabled["disabled"], true);
    assert_eq!(
        disabled["ended"],
        json!({"sessions": 1, "refresh_families": 1})
    );
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant"
    );
    assert_eq!(account_page(&app, &ada.browser).await, "/login");
    assert_eq!(api_status(&app, &ada.access_token).await, 401);
    let refused = login(&app, ADA, PASSWORD).await;
    assert_eq!(
        refused,
        login(&app, "bob@example.com", "wrong password").await
    );
    assert!(refused.1, "the neutral message is shown");
    let shown = app.cli(&["user", "show", "--email", ADA]).await.json();
    assert_eq!(shown["disabled"], true);

    let enabled = app.cli(&["user", "enable", "--email", ADA]).await.json();
    assert_eq!(enabled["disabled"], false);
    assert!(enabled.get("ended").is_none(), "{enabled}");
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant",
        "what disabling ended stays ended"
    );
    rp::sign_in(&app, &ada.browser, ADA).await;
    assert_eq!(account_page(&app, &ada.browser).await, "account");

    // Audited with the command line as the actor: no user, no client.
    let operator = m::operator_token(&app).await;
    for action in ["user.disabled", "user.enabled"] {
        let events = audit(&app, &operator, action).await;
        assert_eq!(events.len(), 1, "{action}: {events:?}");
        assert_eq!(events[0]["target_id"], id);
        assert_eq!(events[0]["actor_user_id"], Value::Null);
        assert_eq!(events[0]["actor_client_id"], Value::Null);
    }
}

async fn delete_refuses_the_last_owner_then_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (ada_id, ada_token) = m::person(&app, &client, ADA).await;
    app.create_person("bob@example.com", "Bob").await;
    m::cli_org(&app, "Acme Corp", "acme", ADA).await;

    let refused = app.cli(&["user", "delete", "--email", ADA]).await;
    let line = refused.refused();
    assert!(line.contains("Acme Corp (acme)"), "{line}");
    assert!(line.contains("only owner"), "{line}");
    assert_eq!(api_status(&app, &ada_token).await, 200, "nothing changed");

    m::cli_member(&app, "acme", "bob@example.com", "owner").await;
    let deleted = app.cli(&["user", "delete", "--email", ADA]).await.json();
    assert_eq!(
        deleted,
        json!({"id": ada_id, "email": ADA, "deleted": true})
    );
    assert_eq!(api_status(&app, &ada_token).await, 401);
    assert_eq!(app.count("users").await, 1);
    let again = app.cli(&["user", "delete", "--email", ADA]).await;
    assert!(again.refused().contains("no user with email"));

    let operator = m::operator_token(&app).await;
    let events = audit(&app, &operator, "user.deleted").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target_id"], ada_id);
    assert_eq!(events[0]["details"]["email"], ADA);
}

async fn sessions_end_prints_what_ended(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_person(ADA, "Ada").await;
    let client = app.register_client(&[]).await;
    let ada = signed_in(&app, &client, ADA).await;

    let ended = app
        .cli(&["user", "sessions-end", "--email", ADA])
        .await
        .json();
    assert_eq!(
        ended,
        json!({"id": id, "email": ADA, "ended": {"sessions": 1, "refresh_families": 1}})
    );
    assert_eq!(
        refresh_outcome(&app, &client, &ada.refresh_token).await,
        "invalid_grant"
    );
    assert_eq!(account_page(&app, &ada.browser).await, "/login");
    let again = app
        .cli(&["user", "sessions-end", "--email", ADA])
        .await
        .json();
    assert_eq!(
        again["ended"],
        json!({"sessions": 0, "refresh_families": 0})
    );
    // Not disabled: the person signs in again.
    rp::sign_in(&app, &ada.browser, ADA).await;
}

async fn unknown_addresses_and_bad_input_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person(ADA, "Ada").await;
    for command in ["show", "disable", "enable", "delete", "sessions-end"] {
        let out = app
            .cli(&["user", command, "--email", "nobody@example.com"])
            .await;
        let line = out.refused();
        assert!(
            line.contains("no user with email nobody@example.com"),
            "{command}: {line}"
        );
        app.cli(&["user", command]).await.refused();
    }
    for bad in [
        &["user", "list", "--email-contains", ""][..],
        &["user", "list", "--email-contains", "   "],
        &["user", "list", "--limit", "0"],
        &["user", "list", "--limit", "many"],
        &["user", "list", "--unknown"],
    ] {
        app.cli(bad).await.refused();
    }
    let shown = app.cli(&["user", "show", "--email", ADA]).await.json();
    assert_eq!(shown["disabled"], false, "nothing changed");
    assert_eq!(
        app.count("audit_events where action like 'user.%'").await,
        0
    );
}
