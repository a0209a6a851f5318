//! Shared helpers of the enterprise-SSO tests (`federation_*`): a second Latchkey acting as the
//! upstream provider, with a client registered for this server's `/federation/callback`.

// Not every test module uses every helper.
#![allow(dead_code)]

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

/// Latchkey (`app`, on the test's database, upstreams on loopback allowed) and a second Latchkey
/// acting as its upstream provider (`upstream`, on SQLite), both with their own address as issuer.
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
    let upstream = TestApp::spawn_with_own_issuer(Backend::Sqlite, &[]).await;
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
    /// The body of `POST …/connections` for the upstream, named `name`.
    pub fn connection_body(&self, name: &str) -> Value {
        json!({
            "name": name,
            "issuer": self.upstream.address,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        })
    }
}
