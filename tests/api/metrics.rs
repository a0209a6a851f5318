//! Prometheus metrics: `GET /metrics` on `LATCHKEY_METRICS_BIND` only, scraped after real flows.
//!
//! The recorder is process-wide and the tests run in parallel, so counters are compared before and
//! after a flow (at least the expected increase), never as totals; the gauges are read at scrape
//! time from the scraped server itself, so they are checked as values.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Backend, TestApp, fresh_database_url, run_cli, test_env};
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient};
use crate::support::mail::wait_for_mail;

on_both_databases!(
    a_flow_moves_the_counters_and_the_gauges_describe_the_server,
    failed_deliveries_and_the_waiting_queue_are_measured,
    metrics_are_served_only_on_their_own_listener,
    without_the_variable_nothing_listens,
    a_bad_or_taken_metrics_address_stops_the_start,
    serve_logs_the_bound_metrics_address,
);

const METRICS_ON: &[(&str, &str)] = &[("LATCHKEY_METRICS_BIND", "127.0.0.1:0")];
const EMAIL: &str = "ada@example.com";
const WRONG: &str = "not the password at all";
/// How long a counter moved by a background task (the mail loop) may take to show.
const SETTLE: Duration = Duration::from_secs(10);

/// One scrape, parsed: `(name, labels, value)` per sample line.
pub(crate) struct Scrape {
    pub(crate) text: String,
    samples: Vec<(String, HashMap<String, String>, f64)>,
}

impl Scrape {
    /// The sum of the samples of `name` whose labels include every pair of `labels` (0 if none).
    pub(crate) fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, v)| v).sum()
    }

    /// The samples of `name` whose labels include every pair of `labels`.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = (&'a HashMap<String, String>, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, l, v)| (l, *v))
    }

    /// The one sample of `name` with exactly these labels.
    #[track_caller]
    fn one(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .matching(name, labels)
            .filter(|(l, _)| l.len() == labels.len())
            .map(|(_, v)| v)
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?} in:\n{}", self.text);
        found[0]
    }

    /// The `# TYPE` of `name`.
    fn kind(&self, name: &str) -> Option<&str> {
        let prefix = format!("# TYPE {name} ");
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
    }
}

/// Parses the text exposition format: `name{k="v",…} value` lines, comments skipped.
fn parse(text: &str) -> Scrape {
    let mut samples = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("a number in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), HashMap::new()),
            Some((name, rest)) => (name.to_owned(), parse_labels(rest, line)),
        };
        samples.push((name, labels, value));
    }
    Scrape {
        text: text.to_owned(),
        samples,
    }
}

/// `k="v",k2="v2"}`: values may hold braces (route templates) and escapes.
fn parse_labels(rest: &str, line: &str) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    let mut chars = rest.chars();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim_start_matches(',').to_owned();
        if key == "}" || key.is_empty() {
            return labels;
        }
        assert_eq!(chars.next(), Some('"'), "quoted label value in {line}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape in {line}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        match chars.next() {
            Some(',') => {}
            Some('}') => return labels,
            other => panic!("unexpected {other:?} after a label in {line}"),
        }
    }
}

/// Scrapes `app`'s metrics listener.
pub(crate) async fn scrape(app: &TestApp) -> Scrape {
    let address = app.metrics_address.as_deref().expect("metrics are on");
    let response = reqwest::get(format!("{address}/metrics"))
        .await
        .expect("scrape sent");
    assert_eq!(response.status(), 200);
    assert_eq!(
        rp::header(&response, "content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse(&response.text().await.expect("scrape body"))
}

/// Scrapes until `done` holds of the scrape (the mail loop counts in the background).
async fn scrape_until(app: &TestApp, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let now = scrape(app).await;
        if done(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {SETTLE:?}:\n{}",
            now.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// Authorizes `client` for [`EMAIL`] with `offline_access` (consent allowed) and redeems the code:
/// the token response, with a refresh token.
async fn code_flow_tokens(app: &TestApp, client: &RegisteredClient) -> serde_json::Value {
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email offline_access"),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let journey = rp::authorize(app, &rp::browser(), &url, EMAIL, Consent::Allow).await;
    let response = app
        .post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &journey.callback.code()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    rp::json_with_status(response, 200).await
}

/// Presents `refresh_token` as `client`.
async fn refresh(
    app: &TestApp,
    client: &RegisteredClient,
    refresh_token: &str,
) -> reqwest::Response {
    app.post_token(
        Some((&client.id, client.secret())),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// A login-page attempt of `email` with `password` in a fresh browser; returns the status.
async fn login_attempt(app: &TestApp, email: &str, password: &str) -> u16 {
    let page = url::Url::parse(&app.url("/login")).expect("login URL");
    rp::submit_login(app, &rp::browser(), &page, email, password)
        .await
        .status()
        .as_u16()
}

async fn a_flow_moves_the_counters_and_the_gauges_describe_the_server(backend: Backend) {
    let app = TestApp::spawn_with(backend, METRICS_ON).await;
    app.create_person(EMAIL, "Ada").await;
    let client = app.register_client(&[]).await;
    let before = scrape(&app).await;

    // A client_credentials token.
    crate::mgmt_helpers::client_token(&app, &["admin"]).await;
    // A wrong password, then the code flow (which signs in with the right one).
    assert_eq!(login_attempt(&app, EMAIL, WRONG).await, 401);
    let tokens = code_flow_tokens(&app, &client).await;
    // A refresh, then the rotated token again: reuse, the family is revoked.
    let first = tokens["refresh_token"].as_str().expect("a refresh token");
    rp::json_with_status(refresh(&app, &client, first).await, 200).await;
    assert_eq!(refresh(&app, &client, first).await.status(), 400);
    // Throttled sign-ins: five failures of an unknown address, then refused before any check.
    for _ in 0..5 {
        assert_eq!(login_attempt(&app, "nobody@example.com", WRONG).await, 401);
    }
    // The delay after the fifth failure is one second and doubles with each further failure; a slow
    // attempt may land after it, so keep failing until one lands inside it.
    let mut throttled = false;
    for _ in 0..8 {
        match login_attempt(&app, "nobody@example.com", WRONG).await {
            429 => {
                throttled = true;
                break;
            }
            status => assert_eq!(status, 401),
        }
    }
    assert!(throttled, "a failure inside the delay is answered 429");
    // A mail: a password reset request.
    let answer = crate::recovery::request_reset(&app, EMAIL).await;
    assert_eq!(answer.status(), 303);
    wait_for_mail(&app, EMAIL, "Reset your password").await;

    let after = scrape_until(&app, "the reset mail counted as sent", |s| {
        s.sum("latchkey_mail_sent_total", &[]) > before.sum("latchkey_mail_sent_total", &[])
    })
    .await;
    let grew =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);

    // Tokens by grant and client type.
    let issued = "latchkey_tokens_issued_total";
    let confidential = ("client_type", "confidential");
    assert!(
        grew(
            issued,
            &[("grant_type", "client_credentials"), confidential]
        ) >= 1.0
    );
    assert!(
        grew(
            issued,
            &[("grant_type", "authorization_code"), confidential]
        ) >= 1.0
    );
    assert!(grew(issued, &[("grant_type", "refresh_token"), confidential]) >= 1.0);
    assert_eq!(after.kind(issued), Some("counter"));
    // Sign-ins by method and outcome.
    let sign_ins = "latchkey_sign_ins_total";
    let password = ("method", "password");
    assert!(grew(sign_ins, &[password, ("outcome", "failure")]) >= 6.0);
    assert!(grew(sign_ins, &[password, ("outcome", "success")]) >= 1.0);
    assert!(grew(sign_ins, &[password, ("outcome", "throttled")]) >= 1.0);
    assert!(grew("latchkey_refresh_token_reuse_detected_total", &[]) >= 1.0);
    // Mail.
    assert!(grew("latchkey_mail_queued_total", &[]) >= 1.0);
    assert!(grew("latchkey_mail_sent_total", &[]) >= 1.0);

    // Requests by route template (never the path itself) and status, with a real histogram.
    let requests = "latchkey_http_requests_total";
    let token_ok = [("route", "/token"), ("method", "POST"), ("status", "200")];
    assert!(grew(requests, &token_ok) >= 3.0);
    assert!(grew(requests, &[("route", "/token"), ("status", "400")]) >= 1.0);
    assert!(
        grew(
            requests,
            &[("route", "/login"), ("method", "POST"), ("status", "429")]
        ) >= 1.0
    );
    let duration = "latchkey_http_request_duration_seconds";
    assert_eq!(after.kind(duration), Some("histogram"));
    let token_route = [("route", "/token"), ("method", "POST")];
    let count = grew(&format!("{duration}_count"), &token_route);
    assert!(count >= 4.0, "{count}");
    assert!(grew(&format!("{duration}_sum"), &token_route) > 0.0);
    let all = after.one(
        &format!("{duration}_bucket"),
        &[("route", "/token"), ("method", "POST"), ("le", "+Inf")],
    );
    assert_eq!(all, after.one(&format!("{duration}_count"), &token_route));
    assert!(
        after
            .matching(&format!("{duration}_bucket"), &token_route)
            .count()
            > 2,
        "buckets, not a summary"
    );
    // An unknown path is one `unmatched` series, whatever the path.
    let unknown = app.get("/no/such/page/4711").await;
    assert_eq!(unknown.status(), 404);
    let later = scrape(&app).await;
    assert!(!later.text.contains("4711"), "{}", later.text);
    assert!(later.sum(requests, &[("route", "unmatched"), ("status", "404")]) >= 1.0);
    // No user, email, client id or address in any label.
    for secret in [EMAIL, "nobody@example.com", client.id.as_str(), "127.0.0.1"] {
        assert!(!later.text.contains(secret), "{secret} in:\n{}", later.text);
    }

    // Gauges of this server.
    let started = after.one("latchkey_process_start_time_seconds", &[]);
    let now = unix_now();
    assert!(
        started <= now && now - started < 6.0 * 3600.0,
        "{started} vs {now}"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        after.one("latchkey_build_info", &[("version", version)]),
        1.0
    );
    let kids: Vec<String> = app.jwks().await["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    let key_ages: Vec<_> = after
        .matching("latchkey_signing_key_age_seconds", &[])
        .collect();
    let algs: Vec<&str> = key_ages.iter().map(|(l, _)| l["alg"].as_str()).collect();
    assert!(
        algs.contains(&"RS256") && algs.contains(&"ES256"),
        "{algs:?}"
    );
    for (labels, age) in &key_ages {
        assert!(kids.contains(&labels["kid"]), "{labels:?} not in {kids:?}");
        assert!((0.0..3600.0).contains(age), "{age}");
    }
    let idle = after.one("latchkey_db_pool_connections", &[("state", "idle")]);
    let in_use = after.one("latchkey_db_pool_connections", &[("state", "in_use")]);
    let max = after.one("latchkey_db_pool_max_connections", &[]);
    assert!(
        idle + in_use >= 1.0 && idle + in_use <= max,
        "{idle} {in_use} {max}"
    );
    let waiting = after.one("latchkey_mail_queue_oldest_age_seconds", &[]);
    assert!((0.0..60.0).contains(&waiting), "{waiting}");
    assert_eq!(
        after.kind("latchkey_mail_queue_oldest_age_seconds"),
        Some("gauge")
    );
}

async fn failed_deliveries_and_the_waiting_queue_are_measured(backend: Backend) {
    // Nothing listens on port 1 of the loopback: every attempt fails, and is retried later.
    let extra = [
        ("LATCHKEY_METRICS_BIND", "127.0.0.1:0"),
        ("LATCHKEY_SMTP_URL", "smtp://127.0.0.1:1"),
    ];
    let app = TestApp::spawn_with(backend, &extra).await;
    app.create_person(EMAIL, "Ada").await;
    let before = scrape(&app).await;
    let answer = crate::recovery::request_reset(&app, EMAIL).await;
    assert_eq!(answer.status(), 303);
    let failed = "latchkey_mail_failed_total";
    let after = scrape_until(&app, "a failed delivery counted", |s| {
        s.sum(failed, &[]) > before.sum(failed, &[])
    })
    .await;
    assert!(
        after.sum("latchkey_mail_queued_total", &[])
            > before.sum("latchkey_mail_queued_total", &[])
    );
    // The message waits for its retry: the queue's age is measured on this server's clock.
    app.clock.advance(120);
    let waiting = scrape(&app).await;
    let age = waiting.one("latchkey_mail_queue_oldest_age_seconds", &[]);
    assert!(age >= 120.0, "{age}");
}

async fn metrics_are_served_only_on_their_own_listener(backend: Backend) {
    let app = TestApp::spawn_with(backend, METRICS_ON).await;
    let metrics = app.metrics_address.clone().expect("metrics are on");
    assert_ne!(metrics, app.address);
    // Not on the public listener.
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), 404);
    // Only GET /metrics on the metrics listener.
    for path in ["/", "/metrics/", "/healthz", "/token", "/metrics.json"] {
        let answer = reqwest::get(format!("{metrics}{path}"))
            .await
            .expect("sent");
        assert_eq!(answer.status(), 404, "{path}");
    }
    let post = reqwest::Client::new()
        .post(format!("{metrics}/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(post.status(), 405);
    // Scrapes are not traffic: they are not counted as requests.
    let first = scrape(&app).await;
    let second = scrape(&app).await;
    assert!(
        !second.text.contains("route=\"/metrics\""),
        "{}",
        second.text
    );
    assert!(first.text.contains("# TYPE latchkey_build_info gauge"));
}

async fn without_the_variable_nothing_listens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert!(!app.env.contains_key("LATCHKEY_METRICS_BIND"));
    assert_eq!(app.metrics_address, None);
    assert_eq!(app.get("/metrics").await.status(), 404);
    let config = latchkey::config::Config::from_lookup(|k| app.env.get(k).cloned())
        .expect("valid configuration");
    assert_eq!(config.metrics_bind, None);
    // Empty is unset, as for every variable.
    let mut env = app.env.clone();
    env.insert("LATCHKEY_METRICS_BIND".into(), String::new());
    let config = latchkey::config::Config::from_lookup(|k| env.get(k).cloned())
        .expect("valid configuration");
    assert_eq!(config.metrics_bind, None);
}

async fn a_bad_or_taken_metrics_address_stops_the_start(backend: Backend) {
    let app = TestApp::spawn_with(backend, METRICS_ON).await;
    // Not an address: configuration error, exit 2, naming the variable.
    let mut env = app.env.clone();
    env.insert("LATCHKEY_METRICS_BIND".into(), "localhost:metrics".into());
    let out = run_cli(&env, &["serve"], None).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("LATCHKEY_METRICS_BIND"),
        "{}",
        out.stderr
    );
    // Taken (by this app's metrics listener): the server does not start, and says why.
    let taken = app.metrics_address.clone().expect("metrics are on");
    let taken = taken.trim_start_matches("http://");
    let refused = match app.spawn_sibling(&[("LATCHKEY_METRICS_BIND", taken)]).await {
        Ok(_) => panic!("a second server on {taken} must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(refused.contains("LATCHKEY_METRICS_BIND"), "{refused}");
    assert!(refused.contains(taken), "{refused}");
}

async fn serve_logs_the_bound_metrics_address(backend: Backend) {
    let (database_url, dir) = fresh_database_url(backend).await;
    let env = test_env(&database_url, &dir, METRICS_ON);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("latchkey serve runs");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let address_after = |line: &str, marker: &str| -> Option<String> {
        let at = line.find(marker)? + marker.len();
        Some(
            line[at..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect(),
        )
    };
    let (metrics, public) = tokio::time::timeout(Duration::from_secs(30), async {
        let mut metrics = None;
        while let Some(line) = lines.next_line().await.expect("read log") {
            if let Some(addr) = address_after(&line, "metrics on ") {
                metrics = Some(addr);
            } else if let Some(addr) = address_after(&line, "listening on ") {
                return (metrics, addr);
            }
            seen.push(line);
        }
        panic!("serve exited before listening: {seen:?}")
    })
    .await
    .expect("serve listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let metrics = metrics.expect("`metrics on ADDR` logged before `listening on`");
    assert!(
        !metrics.ends_with(":0"),
        "the bound port, not :0: {metrics}"
    );
    assert_ne!(metrics, public);
    let scraped = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .expect("scrape sent");
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.expect("body");
    assert!(
        text.contains("latchkey_process_start_time_seconds "),
        "{text}"
    );
    let public_metrics = reqwest::get(format!("http://{public}/metrics"))
        .await
        .expect("sent");
    assert_eq!(public_metrics.status(), 404);
    drop(child);
}
