//! Two `latchkey serve` processes sharing one PostgreSQL database (the documented interface (README), Operations): either
//! process verifies, refreshes and revokes what the other issued, and single-use rules hold across
//! them. PostgreSQL only: SQLite is a single-process database.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use url::Url;

use crate::helpers::run_cli;
use crate::rp::{self, PASSWORD, REDIRECT_URI, RegisteredClient};

pub(crate) const EMAIL: &str = "ada@example.com";
const ISSUER: &str = "http://localhost:8080";
const SCOPE: &str = "openid offline_access";
/// How many concurrent requests race for one code or one refresh token.
const RACERS: usize = 8;

/// One `latchkey serve` child process.
pub(crate) struct Server {
    /// `http://127.0.0.1:PORT`
    pub(crate) base: String,
    _child: tokio::process::Child,
}

impl Server {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A shared database, two servers on it, a user and a first-party confidential client.
pub(crate) struct Cluster {
    a: Server,
    b: Server,
    env: HashMap<String, String>,
    client: RegisteredClient,
    db: latchkey::db::Database,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Server A for even `i`, B for odd.
    pub(crate) fn server(&self, i: usize) -> &Server {
        if i.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        }
    }
}

/// `None` when PostgreSQL is not available (the test then returns early).
pub(crate) async fn start_cluster() -> Option<Cluster> {
    let pg = crate::support::postgres::shared()?;
    let url = pg.create_database().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = HashMap::new();
    env.insert("LATCHKEY_DATABASE_URL".to_owned(), url);
    // Both processes share the database, so they share its key-encryption key.
    env.insert(
        "LATCHKEY_KEY_ENCRYPTION_KEY".to_owned(),
        crate::helpers::new_kek(),
    );
    env.insert("LATCHKEY_BIND".to_owned(), "127.0.0.1:0".to_owned());
    env.insert("LATCHKEY_ISSUER".to_owned(), ISSUER.to_owned());
    env.insert(
        "LATCHKEY_MAIL_DIR".to_owned(),
        dir.path().join("mail").display().to_string(),
    );
    // Start A first so that the migrations are applied once, then B.
    let a = spawn_serve(&env).await;
    let b = spawn_serve(&env).await;

    run_cli(
        &env,
        &[
            "user",
            "create",
            "--email",
            EMAIL,
            "--name",
            "Ada",
            "--password-stdin",
        ],
        Some(PASSWORD),
    )
    .await
    .json();
    let json = run_cli(
        &env,
        &[
            "client",
            "create",
            "--name",
            "Shared RP",
            "--redirect-uri",
            REDIRECT_URI,
            "--first-party",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
        ],
        None,
    )
    .await
    .json();
    let client = RegisteredClient {
        id: json["client_id"].as_str().expect("client_id").to_owned(),
        secret: json["client_secret"].as_str().map(str::to_owned),
    };

    let config = latchkey::config::Config::from_lookup(|k| env.get(k).cloned())
        .expect("valid configuration");
    let db = latchkey::db::connect(&config.database_url)
        .await
        .expect("database connects");
    Some(Cluster {
        a,
        b,
        env,
        client,
        db,
        _dir: dir,
    })
}

/// Starts `latchkey serve` with exactly `env`, waits for `listening on ADDR`, and keeps draining
/// its log so that it never blocks on a full pipe.
pub(crate) async fn spawn_serve(env: &HashMap<String, String>) -> Server {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("latchkey serve runs");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            if let Some(pos) = line.find("listening on ") {
                let addr: String = line[pos + 13..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return Some(addr);
            }
            seen.push(line);
        }
        None
    })
    .await;
    match found {
        Ok(Some(addr)) => {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Server {
                base: format!("http://{addr}"),
                _child: child,
            }
        }
        Ok(None) => panic!("serve exited before listening: {seen:?}"),
        Err(_) => panic!("serve did not listen within 30 s: {seen:?}"),
    }
}

/// The `Location` of a 303, resolved against `base`.
#[track_caller]
fn see_other(base: &str, response: &reqwest::Response) -> Url {
    assert_eq!(response.status(), 303, "{}", response.url());
    let value = rp::header(response, "location");
    Url::parse(base)
        .expect("base URL")
        .join(&value)
        .expect("valid Location")
}

/// Signs in through `server` (login page, first-party: no consent) and returns a code and its PKCE
/// verifier.
async fn authorize(server: &Server, client: &RegisteredClient) -> (String, String) {
    let browser = rp::browser();
    let (verifier, challenge) = rp::pkce();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", SCOPE),
            ("state", "st"),
            ("nonce", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let mut to = Url::parse(&server.url(&format!("/authorize?{query}"))).expect("URL");
    for _ in 0..10 {
        if to.as_str().starts_with(REDIRECT_URI) {
            let code = to
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| panic!("no code in {to}"));
            return (code, verifier);
        }
        to = if to.path() == "/login" {
            let page = browser.get(to.clone()).send().await.expect("login page");
            assert_eq!(page.status(), 200, "login page {to}");
            let html = page.text().await.expect("login page body");
            let form = [
                ("csrf", rp::hidden_input(&html, "csrf")),
                ("authz", rp::hidden_input(&html, "authz")),
                ("email", EMAIL.to_owned()),
                ("password", PASSWORD.to_owned()),
            ];
            let response = browser
                .post(server.url("/login"))
                .form(&form)
                .send()
                .await
                .expect("login posted");
            see_other(&server.base, &response)
        } else {
            let response = browser.get(to.clone()).send().await.expect("request sent");
            see_other(&server.base, &response)
        };
    }
    panic!("too many redirects");
}

/// Sends one token request per form at once, the `i`th to server A (even) or B (odd); returns
/// each answer's status and body, in order.
async fn race(cluster: &Cluster, forms: Vec<Vec<(&'static str, String)>>) -> Vec<(u16, Value)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(forms.len()));
    let mut tasks = Vec::new();
    for (i, form) in forms.into_iter().enumerate() {
        let request = rp::rp_http()
            .post(cluster.server(i).url("/token"))
            .basic_auth(&cluster.client.id, Some(cluster.client.secret()))
            .form(&form);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = request.send().await.expect("token request sent");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON body"))
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    answers
}

/// Redeems a code at `server`, asserting success.
async fn redeem(cluster: &Cluster, server: &Server, code: &str, verifier: &str) -> Value {
    let response = rp::rp_http()
        .post(server.url("/token"))
        .basic_auth(&cluster.client.id, Some(cluster.client.secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token request sent");
    rp::json_with_status(response, 200).await
}

/// `POST /token` with `grant_type=refresh_token` at `server`: status and body.
async fn refresh(cluster: &Cluster, server: &Server, token: &str) -> (u16, Value) {
    let response = rp::rp_http()
        .post(server.url("/token"))
        .basic_auth(&cluster.client.id, Some(cluster.client.secret()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .expect("token request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// `GET /userinfo` at `server` with a bearer token: the status.
async fn userinfo_status(server: &Server, token: &str) -> u16 {
    rp::rp_http()
        .get(server.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo answered")
        .status()
        .as_u16()
}

/// The `kid`s in `server`'s JWKS.
async fn kids(server: &Server) -> Vec<String> {
    let jwks: Value = rp::rp_http()
        .get(server.url("/jwks.json"))
        .send()
        .await
        .expect("JWKS fetched")
        .json()
        .await
        .expect("JWKS is JSON");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

fn is_invalid_grant((status, body): &(u16, Value)) -> bool {
    *status == 400 && body["error"] == "invalid_grant"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_redeemed_once_across_two_processes() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let (code, verifier) = authorize(&cluster.a, &cluster.client).await;

    let form: Vec<(&str, String)> = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", REDIRECT_URI.to_owned()),
        ("code_verifier", verifier),
    ];
    let answers = race(&cluster, vec![form; RACERS]).await;

    let winners: Vec<&(u16, Value)> = answers.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one redemption wins: {answers:?}");
    assert_eq!(
        answers.iter().filter(|a| is_invalid_grant(a)).count(),
        RACERS - 1,
        "{answers:?}"
    );
    // The losers were replays: what the winner got is revoked, on both servers.
    let access = winners[0].1["access_token"].as_str().expect("access_token");
    assert_eq!(userinfo_status(&cluster.a, access).await, 401);
    assert_eq!(userinfo_status(&cluster.b, access).await, 401);
    let refresh_token = winners[0].1["refresh_token"]
        .as_str()
        .expect("refresh_token");
    assert!(is_invalid_grant(
        &refresh(&cluster, &cluster.b, refresh_token).await
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_once_across_two_processes() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let (code, verifier) = authorize(&cluster.a, &cluster.client).await;
    let tokens = redeem(&cluster, &cluster.a, &code, &verifier).await;
    let t0 = tokens["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();

    let form: Vec<(&str, String)> = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", t0.clone()),
    ];
    let answers = race(&cluster, vec![form; RACERS]).await;

    let winners: Vec<usize> = (0..RACERS).filter(|&i| answers[i].0 == 200).collect();
    assert!(winners.len() <= 1, "at most one rotation: {answers:?}");
    assert!(
        answers.iter().all(|a| a.0 == 200 || is_invalid_grant(a)),
        "{answers:?}"
    );
    let families: i64 = sqlx::query_scalar("select count(*) from refresh_families")
        .fetch_one(&cluster.db.pool)
        .await
        .expect("count families");
    assert_eq!(families, 1);
    let stored: i64 = sqlx::query_scalar("select count(*) from refresh_tokens")
        .fetch_one(&cluster.db.pool)
        .await
        .expect("count tokens");
    assert_eq!(
        stored,
        1 + winners.len() as i64,
        "one successor per success, never a fork: {answers:?}"
    );
    let revoked_at: Option<i64> = sqlx::query_scalar("select revoked_at from refresh_families")
        .fetch_one(&cluster.db.pool)
        .await
        .expect("family");

    eprintln!(
        "refresh race: {} success(es), family revoked: {}",
        winners.len(),
        revoked_at.is_some()
    );
    match (winners.first(), revoked_at) {
        // A loser came after the winner: reuse detected, the family (successor included) is dead.
        (Some(&i), Some(_)) => {
            let t1 = answers[i].1["refresh_token"].as_str().expect("successor");
            let other = cluster.server(i + 1);
            assert!(is_invalid_grant(&refresh(&cluster, other, t1).await));
        }
        // Every loser lost before the winner rotated: the successor works once more, anywhere.
        (Some(&i), None) => {
            let t1 = answers[i].1["refresh_token"].as_str().expect("successor");
            let other = cluster.server(i + 1);
            let (status, body) = refresh(&cluster, other, t1).await;
            assert_eq!(status, 200, "{body}");
            assert!(is_invalid_grant(&refresh(&cluster, other, t1).await));
        }
        // Nobody won: the family was revoked as a whole, no token survives.
        (None, Some(_)) => {
            assert!(is_invalid_grant(&refresh(&cluster, &cluster.b, &t0).await));
        }
        (None, None) => panic!("no rotation and no revocation: {answers:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issued_by_one_are_accepted_by_the_other() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let (code, verifier) = authorize(&cluster.a, &cluster.client).await;
    let tokens = redeem(&cluster, &cluster.a, &code, &verifier).await;
    let access = tokens["access_token"].as_str().expect("access_token");

    assert_eq!(userinfo_status(&cluster.b, access).await, 200);
    assert_eq!(userinfo_status(&cluster.a, access).await, 200);

    let response = rp::rp_http()
        .post(cluster.b.url("/revoke"))
        .basic_auth(&cluster.client.id, Some(cluster.client.secret()))
        .form(&[("token", access), ("token_type_hint", "access_token")])
        .send()
        .await
        .expect("revocation sent");
    assert_eq!(response.status(), 200);
    assert_eq!(userinfo_status(&cluster.a, access).await, 401);
    assert_eq!(userinfo_status(&cluster.b, access).await, 401);

    // A key rotated by the CLI reaches both servers' JWKS within 2 s (3 s of polling allowed).
    let rotated = run_cli(&cluster.env, &["keys", "rotate"], None)
        .await
        .json();
    let kid = rotated["kid"].as_str().expect("kid").to_owned();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(3);
    let mut pending = vec![&cluster.a, &cluster.b];
    while !pending.is_empty() {
        let mut still = Vec::new();
        for server in pending {
            if !kids(server).await.contains(&kid) {
                still.push(server);
            }
        }
        pending = still;
        if !pending.is_empty() {
            assert!(
                Instant::now() < deadline,
                "kid {kid} missing from {:?} after {:?}",
                pending.iter().map(|s| s.base.as_str()).collect::<Vec<_>>(),
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "rotated key {kid} visible on both servers after {:?}",
        started.elapsed()
    );
}
