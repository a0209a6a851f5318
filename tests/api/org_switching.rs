//! Organization switching on the refresh grant (docs/tokens.md "Switching organization"):
//! `organization=ID_OR_SLUG` on `grant_type=refresh_token` gives tokens for another organization of
//! the person in a new refresh-token family, leaves the presented token and its family alone, checks
//! the target's policies against the original sign-in and a third-party client's consent, and gives
//! one answer for an unknown organization and one the person is not in.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers;
use crate::org_login::{
    EMAIL, OTHER, add_member, create_org, expected, org_of, redeem, token_claims, url,
};
use crate::rp::{self, Consent, RegisteredClient, json_with_status};

on_both_databases!(
    switching_gives_the_other_organization_in_a_new_family_and_keeps_the_old_one,
    unknown_organization_and_non_member_get_the_same_invalid_grant,
    target_requiring_a_second_factor_refuses_a_password_sign_in,
    third_party_client_needs_consent_for_the_target_organization,
    naming_the_family_organization_is_a_plain_rotating_refresh,
    a_spent_token_cannot_switch,
    the_new_family_keeps_the_resource,
);

/// Ada (member of Acme, which she owns, and of Globex, owned by Grace) and a client registered with
/// `client_args`; returns the app, the client, and the ids of Acme and Globex.
async fn two_orgs(
    backend: Backend,
    client_args: &[&str],
) -> (TestApp, RegisteredClient, String, String) {
    let app = TestApp::spawn(backend).await;
    app.create_person(EMAIL, "Ada").await;
    app.create_person(OTHER, "Grace").await;
    let client = app.register_client(client_args).await;
    let acme = create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let globex = create_org(&app, "Globex", "globex", OTHER).await;
    add_member(&app, "globex", EMAIL, "member").await;
    (app, client, acme, globex)
}

/// Signs Ada in to `org` (slug) in a fresh browser and redeems the code: the token response.
async fn tokens_for(app: &TestApp, client: &RegisteredClient, org: &str) -> Value {
    let journey = rp::authorize(
        app,
        &rp::browser(),
        &url(app, client, &[("organization", org)]),
        EMAIL,
        Consent::Allow,
    )
    .await;
    json_with_status(redeem(app, client, &journey).await, 200).await
}

/// `POST /token` with `grant_type=refresh_token`, the token and `extra` parameters.
async fn refresh(
    app: &TestApp,
    client: &RegisteredClient,
    token: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    form.extend_from_slice(extra);
    app.post_token(Some((&client.id, client.secret())), &form)
        .await
}

/// A refused refresh: 400 `invalid_grant` with a description; returns the description.
async fn invalid_grant(response: reqwest::Response) -> String {
    let body = json_with_status(response, 400).await;
    assert_eq!(body["error"], "invalid_grant", "{body}");
    body["error_description"]
        .as_str()
        .unwrap_or_else(|| panic!("error_description in {body}"))
        .to_owned()
}

/// `POST /introspect` by the client about its own refresh token.
async fn introspect(app: &TestApp, client: &RegisteredClient, token: &str) -> Value {
    let response = rp::rp_http()
        .post(app.url("/introspect"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("token", token), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .expect("introspection sent");
    json_with_status(response, 200).await
}

fn text<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {body}"))
}

async fn switching_gives_the_other_organization_in_a_new_family_and_keeps_the_old_one(
    backend: Backend,
) {
    let (app, client, acme, globex) = two_orgs(backend, &["--first-party"]).await;
    let first = tokens_for(&app, &client, "acme").await;
    let (at, id) = token_claims(&app, &first).await;
    assert_eq!(org_of(&at), expected(&acme, "acme", "owner"));
    assert_eq!(org_of(&id), expected(&acme, "acme", "owner"));
    let acme_refresh = text(&first, "refresh_token").to_owned();
    let old_end = introspect(&app, &client, &acme_refresh).await["exp"].clone();
    assert!(old_end.is_i64(), "the refresh token is active");

    // An hour later (the new family's end must still be the old one's, not now + TTL).
    app.clock.advance(3600);
    let switched = json_with_status(
        refresh(&app, &client, &acme_refresh, &[("organization", "globex")]).await,
        200,
    )
    .await;
    let (at, id) = token_claims(&app, &switched).await;
    assert_eq!(
        org_of(&at),
        expected(&globex, "globex", "member"),
        "access token"
    );
    assert_eq!(
        org_of(&id),
        expected(&globex, "globex", "member"),
        "ID token"
    );
    assert_eq!(at["sub"], id["sub"]);
    assert_eq!(id["aud"], client.id.as_str());
    assert_eq!(switched["scope"], first["scope"]);
    let globex_refresh = text(&switched, "refresh_token").to_owned();
    assert_ne!(globex_refresh, acme_refresh, "a new family's token");
    let new_end = introspect(&app, &client, &globex_refresh).await;
    assert_eq!(new_end["active"], true);
    assert_eq!(
        new_end["exp"], old_end,
        "the new family ends when the old one does"
    );

    // The old token was not rotated: it still refreshes in Acme (and rotates then).
    let again = json_with_status(refresh(&app, &client, &acme_refresh, &[]).await, 200).await;
    let (at, _) = token_claims(&app, &again).await;
    assert_eq!(org_of(&at), expected(&acme, "acme", "owner"));
    let acme_successor = text(&again, "refresh_token").to_owned();
    assert_ne!(acme_successor, acme_refresh, "rotated");

    // The new one refreshes in Globex.
    let in_globex = json_with_status(refresh(&app, &client, &globex_refresh, &[]).await, 200).await;
    let (at, id) = token_claims(&app, &in_globex).await;
    assert_eq!(org_of(&at), expected(&globex, "globex", "member"));
    assert_eq!(org_of(&id), expected(&globex, "globex", "member"));

    // By id as by slug, with a narrowed scope.
    let by_id = json_with_status(
        refresh(
            &app,
            &client,
            &acme_successor,
            &[("organization", &globex), ("scope", "openid")],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(by_id["scope"], "openid");
    let (at, id) = token_claims(&app, &by_id).await;
    assert_eq!(org_of(&at), expected(&globex, "globex", "member"));
    assert_eq!(org_of(&id), expected(&globex, "globex", "member"));
    // ... and the Acme family is still alive.
    json_with_status(refresh(&app, &client, &acme_successor, &[]).await, 200).await;

    // Both switches are in Globex's audit log, none in Acme's.
    let operator = mgmt_helpers::operator_token(&app).await;
    let action = "refresh_token.organization_switched";
    let logged = mgmt_helpers::get(
        &app,
        &format!("/api/v1/orgs/{globex}/audit-log?action={action}"),
        &operator,
    )
    .await;
    let events = logged.ok(200).as_array().expect("a list").clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e["details"]["from_org_id"] == acme.as_str())
    );
    let in_acme = mgmt_helpers::get(
        &app,
        &format!("/api/v1/orgs/{acme}/audit-log?action={action}"),
        &operator,
    )
    .await;
    assert_eq!(in_acme.ok(200).as_array().map(Vec::len), Some(0));
}

async fn unknown_organization_and_non_member_get_the_same_invalid_grant(backend: Backend) {
    let (app, client, _, _) = two_orgs(backend, &["--first-party"]).await;
    create_org(&app, "Initech", "initech", OTHER).await;
    let tokens = tokens_for(&app, &client, "acme").await;
    let token = text(&tokens, "refresh_token").to_owned();

    let not_member =
        invalid_grant(refresh(&app, &client, &token, &[("organization", "initech")]).await).await;
    let unknown =
        invalid_grant(refresh(&app, &client, &token, &[("organization", "no-such-org")]).await)
            .await;
    assert_eq!(not_member, unknown, "no hint that an organization exists");
    assert!(not_member.contains("not a member"), "{not_member}");

    // A value that cannot name an organization is a malformed request.
    let long = "x".repeat(101);
    let body = json_with_status(
        refresh(&app, &client, &token, &[("organization", &long)]).await,
        400,
    )
    .await;
    assert_eq!(body["error"], "invalid_request", "{body}");

    // None of the refusals consumed the token.
    let ok = json_with_status(refresh(&app, &client, &token, &[]).await, 200).await;
    assert!(ok["refresh_token"].is_string());
}

async fn target_requiring_a_second_factor_refuses_a_password_sign_in(backend: Backend) {
    let (app, client, _, _) = two_orgs(backend, &["--first-party"]).await;
    app.cli(&[
        "org",
        "create",
        "--name",
        "Secure",
        "--slug",
        "secure",
        "--owner",
        OTHER,
        "--require-mfa",
    ])
    .await
    .json();
    add_member(&app, "secure", EMAIL, "member").await;
    let tokens = tokens_for(&app, &client, "acme").await;
    let token = text(&tokens, "refresh_token").to_owned();

    let why =
        invalid_grant(refresh(&app, &client, &token, &[("organization", "secure")]).await).await;
    assert!(why.contains("second factor"), "{why}");
    // Globex has no such policy: the same sign-in may switch there.
    json_with_status(
        refresh(&app, &client, &token, &[("organization", "globex")]).await,
        200,
    )
    .await;
}

async fn third_party_client_needs_consent_for_the_target_organization(backend: Backend) {
    let (app, client, _, globex) = two_orgs(backend, &[]).await;
    let tokens = tokens_for(&app, &client, "acme").await;
    let token = text(&tokens, "refresh_token").to_owned();

    // Ada consented to the client acting for Acme only.
    let why =
        invalid_grant(refresh(&app, &client, &token, &[("organization", "globex")]).await).await;
    assert!(why.contains("authorization request"), "{why}");

    // Once she consents for Globex (an authorization request naming it), the switch works.
    tokens_for(&app, &client, "globex").await;
    let switched = json_with_status(
        refresh(&app, &client, &token, &[("organization", "globex")]).await,
        200,
    )
    .await;
    let (at, _) = token_claims(&app, &switched).await;
    assert_eq!(org_of(&at), expected(&globex, "globex", "member"));
}

async fn naming_the_family_organization_is_a_plain_rotating_refresh(backend: Backend) {
    let (app, client, acme, _) = two_orgs(backend, &["--first-party"]).await;
    let tokens = tokens_for(&app, &client, "acme").await;
    let token = text(&tokens, "refresh_token").to_owned();

    let same = json_with_status(
        refresh(&app, &client, &token, &[("organization", "acme")]).await,
        200,
    )
    .await;
    let (at, _) = token_claims(&app, &same).await;
    assert_eq!(org_of(&at), expected(&acme, "acme", "owner"));
    let successor = text(&same, "refresh_token").to_owned();
    assert_ne!(successor, token);
    // Rotated: with no reuse grace (the default), presenting the old token again is a replay that
    // revokes the family, successor included.
    invalid_grant(refresh(&app, &client, &token, &[]).await).await;
    invalid_grant(refresh(&app, &client, &successor, &[]).await).await;
}

async fn a_spent_token_cannot_switch(backend: Backend) {
    let (app, client, _, _) = two_orgs(backend, &["--first-party"]).await;
    let tokens = tokens_for(&app, &client, "acme").await;
    let token = text(&tokens, "refresh_token").to_owned();
    let rotated = json_with_status(refresh(&app, &client, &token, &[]).await, 200).await;
    let successor = text(&rotated, "refresh_token").to_owned();

    // The rotated token presented again to switch is a replay like any other (RFC 9700 §4.14.2).
    let why =
        invalid_grant(refresh(&app, &client, &token, &[("organization", "globex")]).await).await;
    assert!(why.contains("already used"), "{why}");
    invalid_grant(refresh(&app, &client, &successor, &[]).await).await;
}

async fn the_new_family_keeps_the_resource(backend: Backend) {
    const API: &str = "https://api.example.com/";
    let (app, client, _, globex) = two_orgs(backend, &["--first-party", "--resource", API]).await;
    let journey = rp::authorize(
        &app,
        &rp::browser(),
        &url(
            &app,
            &client,
            &[("organization", "acme"), ("resource", API)],
        ),
        EMAIL,
        Consent::Allow,
    )
    .await;
    let tokens = json_with_status(redeem(&app, &client, &journey).await, 200).await;
    let token = text(&tokens, "refresh_token").to_owned();
    let switched = json_with_status(
        refresh(&app, &client, &token, &[("organization", "globex")]).await,
        200,
    )
    .await;
    let (at, id) = token_claims(&app, &switched).await;
    assert_eq!(at["aud"], API);
    assert_eq!(id["aud"], client.id.as_str());
    assert_eq!(org_of(&at), expected(&globex, "globex", "member"));
    // The new family is bound to the resource too.
    let next = text(&switched, "refresh_token").to_owned();
    let again = json_with_status(refresh(&app, &client, &next, &[]).await, 200).await;
    assert_eq!(token_claims(&app, &again).await.0["aud"], API);
}
