//! Login throttling (OWASP Authentication Cheat Sheet, NIST SP 800-63B §5.2.2): per account (the
//! same for unknown emails), per known browser (device cookie), per address (IPv6 per /64), and
//! across processes. Client authentication: `client_throttling.rs`.

use std::time::Instant;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD, hidden_input, location};
use crate::support::mail::wait_for_mail;

on_both_databases!(
    wrong_passwords_are_throttled_before_any_hashing,
    failures_from_many_addresses_add_up_on_the_account,
    the_owners_browser_signs_in_while_the_account_is_delayed,
    one_address_gets_a_hundred_failures_ipv6_per_64,
    a_password_reset_clears_the_delay,
    concurrent_attempts_get_no_more_guesses,
);

const EMAIL: &str = "alice@example.com";
const WRONG: &str = "not the password";
/// The start of the throttled page's message (same for known and unknown emails).
const THROTTLED_TEXT: &str = "Too many failed sign-ins";

/// One login attempt: GETs the page for its CSRF token, POSTs with `extra` headers.
pub async fn attempt(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("csrf", hidden_input(&html, "csrf")),
        ("email", email.to_owned()),
        ("password", password.to_owned()),
    ];
    let mut request = browser.post(app.url("/login")).form(&form);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// `Retry-After` of a 429, in seconds.
pub fn retry_after(response: &reqwest::Response) -> i64 {
    assert_eq!(response.status(), 429);
    rp::header(response, "retry-after").parse().unwrap()
}

pub async fn count_where(app: &TestApp, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn wrong_passwords_are_throttled_before_any_hashing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    let user_id = app.create_person(EMAIL, "Alice").await;
    let browser = rp::browser();

    // Five real attempts (each verifies a password with Argon2id): the same neutral failure.
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            attempt(&app, &browser, EMAIL, WRONG, &[]).await.status(),
            401
        );
    }
    let per_real = started.elapsed() / 5;

    // From the sixth on: 429 with Retry-After and no password check, even for the right one.
    let started = Instant::now();
    let mut last = None;
    for _ in 0..195 {
        let answer = attempt(&app, &browser, EMAIL, WRONG, &[]).await;
        assert_eq!(retry_after(&answer), 1);
        last = Some(answer);
    }
    let throttled = started.elapsed();
    // Coarse: without Argon2id a refused attempt costs a fraction of a real one.
    assert!(
        throttled < per_real * 195 / 2,
        "195 throttled attempts took {throttled:?}, one real attempt {per_real:?}"
    );
    let page = last.unwrap().text().await.unwrap();
    assert!(page.contains(THROTTLED_TEXT), "{page}");
    assert_eq!(
        retry_after(&attempt(&app, &browser, EMAIL, PASSWORD, &[]).await),
        1
    );

    // An unknown email is throttled the same way, with the same page.
    for _ in 0..5 {
        let answer = attempt(&app, &browser, "nobody@example.com", WRONG, &[]).await;
        assert_eq!(answer.status(), 401);
    }
    let unknown = attempt(&app, &browser, "Nobody@Example.com", WRONG, &[]).await;
    assert_eq!(retry_after(&unknown), 1);
    assert!(unknown.text().await.unwrap().contains(THROTTLED_TEXT));

    // After the delay the right password works and clears the count: the next failures are
    // plain 401s again.
    app.clock.advance(1);
    let ok = attempt(&app, &browser, EMAIL, PASSWORD, &[]).await;
    assert_eq!(ok.status(), 303);
    assert_eq!(location(&app, &ok).path(), "/");
    let other = rp::browser();
    for _ in 0..4 {
        assert_eq!(attempt(&app, &other, EMAIL, WRONG, &[]).await.status(), 401);
    }

    // The history says what happened; the audit log has one event per refused attempt.
    let outcome = "select count(*) from login_events where user_id = $1 and outcome = ";
    let q = |o: &str| format!("{outcome}'{o}'");
    assert_eq!(count_where(&app, &q("throttled"), &user_id).await, 196);
    assert_eq!(count_where(&app, &q("failed"), &user_id).await, 9);
    assert_eq!(count_where(&app, &q("succeeded"), &user_id).await, 1);
    let audited =
        "select count(*) from audit_events where action = 'login.throttled' and target_id = $1";
    assert_eq!(count_where(&app, audited, &user_id).await, 196);
}

async fn failures_from_many_addresses_add_up_on_the_account(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    app.clock.freeze();
    app.create_person(EMAIL, "Alice").await;
    let browser = rp::browser();

    let mut statuses = Vec::new();
    for i in 1..=20 {
        let address = format!("198.51.100.{i}");
        let xff = [("x-forwarded-for", address.as_str())];
        statuses.push(
            attempt(&app, &browser, EMAIL, WRONG, &xff)
                .await
                .status()
                .as_u16(),
        );
    }

    assert_eq!(&statuses[..5], &[401; 5]);
    assert_eq!(&statuses[5..], &[429; 15]);
    let addresses: i64 = sqlx::query_scalar("select count(distinct ip) from login_events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(addresses, 20);
}

async fn the_owners_browser_signs_in_while_the_account_is_delayed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    app.create_person(EMAIL, "Alice").await;
    let owner = rp::browser();
    rp::sign_in(&app, &owner, EMAIL).await;

    // An attacker hammers the account from another browser until it is delayed.
    let attacker = rp::browser();
    for _ in 0..5 {
        assert_eq!(
            attempt(&app, &attacker, EMAIL, WRONG, &[]).await.status(),
            401
        );
    }
    for _ in 0..5 {
        assert_eq!(
            attempt(&app, &attacker, EMAIL, WRONG, &[]).await.status(),
            429
        );
    }

    // The owner's browser (its device cookie is known to the account) still gets in; a new
    // browser with the right password does not.
    let ok = attempt(&app, &owner, EMAIL, PASSWORD, &[]).await;
    assert_eq!(ok.status(), 303);
    let stranger = attempt(&app, &rp::browser(), EMAIL, PASSWORD, &[]).await;
    assert!(retry_after(&stranger) >= 1);

    // The owner's browser is throttled on its own count, by the same rule.
    for _ in 0..5 {
        assert_eq!(attempt(&app, &owner, EMAIL, WRONG, &[]).await.status(), 401);
    }
    assert_eq!(
        retry_after(&attempt(&app, &owner, EMAIL, PASSWORD, &[]).await),
        1
    );
    app.clock.advance(1);
    assert_eq!(
        attempt(&app, &owner, EMAIL, PASSWORD, &[]).await.status(),
        303
    );
}

async fn one_address_gets_a_hundred_failures_ipv6_per_64(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")]).await;
    app.clock.freeze();
    app.create_person(EMAIL, "Alice").await;
    let browser = rp::browser();
    let v4 = [("x-forwarded-for", "203.0.113.5")];

    // 100 failures with 100 different emails from one address, then 429 for any email.
    for i in 0..100 {
        let email = format!("user{i}@example.com");
        assert_eq!(
            attempt(&app, &browser, &email, WRONG, &v4).await.status(),
            401
        );
    }
    let refused = attempt(&app, &browser, EMAIL, PASSWORD, &v4).await;
    let wait = retry_after(&refused);
    assert!((1..=900).contains(&wait), "{wait}");
    let elsewhere = [("x-forwarded-for", "203.0.113.6")];
    assert_eq!(
        attempt(&app, &browser, EMAIL, PASSWORD, &elsewhere)
            .await
            .status(),
        303
    );

    // IPv6 addresses of one /64 count together; the next /64 does not.
    for i in 0..100 {
        let email = format!("v6user{i}@example.com");
        let address = format!("2001:db8:1:2::{:x}", i + 1);
        let xff = [("x-forwarded-for", address.as_str())];
        assert_eq!(
            attempt(&app, &browser, &email, WRONG, &xff).await.status(),
            401
        );
    }
    let same_64 = [("forwarded", "for=\"[2001:db8:1:2:ffff::1]:4711\"")];
    assert_eq!(
        attempt(&app, &rp::browser(), EMAIL, PASSWORD, &same_64)
            .await
            .status(),
        429
    );
    let next_64 = [("forwarded", "for=\"[2001:db8:1:3::1]\"")];
    assert_eq!(
        attempt(&app, &rp::browser(), EMAIL, PASSWORD, &next_64)
            .await
            .status(),
        303
    );

    // Once the window has passed, the address is served again.
    app.clock.advance(wait);
    assert_eq!(
        attempt(&app, &rp::browser(), EMAIL, PASSWORD, &v4)
            .await
            .status(),
        303
    );
}

async fn a_password_reset_clears_the_delay(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    app.create_person(EMAIL, "Alice").await;
    let browser = rp::browser();
    for _ in 0..6 {
        attempt(&app, &browser, EMAIL, WRONG, &[]).await;
    }
    assert_eq!(
        attempt(&app, &browser, EMAIL, PASSWORD, &[]).await.status(),
        429
    );

    // Asking for a reset link still works while delayed; using it clears the count.
    let new_password = "a brand new passphrase";
    assert_eq!(
        crate::recovery::request_reset(&app, EMAIL).await.status(),
        303
    );
    let mail = wait_for_mail(&app, EMAIL, "Reset your password").await;
    let link = mail
        .link("/password/reset")
        .replacen(&app.issuer(), &app.address, 1);
    let done =
        crate::recovery::choose_password(&app, &rp::browser(), &link, new_password, new_password)
            .await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        attempt(&app, &browser, EMAIL, new_password, &[])
            .await
            .status(),
        303
    );
}

async fn concurrent_attempts_get_no_more_guesses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    app.create_person(EMAIL, "Alice").await;
    // Twenty browsers with a login form each, posted all at once.
    let mut posts = Vec::new();
    for _ in 0..20 {
        let browser = rp::browser();
        let html = browser.get(app.url("/login")).send().await.unwrap();
        let form = [
            ("csrf", hidden_input(&html.text().await.unwrap(), "csrf")),
            ("email", EMAIL.to_owned()),
            ("password", WRONG.to_owned()),
        ];
        posts.push(browser.post(app.url("/login")).form(&form).send());
    }
    let mut statuses: Vec<u16> = futures_statuses(posts).await;
    statuses.sort_unstable();
    // Each attempt is counted before its password is checked, so exactly five get a check.
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], &[429; 15], "{statuses:?}");
}

/// Runs the requests concurrently; their statuses.
async fn futures_statuses(
    posts: Vec<
        impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
    >,
) -> Vec<u16> {
    let tasks: Vec<_> = posts.into_iter().map(tokio::spawn).collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().unwrap().status().as_u16());
    }
    statuses
}

/// Two `latchkey serve` processes on one PostgreSQL count the same account's failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_account_count() {
    let Some(cluster) = crate::multi_process::start_cluster().await else {
        return;
    };
    let email = crate::multi_process::EMAIL;
    let browser = rp::browser();
    // Attempts alternate between the processes until each has refused one. The processes run on
    // the system clock, so a one-second delay may lapse between two requests; with one shared
    // count the first refusal still comes after 5 to 8 failures (the delays double), while counts
    // kept per process would need 5 failures on each (9 or more).
    let mut statuses = Vec::new();
    let mut refused_by = [false, false];
    for i in 0..30 {
        let server = cluster.server(i);
        let html = browser
            .get(server.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let form = [
            ("csrf", hidden_input(&html, "csrf")),
            ("email", email.to_owned()),
            ("password", WRONG.to_owned()),
        ];
        let answer = browser
            .post(server.url("/login"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        assert!(status == 401 || status == 429, "{status}");
        refused_by[i % 2] |= status == 429;
        statuses.push(status);
        if refused_by == [true, true] {
            break;
        }
    }
    let failures_before_first_refusal = statuses.iter().take_while(|s| **s == 401).count();
    assert!(
        (5..=8).contains(&failures_before_first_refusal),
        "{statuses:?}"
    );
    assert_eq!(refused_by, [true, true], "{statuses:?}");
}
