//! Management API, members and roles: what each role may do (viewer / member / admin / owner ×
//! rename, delete, promote, remove, read the log), admins acting up to their own role, only owners
//! on owners, leaving, and last-owner protection.

use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{self as m, delete, get, ids, patch};

on_both_databases!(
    each_role_may_do_what_the_table_says,
    admins_manage_up_to_their_own_role_and_owners_manage_owners,
    the_last_owner_can_be_neither_demoted_nor_removed,
    roles_are_read_live_from_the_database,
    two_owners_demoting_each_other_at_once_leave_one_owner,
);

/// One person of the organization `acme`: id and token.
struct Person {
    id: String,
    token: String,
}

/// `acme` with an owner, an admin, a member and a viewer (tokens minted before the memberships, so
/// that no organization has to be picked at login), plus two people without tokens.
async fn acme(app: &TestApp) -> (Person, Person, Person, Person, Vec<String>) {
    let client = m::org_client(app).await;
    let mut people = Vec::new();
    for name in ["owner", "admin", "member", "viewer"] {
        let (id, token) = m::person(app, &client, &format!("{name}@example.com")).await;
        people.push(Person { id, token });
    }
    m::cli_org(app, "Acme", "acme", "owner@example.com").await;
    for role in ["admin", "member", "viewer"] {
        m::cli_member(app, "acme", &format!("{role}@example.com"), role).await;
    }
    let mut extra = Vec::new();
    for i in 0..2 {
        let email = format!("extra{i}@example.com");
        extra.push(app.create_person(&email, "Extra").await);
        m::cli_member(app, "acme", &email, "member").await;
    }
    let viewer = people.pop().expect("viewer");
    let member = people.pop().expect("member");
    let admin = people.pop().expect("admin");
    let owner = people.pop().expect("owner");
    (owner, admin, member, viewer, extra)
}

fn member_path(user_id: &str) -> String {
    format!("/api/v1/orgs/acme/members/{user_id}")
}

async fn each_role_may_do_what_the_table_says(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, admin, member, viewer, extra) = acme(&app).await;

    // Viewers and members read, and nothing else.
    for weak in [&viewer, &member] {
        let t = weak.token.as_str();
        assert_eq!(
            get(&app, "/api/v1/orgs/acme", t).await.ok(200)["slug"],
            "acme"
        );
        assert_eq!(
            ids(
                get(&app, "/api/v1/orgs/acme/members", t).await.ok(200),
                "user_id"
            )
            .len(),
            6
        );
        get(&app, &member_path(&owner.id), t).await.ok(200);
        patch(&app, "/api/v1/orgs/acme", t, json!({"name": "Mine"}))
            .await
            .problem(403, "role-insufficient");
        delete(&app, "/api/v1/orgs/acme", t)
            .await
            .problem(403, "role-insufficient");
        patch(&app, &member_path(&extra[0]), t, json!({"role": "viewer"}))
            .await
            .problem(403, "role-insufficient");
        delete(&app, &member_path(&extra[0]), t)
            .await
            .problem(403, "role-insufficient");
        get(&app, "/api/v1/orgs/acme/audit-log", t)
            .await
            .problem(403, "role-insufficient");
    }

    // Admins rename, promote up to admin, remove, read the log; not delete.
    let a = admin.token.as_str();
    patch(&app, "/api/v1/orgs/acme", a, json!({"name": "Acme Inc"}))
        .await
        .ok(200);
    delete(&app, "/api/v1/orgs/acme", a)
        .await
        .problem(403, "role-insufficient");
    let promoted = patch(&app, &member_path(&member.id), a, json!({"role": "admin"})).await;
    assert_eq!(promoted.ok(200)["role"], "admin");
    assert_eq!(promoted.body["email"], "member@example.com");
    patch(&app, &member_path(&viewer.id), a, json!({"role": "member"}))
        .await
        .ok(200);
    assert_eq!(delete(&app, &member_path(&extra[0]), a).await.status, 204);
    get(&app, "/api/v1/orgs/acme/audit-log", a).await.ok(200);
    get(&app, &member_path(&extra[0]), a)
        .await
        .problem(404, "member-not-found");
    delete(&app, &member_path(&extra[0]), a)
        .await
        .problem(404, "member-not-found");
    patch(
        &app,
        "/api/v1/orgs/acme/members/nobody",
        a,
        json!({"role": "viewer"}),
    )
    .await
    .problem(404, "member-not-found");

    // Owners do all of it, deleting last.
    let o = owner.token.as_str();
    assert_eq!(delete(&app, &member_path(&extra[1]), o).await.status, 204);
    patch(&app, &member_path(&admin.id), o, json!({"role": "viewer"}))
        .await
        .ok(200);
    get(&app, "/api/v1/orgs/acme/audit-log", o).await.ok(200);
    assert_eq!(delete(&app, "/api/v1/orgs/acme", o).await.status, 204);
    get(&app, "/api/v1/orgs/acme", a)
        .await
        .problem(404, "organization-not-found");
}

async fn admins_manage_up_to_their_own_role_and_owners_manage_owners(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, admin, member, _viewer, extra) = acme(&app).await;
    let a = admin.token.as_str();
    // Admins may neither grant nor take `owner`, nor remove an owner.
    patch(&app, &member_path(&member.id), a, json!({"role": "owner"}))
        .await
        .problem(403, "role-insufficient");
    patch(&app, &member_path(&admin.id), a, json!({"role": "owner"}))
        .await
        .problem(403, "role-insufficient");
    patch(&app, &member_path(&owner.id), a, json!({"role": "admin"}))
        .await
        .problem(403, "role-insufficient");
    delete(&app, &member_path(&owner.id), a)
        .await
        .problem(403, "role-insufficient");
    // ... but manage other admins, and themselves.
    patch(&app, &member_path(&extra[0]), a, json!({"role": "admin"}))
        .await
        .ok(200);
    patch(&app, &member_path(&extra[0]), a, json!({"role": "viewer"}))
        .await
        .ok(200);
    // Setting the role a member has already changes nothing.
    let same = patch(&app, &member_path(&extra[0]), a, json!({"role": "viewer"})).await;
    assert_eq!(same.ok(200)["role"], "viewer");

    // Owners grant and take `owner`.
    let o = owner.token.as_str();
    patch(&app, &member_path(&admin.id), o, json!({"role": "owner"}))
        .await
        .ok(200);
    // The new owner can now demote the first one.
    patch(&app, &member_path(&owner.id), a, json!({"role": "member"}))
        .await
        .ok(200);
    assert_eq!(
        get(&app, "/api/v1/orgs/acme", o).await.ok(200)["role"],
        "member"
    );
    // Demoting oneself takes effect at once.
    patch(
        &app,
        &member_path(&member.id),
        &member.token,
        json!({"role": "viewer"}),
    )
    .await
    .problem(403, "role-insufficient");
}

async fn the_last_owner_can_be_neither_demoted_nor_removed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, admin, member, viewer, _extra) = acme(&app).await;
    let o = owner.token.as_str();
    patch(&app, &member_path(&owner.id), o, json!({"role": "admin"}))
        .await
        .problem(409, "last-owner");
    delete(&app, &member_path(&owner.id), o)
        .await
        .problem(409, "last-owner");
    assert_eq!(
        get(&app, &member_path(&owner.id), o).await.ok(200)["role"],
        "owner"
    );

    // Any member may leave.
    assert_eq!(
        delete(&app, &member_path(&viewer.id), &viewer.token)
            .await
            .status,
        204
    );
    get(&app, "/api/v1/orgs/acme", &viewer.token)
        .await
        .problem(404, "organization-not-found");
    assert_eq!(
        delete(&app, &member_path(&member.id), &member.token)
            .await
            .status,
        204
    );

    // With a second owner, the first may step down or leave.
    patch(&app, &member_path(&admin.id), o, json!({"role": "owner"}))
        .await
        .ok(200);
    patch(&app, &member_path(&owner.id), o, json!({"role": "admin"}))
        .await
        .ok(200);
    // Now `admin` is the last owner.
    delete(&app, &member_path(&admin.id), &admin.token)
        .await
        .problem(409, "last-owner");
    assert_eq!(delete(&app, &member_path(&owner.id), o).await.status, 204);
    let members = get(&app, "/api/v1/orgs/acme/members", &admin.token).await;
    let roles: Vec<String> = members
        .ok(200)
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|m| format!("{}", m["role"]))
        .collect();
    assert_eq!(roles.iter().filter(|r| r.contains("owner")).count(), 1);
}

async fn roles_are_read_live_from_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, admin, _member, _viewer, extra) = acme(&app).await;
    // The admin's token outlives their role: the next call sees the demotion.
    patch(
        &app,
        &member_path(&extra[0]),
        &admin.token,
        json!({"role": "viewer"}),
    )
    .await
    .ok(200);
    patch(
        &app,
        &member_path(&admin.id),
        &owner.token,
        json!({"role": "member"}),
    )
    .await
    .ok(200);
    patch(
        &app,
        &member_path(&extra[0]),
        &admin.token,
        json!({"role": "member"}),
    )
    .await
    .problem(403, "role-insufficient");
    delete(&app, &member_path(&admin.id), &owner.token).await;
    get(&app, "/api/v1/orgs/acme", &admin.token)
        .await
        .problem(404, "organization-not-found");
}

async fn two_owners_demoting_each_other_at_once_leave_one_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (a, a_token) = m::person(&app, &client, "a@example.com").await;
    let (b, b_token) = m::person(&app, &client, "b@example.com").await;
    m::cli_org(&app, "Acme", "acme", "a@example.com").await;
    m::cli_member(&app, "acme", "b@example.com", "owner").await;
    let (path_a, path_b) = (member_path(&a), member_path(&b));
    for _ in 0..3 {
        let (first, second) = tokio::join!(
            patch(&app, &path_b, &a_token, json!({"role": "admin"})),
            patch(&app, &path_a, &b_token, json!({"role": "admin"})),
        );
        let mut statuses = [first.status, second.status];
        statuses.sort();
        assert_eq!(statuses[0], 200, "{} {}", first.body, second.body);
        assert!(
            statuses[1] == 409 || statuses[1] == 403,
            "{} {}",
            first.body,
            second.body
        );
        let owners: i64 =
            sqlx::query_scalar("select count(*) from memberships where role = 'owner'")
                .fetch_one(&app.db.pool)
                .await
                .expect("owners");
        assert_eq!(owners, 1);
        // Whoever is left as owner makes the other one owner again.
        let (owner_token, other) = if first.status == 200 {
            (&a_token, &b)
        } else {
            (&b_token, &a)
        };
        patch(
            &app,
            &member_path(other),
            owner_token,
            json!({"role": "owner"}),
        )
        .await
        .ok(200);
    }
}
