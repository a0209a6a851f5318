//! The audit log: every write of the management API, the CLI's organization commands and key
//! rotation leave an event with actor, organization, target, IP, user agent, time and details;
//! admins read their organization's log (newest first, filtered, paginated), operators all of it.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{self as m, delete, get, ids, patch, post};

on_both_databases!(
    api_writes_are_audited_with_who_what_and_where,
    the_log_is_filtered_and_paginated_newest_first,
    cli_commands_and_key_rotation_are_audited_for_operators,
    scheduled_key_rotation_is_audited,
);

/// The `action`s of a log page, in order.
fn actions(body: &Value) -> Vec<String> {
    ids(body, "action")
}

async fn api_writes_are_audited_with_who_what_and_where(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (ada, token) = m::person(&app, &client, "ada@example.com").await;
    let bob = app.create_person("bob@example.com", "Bob").await;
    let org = post(&app, "/api/v1/orgs", &token, json!({"name": "Acme"})).await;
    let org_id = org.ok(201)["id"].as_str().expect("id").to_owned();
    patch(
        &app,
        "/api/v1/orgs/acme",
        &token,
        json!({"name": "Acme Inc", "slug": "acme-inc"}),
    )
    .await
    .ok(200);
    m::cli_member(&app, "acme-inc", "bob@example.com", "member").await;
    let bob_path = format!("/api/v1/orgs/acme-inc/members/{bob}");
    patch(&app, &bob_path, &token, json!({"role": "admin"}))
        .await
        .ok(200);
    assert_eq!(delete(&app, &bob_path, &token).await.status, 204);

    let log = get(&app, "/api/v1/orgs/acme-inc/audit-log", &token).await;
    let body = log.ok(200).clone();
    assert_eq!(
        actions(&body),
        vec![
            "member.removed",
            "member.role_changed",
            "member.added",
            "organization.renamed",
            "member.added",
            "organization.created",
        ]
    );
    let items = body.as_array().expect("a JSON array");
    let removed = &items[0];
    assert_eq!(removed["org_id"], org_id.as_str());
    assert_eq!(removed["actor_user_id"], ada.as_str());
    assert_eq!(removed["actor_client_id"], client.id.as_str());
    assert_eq!(removed["target_type"], "user");
    assert_eq!(removed["target_id"], bob.as_str());
    assert_eq!(removed["ip"], "127.0.0.1");
    assert_eq!(removed["user_agent"], m::USER_AGENT);
    assert_eq!(removed["details"]["role"], "admin");
    assert!(removed["created_at"].is_i64());
    let changed = &items[1];
    assert_eq!(
        changed["details"],
        json!({"old_role": "member", "new_role": "admin"})
    );
    let added_by_cli = &items[2];
    assert_eq!(
        added_by_cli["actor_user_id"],
        Value::Null,
        "the CLI has no user"
    );
    assert_eq!(added_by_cli["ip"], Value::Null);
    assert_eq!(added_by_cli["details"]["role"], "member");
    let renamed = &items[3];
    assert_eq!(
        renamed["details"]["old"],
        json!({"name": "Acme", "slug": "acme"})
    );
    assert_eq!(
        renamed["details"]["new"],
        json!({"name": "Acme Inc", "slug": "acme-inc"})
    );
    assert_eq!(items[4]["target_id"], ada.as_str());
    assert_eq!(items[4]["details"]["role"], "owner");
    assert_eq!(items[5]["target_id"], org_id.as_str());
    assert_eq!(log.next, None, "one page");

    // Deleting keeps the trail for operators, with the organization's id.
    assert_eq!(
        delete(&app, "/api/v1/orgs/acme-inc", &token).await.status,
        204
    );
    let operator = m::operator_token(&app).await;
    let trail = get(
        &app,
        &format!("/api/v1/audit-log?org_id={org_id}"),
        &operator,
    )
    .await;
    let trail = actions(trail.ok(200));
    assert_eq!(
        trail.first().map(String::as_str),
        Some("organization.deleted")
    );
    assert_eq!(trail.len(), 7);
}

async fn the_log_is_filtered_and_paginated_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (_, token) = m::person(&app, &client, "ada@example.com").await;
    let (_, other) = m::person(&app, &client, "eve@example.com").await;
    post(&app, "/api/v1/orgs", &token, json!({"name": "Acme"}))
        .await
        .ok(201);
    post(&app, "/api/v1/orgs", &other, json!({"name": "Evil"}))
        .await
        .ok(201);
    let before = app.clock.now();
    for i in 0..5 {
        patch(
            &app,
            "/api/v1/orgs/acme",
            &token,
            json!({"name": format!("Acme {i}")}),
        )
        .await
        .ok(200);
    }
    let all = get(&app, "/api/v1/orgs/acme/audit-log", &token).await;
    let all = all.ok(200).clone();
    assert_eq!(
        all.as_array().expect("a JSON array").len(),
        7,
        "only this organization's events"
    );
    let names: Vec<Value> = all
        .as_array()
        .expect("a JSON array")
        .iter()
        .take(5)
        .map(|e| e["details"]["new"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec!["Acme 4", "Acme 3", "Acme 2", "Acme 1", "Acme 0"],
        "newest first"
    );

    let renames = get(
        &app,
        "/api/v1/orgs/acme/audit-log?action=organization.renamed",
        &token,
    )
    .await;
    assert_eq!(actions(renames.ok(200)).len(), 5);
    let none = get(
        &app,
        "/api/v1/orgs/acme/audit-log?action=nothing.happened",
        &token,
    )
    .await;
    assert!(actions(none.ok(200)).is_empty());
    let future = get(
        &app,
        &format!("/api/v1/orgs/acme/audit-log?from={}", before + 3600),
        &token,
    )
    .await;
    assert!(actions(future.ok(200)).is_empty());
    let past = get(
        &app,
        &format!("/api/v1/orgs/acme/audit-log?to={}", before - 3600),
        &token,
    )
    .await;
    assert!(actions(past.ok(200)).is_empty());
    let window = get(
        &app,
        &format!(
            "/api/v1/orgs/acme/audit-log?from={}&to={}",
            before - 5,
            before + 5
        ),
        &token,
    )
    .await;
    assert_eq!(actions(window.ok(200)).len(), 7);

    // Pages of 3: 3 + 3 + 1, the same events in the same order.
    let mut seen = Vec::new();
    let mut path = "/api/v1/orgs/acme/audit-log?limit=3".to_owned();
    loop {
        let page = get(&app, &path, &token).await;
        let body = page.ok(200).clone();
        seen.extend(ids(&body, "id"));
        match page.next {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(seen, ids(&all, "id"));

    for bad in [
        "limit=0",
        "limit=500",
        "from=yesterday",
        "from=10&to=5",
        "action=",
    ] {
        get(&app, &format!("/api/v1/orgs/acme/audit-log?{bad}"), &token)
            .await
            .problem(400, "invalid-query");
    }
    get(&app, "/api/v1/orgs/acme/audit-log?cursor=xyz", &token)
        .await
        .problem(400, "invalid-cursor");
}

async fn cli_commands_and_key_rotation_are_audited_for_operators(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    app.create_person("bob@example.com", "Bob").await;
    let org_id = m::cli_org(&app, "Acme", "acme", "ada@example.com").await;
    m::cli_member(&app, "acme", "bob@example.com", "viewer").await;
    let rotated = app.cli(&["keys", "rotate"]).await.json();
    let operator = m::operator_token(&app).await;

    let log = get(&app, "/api/v1/audit-log", &operator).await;
    let body = log.ok(200).clone();
    let items = body.as_array().expect("a JSON array");
    let find = |action: &str| {
        items
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {body}"))
            .clone()
    };
    let key = find("signing_key.rotated");
    assert_eq!(key["org_id"], Value::Null);
    assert_eq!(key["target_type"], "signing_key");
    assert_eq!(key["target_id"], rotated["kid"]);
    assert_eq!(key["details"]["alg"], rotated["alg"]);
    assert_eq!(key["details"]["trigger"], "cli");
    let created = find("organization.created");
    assert_eq!(created["org_id"], org_id.as_str());
    assert_eq!(created["details"], json!({"name": "Acme", "slug": "acme"}));
    assert_eq!(created["actor_user_id"], Value::Null);
    assert_eq!(created["actor_client_id"], Value::Null);
    let added: Vec<&Value> = items
        .iter()
        .filter(|e| e["action"] == "member.added")
        .collect();
    assert_eq!(added.len(), 2, "the owner and bob");
    assert!(added.iter().any(|e| e["details"]["role"] == "viewer"));

    let only = get(
        &app,
        "/api/v1/audit-log?action=signing_key.rotated",
        &operator,
    )
    .await;
    assert_eq!(actions(only.ok(200)), vec!["signing_key.rotated"]);
}

async fn scheduled_key_rotation_is_audited(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_KEY_ROTATION", "1d")]).await;
    let config =
        latchkey::config::Config::from_lookup(|k| app.env.get(k).cloned()).expect("configuration");
    let lead = latchkey::crypto::key_store::publish_lead(&config);
    app.clock.advance(24 * 3600 - lead + 1);
    latchkey::crypto::key_store::rotate_due(&app.db, &config, &app.clock, &app.kek)
        .await
        .expect("published");
    app.clock.advance(lead);
    let report = latchkey::crypto::key_store::rotate_due(&app.db, &config, &app.clock, &app.kek)
        .await
        .expect("rotated");
    assert_eq!(report.activated.len(), 2, "{report:?}");

    let operator = m::operator_token(&app).await;
    let log = get(
        &app,
        "/api/v1/audit-log?action=signing_key.rotated",
        &operator,
    )
    .await;
    let body = log.ok(200).clone();
    let mut kids: Vec<String> = ids(&body, "target_id");
    kids.sort();
    let mut activated = report.activated.clone();
    activated.sort();
    assert_eq!(kids, activated);
    for event in body.as_array().expect("a JSON array") {
        assert_eq!(event["details"]["trigger"], "schedule");
        assert_eq!(event["actor_user_id"], Value::Null);
        assert_eq!(event["org_id"], Value::Null);
    }
}
