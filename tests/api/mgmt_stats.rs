//! Operator statistics (`GET /api/v1/stats`) and the roles table (`GET /api/v1/roles`).

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{self as m, get};

on_both_databases!(
    operators_get_statistics_with_filters,
    roles_are_listed_strongest_first_with_their_permissions,
);

async fn operators_get_statistics_with_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in ["ada", "bob", "cy", "dee", "eve"] {
        app.create_person(&format!("{name}@example.com"), name)
            .await;
    }
    m::cli_org(&app, "Acme", "acme", "ada@example.com").await;
    m::cli_org(&app, "Bobco", "bobco", "bob@example.com").await;
    m::cli_org(&app, "Empty", "empty", "eve@example.com").await;
    m::cli_member(&app, "acme", "bob@example.com", "admin").await;
    m::cli_member(&app, "acme", "cy@example.com", "viewer").await;
    sqlx::query(
        "update users set email_verified = 1 where email in ('ada@example.com', 'bob@example.com')",
    )
    .execute(&app.db.pool)
    .await
    .expect("verified");
    sqlx::query("update users set disabled = 1 where email = 'eve@example.com'")
        .execute(&app.db.pool)
        .await
        .expect("disabled");
    let operator = m::operator_token(&app).await;

    let stats = get(&app, "/api/v1/stats", &operator).await;
    let body = stats.ok(200).clone();
    assert_eq!(
        body["users"],
        json!({"total": 5, "verified": 2, "unverified": 2, "disabled": 1})
    );
    assert_eq!(
        body["users_per_role"],
        json!({"owner": 3, "admin": 1, "member": 0, "viewer": 1, "none": 1})
    );
    let orgs = body["members_per_organization"].as_array().expect("orgs");
    let acme = orgs.iter().find(|o| o["org_slug"] == "acme").expect("acme");
    assert_eq!(acme["members"], 3);
    assert_eq!(acme["owners"], 1);
    assert_eq!(acme["admins"], 1);
    assert_eq!(acme["viewers"], 1);
    assert_eq!(acme["org_name"], "Acme");
    let signups = body["signups_per_day"].as_array().expect("days");
    assert_eq!(signups.len(), 1, "{signups:?}");
    assert_eq!(signups[0]["signups"], 5);
    let today = signups[0]["date"].as_str().expect("date");
    assert_eq!(today.len(), 10, "YYYY-MM-DD: {today}");

    let disabled = get(&app, "/api/v1/stats?status=disabled", &operator).await;
    let body = disabled.ok(200).clone();
    assert_eq!(body["users"]["total"], 1);
    assert_eq!(body["users_per_role"]["owner"], 1);
    let empty = body["members_per_organization"]
        .as_array()
        .expect("orgs")
        .iter()
        .find(|o| o["org_slug"] == "empty")
        .cloned()
        .expect("empty");
    assert_eq!(empty["members"], 1);
    let verified = get(&app, "/api/v1/stats?status=verified", &operator).await;
    assert_eq!(verified.ok(200)["users"]["total"], 2);

    let now = app.clock.now();
    let later = get(
        &app,
        &format!("/api/v1/stats?from={}", now + 86_400),
        &operator,
    )
    .await;
    let body = later.ok(200).clone();
    assert_eq!(body["users"]["total"], 0);
    assert_eq!(body["signups_per_day"], json!([]));
    assert_eq!(body["filters"]["from"], now + 86_400);
    let window = get(
        &app,
        &format!("/api/v1/stats?from={}&to={}", now - 3600, now + 3600),
        &operator,
    )
    .await;
    assert_eq!(window.ok(200)["users"]["total"], 5);

    for bad in ["status=gone", "from=10&to=5", "from=today", "to=1.5"] {
        get(&app, &format!("/api/v1/stats?{bad}"), &operator)
            .await
            .problem(400, "invalid-query");
    }
    let client = m::org_client(&app).await;
    let ada = m::user_token(&app, &client, "ada@example.com", m::ORG_SCOPES).await;
    get(&app, "/api/v1/stats", &ada)
        .await
        .problem(403, "operator-required");
}

async fn roles_are_listed_strongest_first_with_their_permissions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = m::client_token(&app, &["org:read"]).await;
    let roles = get(&app, "/api/v1/roles", &token).await;
    let body = roles.ok(200).clone();
    let list = body["roles"].as_array().expect("roles");
    let names: Vec<&str> = list
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["owner", "admin", "member", "viewer"]);
    let permissions =
        |i: usize| -> Vec<Value> { list[i]["permissions"].as_array().expect("p").clone() };
    assert_eq!(permissions(3), vec![json!("read_org")]);
    assert!(permissions(0).contains(&json!("delete_org")));
    assert!(permissions(0).contains(&json!("manage_owners")));
    assert!(!permissions(1).contains(&json!("delete_org")));
    assert!(permissions(1).contains(&json!("read_audit_log")));
    assert_eq!(permissions(0).len(), 7);
    let described = body["permissions"].as_array().expect("permissions");
    assert!(described.iter().all(|p| p["description"].is_string()));
    let write = described
        .iter()
        .find(|p| p["name"] == "update_org")
        .expect("update_org");
    assert_eq!(write["scope"], "org:write");
}
