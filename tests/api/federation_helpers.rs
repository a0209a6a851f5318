//! Shared helpers of the enterprise-SSO tests (`federation_*`): a second Latchkey acting as the
//! upstream provider, with a client registered for this server's `/federation/callback`.

// Not every test module uses every helper.
#![allow(dead_code)]

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

/// Latchkey (`app`, on the test's database, upstreams on loopback allowed) and a second Latchkey
/// acting as its upstream provider (`upstream`, on SQLite). `app`'s issuer is `http://127.0.0.1:PORT`
/// and the upstream's `http://localhost:PORT` ([`Pair::upstream_issuer`]): two host names, because
/// cookies are scoped by host and not by port, so one browser keeps both servers' sessions apart.
pub struct Pair {
    /// The server under test.
    pub app: TestApp,
    /// The upstream provider.
    pub upstream: TestApp,
    /// `app`'s client at `upstream`, whose redirect URI is `app`'s `/federation/callback`.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

/// Starts the pair; `extra` configures `app`.
pub async fn spawn_pair(backend: Backend, extra: &[(&str, &str)]) -> Pair {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://localhost:{port}");
    let upstream = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("LATCHKEY_BIND", bind.as_str()),
            ("LATCHKEY_ISSUER", issuer.as_str()),
        ],
    )
    .await;
    let mut all = vec![("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "true")];
    all.extend_from_slice(extra);
    let app = TestApp::spawn_with_own_issuer(backend, &all).await;
    let callback = app.url("/federation/callback");
    let client = upstream
        .cli(&[
            "client",
            "create",
            "--name",
            "Downstream Latchkey",
            "--redirect-uri",
            &callback,
            "--first-party",
        ])
        .await
        .json();
    Pair {
        client_id: client["client_id"].as_str().expect("client_id").to_owned(),
        client_secret: client["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned(),
        app,
        upstream,
    }
}

impl Pair {
    /// The upstream's issuer, `http://localhost:PORT` (what a connection names).
    pub fn upstream_issuer(&self) -> String {
        self.upstream.env["LATCHKEY_ISSUER"].clone()
    }

    /// The body of `POST …/connections` for the upstream, named `name`.
    pub fn connection_body(&self, name: &str) -> Value {
        json!({
            "name": name,
            "issuer": self.upstream_issuer(),
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        })
    }
}
