//! Bounded resources: a login or sign-up flood beyond the hashing capacity is shed with 503 and
//! `Retry-After`; slow headers, stalled bodies and connections beyond the cap do not tie the server
//! up; login history and audit events go after their retention.

use std::time::{Duration, Instant};

use latchkey::config::Config;
use latchkey::jobs::purge;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, PASSWORD, hidden_input};

on_both_databases!(
    a_login_flood_beyond_hashing_capacity_gets_503_pages,
    an_api_signup_flood_beyond_hashing_capacity_gets_503_problems,
    a_client_sending_headers_slowly_is_disconnected,
    a_stalled_request_body_is_answered_503_after_the_request_timeout,
    connections_beyond_the_cap_wait_until_one_closes,
    history_past_its_retention_is_purged_and_recent_history_kept,
);

/// Concurrent requests in a flood.
const FLOOD: usize = 40;
/// Settings that make the hashing capacity small: one hash at a time, 200 ms wait for it.
const SMALL_HASHING: [(&str, &str); 2] = [
    ("LATCHKEY_PASSWORD_HASH_CONCURRENCY", "1"),
    ("LATCHKEY_PASSWORD_HASH_WAIT", "200ms"),
];
/// Coarse bound for a whole flood to be answered: a queue without limit would take
/// `FLOOD` hashes in a row, many seconds in a loaded debug build.
const FLOOD_BOUND: Duration = Duration::from_secs(30);
/// Coarse bound on the growth of this process's resident memory during a flood: with the cap,
/// one 19 MiB Argon2 buffer at a time; without it, `FLOOD` of them (760 MiB).
const RSS_GROWTH_BOUND_KIB: i64 = 300 * 1024;
/// Coarse bound for the server to act on a slow client.
const ACT_BOUND: Duration = Duration::from_secs(10);

/// Resident set size of this process (which runs the server), from `/proc/self/status`.
fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Checks a flood's answers: only `ok` or 503, some 503s, each with `Retry-After` and the
/// `content_type`; returns how many were `ok`.
async fn shed(responses: Vec<reqwest::Response>, ok: u16, content_type: &str) -> usize {
    let mut served = 0;
    let mut unavailable = 0;
    for response in responses {
        match response.status().as_u16() {
            s if s == ok => served += 1,
            503 => {
                unavailable += 1;
                assert_eq!(rp::header(&response, "retry-after"), "2");
                assert!(
                    rp::header(&response, "content-type").starts_with(content_type),
                    "{response:?}"
                );
                let body = response.text().await.unwrap();
                assert!(body.contains("try again"), "{body}");
            }
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    assert!(unavailable > 0, "no request was shed ({served} served)");
    served
}

async fn a_login_flood_beyond_hashing_capacity_gets_503_pages(backend: Backend) {
    let app = TestApp::spawn_with(backend, &SMALL_HASHING).await;
    app.create_person("ada@example.com", "Ada").await;
    // One browser per attempt, each with its login form (and CSRF token) ready.
    let mut forms = Vec::new();
    for _ in 0..FLOOD {
        let browser = rp::browser();
        let html = browser
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        forms.push((browser, hidden_input(&html, "csrf")));
    }
    let rss_before = rss_kib();
    let started = Instant::now();

    // The right password every time, so that login throttling cannot be what refuses them.
    let attempts = forms.iter().map(|(browser, csrf)| {
        browser
            .post(app.url("/login"))
            .header("accept", "text/html")
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ])
            .send()
    });
    let responses: Vec<reqwest::Response> = futures_all(attempts).await;

    assert!(started.elapsed() < FLOOD_BOUND, "{:?}", started.elapsed());
    let growth = rss_kib() - rss_before;
    assert!(growth < RSS_GROWTH_BOUND_KIB, "RSS grew by {growth} KiB");
    let served = shed(responses, 303, "text/html").await;
    assert!(served > 0, "the capacity still serves someone");
    // The flood over, a login goes through again.
    let page = Url::parse(&app.url("/login")).unwrap();
    let again = rp::submit_login(&app, &rp::browser(), &page, "ada@example.com", PASSWORD).await;
    assert_eq!(again.status(), 303);
}

async fn an_api_signup_flood_beyond_hashing_capacity_gets_503_problems(backend: Backend) {
    let app = TestApp::spawn_with(backend, &SMALL_HASHING).await;
    let http = rp::rp_http();
    let attempts = (0..FLOOD).map(|i| {
        http.post(app.url("/api/v1/signup"))
            .json(&json!({"email": format!("user{i}@example.com"), "password": PASSWORD}))
            .send()
    });
    let started = Instant::now();
    let responses = futures_all(attempts).await;
    assert!(started.elapsed() < FLOOD_BOUND, "{:?}", started.elapsed());

    // 201, or 429 once the per-address sign-up limit counts the committed ones, or 503.
    let (limited, rest): (Vec<_>, Vec<_>) = responses.into_iter().partition(|r| r.status() == 429);
    assert!(limited.len() < FLOOD);
    let mut shed_types = Vec::new();
    for response in rest.iter().filter(|r| r.status() == 503) {
        shed_types.push(rp::header(response, "content-type"));
    }
    assert!(
        shed_types.iter().all(|t| t == "application/problem+json"),
        "{shed_types:?}"
    );
    let served = shed(rest, 201, "application/problem+json").await;
    assert!(served > 0);
    let problem: Value = http
        .post(app.url("/api/v1/signup"))
        .json(&json!({"email": "late@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Not shed any more: refused only by the per-address limit, or created.
    assert_ne!(
        problem["type"],
        "urn:latchkey:problem:temporarily-unavailable"
    );
}

/// Runs the requests concurrently; panics if one could not be sent.
async fn futures_all<F>(requests: impl Iterator<Item = F>) -> Vec<reqwest::Response>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let tasks: Vec<_> = requests.map(tokio::spawn).collect();
    let mut responses = Vec::new();
    for task in tasks {
        responses.push(task.await.unwrap().expect("request answered"));
    }
    responses
}

/// The `host:port` the app listens on.
fn socket(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection or `bound` passes; returns what was read, and
/// whether the connection was closed (end of stream or reset).
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + bound;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
        }
    }
}

async fn a_client_sending_headers_slowly_is_disconnected(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_HEADER_READ_TIMEOUT", "1s")]).await;
    let mut slow = TcpStream::connect(socket(&app)).await.unwrap();
    slow.write_all(b"GET /healthz HT").await.unwrap();

    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut slow, ACT_BOUND).await;
    assert!(closed, "still connected after {ACT_BOUND:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A client that sends its request at once is served as usual.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

async fn a_stalled_request_body_is_answered_503_after_the_request_timeout(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_REQUEST_TIMEOUT", "1s")]).await;
    let mut stalled = TcpStream::connect(socket(&app)).await.unwrap();
    // The headers announce 100 bytes of JSON; only 10 ever come.
    let request = "POST /api/v1/signup HTTP/1.1\r\nHost: localhost\r\n\
                   Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":";
    stalled.write_all(request.as_bytes()).await.unwrap();

    let (answer, _) = read_until_closed(&mut stalled, ACT_BOUND).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 2"), "{answer}");
    assert!(lower.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("temporarily-unavailable"), "{answer}");
}

/// Sends a keep-alive `GET /healthz` on `stream` and reads its answer's head.
async fn healthz_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(ACT_BOUND, stream.read(&mut buf))
        .await
        .expect("answered in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn connections_beyond_the_cap_wait_until_one_closes(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_MAX_CONNECTIONS", "2")]).await;
    // Two kept-alive connections take both slots.
    let mut first = TcpStream::connect(socket(&app)).await.unwrap();
    let mut second = TcpStream::connect(socket(&app)).await.unwrap();
    assert!(healthz_on(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(healthz_on(&mut second).await.starts_with("HTTP/1.1 200"));

    // A third one is let in by the kernel but not served (coarse: not within half a second).
    let mut third = TcpStream::connect(socket(&app)).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (early, closed) = read_until_closed(&mut third, Duration::from_millis(500)).await;
    assert!(
        early.is_empty() && !closed,
        "served beyond the cap: {early}"
    );

    // One closes: the third is served.
    drop(first);
    let (answer, _) = read_until_closed(&mut third, ACT_BOUND).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(healthz_on(&mut second).await.starts_with("HTTP/1.1 200"));
}

/// Rows of `table`.
async fn rows(app: &TestApp, table: &str) -> i64 {
    app.count(table).await
}

async fn history_past_its_retention_is_purged_and_recent_history_kept(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_AUDIT_RETENTION", "2d")]).await;
    let config = Config::from_lookup(|k| app.env.get(k).cloned()).unwrap();
    app.create_person("ada@example.com", "Ada").await;
    let signup = |email: &'static str| {
        rp::rp_http()
            .post(app.url("/api/v1/signup"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
    };
    // Old history: a login and a sign-up (an audit event) three days ago.
    rp::sign_in(&app, &rp::browser(), "ada@example.com").await;
    assert_eq!(signup("old@example.com").await.unwrap().status(), 201);
    let (old_logins, old_audit) = (
        rows(&app, "login_events").await,
        rows(&app, "audit_events").await,
    );
    assert!(old_logins >= 1 && old_audit >= 1);
    app.clock.advance(3 * 24 * 60 * 60);
    // Recent history.
    rp::sign_in(&app, &rp::browser(), "ada@example.com").await;
    assert_eq!(signup("new@example.com").await.unwrap().status(), 201);
    let (all_logins, all_audit) = (
        rows(&app, "login_events").await,
        rows(&app, "audit_events").await,
    );

    // Within the retention nothing goes.
    let kept = purge::retention(
        &app.db,
        app.clock.now() - 2 * 24 * 60 * 60,
        config.audit_retention,
    )
    .await
    .unwrap();
    assert!(kept.rows.is_empty(), "{kept:?}");
    let purged = purge::retention(&app.db, app.clock.now(), config.audit_retention)
        .await
        .unwrap();

    assert!(
        purged
            .rows
            .contains(&("login_events", old_logins.unsigned_abs())),
        "{purged:?}"
    );
    assert!(
        purged
            .rows
            .contains(&("audit_events", old_audit.unsigned_abs())),
        "{purged:?}"
    );
    assert_eq!(rows(&app, "login_events").await, all_logins - old_logins);
    assert_eq!(rows(&app, "audit_events").await, all_audit - old_audit);
    let kept_emails: Vec<String> = sqlx::query_scalar("select email from login_events")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(kept_emails.iter().all(|e| e == "ada@example.com"));
}
