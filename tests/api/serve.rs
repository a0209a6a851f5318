//! `latchkey serve` as an operator runs it: a separate process that logs `listening on ADDR`, answers,
//! and stops cleanly on SIGTERM.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Backend, fresh_database_url, test_env};

on_both_databases!(
    serve_starts_answers_and_stops_on_sigterm,
    json_logs_are_one_object_per_line
);

async fn start(
    backend: Backend,
    log_format: &str,
) -> (
    tokio::process::Child,
    String,
    Vec<String>,
    tempfile::TempDir,
) {
    let (url, dir) = fresh_database_url(backend).await;
    let env = test_env(&url, &dir, &[]);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("serve")
        .env_clear()
        .envs(&env)
        .env("LATCHKEY_BIND", "127.0.0.1:0")
        .env("LATCHKEY_LOG_FORMAT", log_format)
        .env("LATCHKEY_MAIL_DIR", dir.path().join("mail"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push(line.clone());
        if let Some(pos) = line.find("listening on ") {
            let addr: String = line[pos + 13..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
            // Keep draining the log, as an operator's log collector would.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, format!("http://{addr}"), seen, dir);
        }
    }
    panic!("serve exited before listening: {seen:?}");
}

async fn serve_starts_answers_and_stops_on_sigterm(backend: Backend) {
    let (mut child, base, _, _dir) = start(backend, "text").await;

    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().await.unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

async fn json_logs_are_one_object_per_line(backend: Backend) {
    let (_child, _base, lines, _dir) = start(backend, "json").await;

    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
}
