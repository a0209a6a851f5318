//! An organization's `require_mfa` (issue 12): only owners set it (`PATCH /api/v1/orgs/{org}`, `org
//! create --require-mfa`, `POST /api/v1/orgs`), every answer shows it, every change is audited; the
//! member list tells admins who has no second factor (`?mfa=none`); the token endpoint refuses a
//! refresh (or a code) of a password-only sign-in for an organization that requires a second factor,
//! from the live flag, without touching the person's other organizations.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::mfa_helpers::enrol_totp;
use crate::mgmt_helpers::{self as m, Answer};
use crate::org_login::{self, EMAIL, OTHER};
use crate::rp::{self, Consent, RegisteredClient, json_with_status};

on_both_databases!(
    owner_sets_require_mfa_admin_may_not,
    bad_policy_bodies_are_problems,
    require_mfa_at_creation,
    members_show_mfa_to_admins_only_and_filter_none,
    mfa_none_leaves_out_members_with_a_factor,
    refresh_for_a_policy_org_needs_a_second_factor,
    code_redeemed_after_the_policy_is_set_is_refused,
);

/// The third person of these tests (a plain member).
const BOB: &str = "bob@example.com";

fn org_path(org: &str) -> String {
    format!("/api/v1/orgs/{org}")
}

/// Ada owns `acme`; Grace is its admin, Bob its viewer. Returns the app, the organization's id and
/// the three tokens (owner, admin, viewer) with the organization scopes.
async fn acme(backend: Backend) -> (TestApp, String, [String; 3]) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    app.create_person(EMAIL, "Ada").await;
    app.create_person(OTHER, "Grace").await;
    app.create_person(BOB, "Bob").await;
    let org = m::cli_org(&app, "Acme", "acme", EMAIL).await;
    m::cli_member(&app, "acme", OTHER, "admin").await;
    m::cli_member(&app, "acme", BOB, "viewer").await;
    let owner = m::user_token(&app, &client, EMAIL, m::ORG_SCOPES).await;
    let admin = m::user_token(&app, &client, OTHER, m::ORG_SCOPES).await;
    let viewer = m::user_token(&app, &client, BOB, m::ORG_SCOPES).await;
    (app, org, [owner, admin, viewer])
}

/// The organization's audit events of `action`, newest first (read by its owner).
async fn org_events(app: &TestApp, org: &str, owner: &str, action: &str) -> Vec<Value> {
    let path = format!("/api/v1/orgs/{org}/audit-log?action={action}");
    m::get(app, &path, owner)
        .await
        .ok(200)
        .as_array()
        .expect("events")
        .clone()
}

async fn owner_sets_require_mfa_admin_may_not(backend: Backend) {
    let (app, org, [owner, admin, viewer]) = acme(backend).await;
    let read = m::get(&app, &org_path("acme"), &viewer).await;
    assert_eq!(
        read.ok(200)["require_mfa"],
        false,
        "every member sees the rule"
    );

    // An admin may rename, not set the policy (not even together with a rename: nothing is written).
    m::patch(
        &app,
        &org_path("acme"),
        &admin,
        json!({"require_mfa": true}),
    )
    .await
    .problem(403, "role-insufficient");
    m::patch(
        &app,
        &org_path("acme"),
        &admin,
        json!({"require_mfa": true, "name": "Acme Inc"}),
    )
    .await
    .problem(403, "role-insufficient");
    m::patch(
        &app,
        &org_path("acme"),
        &viewer,
        json!({"require_mfa": true}),
    )
    .await
    .problem(403, "role-insufficient");
    let renamed = m::patch(&app, &org_path("acme"), &admin, json!({"name": "Acme Inc"})).await;
    assert_eq!(renamed.ok(200)["require_mfa"], false);

    let set = m::patch(
        &app,
        &org_path("acme"),
        &owner,
        json!({"require_mfa": true}),
    )
    .await;
    let body = set.ok(200);
    assert_eq!(body["require_mfa"], true);
    assert_eq!(body["name"], "Acme Inc");
    assert_eq!(body["role"], "owner");
    // Visible in GET and in the lists (the member's and the operator's).
    assert_eq!(
        m::get(&app, &org_path(&org), &viewer).await.ok(200)["require_mfa"],
        true
    );
    let mine = m::get(&app, "/api/v1/orgs", &admin).await;
    assert_eq!(mine.ok(200)[0]["require_mfa"], true);
    let operator = m::operator_token(&app).await;
    let all = m::get(&app, "/api/v1/orgs", &operator).await;
    assert_eq!(all.ok(200)[0]["require_mfa"], true);

    // Setting it again changes nothing and records nothing; a rename with it records the rename.
    m::patch(
        &app,
        &org_path("acme"),
        &owner,
        json!({"require_mfa": true}),
    )
    .await
    .ok(200);
    let events = org_events(&app, &org, &owner, "organization.mfa_policy_changed").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["details"], json!({"require_mfa": true}));
    assert_eq!(events[0]["target_id"], org.as_str());
    assert!(events[0]["actor_user_id"].is_string(), "{}", events[0]);

    let both = m::patch(
        &app,
        &org_path("acme"),
        &owner,
        json!({"require_mfa": false, "name": "Acme"}),
    )
    .await;
    let body = both.ok(200);
    assert_eq!(body["require_mfa"], false);
    assert_eq!(body["name"], "Acme");
    let events = org_events(&app, &org, &owner, "organization.mfa_policy_changed").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["details"], json!({"require_mfa": false}));
    let renames = org_events(&app, &org, &owner, "organization.renamed").await;
    assert_eq!(renames.len(), 2, "the admin's rename and the owner's");

    // An operator acts on every organization, the policy included.
    let by_operator = m::patch(
        &app,
        &org_path("acme"),
        &operator,
        json!({"require_mfa": true}),
    )
    .await;
    assert_eq!(by_operator.ok(200)["require_mfa"], true);
}

async fn bad_policy_bodies_are_problems(backend: Backend) {
    let (app, _org, [owner, _admin, _viewer]) = acme(backend).await;
    for body in [
        json!({"require_mfa": "yes"}),
        json!({"require_mfa": 1}),
        json!({"require_mfa": null, "extra": true}),
        json!({"require_mfa": [true]}),
    ] {
        m::patch(&app, &org_path("acme"), &owner, body)
            .await
            .problem(400, "invalid-body");
    }
    // `null` is "not given": nothing to change is a 400 too.
    m::patch(
        &app,
        &org_path("acme"),
        &owner,
        json!({"require_mfa": null}),
    )
    .await
    .problem(400, "invalid-body");
    m::patch(&app, &org_path("acme"), &owner, json!({}))
        .await
        .problem(400, "invalid-body");
    m::post(
        &app,
        "/api/v1/orgs",
        &owner,
        json!({"name": "Initech", "require_mfa": "true"}),
    )
    .await
    .problem(400, "invalid-body");
    // No token, another organization: the usual refusals.
    let anonymous = reqwest::Client::new()
        .patch(app.url(&org_path("acme")))
        .json(&json!({"require_mfa": true}))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), 401);
    m::patch(
        &app,
        &org_path("nope"),
        &owner,
        json!({"require_mfa": true}),
    )
    .await
    .problem(404, "organization-not-found");
    let read = m::get(&app, &org_path("acme"), &owner).await;
    assert_eq!(read.ok(200)["require_mfa"], false, "nothing was written");
}

async fn require_mfa_at_creation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    app.create_person(EMAIL, "Ada").await;
    let created = app
        .cli(&[
            "org",
            "create",
            "--name",
            "Acme",
            "--slug",
            "acme",
            "--owner",
            EMAIL,
            "--require-mfa",
        ])
        .await
        .json();
    assert_eq!(created["require_mfa"], true, "{created}");
    assert_eq!(created["slug"], "acme");
    let plain = app
        .cli(&[
            "org", "create", "--name", "Globex", "--slug", "globex", "--owner", EMAIL,
        ])
        .await
        .json();
    assert_eq!(plain["require_mfa"], false, "{plain}");
    let operator = m::operator_token(&app).await;
    let policy = m::get(
        &app,
        "/api/v1/audit-log?action=organization.mfa_policy_changed",
        &operator,
    )
    .await;
    let policy = policy.ok(200).as_array().expect("events").clone();
    assert_eq!(policy.len(), 1, "only acme starts with the policy");
    assert_eq!(policy[0]["org_id"], created["id"]);
    assert_eq!(
        policy[0]["actor_client_id"],
        Value::Null,
        "the command line"
    );

    // Ada is a member of acme, which now requires a second factor she does not have; a token for
    // globex is what she can get with a password.
    let token = token_for_org(&app, &client, EMAIL, "globex").await;
    let acme = m::get(&app, &org_path("acme"), &token).await;
    assert_eq!(acme.ok(200)["require_mfa"], true);
    assert_eq!(
        m::get(&app, &org_path("globex"), &token).await.ok(200)["require_mfa"],
        false
    );

    // Through the API: the creator is the owner and may set it at once; it defaults to false.
    let made = m::post(
        &app,
        "/api/v1/orgs",
        &token,
        json!({"name": "Initech", "require_mfa": true}),
    )
    .await;
    let body = made.ok(201);
    assert_eq!(body["require_mfa"], true);
    assert_eq!(body["role"], "owner");
    let id = body["id"].as_str().expect("id").to_owned();
    let shown = m::get(&app, &org_path(&id), &token).await;
    assert_eq!(shown.ok(200)["require_mfa"], true);
    let events = org_events(&app, &id, &token, "organization.mfa_policy_changed").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["details"], json!({"require_mfa": true}));
    let default = m::post(&app, "/api/v1/orgs", &token, json!({"name": "Umbrella"})).await;
    assert_eq!(default.ok(201)["require_mfa"], false);
}

/// An access token of `email` with the organization scopes, for the organization `org` chosen
/// with `organization=` (so that the picker does not preselect another one).
async fn token_for_org(app: &TestApp, client: &RegisteredClient, email: &str, org: &str) -> String {
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", rp::REDIRECT_URI),
        ("scope", m::ORG_SCOPES),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("organization", org),
    ]);
    let journey = rp::authorize(app, &rp::browser(), &url, email, Consent::Allow).await;
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &journey.callback.code()),
                ("code_verifier", &verifier),
                ("redirect_uri", rp::REDIRECT_URI),
            ],
        )
        .await;
    let body = json_with_status(response, 200).await;
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn members_of(answer: &Answer) -> Vec<Value> {
    answer.ok(200).as_array().expect("members").clone()
}

async fn members_show_mfa_to_admins_only_and_filter_none(backend: Backend) {
    let (app, org, [owner, admin, viewer]) = acme(backend).await;
    let path = format!("/api/v1/orgs/{org}/members");

    // Admins and owners see `mfa` on every member; nobody has a factor yet.
    for token in [&owner, &admin] {
        let listed = members_of(&m::get(&app, &path, token).await);
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().all(|m| m["mfa"] == false), "{listed:?}");
        let none = members_of(&m::get(&app, &format!("{path}?mfa=none"), token).await);
        assert_eq!(none.len(), 3);
    }
    // A viewer sees the members, not their factors, and may not filter by them.
    let listed = members_of(&m::get(&app, &path, &viewer).await);
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|m| m.get("mfa").is_none()), "{listed:?}");
    let bob = listed[2]["user_id"].as_str().expect("id").to_owned();
    let one = m::get(&app, &format!("{path}/{bob}"), &viewer).await;
    assert!(one.ok(200).get("mfa").is_none());
    let one = m::get(&app, &format!("{path}/{bob}"), &admin).await;
    assert_eq!(one.ok(200)["mfa"], false);
    m::get(&app, &format!("{path}?mfa=none"), &viewer)
        .await
        .problem(403, "role-insufficient");
    // A member (not only a viewer) is refused too.
    let client = m::org_client(&app).await;
    app.create_person("carol@example.com", "Carol").await;
    m::cli_member(&app, "acme", "carol@example.com", "member").await;
    let member = m::user_token(&app, &client, "carol@example.com", m::ORG_SCOPES).await;
    m::get(&app, &format!("{path}?mfa=none"), &member)
        .await
        .problem(403, "role-insufficient");

    // Any other value is a 400, whoever asks.
    for bad in ["some", "NONE", "", "any"] {
        m::get(&app, &format!("{path}?mfa={bad}"), &owner)
            .await
            .problem(400, "invalid-query");
    }
    // Paginated like the plain list; an operator may ask too.
    let operator = m::operator_token(&app).await;
    let first = m::get(&app, &format!("{path}?mfa=none&limit=2"), &operator).await;
    assert_eq!(members_of(&first).len(), 2);
    let next = first.next.clone().expect("a next page");
    let second = m::get(&app, &next, &operator).await;
    let rest = members_of(&second);
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(rest[1]["email"], "carol@example.com");
}

async fn mfa_none_leaves_out_members_with_a_factor(backend: Backend) {
    let (app, org, [owner, admin, _viewer]) = acme(backend).await;
    let grace = rp::browser();
    rp::sign_in(&app, &grace, OTHER).await;
    enrol_totp(&app, &grace).await;

    let path = format!("/api/v1/orgs/{org}/members");
    let listed = members_of(&m::get(&app, &path, &owner).await);
    let mfa: Vec<(Value, Value)> = listed
        .iter()
        .map(|m| (m["email"].clone(), m["mfa"].clone()))
        .collect();
    assert_eq!(
        mfa,
        [
            (json!(EMAIL), json!(false)),
            (json!(OTHER), json!(true)),
            (json!(BOB), json!(false)),
        ]
    );
    let none = members_of(&m::get(&app, &format!("{path}?mfa=none"), &admin).await);
    let emails: Vec<&str> = none.iter().filter_map(|m| m["email"].as_str()).collect();
    assert_eq!(emails, [EMAIL, BOB]);
    // Page by page, the filter holds: the member with a factor is skipped, not a page boundary.
    let first = m::get(&app, &format!("{path}?mfa=none&limit=1"), &admin).await;
    assert_eq!(members_of(&first)[0]["email"], EMAIL);
    let next = first.next.clone().expect("a next page");
    assert!(next.contains("mfa=none"), "{next}");
    let second = m::get(&app, &next, &admin).await;
    let rest = members_of(&second);
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["email"], BOB);
    assert!(second.next.is_none());
}

/// Ada owns `acme` and `globex`; Bob is a member of both. Returns the app, the client, the ids of
/// acme and globex, and Ada's token with the organization scopes.
async fn two_orgs(backend: Backend) -> (TestApp, RegisteredClient, String, String, String) {
    let app = TestApp::spawn(backend).await;
    let client = m::org_client(&app).await;
    app.create_person(EMAIL, "Ada").await;
    app.create_person(BOB, "Bob").await;
    let acme = m::cli_org(&app, "Acme", "acme", EMAIL).await;
    let globex = m::cli_org(&app, "Globex", "globex", EMAIL).await;
    m::cli_member(&app, "acme", BOB, "member").await;
    m::cli_member(&app, "globex", BOB, "member").await;
    let owner = token_for_org(&app, &client, EMAIL, "acme").await;
    (app, client, acme, globex, owner)
}

/// Bob's token response for `org` (a password-only sign-in with offline access).
async fn bob_tokens(app: &TestApp, client: &RegisteredClient, org: &str) -> Value {
    let url = org_login::url(app, client, &[("organization", org)]);
    let journey = rp::authorize(app, &rp::browser(), &url, BOB, Consent::Allow).await;
    json_with_status(org_login::redeem(app, client, &journey).await, 200).await
}

/// A refresh: status and body.
async fn refresh(app: &TestApp, client: &RegisteredClient, token: &str) -> (u16, Value) {
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("token endpoint JSON"))
}

async fn refresh_for_a_policy_org_needs_a_second_factor(backend: Backend) {
    let (app, client, acme, globex, owner) = two_orgs(backend).await;
    let at_acme = bob_tokens(&app, &client, "acme").await;
    let at_globex = bob_tokens(&app, &client, "globex").await;
    let (claims, _) = org_login::token_claims(&app, &at_acme).await;
    assert_eq!(claims["org_id"], acme.as_str());
    assert_eq!(claims["acr"], "urn:latchkey:acr:pwd");
    // Introspection (RFC 7662) tells a resource server the same acr as the JWT.
    let introspected: Value = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("token", at_acme["access_token"].as_str().expect("access"))])
        .send()
        .await
        .expect("introspection sent")
        .json()
        .await
        .expect("introspection JSON");
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["acr"], "urn:latchkey:acr:pwd");
    assert_eq!(introspected["auth_time"], claims["auth_time"]);
    let acme_refresh = at_acme["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let globex_refresh = at_globex["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    // Before the policy, a refresh works (and rotates).
    let (status, body) = refresh(&app, &client, &acme_refresh).await;
    assert_eq!(status, 200, "{body}");
    let acme_refresh = body["refresh_token"].as_str().expect("rotated").to_owned();

    m::patch(
        &app,
        &org_path("acme"),
        &owner,
        json!({"require_mfa": true}),
    )
    .await
    .ok(200);
    let (status, body) = refresh(&app, &client, &acme_refresh).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "the organization requires a second factor; sign in again"
    );
    // Refused every time, and the same person's other organization is unaffected.
    let (status, _) = refresh(&app, &client, &acme_refresh).await;
    assert_eq!(status, 400);
    let (status, body) = refresh(&app, &client, &globex_refresh).await;
    assert_eq!(status, 200, "{body}");
    let (claims, _) = org_login::token_claims(&app, &body).await;
    assert_eq!(claims["org_id"], globex.as_str());

    // The refused token was not consumed: when the owner lifts the policy it works again.
    m::patch(
        &app,
        &org_path("acme"),
        &owner,
        json!({"require_mfa": false}),
    )
    .await
    .ok(200);
    let (status, body) = refresh(&app, &client, &acme_refresh).await;
    assert_eq!(status, 200, "{body}");
}

async fn code_redeemed_after_the_policy_is_set_is_refused(backend: Backend) {
    let (app, client, _acme, _globex, owner) = two_orgs(backend).await;
    let url = org_login::url(&app, &client, &[("organization", "acme")]);
    let journey = rp::authorize(&app, &rp::browser(), &url, BOB, Consent::Allow).await;
    m::patch(
        &app,
        &org_path("acme"),
        &owner,
        json!({"require_mfa": true}),
    )
    .await
    .ok(200);
    let refused = org_login::redeem(&app, &client, &journey).await;
    let body = json_with_status(refused, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "the organization requires a second factor; sign in again"
    );
    // A code for the other organization is issued and redeemed as before.
    let url = org_login::url(&app, &client, &[("organization", "globex")]);
    let journey = rp::authorize(&app, &rp::browser(), &url, BOB, Consent::Allow).await;
    json_with_status(org_login::redeem(&app, &client, &journey).await, 200).await;
}
