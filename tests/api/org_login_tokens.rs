//! The organization claims of every token (the documented interface (README) "Organizations and roles in tokens"): the
//! selected organization in ID tokens, access tokens and userinfo, read from the live membership at
//! code redemption and on every refresh (a demoted member gets the new role, a removed one
//! `invalid_grant`).

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, Scope,
    TokenResponse,
};
use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::org_login::{
    EMAIL, OTHER, add_member, create_org, expected, org_of, redeem, setup, token_claims, url,
    userinfo,
};
use crate::rp::{self, Consent, RegisteredClient, json_with_status};

on_both_databases!(
    single_membership_is_selected_and_its_claims_are_in_every_token,
    no_membership_means_no_org_claims,
    refresh_rereads_the_role_and_a_removed_member_gets_invalid_grant,
    code_of_a_member_removed_before_redemption_is_invalid_grant,
);

async fn single_membership_is_selected_and_its_claims_are_in_every_token(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let ada = app.create_person(EMAIL, "Ada").await;
    let client = app.register_client(&["--first-party"]).await;
    let org = create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let rp = app.relying_party(&client).await;

    // The openidconnect RP validates the ID token (signature, iss, aud, nonce, at_hash).
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let journey = rp::authorize(
        &app,
        &rp::browser(),
        auth_url.as_str(),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(!journey.saw_picker(), "one membership: no picker");
    let tokens = rp
        .exchange_code(AuthorizationCode::new(journey.callback.code()))
        .set_pkce_verifier(verifier)
        .request_async(&rp::rp_http())
        .await
        .expect("the code is exchanged");
    let id_token = tokens.id_token().expect("an ID token");
    id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("the ID token validates");

    let want = expected(&org, "acme", "owner");
    let (_, id) = app.verify_jwt(&id_token.to_string()).await;
    assert_eq!(id["sub"], ada.as_str());
    assert_eq!(org_of(&id), want, "ID token");
    let access = tokens.access_token().secret();
    let (_, at) = app.verify_jwt(access).await;
    assert_eq!(org_of(&at), want, "access token");
    assert_eq!(org_of(&userinfo(&app, access).await), want, "userinfo");

    // Discovery advertises the claims.
    let discovery: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    for claim in ["org_id", "org_slug", "roles"] {
        assert!(
            discovery["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&Value::from(claim)),
            "{claim}"
        );
    }
}

async fn no_membership_means_no_org_claims(backend: Backend) {
    let (app, client, _) = setup(backend, &["--first-party"]).await;
    let journey = rp::authorize(
        &app,
        &rp::browser(),
        &url(&app, &client, &[]),
        EMAIL,
        Consent::Allow,
    )
    .await;
    assert!(!journey.saw_picker());
    let tokens = json_with_status(redeem(&app, &client, &journey).await, 200).await;
    let (at, id) = token_claims(&app, &tokens).await;
    let info = userinfo(&app, tokens["access_token"].as_str().unwrap()).await;
    for claims in [&at, &id, &info] {
        for name in ["org_id", "org_slug", "roles"] {
            assert!(claims.get(name).is_none(), "{name} in {claims}");
        }
    }
}

/// `POST /token` with `grant_type=refresh_token`.
async fn refresh(app: &TestApp, client: &RegisteredClient, token: &str) -> reqwest::Response {
    app.post_token(
        Some((&client.id, client.secret())),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn set_role(app: &TestApp, org: &str, user: &str, role: &str) {
    sqlx::query("update memberships set role = $1 where org_id = $2 and user_id = $3")
        .bind(role)
        .bind(org)
        .bind(user)
        .execute(&app.db.pool)
        .await
        .unwrap();
}

async fn remove_member(app: &TestApp, org: &str, user: &str) {
    sqlx::query("delete from memberships where org_id = $1 and user_id = $2")
        .bind(org)
        .bind(user)
        .execute(&app.db.pool)
        .await
        .unwrap();
}

async fn refresh_rereads_the_role_and_a_removed_member_gets_invalid_grant(backend: Backend) {
    let (app, client, ada) = setup(backend, &["--first-party"]).await;
    app.create_person(OTHER, "Grace").await;
    let org = create_org(&app, "Globex", "globex", OTHER).await;
    add_member(&app, "globex", EMAIL, "admin").await;
    let journey = rp::authorize(
        &app,
        &rp::browser(),
        &url(&app, &client, &[]),
        EMAIL,
        Consent::Allow,
    )
    .await;
    let tokens = json_with_status(redeem(&app, &client, &journey).await, 200).await;
    assert_eq!(
        org_of(&token_claims(&app, &tokens).await.0),
        expected(&org, "globex", "admin")
    );

    set_role(&app, &org, &ada, "viewer").await;
    let refreshed = refresh(&app, &client, tokens["refresh_token"].as_str().unwrap()).await;
    let refreshed = json_with_status(refreshed, 200).await;
    let (at, id) = token_claims(&app, &refreshed).await;
    assert_eq!(
        org_of(&at),
        expected(&org, "globex", "viewer"),
        "the demotion shows"
    );
    assert_eq!(org_of(&id), expected(&org, "globex", "viewer"));
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        org_of(&userinfo(&app, access).await),
        expected(&org, "globex", "viewer")
    );

    remove_member(&app, &org, &ada).await;
    assert!(
        userinfo(&app, access).await.get("org_id").is_none(),
        "userinfo reads live"
    );
    let body = json_with_status(
        refresh(&app, &client, refreshed["refresh_token"].as_str().unwrap()).await,
        400,
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
}

async fn code_of_a_member_removed_before_redemption_is_invalid_grant(backend: Backend) {
    let (app, client, ada) = setup(backend, &["--first-party"]).await;
    let org = create_org(&app, "Acme Corp", "acme", EMAIL).await;
    let journey = rp::authorize(
        &app,
        &rp::browser(),
        &url(&app, &client, &[]),
        EMAIL,
        Consent::Allow,
    )
    .await;
    remove_member(&app, &org, &ada).await;
    let body = json_with_status(redeem(&app, &client, &journey).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
}
