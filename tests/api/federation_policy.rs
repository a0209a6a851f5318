//! An organization's `sso_required`: only owners set it (`PATCH /api/v1/orgs/{org}`), and only once
//! the organization has a connection; a member whose address is in one of its verified domains is
//! then sent to `/federation/start` instead of getting a code, and the token endpoint refuses codes
//! and refreshes of their password sign-ins (from the live flag and the live domains), and switches
//! into the organization on the refresh grant. Their other
//! organizations, and members outside the verified domains, are not touched.

use reqwest::Url;
use serde_json::{Value, json};

use crate::federation_helpers::{Pair, spawn_pair};
use crate::helpers::Backend;
use crate::helpers::TestApp;
use crate::mgmt_helpers::{self as m};
use crate::org_login;
use crate::rp::{self, Consent, PASSWORD, RegisteredClient, json_with_status};

on_both_databases!(
    owner_sets_sso_required_once_a_connection_exists,
    bound_members_are_sent_to_the_provider,
    codes_and_refreshes_without_the_provider_are_refused,
);

/// The owner (outside the domain).
const ADA: &str = "ada@example.com";
/// An admin (outside the domain).
const GRACE: &str = "grace@example.com";
/// A member in the verified domain, also a member of globex.
const BOB: &str = "bob@acme.example";
/// A contractor: a member of acme outside its verified domains.
const CARL: &str = "carl@contractor.example";

const ACME: &str = "/api/v1/orgs/acme";

/// `acme` (owned by Ada, Grace its admin, Bob and Carl members) and `globex` (owned by Ada, Bob a
/// member), on a pair whose upstream may serve as acme's connection.
struct Setup {
    pair: Pair,
    client: RegisteredClient,
    acme: String,
    globex: String,
    owner: String,
    admin: String,
}

async fn setup(backend: Backend) -> Setup {
    let pair = spawn_pair(backend, &[]).await;
    let app = &pair.app;
    let client = m::org_client(app).await;
    for email in [ADA, GRACE, BOB, CARL] {
        app.create_person(email, email).await;
    }
    let acme = m::cli_org(app, "Acme", "acme", ADA).await;
    let globex = m::cli_org(app, "Globex", "globex", ADA).await;
    m::cli_member(app, "acme", GRACE, "admin").await;
    m::cli_member(app, "acme", BOB, "member").await;
    m::cli_member(app, "acme", CARL, "member").await;
    m::cli_member(app, "globex", BOB, "member").await;
    let owner = m::user_token(app, &client, ADA, m::ORG_SCOPES).await;
    let admin = m::user_token(app, &client, GRACE, m::ORG_SCOPES).await;
    Setup {
        pair,
        client,
        acme,
        globex,
        owner,
        admin,
    }
}

/// Acme gets a connection (the upstream) and verifies `acme.example` (operator), then the owner
/// turns `sso_required` on.
async fn require_sso(s: &Setup) {
    let app = &s.pair.app;
    m::post(
        app,
        &format!("{ACME}/connections"),
        &s.owner,
        s.pair.connection_body("Acme IdP"),
    )
    .await
    .ok(201);
    app.cli(&[
        "org",
        "verify-domain",
        "--org",
        "acme",
        "--domain",
        "acme.example",
    ])
    .await
    .json();
    let on = m::patch(app, ACME, &s.owner, json!({"sso_required": true})).await;
    assert_eq!(on.ok(200)["sso_required"], true);
}

async fn set_sso(s: &Setup, on: bool) {
    m::patch(&s.pair.app, ACME, &s.owner, json!({"sso_required": on}))
        .await
        .ok(200);
}

/// The organization's audit events of `action`, newest first.
async fn org_events(s: &Setup, action: &str) -> Vec<Value> {
    let path = format!("{ACME}/audit-log?action={action}");
    m::get(&s.pair.app, &path, &s.owner)
        .await
        .ok(200)
        .as_array()
        .expect("events")
        .clone()
}

async fn owner_sets_sso_required_once_a_connection_exists(backend: Backend) {
    let s = setup(backend).await;
    let app = &s.pair.app;
    let read = m::get(app, ACME, &s.admin).await;
    assert_eq!(read.ok(200)["sso_required"], false);

    // Without a connection, the members of its domains would be locked out.
    m::patch(app, ACME, &s.owner, json!({"sso_required": true}))
        .await
        .problem(409, "connection-required");
    m::post(
        app,
        &format!("{ACME}/connections"),
        &s.owner,
        s.pair.connection_body("Acme IdP"),
    )
    .await
    .ok(201);
    // Admins may not set it, not even with a rename (nothing is written).
    for body in [
        json!({"sso_required": true}),
        json!({"sso_required": true, "name": "Acme Inc"}),
        json!({"sso_required": false}),
    ] {
        m::patch(app, ACME, &s.admin, body)
            .await
            .problem(403, "role-insufficient");
    }
    for body in [
        json!({"sso_required": "yes"}),
        json!({"sso_required": null}),
    ] {
        let answer = m::patch(app, ACME, &s.owner, body).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
    }
    assert_eq!(
        m::get(app, ACME, &s.admin).await.ok(200)["name"],
        "Acme",
        "nothing written"
    );

    let on = m::patch(app, ACME, &s.owner, json!({"sso_required": true})).await;
    let body = on.ok(200);
    assert_eq!(body["sso_required"], true);
    assert_eq!(body["role"], "owner");
    assert_eq!(body["require_mfa"], false);
    // Every member sees the rule; the operator too.
    assert_eq!(
        m::get(app, &format!("/api/v1/orgs/{}", s.acme), &s.admin)
            .await
            .ok(200)["sso_required"],
        true
    );
    let operator = m::operator_token(app).await;
    let all = m::get(app, "/api/v1/orgs", &operator).await;
    let listed: Vec<(Value, Value)> = all
        .ok(200)
        .as_array()
        .expect("orgs")
        .iter()
        .map(|o| (o["slug"].clone(), o["sso_required"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (json!("acme"), json!(true)),
            (json!("globex"), json!(false))
        ]
    );

    // Again: nothing changes, nothing recorded. Off: recorded, and needs no connection.
    m::patch(app, ACME, &s.owner, json!({"sso_required": true}))
        .await
        .ok(200);
    let events = org_events(&s, "organization.sso_policy_changed").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["details"], json!({"sso_required": true}));
    assert_eq!(events[0]["target_id"], s.acme.as_str());
    assert!(events[0]["actor_user_id"].is_string());
    let off = m::patch(app, ACME, &s.owner, json!({"sso_required": false})).await;
    assert_eq!(off.ok(200)["sso_required"], false);
    let events = org_events(&s, "organization.sso_policy_changed").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["details"], json!({"sso_required": false}));
    // `POST /api/v1/orgs` does not take it (a new organization has no connection).
    let created = m::post(
        app,
        "/api/v1/orgs",
        &s.owner,
        json!({"name": "Initech", "sso_required": true}),
    )
    .await;
    created.problem(400, "invalid-body");
}

/// Follows the authorization from `url` in `browser` (signing in as `email` with the password when
/// the login page asks) until the server sends the browser to `/federation/start` or away to the client; returns
/// that URL.
async fn follow(app: &TestApp, browser: &reqwest::Client, url: &str, email: &str) -> Url {
    let mut to = Url::parse(url).expect("authorization URL");
    for _ in 0..10 {
        if !to.as_str().starts_with(&format!("{}/", app.address))
            || to.path() == "/federation/start"
        {
            return to;
        }
        to = if to.path() == "/login" {
            // The login page of a request naming an organization that requires SSO goes straight
            // to its provider (home-realm discovery); otherwise the password.
            let page = browser.get(to.clone()).send().await.expect("login page");
            if page.status() == 303 {
                to = rp::location(app, &page);
                continue;
            }
            let response = rp::submit_login(app, browser, &to, email, PASSWORD).await;
            assert_eq!(response.status(), 303, "login succeeds");
            rp::location(app, &response)
        } else {
            let response = browser.get(to.clone()).send().await.expect("request sent");
            assert_eq!(response.status(), 303, "GET {to}");
            rp::location(app, &response)
        };
    }
    panic!("too many redirects from {url}");
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn bound_members_are_sent_to_the_provider(backend: Backend) {
    let s = setup(backend).await;
    let app = &s.pair.app;
    require_sso(&s).await;

    // Bob signs in with his password and asks for acme: no code, the provider instead.
    let browser = rp::browser();
    let acme_url = org_login::url(app, &s.client, &[("organization", "acme")]);
    // Not signed in: the login page goes straight to the provider (home-realm discovery).
    let straight = follow(app, &rp::browser(), &acme_url, BOB).await;
    assert_eq!(straight.path(), "/federation/start", "{straight}");
    rp::sign_in(app, &browser, BOB).await;
    let to = follow(app, &browser, &acme_url, BOB).await;
    assert_eq!(to.path(), "/federation/start", "{to}");
    let authz = query(&to, "authz").expect("authz");
    assert!(!authz.is_empty());
    assert_eq!(query(&to, "code"), None);
    // Signed in already: the same again, without the login page.
    let again = follow(app, &browser, &acme_url, BOB).await;
    assert_eq!(again.path(), "/federation/start", "{again}");

    // prompt=none: login_required at the client, never a code.
    let silent = org_login::url(
        app,
        &s.client,
        &[("organization", "acme"), ("prompt", "none")],
    );
    let callback = follow(app, &browser, &silent, BOB).await;
    assert!(
        callback.as_str().starts_with(rp::REDIRECT_URI),
        "{callback}"
    );
    assert_eq!(query(&callback, "error").as_deref(), Some("login_required"));
    assert_eq!(
        query(&callback, "error_description").as_deref(),
        Some("the organization requires sign-in through its identity provider")
    );
    assert_eq!(query(&callback, "state").as_deref(), Some("st"));
    assert_eq!(query(&callback, "code"), None);

    // The same person's other organization: a code and tokens as before, in the same session.
    let globex_url = org_login::url(app, &s.client, &[("organization", "globex")]);
    let callback = follow(app, &browser, &globex_url, BOB).await;
    let journey = rp::Journey {
        callback: rp::Callback { url: callback },
        saw_login: false,
        saw_consent: false,
        picker_html: None,
    };
    let tokens = json_with_status(org_login::redeem(app, &s.client, &journey).await, 200).await;
    let (claims, _) = org_login::token_claims(app, &tokens).await;
    assert_eq!(claims["org_id"], s.globex.as_str());

    // A member outside the verified domains keeps signing in with a password. (The login page of a
    // request naming an organization that requires SSO goes straight to its provider, as home-realm
    // discovery does; a contractor signs in on the login page first.)
    let journey = signed_in_first(app, &acme_url, CARL).await;
    let tokens = json_with_status(org_login::redeem(app, &s.client, &journey).await, 200).await;
    let (claims, _) = org_login::token_claims(app, &tokens).await;
    assert_eq!(claims["org_id"], s.acme.as_str());

    // Policy off: Bob gets a code for acme again.
    set_sso(&s, false).await;
    let journey = rp::authorize(app, &rp::browser(), &acme_url, BOB, Consent::Allow).await;
    json_with_status(org_login::redeem(app, &s.client, &journey).await, 200).await;
    // On again, but the domain removed: the policy binds nobody.
    set_sso(&s, true).await;
    let bound = follow(app, &rp::browser(), &acme_url, BOB).await;
    assert_eq!(bound.path(), "/federation/start");
    m::delete(app, &format!("{ACME}/domains/acme.example"), &s.owner)
        .await
        .ok(204);
    let journey = signed_in_first(app, &acme_url, BOB).await;
    json_with_status(org_login::redeem(app, &s.client, &journey).await, 200).await;
}

/// `email` signs in with the password on the bare login page, then the authorization request
/// `url` runs in that session.
async fn signed_in_first(app: &TestApp, url: &str, email: &str) -> rp::Journey {
    let browser = rp::browser();
    rp::sign_in(app, &browser, email).await;
    rp::authorize(app, &browser, url, email, Consent::Allow).await
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

/// The refresh token of a password sign-in of `email` for `org`.
async fn refresh_token_of(s: &Setup, email: &str, org: &str) -> String {
    let app = &s.pair.app;
    let url = org_login::url(app, &s.client, &[("organization", org)]);
    let journey = rp::authorize(app, &rp::browser(), &url, email, Consent::Allow).await;
    let body = json_with_status(org_login::redeem(app, &s.client, &journey).await, 200).await;
    body["refresh_token"].as_str().expect("refresh").to_owned()
}

const REFUSED: &str =
    "the organization requires sign-in through its identity provider; sign in again";

async fn codes_and_refreshes_without_the_provider_are_refused(backend: Backend) {
    let s = setup(backend).await;
    let app = &s.pair.app;
    // Bob's password sign-ins from before the policy, for acme and for globex, and Carl's for acme.
    let bob_acme = refresh_token_of(&s, BOB, "acme").await;
    let bob_globex = refresh_token_of(&s, BOB, "globex").await;
    let carl_acme = refresh_token_of(&s, CARL, "acme").await;
    // A code issued before the policy, redeemed after.
    let url = org_login::url(app, &s.client, &[("organization", "acme")]);
    let pending = rp::authorize(app, &rp::browser(), &url, BOB, Consent::Allow).await;

    require_sso(&s).await;
    let refused = org_login::redeem(app, &s.client, &pending).await;
    let body = json_with_status(refused, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], REFUSED);

    for _ in 0..2 {
        let (status, body) = refresh(app, &s.client, &bob_acme).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], REFUSED);
    }
    // Switching organization on the refresh grant meets the same policy: Bob's password sign-in
    // for globex cannot switch into acme, and the presented token is left as it was.
    let switched = app
        .post_token(
            Some((&s.client.id, s.client.secret())),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &bob_globex),
                ("organization", "acme"),
            ],
        )
        .await;
    let body = json_with_status(switched, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], REFUSED);
    // Bob's other organization and the contractor are not touched.
    let (status, body) = refresh(app, &s.client, &bob_globex).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = refresh(app, &s.client, &carl_acme).await;
    assert_eq!(status, 200, "{body}");

    // The refused token was not consumed: lifting the policy makes it work again.
    set_sso(&s, false).await;
    let (status, body) = refresh(app, &s.client, &bob_acme).await;
    assert_eq!(status, 200, "{body}");
    let bob_acme = body["refresh_token"].as_str().expect("rotated").to_owned();

    // The live domain counts too: with the policy on, releasing the domain frees Bob's family.
    set_sso(&s, true).await;
    let (status, _) = refresh(app, &s.client, &bob_acme).await;
    assert_eq!(status, 400);
    m::delete(app, &format!("{ACME}/domains/acme.example"), &s.owner)
        .await
        .ok(204);
    let (status, body) = refresh(app, &s.client, &bob_acme).await;
    assert_eq!(status, 200, "{body}");
}
