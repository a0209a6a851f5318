//! An organization that requires a second factor (`require_mfa`): choosing it at login (picker or
//! `organization=`) asks for the second factor, or for enrolment first, before any code is issued;
//! other organizations of the same person are unaffected.
//!
//! `require_mfa` is set through `PATCH /api/v1/orgs/{org}` by the owner (the policy part of issue
//! 12). Until that endpoint exists on this branch, the test sets the column itself and says so.

use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::mfa_helpers::{ACR_MFA, ACR_PWD, authz_url, id_token_claims, walk};
use crate::mgmt_helpers::{self, cli_member, cli_org};
use crate::rp::{self, RegisteredClient};

on_both_databases!(
    require_mfa_org_asks_for_a_second_factor_others_do_not,
    picking_a_require_mfa_org_on_the_picker_asks_too,
);

const OWNER: &str = "olga@example.com";
const MEMBER: &str = "max@example.com";

/// Sets `require_mfa` on `org` as its owner (PATCH), falling back to the column before the
/// policy's endpoint is merged.
async fn require_mfa(app: &TestApp, owner_token: &str, org: &str) {
    let answer = mgmt_helpers::patch(
        app,
        &format!("/api/v1/orgs/{org}"),
        owner_token,
        json!({ "require_mfa": true }),
    )
    .await;
    let status = answer.status;
    if status == 200 && answer.body["require_mfa"] == true {
        return;
    }
    eprintln!("PATCH require_mfa not available yet ({status}); setting the column directly");
    sqlx::query("update organizations set require_mfa = 1 where id = $1")
        .bind(org)
        .execute(&app.db.pool)
        .await
        .expect("require_mfa set");
}

/// Two organizations (`secure` requires MFA, `plain` does not), both with the member; a first-party
/// client with organization scopes.
async fn setup(backend: Backend) -> (TestApp, RegisteredClient, String, String) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    let client = mgmt_helpers::org_client(&app).await;
    app.create_person(OWNER, "Olga").await;
    app.create_person(MEMBER, "Max").await;
    let owner_token =
        mgmt_helpers::user_token(&app, &client, OWNER, mgmt_helpers::ORG_SCOPES).await;
    let secure = cli_org(&app, "Secure", "secure", OWNER).await;
    let plain = cli_org(&app, "Plain", "plain", OWNER).await;
    cli_member(&app, &secure, MEMBER, "member").await;
    cli_member(&app, &plain, MEMBER, "member").await;
    require_mfa(&app, &owner_token, &secure).await;
    (app, client, secure, plain)
}

async fn require_mfa_org_asks_for_a_second_factor_others_do_not(backend: Backend) {
    let (app, client, secure, plain) = setup(backend).await;
    let browser = rp::browser();
    // The plain organization: password only, acr pwd.
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[("organization", "plain")]);
    let journey = walk(&app, &browser, &url, MEMBER, None, None).await;
    assert_eq!(journey.seen, ["/login"]);
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["acr"], ACR_PWD);
    assert_eq!(claims["org_id"], plain.as_str());

    // prompt=none for the secure one cannot ask for the factor.
    let (_, challenge) = rp::pkce();
    let url = authz_url(
        &app,
        &client,
        &challenge,
        &[("organization", "secure"), ("prompt", "none")],
    );
    let response = browser.get(&url).send().await.unwrap();
    let callback = rp::Callback {
        url: rp::location(&app, &response),
    };
    assert_eq!(callback.error(), "interaction_required");

    // The secure one: the member has no factor, so enrolment comes first, then the code.
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[("organization", "secure")]);
    let first = browser.get(&url).send().await.unwrap();
    assert_eq!(rp::location(&app, &first).path(), "/account/totp");
    let journey = walk(&app, &browser, &url, MEMBER, None, None).await;
    assert_eq!(journey.seen, ["/account/totp"]);
    let secret = journey.secret.clone().expect("enrolled");
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["acr"], ACR_MFA);
    assert_eq!(claims["org_id"], secure.as_str());

    // A new browser: password then code (the member has a factor now) for the secure one.
    let other = rp::browser();
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[("organization", "secure")]);
    let journey = walk(&app, &other, &url, MEMBER, Some(secret), None).await;
    assert_eq!(journey.seen, ["/login", "/login/second-factor"]);
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["acr"], ACR_MFA);
}

async fn picking_a_require_mfa_org_on_the_picker_asks_too(backend: Backend) {
    let (app, client, secure, plain) = setup(backend).await;
    let browser = rp::browser();
    // Picking the plain organization: no second factor.
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[]);
    let journey = walk(&app, &browser, &url, MEMBER, None, Some(&plain)).await;
    assert_eq!(journey.seen, ["/login", "/organization"]);
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["acr"], ACR_PWD);
    // Picking the secure one (prompt=select_account reopens the picker): enrolment, then the code.
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[("prompt", "select_account")]);
    let journey = walk(&app, &browser, &url, MEMBER, None, Some(&secure)).await;
    assert_eq!(journey.seen, ["/organization", "/account/totp"]);
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["acr"], ACR_MFA);
    assert_eq!(claims["org_id"], secure.as_str());
}
