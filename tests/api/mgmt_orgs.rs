//! Management API, organizations: create, list, read, rename, delete; slug and name rules;
//! pagination; and every malformed body answered by a problem with its own type.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{self as m, call, delete, get, ids, patch, post};

on_both_databases!(
    creating_an_organization_makes_the_caller_its_owner,
    owners_rename_and_delete_organizations,
    slugs_and_names_are_validated,
    malformed_bodies_are_problems_with_types,
    organizations_and_members_are_paginated,
    deleting_an_organization_ends_its_refresh_tokens,
    method_not_allowed_names_the_allowed_methods,
);

async fn creating_an_organization_makes_the_caller_its_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (ada, token) = m::person(&app, &client, "ada@example.com").await;

    let created = post(&app, "/api/v1/orgs", &token, json!({"name": "Acme Corp"})).await;
    let org = created.ok(201).clone();
    assert_eq!(org["name"], "Acme Corp");
    assert_eq!(org["slug"], "acme-corp", "slug derived from the name");
    assert_eq!(org["role"], "owner");
    let id = org["id"].as_str().expect("id");
    assert_eq!(created.location, format!("/api/v1/orgs/{id}"));

    let listed = get(&app, "/api/v1/orgs", &token).await;
    assert_eq!(ids(listed.ok(200), "id"), vec![id.to_owned()]);
    assert_eq!(listed.next, None, "one page");
    for by in [id, "acme-corp"] {
        let read = get(&app, &format!("/api/v1/orgs/{by}"), &token).await;
        assert_eq!(read.ok(200)["id"], id);
        assert_eq!(read.body["role"], "owner");
    }
    let members = get(&app, "/api/v1/orgs/acme-corp/members", &token).await;
    let items = members.ok(200).as_array().expect("a JSON array").clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["user_id"], ada.as_str());
    assert_eq!(items[0]["email"], "ada@example.com");
    assert_eq!(items[0]["role"], "owner");
    assert!(items[0]["joined_at"].is_i64());

    let me = get(&app, "/api/v1/me", &token).await;
    assert_eq!(me.ok(200)["user"]["id"], ada.as_str());
    assert_eq!(me.body["id"], ada.as_str(), "also at the top level");
    assert_eq!(me.body["email"], "ada@example.com");
    assert_eq!(
        me.body["memberships"],
        json!([{"org_id": id, "org_slug": "acme-corp", "org_name": "Acme Corp", "role": "owner"}])
    );

    // An explicit slug is kept as given.
    let other = post(
        &app,
        "/api/v1/orgs",
        &token,
        json!({"name": "Other", "slug": "other-co"}),
    )
    .await;
    assert_eq!(other.ok(201)["slug"], "other-co");
}

async fn owners_rename_and_delete_organizations(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (_, token) = m::person(&app, &client, "ada@example.com").await;
    let org = post(&app, "/api/v1/orgs", &token, json!({"name": "Acme"})).await;
    let id = org.ok(201)["id"].as_str().expect("id").to_owned();
    post(&app, "/api/v1/orgs", &token, json!({"name": "Taken"}))
        .await
        .ok(201);

    let renamed = patch(
        &app,
        "/api/v1/orgs/acme",
        &token,
        json!({"name": "Acme Europe", "slug": "acme-eu"}),
    )
    .await;
    assert_eq!(renamed.ok(200)["slug"], "acme-eu");
    assert_eq!(renamed.body["name"], "Acme Europe");
    get(&app, "/api/v1/orgs/acme", &token)
        .await
        .problem(404, "organization-not-found");
    assert_eq!(
        get(&app, "/api/v1/orgs/acme-eu", &token).await.ok(200)["id"],
        id
    );
    // Only the name: the slug stays.
    let named = patch(
        &app,
        &format!("/api/v1/orgs/{id}"),
        &token,
        json!({"name": "  Acme  "}),
    )
    .await;
    assert_eq!(named.ok(200)["name"], "Acme", "names are trimmed");
    assert_eq!(named.body["slug"], "acme-eu");
    patch(
        &app,
        "/api/v1/orgs/acme-eu",
        &token,
        json!({"slug": "taken"}),
    )
    .await
    .problem(409, "slug-taken");
    patch(&app, "/api/v1/orgs/acme-eu", &token, json!({}))
        .await
        .problem(400, "invalid-body");

    let deleted = delete(&app, "/api/v1/orgs/acme-eu", &token).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    get(&app, &format!("/api/v1/orgs/{id}"), &token)
        .await
        .problem(404, "organization-not-found");
    let left: i64 = sqlx::query_scalar("select count(*) from memberships where org_id = $1")
        .bind(&id)
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(left, 0, "memberships go with the organization");
    assert_eq!(
        ids(get(&app, "/api/v1/orgs", &token).await.ok(200), "slug"),
        vec!["taken"]
    );
}

async fn slugs_and_names_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (_, token) = m::person(&app, &client, "ada@example.com").await;
    let long = "a".repeat(64);
    for slug in [
        "ab",
        "Acme",
        "-acme",
        "acme-",
        "ac me",
        "acme_co",
        "api",
        "admin",
        "www",
        "login",
        "oauth",
        long.as_str(),
        "0192f0e2-0000-7000-8000-000000000000",
    ] {
        post(
            &app,
            "/api/v1/orgs",
            &token,
            json!({"name": "Acme", "slug": slug}),
        )
        .await
        .problem(400, "invalid-slug");
    }
    // A name that yields no usable slug needs an explicit one.
    post(&app, "/api/v1/orgs", &token, json!({"name": "!!"}))
        .await
        .problem(400, "invalid-slug");
    let max = "b".repeat(63);
    post(
        &app,
        "/api/v1/orgs",
        &token,
        json!({"name": "Max", "slug": max}),
    )
    .await
    .ok(201);
    post(
        &app,
        "/api/v1/orgs",
        &token,
        json!({"name": "Acme", "slug": "acme-2"}),
    )
    .await
    .ok(201);
    post(
        &app,
        "/api/v1/orgs",
        &token,
        json!({"name": "Again", "slug": "acme-2"}),
    )
    .await
    .problem(409, "slug-taken");
    let long_name = "n".repeat(101);
    for name in ["", "   ", long_name.as_str(), "bad\u{7}name"] {
        post(
            &app,
            "/api/v1/orgs",
            &token,
            json!({"name": name, "slug": "fine-slug"}),
        )
        .await
        .problem(400, "invalid-name");
    }
    patch(&app, "/api/v1/orgs/acme-2", &token, json!({"slug": "API"}))
        .await
        .problem(400, "invalid-slug");
    patch(&app, "/api/v1/orgs/acme-2", &token, json!({"name": ""}))
        .await
        .problem(400, "invalid-name");
    assert_eq!(
        app.count("organizations").await,
        2,
        "nothing else was written"
    );
}

async fn malformed_bodies_are_problems_with_types(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (ada, token) = m::person(&app, &client, "ada@example.com").await;
    let raw = |method: Method, path: &str, content_type: Option<&str>, body: String| {
        let mut request = crate::rp::rp_http()
            .request(method, app.url(path))
            .bearer_auth(&token);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        async move { m::answer(request.body(body).send().await.expect("sent")).await }
    };
    let json_type = Some("application/json");
    raw(
        Method::POST,
        "/api/v1/orgs",
        json_type,
        "{\"name\": ".into(),
    )
    .await
    .problem(400, "malformed-json");
    raw(Method::POST, "/api/v1/orgs", json_type, "not json".into())
        .await
        .problem(400, "malformed-json");
    for body in [
        json!({"name": 5}),
        json!({"name": "Acme", "slug": ["a"]}),
        json!({}),
        json!({"name": "Acme", "owner": "someone"}),
        json!(["Acme"]),
        json!(null),
    ] {
        post(&app, "/api/v1/orgs", &token, body)
            .await
            .problem(400, "invalid-body");
    }
    raw(Method::POST, "/api/v1/orgs", json_type, String::new())
        .await
        .problem(400, "missing-body");
    raw(Method::POST, "/api/v1/orgs", None, String::new())
        .await
        .problem(400, "missing-body");
    raw(
        Method::POST,
        "/api/v1/orgs",
        Some("text/plain"),
        "{\"name\":\"Acme\"}".into(),
    )
    .await
    .problem(415, "unsupported-media-type");
    raw(
        Method::POST,
        "/api/v1/orgs",
        None,
        "{\"name\":\"Acme\"}".into(),
    )
    .await
    .problem(415, "unsupported-media-type");
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    raw(Method::POST, "/api/v1/orgs", json_type, huge)
        .await
        .problem(413, "payload-too-large");
    // The charset parameter and +json types are fine.
    raw(
        Method::POST,
        "/api/v1/orgs",
        Some("application/json; charset=utf-8"),
        "{\"name\":\"Acme\"}".into(),
    )
    .await
    .ok(201);

    let member = format!("/api/v1/orgs/acme/members/{ada}");
    patch(&app, &member, &token, json!({"role": "superuser"}))
        .await
        .problem(400, "invalid-role");
    patch(&app, &member, &token, json!({"role": 1}))
        .await
        .problem(400, "invalid-body");
    patch(
        &app,
        &member,
        &token,
        json!({"role": "owner", "extra": true}),
    )
    .await
    .problem(400, "invalid-body");
    raw(Method::PATCH, &member, json_type, "[".into())
        .await
        .problem(400, "malformed-json");
    patch(&app, "/api/v1/orgs/acme", &token, json!({"name": false}))
        .await
        .problem(400, "invalid-body");
    call(&app, Method::PUT, "/api/v1/orgs", Some(&token), None)
        .await
        .problem(405, "method-not-allowed");
    get(&app, "/api/v1/nothing-here", &token)
        .await
        .problem(404, "not-found");
    assert_eq!(app.count("organizations").await, 1);
}

async fn organizations_and_members_are_paginated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (_, token) = m::person(&app, &client, "ada@example.com").await;
    let mut created = Vec::new();
    for i in 0..5 {
        let org = post(
            &app,
            "/api/v1/orgs",
            &token,
            json!({"name": format!("Org {i}")}),
        )
        .await;
        created.push(org.ok(201)["id"].as_str().expect("id").to_owned());
    }
    let all = ids(get(&app, "/api/v1/orgs", &token).await.ok(200), "id");
    assert_eq!(all.len(), 5);
    let mut seen = Vec::new();
    let mut path = "/api/v1/orgs?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = get(&app, &path, &token).await;
        let body = page.ok(200).clone();
        let items = ids(&body, "id");
        assert!(items.len() <= 2);
        seen.extend(items);
        pages += 1;
        match page.next {
            Some(next) => {
                assert!(next.starts_with("/api/v1/orgs?limit=2&cursor="), "{next}");
                path = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all, "pages cover the list once, in order");
    let mut sorted = created.clone();
    sorted.sort();
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    assert_eq!(seen_sorted, sorted);

    for bad in ["limit=0", "limit=201", "limit=abc", "limit=-1"] {
        get(&app, &format!("/api/v1/orgs?{bad}"), &token)
            .await
            .problem(400, "invalid-query");
    }
    for bad in ["garbage!", "bm9jb2xvbg", "MTIzOg"] {
        get(&app, &format!("/api/v1/orgs?cursor={bad}"), &token)
            .await
            .problem(400, "invalid-cursor");
    }

    // Members paginate the same way.
    for i in 0..4 {
        let email = format!("member{i}@example.com");
        app.create_person(&email, "M").await;
        m::cli_member(&app, "org-0", &email, "member").await;
    }
    let first = get(&app, "/api/v1/orgs/org-0/members?limit=3", &token).await;
    let body = first.ok(200).clone();
    assert_eq!(ids(&body, "user_id").len(), 3);
    let next = first.next.clone().expect("a next page");
    let second = get(&app, &next, &token).await;
    let rest = ids(second.ok(200), "user_id");
    assert_eq!(rest.len(), 2);
    assert_eq!(second.next, None);
    assert!(rest.iter().all(|id| !ids(&body, "user_id").contains(id)));
    get(&app, "/api/v1/orgs/org-0/members?cursor=", &token)
        .await
        .problem(400, "invalid-cursor");
}

async fn deleting_an_organization_ends_its_refresh_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    let (_, token) = m::person(&app, &client, "ada@example.com").await;
    let org = post(&app, "/api/v1/orgs", &token, json!({"name": "Acme"})).await;
    let org_id = org.ok(201)["id"].as_str().expect("id").to_owned();
    // Signed in again, ada is in one organization: her tokens speak for it.
    let (code, verifier) =
        crate::rp::code_with_pkce(&app, &crate::rp::browser(), &client, "ada@example.com").await;
    let tokens = crate::rp::json_with_status(
        app.post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", crate::rp::REDIRECT_URI),
            ],
        )
        .await,
        200,
    )
    .await;
    let (_, claims) = crate::rp::decode_jwt(tokens["access_token"].as_str().expect("access"));
    assert_eq!(claims["org_id"], org_id.as_str());
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let families = "select count(*) from refresh_families where org_id = $1";
    let count = || async {
        sqlx::query_scalar::<_, i64>(families)
            .bind(&org_id)
            .fetch_one(&app.db.pool)
            .await
            .expect("count")
    };
    assert_eq!(count().await, 1);

    assert_eq!(delete(&app, "/api/v1/orgs/acme", &token).await.status, 204);
    assert_eq!(
        count().await,
        0,
        "the organization's refresh families went with it"
    );
    let refused = app
        .post_token(
            Some((&client.id, client.secret())),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    let body = crate::rp::json_with_status(refused, 400).await;
    assert_eq!(body["error"], "invalid_grant");
}

/// RFC 9110 §15.5.6: a 405 answer carries `Allow` with the methods the resource supports; under
/// /api it is a problem like every other error.
async fn method_not_allowed_names_the_allowed_methods(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = m::operator_token(&app).await;
    for (method, path, allowed) in [
        (Method::PUT, "/api/v1/orgs", "GET,HEAD,POST"),
        (Method::POST, "/api/v1/orgs/acme", "GET,HEAD,PATCH,DELETE"),
        (Method::DELETE, "/api/v1/orgs/acme/members", "GET,HEAD"),
        // The other routers under /api answer alike.
        (
            Method::PUT,
            "/api/v1/orgs/acme/invitations",
            "GET,HEAD,POST",
        ),
        (Method::GET, "/api/v1/orgs/acme/invitations/x", "DELETE"),
        (Method::GET, "/api/v1/signup", "POST"),
    ] {
        let response = crate::rp::rp_http()
            .request(method.clone(), app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let allow = crate::rp::header(&response, "allow");

        m::answer(response).await.problem(405, "method-not-allowed");
        let mut methods: Vec<&str> = allow.split(',').map(str::trim).collect();
        methods.sort_unstable();
        let mut expected: Vec<&str> = allowed.split(',').collect();
        expected.sort_unstable();
        assert_eq!(methods, expected, "{method} {path}: Allow: {allow}");
    }
}
