//! The operations commands: `latchkey healthcheck` against a running server (and against none),
//! `latchkey backup PATH` (a SQLite copy that opens with the same key-encryption key and holds what
//! was there at that moment; refused on PostgreSQL), and `latchkey config check` (the effective
//! configuration with secrets redacted; a bad value exits 2).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::helpers::{Backend, TestApp, run_cli};

on_both_databases!(
    healthcheck_asks_the_server_on_the_bind_address,
    backup_copies_sqlite_and_refuses_postgres,
    config_check_prints_the_effective_configuration,
);

/// The app's environment with `LATCHKEY_BIND` set to where it really listens.
fn bound_env(app: &TestApp) -> HashMap<String, String> {
    let mut env = app.env.clone();
    let addr = app.address.trim_start_matches("http://").to_owned();
    env.insert("LATCHKEY_BIND".into(), addr);
    env
}

async fn healthcheck_asks_the_server_on_the_bind_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let env = bound_env(&app);
    for args in [&["healthcheck"][..], &["healthcheck", "--ready"][..]] {
        let out = run_cli(&env, args, None).await;
        assert!(out.success, "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout.trim(), "", "{args:?}");
    }

    // `0.0.0.0` (the container's bind address) is reached through loopback.
    let port = app.address.rsplit(':').next().expect("port");
    let mut wildcard = env.clone();
    wildcard.insert("LATCHKEY_BIND".into(), format!("0.0.0.0:{port}"));
    assert!(run_cli(&wildcard, &["healthcheck"], None).await.success);

    // Nothing listening: exit 1 with one line, quickly.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let mut nobody = env.clone();
    nobody.insert("LATCHKEY_BIND".into(), free.to_string());
    let out = run_cli(&nobody, &["healthcheck"], None).await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.refused().contains("cannot connect"), "{}", out.stderr);

    // A listener that never answers: exit 1 after the timeout, not a hang.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut mute = env.clone();
    mute.insert(
        "LATCHKEY_BIND".into(),
        silent.local_addr().expect("addr").to_string(),
    );
    let started = std::time::Instant::now();
    let out = run_cli(&mute, &["healthcheck"], None).await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.refused().contains("no answer"), "{}", out.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    drop(silent);
}

async fn backup_copies_sqlite_and_refuses_postgres(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join("copy.db");
    let target_str = target.display().to_string();
    app.create_user("ada@example.com", crate::rp::PASSWORD)
        .await;

    if backend == Backend::Postgres {
        let out = app.cli(&["backup", &target_str]).await;
        assert_eq!(out.code, Some(1));
        assert!(out.refused().contains("pg_dump"), "{}", out.stderr);
        assert!(!target.exists(), "nothing is written");
        return;
    }

    let printed = app.cli(&["backup", &target_str]).await.json();
    assert_eq!(printed["backup"], target_str);
    let bytes = std::fs::metadata(&target).expect("copy exists").len();
    assert_eq!(printed["bytes"], bytes);
    assert!(bytes > 0);
    let mode = std::fs::metadata(&target)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the copy holds password hashes");

    // Written after the backup: not in it.
    app.create_user("bob@example.com", crate::rp::PASSWORD)
        .await;

    // Restore = use the copy with the same key-encryption key (the original's latchkey.kek).
    let original = app.env["LATCHKEY_DATABASE_URL"]
        .trim_start_matches("sqlite://")
        .to_owned();
    let kek_file = std::path::Path::new(&original)
        .parent()
        .expect("dir")
        .join("latchkey.kek");
    let mut restored = app.env.clone();
    restored.insert(
        "LATCHKEY_DATABASE_URL".into(),
        format!("sqlite://{target_str}"),
    );
    restored.insert(
        "LATCHKEY_KEY_ENCRYPTION_KEY_FILE".into(),
        kek_file.display().to_string(),
    );
    let users = run_cli(&restored, &["user", "list"], None).await.json();
    let emails: Vec<&str> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert_eq!(emails, ["ada@example.com"]);
    let keys_there = run_cli(&restored, &["keys", "list"], None).await.json();
    let keys_here = app.cli(&["keys", "list"]).await.json();
    assert_eq!(
        keys_there["keys"], keys_here["keys"],
        "the sealed keys open with the KEK"
    );

    // Never over an existing file; a missing directory is a clear refusal.
    let again = app.cli(&["backup", &target_str]).await;
    assert_eq!(again.code, Some(1));
    assert!(
        again.refused().contains("cannot create"),
        "{}",
        again.stderr
    );
    let nowhere = dir.path().join("no/such/dir/copy.db").display().to_string();
    assert_eq!(app.cli(&["backup", &nowhere]).await.code, Some(1));
    assert_eq!(app.cli(&["backup"]).await.code, Some(2), "PATH is required");
}

async fn config_check_prints_the_effective_configuration(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut env = app.env.clone();
    env.insert(
        "LATCHKEY_SMTP_URL".into(),
        "smtp://mailer:hunter2secret@127.0.0.1:2525".into(),
    );
    env.insert("LATCHKEY_ACCESS_TOKEN_TTL".into(), "15m".into());
    env.insert(
        "LATCHKEY_TRUSTED_PROXIES".into(),
        "10.0.0.0/8, 192.0.2.1".into(),
    );
    let out = run_cli(&env, &["config", "check"], None).await;
    let shown = out.json();
    assert!(!out.stdout.contains("hunter2secret"), "{}", out.stdout);
    assert_eq!(
        shown["LATCHKEY_SMTP_URL"],
        "smtp://mailer:***@127.0.0.1:2525"
    );
    assert_eq!(shown["LATCHKEY_ACCESS_TOKEN_TTL"], "15m");
    assert_eq!(
        shown["LATCHKEY_REFRESH_TOKEN_TTL"], "30days",
        "defaults are filled in"
    );
    assert_eq!(shown["LATCHKEY_TRUSTED_PROXIES"], "10.0.0.0/8,192.0.2.1/32");
    assert_eq!(shown["LATCHKEY_SIGNUP"], "open");
    assert_eq!(shown["LATCHKEY_METRICS_BIND"], Value::Null);
    let object = shown.as_object().expect("object");
    assert!(object.keys().all(|k| k.starts_with("LATCHKEY_")));
    assert!(object.len() >= 28, "every variable: {object:?}");
    match backend {
        Backend::Postgres => {
            assert_eq!(shown["LATCHKEY_KEY_ENCRYPTION_KEY"], "(set)");
            let key = &env["LATCHKEY_KEY_ENCRYPTION_KEY"];
            assert!(!out.stdout.contains(key.as_str()), "the key is never shown");
            // PostgreSQL without a key: refused as `serve` would refuse it.
            let mut keyless = env.clone();
            keyless.remove("LATCHKEY_KEY_ENCRYPTION_KEY");
            let out = run_cli(&keyless, &["config", "check"], None).await;
            assert_eq!(out.code, Some(2));
            assert!(out.refused().contains("LATCHKEY_KEY_ENCRYPTION_KEY"));
        }
        Backend::Sqlite => {
            let kek = shown["LATCHKEY_KEY_ENCRYPTION_KEY"].as_str().expect("text");
            assert!(
                kek.starts_with("(unset: ") && kek.contains("latchkey.kek"),
                "{kek}"
            );
        }
    }

    // A bad value: exit 2, one line naming the variable, nothing on stdout.
    let mut bad = env.clone();
    bad.insert("LATCHKEY_METRICS_BIND".into(), "everywhere".into());
    let out = run_cli(&bad, &["config", "check"], None).await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.refused().contains("LATCHKEY_METRICS_BIND"),
        "{}",
        out.stderr
    );
    let mut bad = env;
    bad.insert("LATCHKEY_ACCESS_TOKEN_TTL".into(), "soon".into());
    let out = run_cli(&bad, &["config", "check"], None).await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.refused().contains("LATCHKEY_ACCESS_TOKEN_TTL"),
        "{}",
        out.stderr
    );
}
