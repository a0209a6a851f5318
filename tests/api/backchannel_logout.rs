//! OpenID Connect Back-Channel Logout 1.0: a relying party's listener on 127.0.0.1 receives one
//! logout token (§2.4, checked as §2.6 tells an RP to) per client of an ended browser session, after
//! RP-initiated logout, ending the session from `/account`, `user disable` and a password reset; a
//! failed post is retried; clients without a URI, or not used in the session, are told nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, REDIRECT_URI, RegisteredClient, hidden_input, location};
use crate::support::mail::wait_for_mail;

on_both_databases!(
    rp_initiated_logout_posts_one_valid_logout_token,
    ending_the_session_from_the_account_page_tells_the_client,
    user_disable_tells_the_client_of_every_session,
    deleting_the_user_tells_the_client,
    password_reset_tells_the_client,
    a_failed_post_is_retried,
    two_servers_post_each_logout_once,
    invalid_backchannel_logout_uris_are_refused,
);

const ADA: &str = "ada@example.com";
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Longest wait for a delivery (the loop polls every second).
const DEADLINE: Duration = Duration::from_secs(20);

/// One POST the relying party received.
#[derive(Debug, Clone)]
struct Received {
    /// The last path segment (`/bcl/{name}`): which client's URI was called.
    name: String,
    content_type: String,
    body: String,
}

/// The relying party's back-channel logout listener: records every POST to `/bcl/{name}`; answers
/// 500 to the first `fail_first` of them, then 200.
#[derive(Clone, Default)]
struct Listener {
    received: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<AtomicUsize>,
}

impl Listener {
    /// Starts listening on 127.0.0.1:0; returns the listener and its base URL.
    async fn start(fail_first: usize) -> (Listener, String) {
        let listener = Listener::default();
        listener.fail_first.store(fail_first, Ordering::SeqCst);
        let router = Router::new()
            .route("/bcl/{name}", post(receive))
            .with_state(listener.clone());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener binds");
        let base = format!("http://{}", tcp.local_addr().expect("local addr"));
        tokio::spawn(async move {
            let _ = axum::serve(tcp, router).await;
        });
        (listener, base)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until at least `n` POSTs arrived (deadline [`DEADLINE`]).
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} back-channel posts, got {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(listener): State<Listener>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    listener.received.lock().expect("lock").push(Received {
        name,
        content_type,
        body,
    });
    let failing = listener
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// An app allowing http upstreams on loopback (the listener), with Ada.
async fn app(backend: Backend) -> TestApp {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "true")]).await;
    app.create_person(ADA, "Ada").await;
    app
}

/// A first-party client posting logouts to `{base}/bcl/{name}`.
async fn client_with_uri(app: &TestApp, base: &str, name: &str) -> RegisteredClient {
    let uri = format!("{base}/bcl/{name}");
    app.register_client(&["--first-party", "--backchannel-logout-uri", &uri])
        .await
}

/// Signs `browser` in as Ada through an authorization of `client`; returns the ID token's claims
/// and the raw ID token.
async fn id_token(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
) -> (Value, String) {
    let tokens = tokens(app, browser, client, "openid email profile").await;
    let raw = tokens["id_token"].as_str().expect("an ID token").to_owned();
    let (_, claims) = app.verify_jwt(&raw).await;
    assert!(claims["sid"].is_string(), "ID tokens carry sid: {claims}");
    (claims, raw)
}

/// An authorization of `client` for `scope` in `browser` (as Ada), redeemed: the token response.
async fn tokens(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &RegisteredClient,
    scope: &str,
) -> Value {
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", scope),
        ("nonce", "n"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let code = rp::authorize(app, browser, &url, ADA, rp::Consent::Allow)
        .await
        .callback
        .code();
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    rp::json_with_status(response, 200).await
}

/// Waits until no logout is waiting in the queue: every queued one was delivered or given up, so
/// the listener has seen everything it will (no timing involved).
async fn wait_until_queue_drained(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from backchannel_logouts where delivered_at is null \
             and given_up_at is null",
        )
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
        if waiting == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} logouts still waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Validates a received POST as §2.6 asks of a relying party: the form field `logout_token`, the
/// signature against `/jwks.json`, `typ`, `iss`, `aud`, `iat`, `exp`, `jti`, `events`, no `nonce`;
/// returns the claims.
async fn validate(app: &TestApp, received: &Received, client: &RegisteredClient) -> Value {
    assert!(
        received
            .content_type
            .starts_with("application/x-www-form-urlencoded"),
        "{received:?}"
    );
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(received.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(fields.len(), 1, "one form field: {fields:?}");
    assert_eq!(fields[0].0, "logout_token");
    let (header, claims) = app.verify_jwt(&fields[0].1).await;
    assert_eq!(header["typ"], "logout+jwt", "{header}");
    assert_eq!(claims["iss"], app.issuer().as_str(), "{claims}");
    assert_eq!(claims["aud"], client.id.as_str(), "{claims}");
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    assert_eq!(exp - iat, 120, "valid two minutes: {claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    assert_eq!(
        claims["events"],
        serde_json::json!({ LOGOUT_EVENT: {} }),
        "{claims}"
    );
    assert!(claims.get("nonce").is_none(), "never a nonce: {claims}");
    claims
}

async fn rp_initiated_logout_posts_one_valid_logout_token(backend: Backend) {
    let app = app(backend).await;
    let (listener, base) = Listener::start(0).await;
    let client = client_with_uri(&app, &base, "used").await;
    // Not used in the session: told nothing.
    let _unused = client_with_uri(&app, &base, "unused").await;
    // Used in the session, but without a back-channel URI: nothing to tell.
    let plain = app.register_client(&["--first-party"]).await;
    let browser = rp::browser();
    let (id_claims, raw) = id_token(&app, &browser, &client).await;
    let _ = id_token(&app, &browser, &plain).await;
    // A second authorization of the same client in the same session is one session to announce.
    let (again, _) = id_token(&app, &browser, &client).await;
    assert_eq!(again["sid"], id_claims["sid"]);
    // The refresh grant's ID token carries the session's sid too.
    let with_refresh = tokens(&app, &browser, &client, "openid offline_access").await;
    let refresh_token = with_refresh["refresh_token"]
        .as_str()
        .expect("refresh token");
    let refreshed = rp::json_with_status(
        app.post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await,
        200,
    )
    .await;
    let (_, refreshed_claims) = app
        .verify_jwt(refreshed["id_token"].as_str().expect("an ID token"))
        .await;
    assert_eq!(refreshed_claims["sid"], id_claims["sid"]);

    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &raw)
        .finish();
    // The hint sent from another browser, where nobody is signed in: Ada's session lives on in
    // hers, so it is not announced.
    let elsewhere = rp::browser()
        .get(app.url(&format!("/logout?{query}")))
        .send()
        .await
        .expect("logout elsewhere");
    assert_eq!(elsewhere.status(), 200, "signed-out page");
    wait_until_queue_drained(&app).await;
    assert_eq!(app.count("backchannel_logouts").await, 0);

    let response = browser
        .get(app.url(&format!("/logout?{query}")))
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 200, "signed-out page");

    let got = listener.wait_for(1).await;
    wait_until_queue_drained(&app).await;
    let got_all = listener.received();
    assert_eq!(got_all.len(), 1, "exactly one post: {got_all:?}");
    assert_eq!(got[0].name, "used");
    let claims = validate(&app, &got[0], &client).await;
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(claims["sid"], id_claims["sid"]);

    // The session is over: a later logout of the same browser announces nothing again.
    let response = browser
        .get(app.url(&format!("/logout?{query}")))
        .send()
        .await
        .expect("logout again");
    assert_eq!(response.status(), 200);
    wait_until_queue_drained(&app).await;
    assert_eq!(listener.received().len(), 1);
}

async fn ending_the_session_from_the_account_page_tells_the_client(backend: Backend) {
    let app = app(backend).await;
    let (listener, base) = Listener::start(0).await;
    let client = client_with_uri(&app, &base, "rp").await;
    let browser = rp::browser();
    let (id_claims, _) = id_token(&app, &browser, &client).await;
    let sid = id_claims["sid"].as_str().expect("sid");

    let page = browser
        .get(app.url("/account/sessions"))
        .send()
        .await
        .expect("sessions page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("page");
    let response = browser
        .post(app.url("/account/sessions/end"))
        .form(&[("csrf", hidden_input(&html, "csrf").as_str()), ("sid", sid)])
        .send()
        .await
        .expect("end session");
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response).path(), "/login");

    let got = listener.wait_for(1).await;
    let claims = validate(&app, &got[0], &client).await;
    assert_eq!(claims["sid"], sid);
    assert_eq!(claims["sub"], id_claims["sub"]);
    wait_until_queue_drained(&app).await;
    assert_eq!(listener.received().len(), 1);
}

async fn user_disable_tells_the_client_of_every_session(backend: Backend) {
    let app = app(backend).await;
    let (listener, base) = Listener::start(0).await;
    let client = client_with_uri(&app, &base, "rp").await;
    let first = rp::browser();
    let second = rp::browser();
    let (one, _) = id_token(&app, &first, &client).await;
    let (two, _) = id_token(&app, &second, &client).await;
    assert_ne!(one["sid"], two["sid"], "two browsers, two sessions");

    app.cli(&["user", "disable", "--email", ADA]).await.json();

    let got = listener.wait_for(2).await;
    wait_until_queue_drained(&app).await;
    assert_eq!(listener.received().len(), 2, "{got:?}");
    let mut sids = Vec::new();
    for received in &got {
        let claims = validate(&app, received, &client).await;
        assert_eq!(claims["sub"], one["sub"]);
        sids.push(claims["sid"].as_str().expect("sid").to_owned());
    }
    sids.sort();
    let mut expected = vec![
        one["sid"].as_str().expect("sid").to_owned(),
        two["sid"].as_str().expect("sid").to_owned(),
    ];
    expected.sort();
    assert_eq!(sids, expected);
}

async fn deleting_the_user_tells_the_client(backend: Backend) {
    let app = app(backend).await;
    let (listener, base) = Listener::start(0).await;
    let client = client_with_uri(&app, &base, "rp").await;
    let (id_claims, _) = id_token(&app, &rp::browser(), &client).await;

    app.cli(&["user", "delete", "--email", ADA]).await.json();

    let got = listener.wait_for(1).await;
    let claims = validate(&app, &got[0], &client).await;
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(claims["sid"], id_claims["sid"]);
    wait_until_queue_drained(&app).await;
    assert_eq!(listener.received().len(), 1);
}

async fn password_reset_tells_the_client(backend: Backend) {
    let app = app(backend).await;
    let (listener, base) = Listener::start(0).await;
    let client = client_with_uri(&app, &base, "rp").await;
    let browser = rp::browser();
    let (id_claims, _) = id_token(&app, &browser, &client).await;

    let answer = crate::recovery::request_reset(&app, ADA).await;
    assert_eq!(answer.status(), 303);
    let mail = wait_for_mail(&app, ADA, "Reset your password").await;
    let link = mail
        .link("/password/reset")
        .replacen(&app.issuer(), &app.address, 1);
    let done = crate::recovery::choose_password(
        &app,
        &rp::browser(),
        &link,
        "a brand new passphrase",
        "a brand new passphrase",
    )
    .await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&app, &done).path(), "/password/reset/done");

    let got = listener.wait_for(1).await;
    let claims = validate(&app, &got[0], &client).await;
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert_eq!(claims["sub"], id_claims["sub"]);
    wait_until_queue_drained(&app).await;
    assert_eq!(listener.received().len(), 1);
}

async fn a_failed_post_is_retried(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "true"),
            ("LATCHKEY_METRICS_BIND", "127.0.0.1:0"),
        ],
    )
    .await;
    app.create_person(ADA, "Ada").await;
    let before = crate::metrics::scrape(&app).await;
    let (listener, base) = Listener::start(1).await;
    let client = client_with_uri(&app, &base, "rp").await;
    let browser = rp::browser();
    let (id_claims, raw) = id_token(&app, &browser, &client).await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &raw)
        .finish();
    let response = browser
        .get(app.url(&format!("/logout?{query}")))
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 200);

    // The first post is answered 500: the failure is recorded and a retry scheduled.
    listener.wait_for(1).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let (attempts, last_error, next_at) = loop {
        let row: (i64, Option<String>, i64) =
            sqlx::query_as("select attempts, last_error, next_attempt_at from backchannel_logouts")
                .fetch_one(&app.db.pool)
                .await
                .expect("the queued logout");
        if row.0 == 1 {
            break row;
        }
        assert!(tokio::time::Instant::now() < deadline, "attempt recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attempts, 1);
    assert!(
        last_error.as_deref().is_some_and(|e| e.contains("500")),
        "{last_error:?}"
    );

    // Once due (the clock moved rather than waiting the backoff), it is posted again, and accepted.
    app.clock.advance((next_at - app.clock.now()).max(0));
    let got = listener.wait_for(2).await;
    wait_until_queue_drained(&app).await;
    assert_eq!(listener.received().len(), 2);
    let first = validate(&app, &got[0], &client).await;
    let second = validate(&app, &got[1], &client).await;
    assert_eq!(first["sid"], id_claims["sid"]);
    assert_eq!(second["sid"], id_claims["sid"]);
    let delivered: Option<i64> = sqlx::query_scalar("select delivered_at from backchannel_logouts")
        .fetch_one(&app.db.pool)
        .await
        .expect("row");
    assert!(delivered.is_some());
    // Both outcomes are counted (the recorder is shared by the whole test process: at least ours).
    let after = crate::metrics::scrape(&app).await;
    for counter in [
        "latchkey_backchannel_logout_failed_total",
        "latchkey_backchannel_logout_delivered_total",
    ] {
        assert!(
            after.sum(counter, &[]) > before.sum(counter, &[]),
            "{counter}:\n{}",
            after.text
        );
    }
}

async fn two_servers_post_each_logout_once(backend: Backend) {
    let app = app(backend).await;
    // A second server on the same database: both delivery loops race for every queued logout.
    let _sibling = app
        .spawn_sibling(&[])
        .await
        .expect("a second server starts");
    let (listener, base) = Listener::start(0).await;
    let clients = [
        client_with_uri(&app, &base, "one").await,
        client_with_uri(&app, &base, "two").await,
    ];
    let browsers = [rp::browser(), rp::browser(), rp::browser()];
    for browser in &browsers {
        for client in &clients {
            id_token(&app, browser, client).await;
        }
    }

    app.cli(&["user", "sessions-end", "--email", ADA])
        .await
        .json();

    let got = listener.wait_for(6).await;
    wait_until_queue_drained(&app).await;
    let got_all = listener.received();
    assert_eq!(got_all.len(), 6, "each (session, client) once: {got_all:?}");
    let mut pairs = Vec::new();
    for received in &got {
        let client = clients
            .iter()
            .zip(["one", "two"])
            .find(|(_, name)| *name == received.name)
            .map(|(c, _)| c)
            .expect("a known client");
        let claims = validate(&app, received, client).await;
        pairs.push((received.name.clone(), claims["sid"].to_string()));
    }
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 6, "no (session, client) twice: {pairs:?}");
}

async fn invalid_backchannel_logout_uris_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for uri in ["ftp://x", "/bcl", "https://rp.example.com/bcl#frag"] {
        let out = app
            .cli(&[
                "client",
                "create",
                "--name",
                "Bad",
                "--redirect-uri",
                REDIRECT_URI,
                "--backchannel-logout-uri",
                uri,
            ])
            .await;
        assert!(!out.success, "{uri} accepted: {}", out.stdout);
        assert_ne!(out.code, Some(0));
    }
}
