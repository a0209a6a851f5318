//! The client address behind reverse proxies: `Forwarded` / `X-Forwarded-For` are believed only from
//! a peer in `LATCHKEY_TRUSTED_PROXIES`, walked right to left over trusted hops, `Forwarded` first;
//! garbage falls back to the last trusted hop. The address lands in the login history and the audit
//! log.

use crate::helpers::{Backend, TestApp};
use crate::rp;
use crate::throttling::attempt;

on_both_databases!(
    headers_from_an_untrusted_peer_are_ignored,
    a_trusted_proxy_names_the_client,
    garbage_headers_fall_back_to_the_last_trusted_hop,
);

const WRONG: &str = "not the password";

/// Fails a login as `email` with `headers`; returns the address the login history and the audit
/// log recorded for it (they must agree).
async fn recorded_address(app: &TestApp, email: &str, headers: &[(&str, &str)]) -> String {
    let answer = attempt(app, &rp::browser(), email, WRONG, headers).await;
    assert_eq!(answer.status(), 401, "a failed login, never another error");
    let history: String = sqlx::query_scalar("select ip from login_events where email = $1")
        .bind(email)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let pattern = format!("%\"{email}\"%");
    let audited: String = sqlx::query_scalar(
        "select ip from audit_events where action = 'login.failed' and details like $1",
    )
    .bind(pattern)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(history, audited);
    history
}

async fn headers_from_an_untrusted_peer_are_ignored(backend: Backend) {
    // The default trusts no proxy; a configured proxy elsewhere does not make this peer trusted.
    for trusted in ["", "10.0.0.0/8, 2001:db8::/32"] {
        let app = TestApp::spawn_with(backend, &[("LATCHKEY_TRUSTED_PROXIES", trusted)]).await;
        let xff = [("x-forwarded-for", "203.0.113.9")];
        assert_eq!(
            recorded_address(&app, "a@example.com", &xff).await,
            "127.0.0.1"
        );
        let fwd = [("forwarded", "for=203.0.113.9")];
        assert_eq!(
            recorded_address(&app, "b@example.com", &fwd).await,
            "127.0.0.1"
        );
    }
}

async fn a_trusted_proxy_names_the_client(backend: Backend) {
    let trusted = [("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8")];
    let app = TestApp::spawn_with(backend, &trusted).await;

    let xff = [("x-forwarded-for", "203.0.113.9")];
    assert_eq!(
        recorded_address(&app, "a@example.com", &xff).await,
        "203.0.113.9"
    );
    // Right to left, over the hops that are themselves trusted; the spoofable left part is ignored.
    let chain = [(
        "x-forwarded-for",
        "198.51.100.1, 203.0.113.7, 10.1.1.1, 10.2.2.2",
    )];
    assert_eq!(
        recorded_address(&app, "b@example.com", &chain).await,
        "203.0.113.7"
    );
    // `Forwarded` wins over `X-Forwarded-For`; quoted IPv6 with a port.
    let both = [
        ("x-forwarded-for", "203.0.113.1"),
        (
            "forwarded",
            "for=\"[2001:db8::5]:4711\";proto=https, for=10.0.0.2",
        ),
    ];
    assert_eq!(
        recorded_address(&app, "c@example.com", &both).await,
        "2001:db8::5"
    );
    // No header: the proxy itself.
    assert_eq!(
        recorded_address(&app, "d@example.com", &[]).await,
        "127.0.0.1"
    );
}

async fn garbage_headers_fall_back_to_the_last_trusted_hop(backend: Backend) {
    let trusted = [("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")];
    let app = TestApp::spawn_with(backend, &trusted).await;
    let cases: [(&str, &str, &str); 7] = [
        ("x-forwarded-for", "not an address", "127.0.0.1"),
        ("x-forwarded-for", "203.0.113.1, ", "127.0.0.1"),
        (
            "x-forwarded-for",
            "203.0.113.1, bogus, 10.0.0.9",
            "10.0.0.9",
        ),
        ("forwarded", "for=unknown", "127.0.0.1"),
        ("forwarded", "for=203.0.113.1, for=_hidden", "127.0.0.1"),
        ("forwarded", "for=\"[2001:db8::1\"", "127.0.0.1"),
        ("forwarded", "proto=https;by=10.0.0.1", "127.0.0.1"),
    ];
    for (i, (name, value, expected)) in cases.into_iter().enumerate() {
        let email = format!("user{i}@example.com");
        let got = recorded_address(&app, &email, &[(name, value)]).await;
        assert_eq!(got, expected, "{name}: {value}");
    }
}
