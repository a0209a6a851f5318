//! Step-up at `/authorize` (OIDC Core §3.1.2.1): `acr_values=urn:latchkey:acr:mfa` asks a session
//! without a second factor for one (or leads a person without any factor to enrol first);
//! `prompt=none` cannot ask and answers `interaction_required`; `max_age` asks for both factors again.

use crate::helpers::{Backend, TestApp};
use crate::mfa_helpers::{ACR_MFA, ACR_PWD, amr, authz_url, enrol_totp, id_token_claims, walk};
use crate::rp::{self, RegisteredClient};

on_both_databases!(
    acr_values_mfa_steps_up_a_password_session,
    acr_values_mfa_leads_a_person_without_factor_to_enrol,
    prompt_none_cannot_step_up,
    max_age_asks_for_both_factors_again,
);

const ANN: &str = "ann@example.com";

async fn setup(backend: Backend) -> (TestApp, String, RegisteredClient, reqwest::Client) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    let ann = app.create_person(ANN, "Ann").await;
    let client = app.register_client(&["--first-party"]).await;
    let browser = rp::browser();
    rp::sign_in(&app, &browser, ANN).await;
    (app, ann, client, browser)
}

async fn acr_values_mfa_steps_up_a_password_session(backend: Backend) {
    let (app, ann, client, browser) = setup(backend).await;
    // Enrolled after a password-only sign-in: this session has one factor.
    let (secret, _) = enrol_totp(&app, &browser).await;

    // Without acr_values nothing more is asked: the session's acr is pwd.
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[]);
    let journey = walk(&app, &browser, &url, ANN, None, None).await;
    assert!(journey.seen.is_empty(), "{:?}", journey.seen);
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["acr"], ACR_PWD);
    let sid = claims["sid"].clone();
    // An unknown acr value and the pwd one ask nothing more either.
    for value in [ACR_PWD, "urn:example:unknown"] {
        let (_, challenge) = rp::pkce();
        let url = authz_url(&app, &client, &challenge, &[("acr_values", value)]);
        let journey = walk(&app, &browser, &url, ANN, None, None).await;
        assert!(journey.seen.is_empty(), "{value}: {:?}", journey.seen);
        journey.callback.code();
    }

    // acr_values with mfa: the second step, then the code.
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(
        &app,
        &client,
        &challenge,
        &[("acr_values", &format!("urn:example:x {ACR_MFA}"))],
    );
    let journey = walk(&app, &browser, &url, ANN, Some(secret), None).await;
    assert_eq!(journey.seen, ["/login/second-factor"], "no password again");
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["acr"], ACR_MFA);
    assert_eq!(claims["sub"], ann.as_str());
    let methods = amr(&claims);
    for m in ["pwd", "otp", "mfa"] {
        assert!(methods.contains(&m.to_owned()), "{methods:?}");
    }
    assert_eq!(claims["sid"], sid, "the same session, stepped up");

    // The session now has two factors: asking again needs nothing more.
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[("acr_values", ACR_MFA)]);
    let journey = walk(&app, &browser, &url, ANN, None, None).await;
    assert!(journey.seen.is_empty(), "{:?}", journey.seen);
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["acr"], ACR_MFA);
}

async fn acr_values_mfa_leads_a_person_without_factor_to_enrol(backend: Backend) {
    let (app, ann, client, browser) = setup(backend).await;
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[("acr_values", ACR_MFA)]);
    // The enrolment page keeps the request; no code is issued before it is done.
    let start = browser.get(&url).send().await.unwrap();
    assert_eq!(start.status(), 303);
    let to = rp::location(&app, &start);
    assert_eq!(to.path(), "/account/totp");
    assert!(to.query().unwrap_or_default().starts_with("authz="));
    let journey = walk(&app, &browser, to.as_str(), ANN, None, None).await;
    assert_eq!(journey.seen, ["/account/totp"]);
    assert!(journey.secret.is_some());
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["acr"], ACR_MFA);
    assert_eq!(claims["sub"], ann.as_str());
    assert!(amr(&claims).contains(&"otp".to_owned()));
    // A stale or foreign authz on the enrolment page is ignored (plain enrolment, or the status).
    let page = browser
        .get(app.url("/account/totp?authz=not-a-request"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(!page.text().await.unwrap().contains("name=\"authz\""));
}

async fn prompt_none_cannot_step_up(backend: Backend) {
    let (app, _ann, client, browser) = setup(backend).await;
    for enrolled in [false, true] {
        if enrolled {
            enrol_totp(&app, &browser).await;
        }
        let (_, challenge) = rp::pkce();
        let url = authz_url(
            &app,
            &client,
            &challenge,
            &[("acr_values", ACR_MFA), ("prompt", "none")],
        );
        let response = browser.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 303);
        let callback = rp::Callback {
            url: rp::location(&app, &response),
        };
        callback.assert_at(rp::REDIRECT_URI);
        assert_eq!(
            callback.error(),
            "interaction_required",
            "enrolled: {enrolled}"
        );
        assert_eq!(callback.get("state").as_deref(), Some("st"));
    }
}

async fn max_age_asks_for_both_factors_again(backend: Backend) {
    let (app, _ann, client, browser) = setup(backend).await;
    let (secret, _) = enrol_totp(&app, &browser).await;
    // A full sign-in with both factors.
    let (_, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[("acr_values", ACR_MFA)]);
    let journey = walk(&app, &browser, &url, ANN, Some(secret.clone()), None).await;
    journey.callback.code();
    app.clock.advance(600);
    for max_age in ["60", "0"] {
        let (verifier, challenge) = rp::pkce();
        let url = authz_url(&app, &client, &challenge, &[("max_age", max_age)]);
        let before = app.clock.now();
        let journey = walk(&app, &browser, &url, ANN, Some(secret.clone()), None).await;
        assert_eq!(
            journey.seen,
            ["/login", "/login/second-factor"],
            "max_age={max_age}"
        );
        let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
        assert_eq!(claims["acr"], ACR_MFA);
        assert!(
            claims["auth_time"].as_i64().unwrap() > before,
            "a new auth_time"
        );
        app.clock.advance(120);
    }
}
