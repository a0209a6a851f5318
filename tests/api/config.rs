//! An invalid setting stops the process with a non-zero exit and one line naming the variable.

use std::collections::HashMap;

use crate::helpers::run_cli;

async fn refused_with(var: &str, value: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut env = HashMap::new();
    env.insert(
        "LATCHKEY_DATABASE_URL".to_owned(),
        format!("sqlite://{}", dir.path().join("x.db").display()),
    );
    env.insert(var.to_owned(), value.to_owned());
    let out = run_cli(&env, &["migrate"], None).await;
    let line = out.refused();
    assert!(line.contains(var), "{line:?} does not name {var}");
    assert!(
        !dir.path().join("x.db").exists(),
        "nothing is created when the configuration is invalid"
    );
    line
}

#[tokio::test]
async fn every_variable_is_validated() {
    let cases = [
        ("LATCHKEY_ISSUER", "http://example.com"),
        ("LATCHKEY_ISSUER", "https://example.com/"),
        ("LATCHKEY_ISSUER", "not a url"),
        ("LATCHKEY_BIND", "localhost"),
        ("LATCHKEY_DATABASE_URL", "mysql://x"),
        ("LATCHKEY_SMTP_URL", "http://mail.example.com"),
        ("LATCHKEY_MAIL_FROM", "not an address"),
        ("LATCHKEY_ACCESS_TOKEN_TTL", "ten minutes"),
        ("LATCHKEY_REFRESH_TOKEN_TTL", "0s"),
        ("LATCHKEY_REFRESH_REUSE_GRACE", "soon"),
        ("LATCHKEY_INVITE_TTL", "-1d"),
        ("LATCHKEY_ACCESS_TOKEN_ALG", "HS256"),
        ("LATCHKEY_ID_TOKEN_ALG", "none"),
        ("LATCHKEY_KEY_ROTATION", "monthly"),
        ("LATCHKEY_SIGNUP", "closed"),
        ("LATCHKEY_LOG_FORMAT", "xml"),
        ("LATCHKEY_KEY_ENCRYPTION_KEY", "c2hvcnQ="),
        (
            "LATCHKEY_KEY_ENCRYPTION_KEY_FILE",
            "/nonexistent/latchkey.kek",
        ),
    ];
    for (var, value) in cases {
        refused_with(var, value).await;
    }
}

#[tokio::test]
async fn secrets_in_urls_are_not_echoed() {
    let line = refused_with("LATCHKEY_SMTP_URL", "http://user:hunter2@mail.example.com").await;
    assert!(!line.contains("hunter2"), "{line}");
}

#[tokio::test]
async fn a_bad_key_encryption_key_exits_2_and_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = HashMap::new();
    env.insert(
        "LATCHKEY_DATABASE_URL".to_owned(),
        format!("sqlite://{}", dir.path().join("x.db").display()),
    );
    env.insert(
        "LATCHKEY_KEY_ENCRYPTION_KEY".to_owned(),
        "c2VjcmV0LWJ1dC10b28tc2hvcnQ".to_owned(),
    );
    let out = run_cli(&env, &["serve"], None).await;
    assert_eq!(out.code, Some(2));
    let line = out.refused();
    assert!(line.contains("LATCHKEY_KEY_ENCRYPTION_KEY"), "{line}");
    assert!(!line.contains("c2VjcmV0LWJ1dC10b28tc2hvcnQ"), "{line}");
    // Both variables at once: refused, naming them.
    let file = dir.path().join("kek");
    std::fs::write(&file, crate::helpers::new_kek()).unwrap();
    env.insert(
        "LATCHKEY_KEY_ENCRYPTION_KEY".to_owned(),
        crate::helpers::new_kek(),
    );
    env.insert(
        "LATCHKEY_KEY_ENCRYPTION_KEY_FILE".to_owned(),
        file.display().to_string(),
    );
    let out = run_cli(&env, &["migrate"], None).await;
    assert_eq!(out.code, Some(2));
    assert!(out.refused().contains("not both"));
    assert!(!dir.path().join("x.db").exists());
}

#[tokio::test]
async fn an_unreachable_database_is_one_clear_line() {
    let mut env = HashMap::new();
    env.insert(
        "LATCHKEY_DATABASE_URL".to_owned(),
        "postgres://nobody@127.0.0.1:1/none".to_owned(),
    );
    let out = run_cli(&env, &["migrate"], None).await;
    assert!(out.refused().contains("database"));
}
