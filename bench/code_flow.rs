//! Whole-code-flow load generator for `bench/code-flow`: each virtual user plays a browser and a
//! relying party, over and over: `GET /authorize` → login page → `POST /login` (one Argon2id
//! verification) → `GET /authorize/continue` → the redirect with the code → `POST /token`
//! (`authorization_code` + PKCE). Prints completed flows/s and the latency of a flow and of each step.
//!
//! Usage (the script passes these): `code_flow BASE CLIENT_ID CLIENT_SECRET EMAIL PASSWORD USERS SECONDS`.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";

/// Step timings of one flow, in microseconds.
#[derive(Default, Clone, Copy)]
struct Steps {
    authorize: u128,
    login_page: u128,
    login_post: u128,
    continue_to_code: u128,
    token: u128,
    total: u128,
}

struct Args {
    base: String,
    client_id: String,
    secret: String,
    email: String,
    password: String,
    users: usize,
    seconds: u64,
}

fn args() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 7 {
        return Err(
            "usage: code_flow BASE CLIENT_ID CLIENT_SECRET EMAIL PASSWORD USERS SECONDS".into(),
        );
    }
    Ok(Args {
        base: a[0].clone(),
        client_id: a[1].clone(),
        secret: a[2].clone(),
        email: a[3].clone(),
        password: a[4].clone(),
        users: a[5].parse().map_err(|e| format!("USERS: {e}"))?,
        seconds: a[6].parse().map_err(|e| format!("SECONDS: {e}"))?,
    })
}

fn hidden(html: &str, name: &str) -> Result<String, String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).ok_or(format!("no {name} field"))? + marker.len();
    let end = html[start..].find('"').ok_or("unterminated value")? + start;
    Ok(html[start..end].to_owned())
}

fn location(response: &reqwest::Response) -> Result<String, String> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("{} without Location", response.status()))
}

async fn one_flow(args: &Args) -> Result<Steps, String> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let absolute = |loc: String| {
        if loc.starts_with('/') {
            format!("{}{loc}", args.base)
        } else {
            loc
        }
    };
    let verifier = URL_SAFE_NO_PAD.encode(rand_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut steps = Steps::default();
    let started = Instant::now();

    let t = Instant::now();
    let response = http
        .get(format!("{}/authorize", args.base))
        .query(&[
            ("response_type", "code"),
            ("client_id", args.client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid email"),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let login_url = absolute(location(&response)?);
    steps.authorize = t.elapsed().as_micros();

    let t = Instant::now();
    let page = http
        .get(&login_url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let form = [
        ("csrf", hidden(&page, "csrf")?),
        ("authz", hidden(&page, "authz")?),
        ("email", args.email.clone()),
        ("password", args.password.clone()),
    ];
    steps.login_page = t.elapsed().as_micros();

    let t = Instant::now();
    let response = http
        .post(format!("{}/login", args.base))
        .form(&form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let continue_url = absolute(location(&response)?);
    steps.login_post = t.elapsed().as_micros();

    let t = Instant::now();
    let response = http
        .get(&continue_url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let callback = reqwest::Url::parse(&location(&response)?).map_err(|e| e.to_string())?;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no code in {callback}"))?;
    steps.continue_to_code = t.elapsed().as_micros();

    let t = Instant::now();
    let response = http
        .post(format!("{}/token", args.base))
        .basic_auth(&args.client_id, Some(&args.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status() != 200 {
        return Err(format!("token: {}", response.status()));
    }
    let _ = response.bytes().await;
    steps.token = t.elapsed().as_micros();
    steps.total = started.elapsed().as_micros();
    Ok(steps)
}

fn rand_bytes() -> [u8; 32] {
    rand::random()
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = std::sync::Arc::new(args()?);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.users {
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            let mut done: Vec<Steps> = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                match one_flow(&args).await {
                    Ok(steps) => done.push(steps),
                    Err(e) => {
                        failures += 1;
                        if failures <= 3 {
                            eprintln!("flow failed: {e}");
                        }
                    }
                }
            }
            (done, failures)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (done, failed) = task.await.map_err(|e| e.to_string())?;
        all.extend(done);
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64().max(args.seconds as f64);
    let column = |f: fn(&Steps) -> u128| {
        let mut v: Vec<u128> = all.iter().map(f).collect();
        v.sort_unstable();
        (percentile(&v, 50.0), percentile(&v, 99.0))
    };
    println!(
        "BENCH_RESULT flows_per_s={:.1} flows={} failures={failures}",
        all.len() as f64 / elapsed,
        all.len()
    );
    for (name, f) in [
        ("whole flow", (|s: &Steps| s.total) as fn(&Steps) -> u128),
        ("GET /authorize", |s| s.authorize),
        ("GET /login", |s| s.login_page),
        ("POST /login", |s| s.login_post),
        ("GET /authorize/continue", |s| s.continue_to_code),
        ("POST /token", |s| s.token),
    ] {
        let (p50, p99) = column(f);
        println!("  {name:<24} p50 {p50:>8.2} ms   p99 {p99:>8.2} ms");
    }
    Ok(())
}
