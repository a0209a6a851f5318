//! Secrets at rest: signing keys sealed under the key-encryption key (KEK), the KEK's resolution and
//! refusals, `latchkey keys rewrap`, private SQLite files, and mail bodies emptied once delivered.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use latchkey::crypto::key_seal;
use serde_json::Value;

use crate::helpers::{Backend, CliOutput, TestApp, new_kek};
use crate::mgmt_helpers::client_token;
use crate::support::mail::wait_for_mail;

on_both_databases!(
    stored_keys_and_delivered_mail_hold_no_secrets,
    plain_keys_of_an_older_version_are_sealed_on_start_and_still_sign,
    a_wrong_key_encryption_key_refuses_to_start,
    without_a_configured_key,
    rewrap_moves_every_key_to_the_new_key,
    rewrap_refuses_a_bad_new_key_and_changes_nothing,
);

const KEK_VAR: &str = "LATCHKEY_KEY_ENCRYPTION_KEY";
const WRONG_KEY_MESSAGE: &str = "does not decrypt the signing keys in the database";
/// Coarse bound for `latchkey serve` to refuse; it normally does in well under a second.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `latchkey serve` with exactly `env`, expecting it to refuse and exit.
async fn serve_refused(env: &HashMap<String, String>) -> CliOutput {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("latchkey runs");
    let out = tokio::time::timeout(REFUSAL_DEADLINE, child.wait_with_output())
        .await
        .expect("serve refuses instead of serving")
        .expect("serve finishes");
    CliOutput {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The SQLite database file of `app` (`None` on PostgreSQL).
fn sqlite_file(app: &TestApp) -> Option<PathBuf> {
    app.env["LATCHKEY_DATABASE_URL"]
        .strip_prefix("sqlite://")
        .map(PathBuf::from)
}

/// `latchkey.kek` beside the SQLite database of `app`.
fn key_file(app: &TestApp) -> Option<PathBuf> {
    sqlite_file(app).map(|db| db.with_file_name("latchkey.kek"))
}

fn mode(path: &PathBuf) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The KEK `app` runs with, in its configured form.
fn current_key(app: &TestApp) -> String {
    match key_file(app) {
        Some(path) => std::fs::read_to_string(path).unwrap().trim().to_owned(),
        None => app.env[KEK_VAR].clone(),
    }
}

async fn private_keys(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("select kid, private_key from signing_keys order by kid")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

async fn jwks(address: &str) -> Value {
    reqwest::get(format!("{address}/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The sorted kids of a JWK Set.
fn kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn stored_keys_and_delivered_mail_hold_no_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A login, and mail with a live link (a password reset).
    let email = "ada@example.com";
    app.create_person(email, "Ada").await;
    crate::rp::sign_in(&app, &crate::rp::browser(), email).await;
    let browser = crate::rp::browser();
    let html = browser
        .get(app.url("/password/forgot"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer = browser
        .post(app.url("/password/forgot"))
        .form(&[
            ("csrf", crate::rp::hidden_input(&html, "csrf")),
            ("email", email.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let mail = wait_for_mail(&app, email, "Reset your password").await;
    let link = mail.link("/password/reset");
    let token = link.rsplit('=').next().unwrap().to_owned();
    assert!(token.len() > 20, "{link}");

    // Every key is sealed: no PEM in the rows.
    let keys = private_keys(&app).await;
    assert!(!keys.is_empty());
    for (kid, value) in &keys {
        assert!(value.starts_with("v1:"), "{kid} is sealed");
        assert!(!value.contains("PRIVATE KEY"), "{kid}");
    }
    // The outbox keeps the record of a delivered message, not its body (marked just after sending).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows: Vec<(String, String, Option<String>, Option<i64>)> =
            sqlx::query_as("select to_address, text_body, html_body, sent_at from mail_outbox")
                .fetch_all(&app.db.pool)
                .await
                .unwrap();
        assert!(!rows.is_empty());
        if rows.iter().all(|r| r.3.is_some()) {
            for (to, text, html, _) in rows {
                assert_eq!(to, email);
                assert!(!text.contains(&token), "no live link in the outbox");
                assert_eq!(text, "", "body emptied once sent");
                assert_eq!(html, None);
            }
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "mail marked sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // On SQLite, the file bytes themselves (database and write-ahead log), and their modes. (Only
    // for keys: SQLite frees the emptied body's bytes without overwriting them, see the docs.)
    if let Some(db) = sqlite_file(&app) {
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        for path in [&db, &wal] {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("PRIVATE KEY"), "{}", path.display());
        }
        assert_eq!(mode(&db), 0o600, "database file");
        assert_eq!(mode(&wal), 0o600, "write-ahead log");
        assert_eq!(mode(&key_file(&app).unwrap()), 0o600, "key file");
    }
}

async fn plain_keys_of_an_older_version_are_sealed_on_start_and_still_sign(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = client_token(&app, &["admin"]).await;
    let before = jwks(&app.address).await;
    // What an older version left: the same keys as plain PEM.
    for (kid, sealed) in private_keys(&app).await {
        let pem = key_seal::open_private_key(&app.kek, &kid, &sealed).unwrap();
        assert!(pem.contains("PRIVATE KEY"));
        sqlx::query("update signing_keys set private_key = $1 where kid = $2")
            .bind(&pem)
            .bind(&kid)
            .execute(&app.db.pool)
            .await
            .unwrap();
    }

    // Two processes starting at once both start, and each key ends sealed once.
    let (next, other) = tokio::join!(app.spawn_sibling(&[]), app.spawn_sibling(&[]));
    let (next, other) = (next.expect("starts"), other.expect("starts alongside"));

    for (kid, value) in private_keys(&app).await {
        assert!(value.starts_with("v1:"), "{kid} sealed on start");
        assert!(!value.contains("PRIVATE KEY"));
    }
    assert_eq!(jwks(&next.address).await, before, "same keys published");
    assert_eq!(jwks(&other.address).await, before);
    app.verify_jwt(&token).await;
    // The restarted server signs, and what it signs verifies.
    let again = client_token(&app, &["admin"]).await;
    app.verify_jwt(&again).await;
    // Starting again changes nothing (idempotent).
    let sealed = private_keys(&app).await;
    drop(app.spawn_sibling(&[]).await.expect("starts again"));
    assert_eq!(private_keys(&app).await, sealed);
}

async fn a_wrong_key_encryption_key_refuses_to_start(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let right = current_key(&app);
    let wrong = new_kek();
    let mut env = app.env.clone();
    env.insert(KEK_VAR.into(), wrong.clone());

    let out = serve_refused(&env).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let line = out.refused();
    assert!(line.contains(WRONG_KEY_MESSAGE), "{line}");
    assert!(line.contains(KEK_VAR), "{line}");
    assert!(!line.contains(&wrong) && !line.contains(&right), "{line}");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // The CLI refuses the same way, and the keys are untouched.
    let keys = private_keys(&app).await;
    let out = crate::helpers::run_cli(&env, &["keys", "list"], None).await;
    assert_eq!(out.code, Some(2));
    assert!(out.refused().contains(WRONG_KEY_MESSAGE));
    assert!(app.spawn_sibling(&[(KEK_VAR, &wrong)]).await.is_err());
    assert_eq!(private_keys(&app).await, keys);
    // The right key still works.
    assert!(app.spawn_sibling(&[(KEK_VAR, &right)]).await.is_ok());
}

async fn without_a_configured_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut env = app.env.clone();
    env.remove(KEK_VAR);
    match key_file(&app) {
        None => {
            // PostgreSQL: no default key; serve refuses, naming the variable.
            let out = serve_refused(&env).await;
            assert_eq!(out.code, Some(2), "{}", out.stderr);
            let line = out.refused();
            assert!(line.contains(KEK_VAR), "{line}");
        }
        Some(path) => {
            // SQLite: the first start created latchkey.kek (0600); a new database gets one with a
            // warning, and the next start reuses it.
            assert_eq!(mode(&path), 0o600);
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("other.db");
            let mut env = HashMap::new();
            env.insert(
                "LATCHKEY_DATABASE_URL".to_owned(),
                format!("sqlite://{}", db.display()),
            );
            let first = crate::helpers::run_cli(&env, &["keys", "list"], None).await;
            let listed = first.json();
            assert!(first.stderr.contains("latchkey.kek"), "{}", first.stderr);
            assert!(first.stderr.contains("back it up"), "{}", first.stderr);
            let created = dir.path().join("latchkey.kek");
            assert_eq!(mode(&created), 0o600);
            assert_eq!(mode(&db), 0o600, "a new database file is private");
            let key = std::fs::read_to_string(&created).unwrap();

            let second = crate::helpers::run_cli(&env, &["keys", "list"], None).await;
            assert_eq!(
                second.json(),
                listed,
                "same keys, opened with the same key file"
            );
            assert!(!second.stderr.contains("back it up"), "{}", second.stderr);
            assert_eq!(std::fs::read_to_string(&created).unwrap(), key);
        }
    }
}

async fn rewrap_moves_every_key_to_the_new_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.cli(&["keys", "rotate", "--alg", "EdDSA"]).await.json();
    let mut before: Vec<String> = private_keys(&app).await.into_iter().map(|k| k.0).collect();
    before.sort();
    let token = client_token(&app, &["admin"]).await;
    let old = current_key(&app);
    let new = new_kek();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new.kek");
    std::fs::write(&file, format!("{new}\n")).unwrap();

    let out = app
        .cli(&["keys", "rewrap", "--new-key-file", file.to_str().unwrap()])
        .await
        .json();
    assert_eq!(out["rewrapped"], app.count("signing_keys").await);
    if let Some(path) = key_file(&app) {
        // On SQLite without a configured key, the key file now holds the new key.
        assert_eq!(out["key_file"], path.display().to_string());
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), new);
        assert_eq!(mode(&path), 0o600);
    }

    // A server with the new key starts and serves the same keys; tokens signed before verify.
    let next = app
        .spawn_sibling(&[(KEK_VAR, &new)])
        .await
        .expect("starts with the new key");
    assert_eq!(kids(&jwks(&next.address).await), before);
    app.verify_jwt(&token).await;
    // With the old key it refuses.
    let mut env = app.env.clone();
    env.insert(KEK_VAR.into(), old.clone());
    let refused = serve_refused(&env).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.refused().contains(WRONG_KEY_MESSAGE));

    // And back, with the key on standard input.
    let mut env = app.env.clone();
    env.insert(KEK_VAR.into(), new.clone());
    let back = crate::helpers::run_cli(&env, &["keys", "rewrap", "--new-key-stdin"], Some(&old))
        .await
        .json();
    assert_eq!(back["rewrapped"], app.count("signing_keys").await);
    assert!(app.spawn_sibling(&[(KEK_VAR, &old)]).await.is_ok());
}

async fn rewrap_refuses_a_bad_new_key_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = private_keys(&app).await;
    let out = app
        .cli_stdin(&["keys", "rewrap", "--new-key-stdin"], "too short")
        .await;
    let line = out.refused();
    assert!(line.contains("32 bytes"), "{line}");
    let out = app
        .cli(&["keys", "rewrap", "--new-key-file", "/nonexistent/kek"])
        .await;
    assert!(out.refused().contains("--new-key-file"));
    let out = app.cli(&["keys", "rewrap"]).await;
    assert!(!out.success, "a new key is required");
    assert_eq!(private_keys(&app).await, keys);
}
