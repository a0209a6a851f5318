//! Unit tests of the configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::collections::HashMap;

fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(move |k| map.get(k).cloned())
}

fn err(var: &str, value: &str) -> ConfigError {
    let e = with(&[(var, value)]).expect_err(&format!("{var}={value} should be rejected"));
    assert_eq!(e.var, var);
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("invalid {var}=")), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    e
}

fn ok(var: &str, value: &str) -> Config {
    with(&[(var, value)]).unwrap_or_else(|e| panic!("{var}={value}: {e}"))
}

#[test]
fn defaults() {
    let c = with(&[]).unwrap();
    assert_eq!(c.issuer, "http://localhost:8080");
    assert_eq!(c.bind, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.database_url.expose(), "sqlite://latchkey.db");
    assert!(c.database_url.is_sqlite());
    assert!(c.smtp_url.is_none());
    assert_eq!(c.mail_dir, PathBuf::from("./mail"));
    assert_eq!(c.mail_from.email.to_string(), "no-reply@localhost");
    assert_eq!(c.mail_from.name.as_deref(), Some("Latchkey"));
    assert_eq!(c.access_token_ttl, Duration::from_secs(600));
    assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 86400));
    assert_eq!(c.refresh_reuse_grace, Duration::ZERO);
    assert_eq!(c.invite_ttl, Duration::from_secs(7 * 86400));
    assert_eq!(c.access_token_alg, SigningAlg::ES256);
    assert_eq!(c.id_token_alg, SigningAlg::RS256);
    assert_eq!(c.key_rotation, Duration::from_secs(30 * 86400));
    assert_eq!(c.signup, SignupPolicy::Open);
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(!c.is_https());
}

#[test]
fn empty_values_mean_default() {
    let c = with(&[
        ("LATCHKEY_ISSUER", ""),
        ("LATCHKEY_SMTP_URL", ""),
        ("LATCHKEY_ACCESS_TOKEN_TTL", "  "),
    ])
    .unwrap();
    assert_eq!(c.issuer, DEFAULT_ISSUER);
    assert!(c.smtp_url.is_none());
    assert_eq!(c.access_token_ttl, Duration::from_secs(600));
}

#[test]
fn issuer() {
    let c = ok("LATCHKEY_ISSUER", "https://id.example.com/t1");
    assert_eq!(c.issuer, "https://id.example.com/t1");
    assert!(c.is_https());
    assert!(ok("LATCHKEY_ISSUER", "https://id.example.com").is_https());
    assert_eq!(
        ok("LATCHKEY_ISSUER", "http://127.0.0.1:9000").issuer,
        "http://127.0.0.1:9000"
    );
    ok("LATCHKEY_ISSUER", "http://[::1]:9000");

    let e = err("LATCHKEY_ISSUER", "http://example.com");
    assert_eq!(
        e.to_string(),
        "invalid LATCHKEY_ISSUER=\"http://example.com\": \
         http is only allowed for localhost or 127.0.0.1; use https"
    );
    assert!(
        err("LATCHKEY_ISSUER", "https://id.example.com/")
            .reason
            .contains("slash")
    );
    assert!(
        err("LATCHKEY_ISSUER", "http://localhost:8080/")
            .reason
            .contains("slash")
    );
    assert!(
        err("LATCHKEY_ISSUER", "https://id.example.com?a=b")
            .reason
            .contains("query")
    );
    assert!(
        err("LATCHKEY_ISSUER", "https://id.example.com#x")
            .reason
            .contains("fragment")
    );
    assert!(
        err("LATCHKEY_ISSUER", "not a url")
            .reason
            .contains("absolute URL")
    );
    assert!(
        err("LATCHKEY_ISSUER", "ftp://id.example.com")
            .reason
            .contains("https")
    );
    assert!(
        err("LATCHKEY_ISSUER", "https://u:p@id.example.com")
            .reason
            .contains("user")
    );
    assert!(
        err("LATCHKEY_ISSUER", "https://ID.example.com")
            .reason
            .contains("canonical")
    );
}

#[test]
fn bind() {
    assert_eq!(
        ok("LATCHKEY_BIND", "[::]:80").bind,
        "[::]:80".parse().unwrap()
    );
    err("LATCHKEY_BIND", "localhost");
    err("LATCHKEY_BIND", "127.0.0.1");
}

#[test]
fn database_url() {
    let c = ok("LATCHKEY_DATABASE_URL", "postgres://u:p@h/db");
    assert!(!c.database_url.is_sqlite());
    ok("LATCHKEY_DATABASE_URL", "postgresql://h/db");
    assert!(
        ok("LATCHKEY_DATABASE_URL", "sqlite::memory:")
            .database_url
            .is_sqlite()
    );
    ok("LATCHKEY_DATABASE_URL", "sqlite:///var/lib/latchkey.db");
    err("LATCHKEY_DATABASE_URL", "sqlite://");
    err("LATCHKEY_DATABASE_URL", "mysql://u:p@h/db");
    let e = err(
        "LATCHKEY_DATABASE_URL",
        "postgres://u:hunter2@h:notaport/db",
    );
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(!format!("{e:?}").contains("hunter2"));
    let e = err("LATCHKEY_DATABASE_URL", "mysql://u:hunter2@h/db");
    assert!(e.to_string().contains("mysql://u:***@h/db"), "{e}");
}

#[test]
fn smtp_url() {
    let c = ok("LATCHKEY_SMTP_URL", "smtps://u:p@mail.example.com");
    assert_eq!(c.smtp_url.unwrap().expose(), "smtps://u:p@mail.example.com");
    ok("LATCHKEY_SMTP_URL", "smtp://localhost:2525");
    let e = err("LATCHKEY_SMTP_URL", "http://u:hunter2@mail.example.com");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    err("LATCHKEY_SMTP_URL", "smtp://");
    err("LATCHKEY_SMTP_URL", "mail.example.com");
}

#[test]
fn smtp_starttls_is_required_off_loopback() {
    let tls = |v: &str| ok("LATCHKEY_SMTP_URL", v).smtp_url.unwrap().starttls();
    assert_eq!(tls("smtp://mail.example.com:587"), StartTls::Required);
    assert_eq!(tls("smtp://127.0.0.1:2525"), StartTls::Opportunistic);
    assert_eq!(tls("smtp://127.8.9.10"), StartTls::Opportunistic);
    assert_eq!(tls("smtp://[::1]:2525"), StartTls::Opportunistic);
    assert_eq!(tls("smtp://localhost:2525"), StartTls::Opportunistic);
    assert_eq!(
        tls("smtp://mail.example.com?tls=opportunistic"),
        StartTls::Opportunistic
    );
    assert_eq!(tls("smtp://localhost?tls=required"), StartTls::Required);
    let e = err(
        "LATCHKEY_SMTP_URL",
        "smtp://u:hunter2@mail.example.com?tls=maybe",
    );
    assert!(e.to_string().contains("tls=\"maybe\""), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    err(
        "LATCHKEY_SMTP_URL",
        "smtp://mail.example.com?tls=required&tls=opportunistic",
    );
}

#[test]
fn mail() {
    assert_eq!(
        ok("LATCHKEY_MAIL_DIR", "/tmp/m").mail_dir,
        PathBuf::from("/tmp/m")
    );
    let c = ok("LATCHKEY_MAIL_FROM", "a@example.com");
    assert_eq!(c.mail_from.email.to_string(), "a@example.com");
    err("LATCHKEY_MAIL_FROM", "not a mailbox");
    err("LATCHKEY_MAIL_FROM", "Name <broken");
}

#[test]
fn durations() {
    let e = err("LATCHKEY_ACCESS_TOKEN_TTL", "ten minutes");
    assert_eq!(
        e.to_string(),
        "invalid LATCHKEY_ACCESS_TOKEN_TTL=\"ten minutes\": \
         expected a duration such as 90s, 10m or 30d"
    );
    for var in [
        "LATCHKEY_ACCESS_TOKEN_TTL",
        "LATCHKEY_REFRESH_TOKEN_TTL",
        "LATCHKEY_INVITE_TTL",
        "LATCHKEY_KEY_ROTATION",
    ] {
        assert!(err(var, "0s").reason.contains("greater than zero"));
        err(var, "5");
        err(var, "1000000y");
    }
    assert_eq!(
        ok("LATCHKEY_REFRESH_REUSE_GRACE", "0s").refresh_reuse_grace,
        Duration::ZERO
    );
    assert_eq!(
        ok("LATCHKEY_REFRESH_REUSE_GRACE", "5s").refresh_reuse_grace,
        Duration::from_secs(5)
    );
    err("LATCHKEY_REFRESH_REUSE_GRACE", "soon");
    assert_eq!(
        ok("LATCHKEY_INVITE_TTL", "1h 30m").invite_ttl,
        Duration::from_secs(5400)
    );
}

#[test]
fn algs() {
    assert_eq!(
        ok("LATCHKEY_ACCESS_TOKEN_ALG", "EdDSA").access_token_alg,
        SigningAlg::EdDSA
    );
    assert_eq!(
        ok("LATCHKEY_ID_TOKEN_ALG", "ES256").id_token_alg,
        SigningAlg::ES256
    );
    err("LATCHKEY_ACCESS_TOKEN_ALG", "es256");
    err("LATCHKEY_ID_TOKEN_ALG", "HS256");
    for alg in SigningAlg::ALL {
        assert_eq!(alg.as_str().parse::<SigningAlg>().unwrap(), alg);
        assert_eq!(alg.to_string(), alg.as_str());
    }
    assert!("eddsa".parse::<SigningAlg>().is_err());
}

#[test]
fn signup_and_log_format() {
    assert_eq!(
        ok("LATCHKEY_SIGNUP", "invite-only").signup,
        SignupPolicy::InviteOnly
    );
    err("LATCHKEY_SIGNUP", "closed");
    err("LATCHKEY_SIGNUP", "Open");
    assert_eq!(
        ok("LATCHKEY_LOG_FORMAT", "json").log_format,
        LogFormat::Json
    );
    err("LATCHKEY_LOG_FORMAT", "yaml");
}

#[test]
fn new_device_alerts() {
    assert!(with(&[]).unwrap().new_device_alerts);
    assert!(ok("LATCHKEY_NEW_DEVICE_ALERTS", "on").new_device_alerts);
    assert!(!ok("LATCHKEY_NEW_DEVICE_ALERTS", "off").new_device_alerts);
    err("LATCHKEY_NEW_DEVICE_ALERTS", "yes");
}

#[test]
fn enterprise_sso() {
    let c = with(&[]).unwrap();
    assert!(!c.allow_insecure_upstreams);
    assert_eq!(c.dns_server, None);
    assert!(ok("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "true").allow_insecure_upstreams);
    err("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "yes");
    assert_eq!(
        ok("LATCHKEY_DNS_SERVER", "127.0.0.1:5353").dns_server,
        Some("127.0.0.1:5353".parse().unwrap())
    );
    assert_eq!(
        ok("LATCHKEY_DNS_SERVER", "::1").dns_server,
        Some("[::1]:53".parse().unwrap())
    );
    err("LATCHKEY_DNS_SERVER", "dns.example");
}

#[test]
fn email_signin() {
    assert!(with(&[]).unwrap().email_signin);
    assert!(ok("LATCHKEY_EMAIL_SIGNIN", "on").email_signin);
    assert!(!ok("LATCHKEY_EMAIL_SIGNIN", "off").email_signin);
    let e = err("LATCHKEY_EMAIL_SIGNIN", "yes");
    assert!(e.to_string().contains("LATCHKEY_EMAIL_SIGNIN"), "{e}");
    err("LATCHKEY_EMAIL_SIGNIN", "On");
}

#[test]
fn bounded_resources_and_retention() {
    let c = with(&[]).unwrap();
    assert_eq!(c.password_hash_wait, Duration::from_secs(5));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(c.password_hash_concurrency, cpus);
    assert_eq!(c.request_timeout, Duration::from_secs(30));
    assert_eq!(c.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.max_connections, 1024);
    assert_eq!(c.audit_retention, Duration::from_secs(400 * 86400));

    assert_eq!(
        ok("LATCHKEY_PASSWORD_HASH_WAIT", "200ms").password_hash_wait,
        Duration::from_millis(200)
    );
    assert_eq!(
        ok("LATCHKEY_PASSWORD_HASH_CONCURRENCY", "1").password_hash_concurrency,
        1
    );
    assert_eq!(
        ok("LATCHKEY_REQUEST_TIMEOUT", "2m").request_timeout,
        Duration::from_secs(120)
    );
    assert_eq!(
        ok("LATCHKEY_HEADER_READ_TIMEOUT", "1s").header_read_timeout,
        Duration::from_secs(1)
    );
    assert_eq!(ok("LATCHKEY_MAX_CONNECTIONS", "2").max_connections, 2);
    assert_eq!(
        ok("LATCHKEY_AUDIT_RETENTION", "1d").audit_retention,
        Duration::from_secs(86400)
    );
    for var in [
        "LATCHKEY_PASSWORD_HASH_WAIT",
        "LATCHKEY_REQUEST_TIMEOUT",
        "LATCHKEY_HEADER_READ_TIMEOUT",
    ] {
        assert!(err(var, "0s").reason.contains("greater than zero"));
        err(var, "soon");
    }
    for var in [
        "LATCHKEY_PASSWORD_HASH_CONCURRENCY",
        "LATCHKEY_MAX_CONNECTIONS",
    ] {
        assert!(err(var, "0").reason.contains("whole number"));
        err(var, "-1");
        err(var, "many");
    }
    err("LATCHKEY_PASSWORD_HASH_CONCURRENCY", "1025");
    ok("LATCHKEY_MAX_CONNECTIONS", "100000");
    err("LATCHKEY_MAX_CONNECTIONS", "1000001");
    assert_eq!(
        err("LATCHKEY_AUDIT_RETENTION", "23h").to_string(),
        "invalid LATCHKEY_AUDIT_RETENTION=\"23h\": must be at least 1d"
    );
    err("LATCHKEY_AUDIT_RETENTION", "forever");
}

#[test]
fn trusted_proxies() {
    use std::net::IpAddr;
    assert!(with(&[]).unwrap().trusted_proxies.is_empty());
    let c = ok("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8, ::1");
    assert!(
        c.trusted_proxies
            .contains("10.1.2.3".parse::<IpAddr>().unwrap())
    );
    assert!(c.trusted_proxies.contains("::1".parse::<IpAddr>().unwrap()));
    assert!(
        !c.trusted_proxies
            .contains("192.0.2.1".parse::<IpAddr>().unwrap())
    );
    let e = err("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local");
    assert!(e.reason.contains("CIDRs"), "{e}");
    err("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/40");
}

#[test]
fn debug_hides_secrets() {
    let c = with(&[
        ("LATCHKEY_DATABASE_URL", "postgres://u:secretpw@h/db"),
        ("LATCHKEY_SMTP_URL", "smtp://u:pw2@h"),
    ])
    .unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("secretpw"), "{dbg}");
    assert!(!dbg.contains("pw2"), "{dbg}");
    assert!(dbg.contains("postgres://u:***@h/db"), "{dbg}");
    assert_eq!(c.database_url.to_string(), "postgres://u:***@h/db");
    assert_eq!(c.database_url.expose(), "postgres://u:secretpw@h/db");
}

#[test]
fn key_encryption_key() {
    use base64::Engine;
    let bytes = [42u8; 32];
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    assert!(with(&[]).unwrap().key_encryption_key.is_none());
    let c = ok(KEK_VAR, &text);
    assert_eq!(c.key_encryption_key.as_ref().unwrap().bytes(), &bytes);
    assert!(!format!("{c:?}").contains(&text), "redacted in Debug");
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfbu8; 32]);
    assert_eq!(
        ok(KEK_VAR, &url_safe).key_encryption_key.unwrap().bytes(),
        &[0xfbu8; 32]
    );
    let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
    let e = err(KEK_VAR, &short);
    assert!(!e.to_string().contains(&short), "never echoed: {e}");
    assert!(e.reason.contains("32 bytes"));
    err(KEK_VAR, "not base64 at all!");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kek");
    std::fs::write(&file, format!("{text}\n")).unwrap();
    let path = file.display().to_string();
    let c = ok(KEK_FILE_VAR, &path);
    assert_eq!(c.key_encryption_key.unwrap().bytes(), &bytes);
    std::fs::write(&file, "garbage").unwrap();
    let e = err(KEK_FILE_VAR, &path);
    assert!(e.reason.contains("32 bytes"), "{e}");
    let e = err(
        KEK_FILE_VAR,
        &dir.path().join("missing").display().to_string(),
    );
    assert!(e.reason.contains("cannot read"), "{e}");
    let both = with(&[(KEK_VAR, text.as_str()), (KEK_FILE_VAR, path.as_str())]).unwrap_err();
    assert_eq!(both.var, KEK_FILE_VAR);
    assert!(both.to_string().contains("not both"), "{both}");
    assert!(!both.to_string().contains(&text));
}

#[test]
fn sqlite_path() {
    let path = |url: &str| ok("LATCHKEY_DATABASE_URL", url).database_url.sqlite_path();
    assert_eq!(
        path("sqlite://latchkey.db"),
        Some(PathBuf::from("latchkey.db"))
    );
    assert_eq!(
        path("sqlite:///var/lib/l.db?mode=rwc"),
        Some(PathBuf::from("/var/lib/l.db"))
    );
    assert_eq!(path("sqlite::memory:"), None);
    assert_eq!(path("sqlite://x.db?mode=memory"), None);
    assert_eq!(path("postgres://u:p@h/db"), None);
}

#[test]
fn redaction() {
    assert_eq!(redact("sqlite://latchkey.db"), "sqlite://latchkey.db");
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
    assert_eq!(
        redact("postgres://h/db?user=u&password=x"),
        "postgres://h/db?user=u&password=***"
    );
    assert_eq!(redact("10m"), "10m");
}

#[test]
fn effective_configuration_names_every_variable_and_hides_secrets() {
    let c = with(&[
        ("LATCHKEY_DATABASE_URL", "postgres://app:s3cret@db/latchkey"),
        (KEK_VAR, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ])
    .unwrap();
    let effective = c.effective();
    // Every variable `from_lookup` reads (the key file's path is added by `config check`, which
    // sees the environment).
    let source = include_str!("mod.rs");
    let read: std::collections::BTreeSet<&str> = source
        .split('"')
        .filter(|s| {
            s.starts_with("LATCHKEY_") && s.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .collect();
    assert!(read.len() >= 25, "{read:?}");
    for var in read {
        assert!(
            effective.contains_key(var),
            "{var} missing from effective()"
        );
    }
    assert_eq!(effective[KEK_VAR], "(set)");
    assert_eq!(
        effective["LATCHKEY_DATABASE_URL"],
        "postgres://app:***@db/latchkey"
    );
    let text = serde_json::Value::Object(effective).to_string();
    assert!(
        !text.contains("s3cret") && !text.contains("AAAAAAAA"),
        "{text}"
    );
}
