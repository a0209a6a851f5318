//! TOTP authenticators (RFC 6238) and recovery codes: enrolment on `/account/totp`, the second step
//! of a sign-in with a code computed here from the secret on the page, `amr`/`acr` in ID tokens,
//! replay refused, wrong codes throttled, recovery codes single use and regenerable, removal.

use crate::helpers::{Backend, TestApp};
use crate::mfa_helpers::{
    self, ACR_MFA, ACR_PWD, amr, audit_count, authz_url, enrol_totp, id_token_claims, next_code,
    pass_second_step, password_step, sign_in_with_totp, totp_code, totp_secret, walk,
};
use crate::rp::{self, PASSWORD, hidden_input, location};
use crate::support::mail::wait_for_mail;

on_both_databases!(
    enrolment_shows_qr_and_secret_and_is_confirmed_by_a_code,
    enrolment_refusals,
    sign_in_with_a_code_gives_mfa_tokens,
    a_code_is_accepted_once,
    wrong_codes_are_throttled,
    recovery_codes_work_once_and_mail_the_owner,
    regenerated_recovery_codes_replace_the_old_ones,
    removing_the_authenticator_needs_the_password,
    second_step_without_a_first_factor_goes_to_login,
    keys_rewrap_moves_the_authenticator_secrets,
    second_step_refusals_are_recorded,
    an_old_sign_in_signs_in_again_before_adding_a_factor,
    unconfirmed_secrets_are_purged_and_confirmed_ones_kept,
);

const ANN: &str = "ann@example.com";
const BEN: &str = "ben@example.com";

/// An app with a frozen clock, Ann, and Ann's signed-in browser.
async fn setup(backend: Backend) -> (TestApp, String, reqwest::Client) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    let ann = app.create_person(ANN, "Ann").await;
    let browser = rp::browser();
    rp::sign_in(&app, &browser, ANN).await;
    (app, ann, browser)
}

async fn enrolment_shows_qr_and_secret_and_is_confirmed_by_a_code(backend: Backend) {
    let (app, ann, browser) = setup(backend).await;
    let page = browser.get(app.url("/account/totp")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg"), "a QR code rendered on the server");
    assert!(!html.contains("<script"), "no script on the page");
    assert!(html.contains("name=\"code\""));
    assert!(html.contains("inputmode=\"numeric\""));
    let secret = totp_secret(&html);
    assert_eq!(
        secret.len(),
        32,
        "160 bits in base32 without padding: {secret}"
    );
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
    );
    // A reload shows the same secret (a scanned QR code keeps working).
    let again = browser.get(app.url("/account/totp")).send().await.unwrap();
    assert_eq!(totp_secret(&again.text().await.unwrap()), secret);
    // The secret is sealed at rest.
    let stored: String =
        sqlx::query_scalar("select secret_sealed from totp_factors where user_id = $1")
            .bind(&ann)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(
        !stored.contains(&secret) && stored.starts_with("v1:"),
        "{stored}"
    );

    let response = browser
        .post(app.url("/account/totp"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("code", totp_code(&secret, app.clock.now())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        rp::header(&response, "cache-control").contains("no-store"),
        "recovery codes are never cached"
    );
    let shown = response.text().await.unwrap();
    let codes = mfa_helpers::recovery_codes(&shown);
    assert_eq!(codes.len(), 10);
    for code in &codes {
        assert_eq!(code.len(), 11, "xxxxx-xxxxx: {code}");
    }
    // Stored only as MACs.
    let hashes: Vec<String> =
        sqlx::query_scalar("select code_hash from recovery_codes where user_id = $1")
            .bind(&ann)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(hashes.len(), 10);
    assert!(hashes.iter().all(|h| !codes.iter().any(|c| h.contains(c))));

    let mail = wait_for_mail(&app, ANN, "An authenticator app was set up").await;
    assert!(mail.text.contains("authenticator app"), "{}", mail.text);
    assert_eq!(audit_count(&app, "mfa.totp_enabled", &ann).await, 1);

    // Now the page shows the status, the codes left and the removal form.
    let status = browser
        .get(app.url("/account/totp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !status.contains("id=\"totp-secret\""),
        "the secret is not shown again"
    );
    assert!(
        status.contains("id=\"recovery-codes-left\">10<"),
        "{status}"
    );
    assert!(status.contains("action=\"/account/totp/remove\""));
}

async fn enrolment_refusals(backend: Backend) {
    let (app, ann, browser) = setup(backend).await;
    // Signed out: to the login page, which comes back.
    let response = rp::browser()
        .get(app.url("/account/totp"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&app, &response).as_str(),
        app.url("/login?next=%2Faccount%2Ftotp")
    );
    let html = browser
        .get(app.url("/account/totp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let secret = totp_secret(&html);
    let right = totp_code(&secret, app.clock.now());
    // Without the CSRF token: refused, nothing confirmed.
    let response = browser
        .post(app.url("/account/totp"))
        .form(&[("code", right.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // A wrong code: 400, the same secret shown again with a message.
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for bad in [wrong, "12345", "abcdef", ""] {
        let response = browser
            .post(app.url("/account/totp"))
            .form(&[
                ("csrf", hidden_input(&html, "csrf")),
                ("code", bad.to_owned()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad:?}");
        let page = response.text().await.unwrap();
        assert!(page.contains("not correct"), "{page}");
        assert_eq!(totp_secret(&page), secret);
    }
    // A code of another time (two steps away) is wrong too.
    let response = browser
        .post(app.url("/account/totp"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("code", totp_code(&secret, app.clock.now() - 90)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(audit_count(&app, "mfa.totp_enabled", &ann).await, 0);
    let confirmed: i64 = sqlx::query_scalar(
        "select count(*) from totp_factors where user_id = $1 and confirmed_at is not null",
    )
    .bind(&ann)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(confirmed, 0);
    // The next wrong code is throttled (5 failures counted on the account).
    let response = browser
        .post(app.url("/account/totp"))
        .form(&[
            ("csrf", hidden_input(&html, "csrf")),
            ("code", wrong.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(!rp::header(&response, "retry-after").is_empty());
    // A password-only sign-in does not ask for a second step yet.
    let other = rp::browser();
    rp::sign_in(&app, &other, ANN).await;
}

async fn sign_in_with_a_code_gives_mfa_tokens(backend: Backend) {
    let (app, ann, browser) = setup(backend).await;
    app.create_person(BEN, "Ben").await;
    let (secret, _) = enrol_totp(&app, &browser).await;
    let client = app.register_client(&["--first-party"]).await;

    // Ann: password, then the second step, then the code goes to the client.
    let fresh = rp::browser();
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[]);
    let journey = walk(&app, &fresh, &url, ANN, Some(secret.clone()), None).await;
    assert_eq!(journey.seen, ["/login", "/login/second-factor"]);
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(claims["sub"], ann.as_str());
    let methods = amr(&claims);
    for m in ["pwd", "otp", "mfa"] {
        assert!(methods.contains(&m.to_owned()), "{methods:?}");
    }
    assert_eq!(claims["acr"], ACR_MFA);

    // Ben has no factor: one step, acr pwd.
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[]);
    let journey = walk(&app, &rp::browser(), &url, BEN, None, None).await;
    assert_eq!(journey.seen, ["/login"]);
    let (claims, _) = id_token_claims(&app, &client, &journey.callback.code(), &verifier).await;
    assert_eq!(amr(&claims), ["pwd"]);
    assert_eq!(claims["acr"], ACR_PWD);

    // The sign-in history names both factors.
    let history = fresh
        .get(app.url("/account/history"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        history.contains("Password + authenticator app"),
        "{history}"
    );
}

async fn a_code_is_accepted_once(backend: Backend) {
    let (app, _ann, browser) = setup(backend).await;
    let (secret, _) = enrol_totp(&app, &browser).await;
    // The enrolment used the code of this step: the same code cannot sign in.
    let first = rp::browser();
    password_step(&app, &first, ANN).await;
    let used = totp_code(&secret, app.clock.now());
    let response = pass_second_step(&app, &first, &used).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("already used"));
    // The next step's code works, once.
    let code = next_code(&app, &secret);
    let response = pass_second_step(&app, &first, &code).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/");
    let second = rp::browser();
    password_step(&app, &second, ANN).await;
    let response = pass_second_step(&app, &second, &code).await;
    assert_eq!(
        response.status(),
        400,
        "a replay in another browser is refused"
    );
    // An earlier step's code, still inside the drift window, is refused too (steps only go up).
    app.clock.advance(30);
    let earlier = totp_code(&secret, app.clock.now() - 30);
    assert_eq!(earlier, code);
    let response = pass_second_step(&app, &second, &earlier).await;
    assert_eq!(response.status(), 400);
    let response = pass_second_step(&app, &second, &totp_code(&secret, app.clock.now())).await;
    assert_eq!(response.status(), 303);
}

async fn wrong_codes_are_throttled(backend: Backend) {
    let (app, ann, browser) = setup(backend).await;
    let (secret, _) = enrol_totp(&app, &browser).await;
    let fresh = rp::browser();
    password_step(&app, &fresh, ANN).await;
    let right = next_code(&app, &secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    // The password counts as an attempt until the second factor is proved; four wrong codes make
    // five failures, the next attempt waits.
    let mut refused = 0;
    let throttled = loop {
        let response = pass_second_step(&app, &fresh, wrong).await;
        match response.status().as_u16() {
            400 => refused += 1,
            429 => break response,
            other => panic!("unexpected {other}"),
        }
        assert!(refused <= 5, "never throttled");
    };
    assert_eq!(refused, 4);
    let wait: i64 = rp::header(&throttled, "retry-after").parse().unwrap();
    assert!(wait >= 1);
    assert!(
        throttled
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins")
    );
    // Even the right code waits.
    let response = pass_second_step(&app, &fresh, &right).await;
    assert_eq!(response.status(), 429);
    assert_eq!(audit_count(&app, "mfa.failed", &ann).await, 4);
    assert!(audit_count(&app, "login.throttled", &ann).await >= 2);
    // After the wait, the right code signs in.
    app.clock.advance(wait);
    let response = pass_second_step(&app, &fresh, &right).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/");
}

async fn recovery_codes_work_once_and_mail_the_owner(backend: Backend) {
    let (app, ann, browser) = setup(backend).await;
    let (_, codes) = enrol_totp(&app, &browser).await;
    let client = app.register_client(&["--first-party"]).await;
    // Typed in upper case without the dash: accepted, as a second factor.
    let fresh = rp::browser();
    let (verifier, challenge) = rp::pkce();
    let url = authz_url(&app, &client, &challenge, &[]);
    let response = fresh.get(&url).send().await.unwrap();
    let login = location(&app, &response);
    let response = rp::submit_login(&app, &fresh, &login, ANN, PASSWORD).await;
    assert_eq!(location(&app, &response).path(), "/login/second-factor");
    let typed = codes[0].replace('-', "").to_uppercase();
    let response = pass_second_step(&app, &fresh, &typed).await;
    assert_eq!(response.status(), 303);
    let mut to = location(&app, &response);
    while to.as_str().starts_with(&app.address) {
        let response = fresh.get(to.clone()).send().await.unwrap();
        assert_eq!(response.status(), 303);
        to = location(&app, &response);
    }
    let code = rp::Callback { url: to }.code();
    let (claims, _) = id_token_claims(&app, &client, &code, &verifier).await;
    assert_eq!(claims["acr"], ACR_MFA);
    assert!(amr(&claims).contains(&"otp".to_owned()));

    let mail = wait_for_mail(&app, ANN, "A recovery code was used").await;
    assert!(mail.text.contains("9 left"), "{}", mail.text);
    assert_eq!(audit_count(&app, "mfa.recovery_code_used", &ann).await, 1);

    // The same code again: refused.
    let again = rp::browser();
    password_step(&app, &again, ANN).await;
    let response = pass_second_step(&app, &again, &codes[0]).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("not correct"));
    // Another one, with spaces: accepted.
    let spaced = codes[1].replace('-', " ");
    let response = pass_second_step(&app, &again, &spaced).await;
    assert_eq!(response.status(), 303);
    let page = again
        .get(app.url("/account/recovery-codes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"recovery-codes-left\">8<"), "{page}");
}

async fn regenerated_recovery_codes_replace_the_old_ones(backend: Backend) {
    let (app, ann, browser) = setup(backend).await;
    // Without a factor there is nothing to regenerate.
    let page = browser
        .get(app.url("/account/recovery-codes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Set up an authenticator app"), "{page}");
    let (_, old) = enrol_totp(&app, &browser).await;
    let page = browser
        .get(app.url("/account/recovery-codes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_input(&page, "csrf");
    // The password is needed.
    let response = browser
        .post(app.url("/account/recovery-codes"))
        .form(&[("csrf", csrf.as_str()), ("password", "wrong password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("not correct"));
    let response = browser
        .post(app.url("/account/recovery-codes"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "CSRF token missing");
    let response = browser
        .post(app.url("/account/recovery-codes"))
        .form(&[("csrf", csrf.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(rp::header(&response, "cache-control").contains("no-store"));
    let new = mfa_helpers::recovery_codes(&response.text().await.unwrap());
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    wait_for_mail(&app, ANN, "New recovery codes").await;
    assert_eq!(
        audit_count(&app, "mfa.recovery_codes_generated", &ann).await,
        1
    );
    let fresh = rp::browser();
    password_step(&app, &fresh, ANN).await;
    let response = pass_second_step(&app, &fresh, &old[0]).await;
    assert_eq!(response.status(), 400, "an old code no longer works");
    let response = pass_second_step(&app, &fresh, &new[0]).await;
    assert_eq!(response.status(), 303);
}

async fn removing_the_authenticator_needs_the_password(backend: Backend) {
    let (app, ann, browser) = setup(backend).await;
    let (secret, _) = enrol_totp(&app, &browser).await;
    let page = browser
        .get(app.url("/account/totp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_input(&page, "csrf");
    let response = browser
        .post(app.url("/account/totp/remove"))
        .form(&[("csrf", csrf.as_str()), ("password", "not it at all")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("not correct"));
    let response = browser
        .post(app.url("/account/totp/remove"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "CSRF token missing");
    // Still there: a sign-in asks for the code.
    sign_in_with_totp(&app, &rp::browser(), ANN, &secret).await;

    let response = browser
        .post(app.url("/account/totp/remove"))
        .form(&[("csrf", csrf.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/account/totp");
    let page = browser
        .get(app.url("/account/totp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("was removed"), "{page}");
    assert!(
        page.contains("id=\"totp-secret\""),
        "a new set-up is offered"
    );
    assert_eq!(audit_count(&app, "mfa.totp_removed", &ann).await, 1);
    wait_for_mail(&app, ANN, "authenticator app of your account was removed").await;
    let left: i64 = sqlx::query_scalar("select count(*) from recovery_codes where user_id = $1")
        .bind(&ann)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "recovery codes go with the last factor");
    // A sign-in is one step again.
    rp::sign_in(&app, &rp::browser(), ANN).await;
}

async fn second_step_without_a_first_factor_goes_to_login(backend: Backend) {
    let (app, _ann, browser) = setup(backend).await;
    let stranger = rp::browser();
    let response = stranger
        .get(app.url("/login/second-factor"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/login");
    // A signed-in browser with no request waiting is not a step-up either.
    let response = browser
        .get(app.url("/login/second-factor?authz=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/login");
    // A post without a pending first factor.
    let login = stranger
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = stranger
        .post(app.url("/login/second-factor"))
        .form(&[
            ("csrf", hidden_input(&login, "csrf")),
            ("code", "123456".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/login");
    // The pending first factor expires.
    enrol_totp(&app, &browser).await;
    let late = rp::browser();
    password_step(&app, &late, ANN).await;
    app.clock.advance(11 * 60);
    let response = late
        .get(app.url("/login/second-factor"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "expired");
    assert_eq!(location(&app, &response).path(), "/login");
}

async fn keys_rewrap_moves_the_authenticator_secrets(backend: Backend) {
    let (app, _ann, browser) = setup(backend).await;
    let (secret, codes) = enrol_totp(&app, &browser).await;
    let new = crate::helpers::new_kek();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new.kek");
    std::fs::write(&file, format!("{new}\n")).unwrap();
    let out = app
        .cli(&["keys", "rewrap", "--new-key-file", file.to_str().unwrap()])
        .await;
    assert!(out.success, "{}", out.stderr);
    // A server with the new key opens the secret: password, then a code, signs in.
    let next = app
        .spawn_sibling(&[("LATCHKEY_KEY_ENCRYPTION_KEY", &new)])
        .await
        .expect("starts with the new key");
    let other = rp::browser();
    let login = other
        .get(format!("{}/login", next.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = other
        .post(format!("{}/login", next.address))
        .form(&[
            ("csrf", hidden_input(&login, "csrf")),
            ("email", ANN.to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(rp::header(&response, "location"), "/login/second-factor");
    let page = other
        .get(format!("{}/login/second-factor", next.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The sibling runs on the real clock; the next step's code is inside its drift window and
    // later than the enrolment's step.
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = totp_code(&secret, i64::try_from(real_now).unwrap() + 30);
    let response = other
        .post(format!("{}/login/second-factor", next.address))
        .form(&[("csrf", hidden_input(&page, "csrf")), ("code", code)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(rp::header(&response, "location"), "/");
    // The recovery codes still work there too.
    let third = rp::browser();
    let login = third
        .get(format!("{}/login", next.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    third
        .post(format!("{}/login", next.address))
        .form(&[
            ("csrf", hidden_input(&login, "csrf")),
            ("email", ANN.to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    let page = third
        .get(format!("{}/login/second-factor", next.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = third
        .post(format!("{}/login/second-factor", next.address))
        .form(&[
            ("csrf", hidden_input(&page, "csrf")),
            ("code", codes[3].clone()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        303,
        "a recovery code made before the rewrap"
    );
}

async fn second_step_refusals_are_recorded(backend: Backend) {
    let (app, ann, browser) = setup(backend).await;
    let (secret, _) = enrol_totp(&app, &browser).await;
    let fresh = rp::browser();
    password_step(&app, &fresh, ANN).await;
    let code = next_code(&app, &secret);
    // Without the CSRF token: 400, nothing counted, the code still good.
    let response = fresh
        .post(app.url("/login/second-factor"))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // A wrong code: recorded as a failed sign-in and `mfa.failed`.
    let response = pass_second_step(&app, &fresh, "not-a-code").await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("not correct"), "{page}");
    assert!(page.contains("name=\"code\""), "the form again");
    assert_eq!(audit_count(&app, "mfa.failed", &ann).await, 1);
    let failed: i64 = sqlx::query_scalar(
        "select count(*) from login_events where user_id = $1 and outcome = 'failed'",
    )
    .bind(&ann)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(failed, 1);
    // The pending first factor is kept: the right code still signs in.
    let response = pass_second_step(&app, &fresh, &code).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/");
    // Signed in now: the session page works, the second step is over.
    let response = fresh
        .get(app.url("/login/second-factor"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

/// Adding a factor needs a sign-in of the last 15 minutes: a browser left signed in (or a stolen
/// session) is sent to sign in again, which comes back to the page with the same session.
async fn an_old_sign_in_signs_in_again_before_adding_a_factor(backend: Backend) {
    let (app, _ann, browser) = setup(backend).await;
    app.clock.advance(16 * 60);
    let response = browser
        .get(app.url("/account/totp"))
        .send()
        .await
        .expect("totp page");
    assert_eq!(response.status(), 303);
    let to = location(&app, &response);
    assert_eq!(to.path(), "/login");
    let next = to
        .query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned());
    assert_eq!(next.as_deref(), Some("/account/totp"));
    rp::sign_in(&app, &browser, ANN).await;
    let page = browser
        .get(app.url("/account/totp"))
        .send()
        .await
        .expect("totp page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert_eq!(totp_secret(&html).len(), 32);
}

/// A secret shown but never confirmed goes with the purge two hours later; a confirmed one stays
/// (and the account overview says which account has an app).
async fn unconfirmed_secrets_are_purged_and_confirmed_ones_kept(backend: Backend) {
    let (app, _ann, browser) = setup(backend).await;
    enrol_totp(&app, &browser).await;
    app.create_person(BEN, "Ben").await;
    let ben = rp::browser();
    rp::sign_in(&app, &ben, BEN).await;
    let page = ben
        .get(app.url("/account/totp"))
        .send()
        .await
        .expect("totp page");
    assert_eq!(page.status(), 200);
    assert_eq!(app.count("totp_factors").await, 2);
    // The overview says which accounts have an app: Ann's confirmed one, not Ben's shown secret.
    for (who, expected) in [(&browser, "On: an authenticator app"), (&ben, "Off.")] {
        let overview = who.get(app.url("/account")).send().await.expect("overview");
        let html = overview.text().await.expect("html");
        assert!(html.contains(expected), "{expected}: {html}");
    }
    let now = app.clock.now();
    let purged = latchkey::jobs::purge::run(&app.db, now)
        .await
        .expect("purge");
    assert!(
        !purged.rows.iter().any(|(t, _)| *t == "totp_factors"),
        "{purged:?}"
    );
    let purged = latchkey::jobs::purge::run(&app.db, now + 2 * 3600 + 1)
        .await
        .expect("purge");
    assert!(purged.rows.contains(&("totp_factors", 1)), "{purged:?}");
    assert_eq!(app.count("totp_factors").await, 1);
}
