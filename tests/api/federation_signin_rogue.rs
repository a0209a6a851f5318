//! A rogue upstream provider for the enterprise-SSO refusal tests: discovery, a JWKS and a token
//! endpoint (axum + josekit) that answer every code with an ID token carrying one [`Flaw`].

// Not every test module uses every helper.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use josekit::jws::{self, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};

/// The client id the rogue expects (the connection's).
pub const CLIENT_ID: &str = "rogue-client";

/// The client secret the connection is created with (long enough to be an HMAC key).
pub const CLIENT_SECRET: &str = "rogue-secret-0123456789abcdefghijklmnopqrstuv";

/// What is wrong with the ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// Nothing: a valid token (the control).
    None,
    /// `aud` is another client.
    WrongAudience,
    /// `aud` also names another, untrusted client.
    ExtraAudience,
    /// `nonce` is not the one sent.
    WrongNonce,
    /// Signed by a key that is not in the JWKS.
    BadSignature,
    /// `exp` is an hour ago.
    Expired,
    /// `alg: none`, no signature.
    AlgNone,
    /// `iss` is another issuer.
    WrongIssuer,
    /// No ID token in the token response.
    NoIdToken,
    /// `HS256` keyed with the client secret (an algorithm outside the allow-list).
    HmacWithSecret,
    /// `at_hash` is not the access token's.
    WrongAtHash,
}

impl Flaw {
    /// Every flaw (not [`Flaw::None`]).
    pub const ALL: [Flaw; 10] = [
        Flaw::WrongAudience,
        Flaw::ExtraAudience,
        Flaw::WrongNonce,
        Flaw::BadSignature,
        Flaw::Expired,
        Flaw::AlgNone,
        Flaw::WrongIssuer,
        Flaw::NoIdToken,
        Flaw::HmacWithSecret,
        Flaw::WrongAtHash,
    ];
}

#[derive(Clone)]
struct Shared {
    issuer: String,
    email: String,
    flaw: Flaw,
    nonce: Arc<Mutex<String>>,
    key: Arc<jws::alg::rsassa::RsassaJwsSigner>,
    other_key: Arc<jws::alg::rsassa::RsassaJwsSigner>,
    jwk: Value,
}

/// A running rogue upstream.
pub struct Rogue {
    /// `http://127.0.0.1:PORT`.
    pub issuer: String,
    nonce: Arc<Mutex<String>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Rogue {
    /// Starts one with `flaw`, for eve@rogue.example.
    pub async fn start(flaw: Flaw) -> Rogue {
        Rogue::start_as(flaw, "eve@rogue.example").await
    }

    /// Starts one with `flaw` whose person is `email` (also its `sub`), verified upstream.
    pub async fn start_as(flaw: Flaw, email: &str) -> Rogue {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("addr"));
        let pair = jws::RS256.generate_key_pair(2048).expect("RSA key");
        let other = jws::RS256.generate_key_pair(2048).expect("RSA key");
        let mut public = pair.to_jwk_public_key();
        public.set_key_id("k1");
        public.set_algorithm("RS256");
        public.set_key_use("sig");
        let jwk: Value = serde_json::to_value(public.as_ref()).expect("jwk");
        let signer = |p: &josekit::jwk::alg::rsa::RsaKeyPair| {
            let mut private = p.to_jwk_private_key();
            private.set_key_id("k1");
            Arc::new(jws::RS256.signer_from_jwk(&private).expect("signer"))
        };
        let nonce = Arc::new(Mutex::new(String::new()));
        let shared = Shared {
            issuer: issuer.clone(),
            email: email.to_owned(),
            flaw,
            nonce: Arc::clone(&nonce),
            key: signer(&pair),
            other_key: signer(&other),
            jwk,
        };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(shared);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    stopped.await.ok();
                })
                .await
                .ok();
        });
        Rogue {
            issuer,
            nonce,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops answering (the port is closed when this returns).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if let Some(server) = self.server.take() {
            server.await.ok();
        }
    }

    /// The nonce the next ID token carries (the one the app sent, taken from its redirect).
    pub fn expect_nonce(&self, nonce: &str) {
        *self.nonce.lock().expect("nonce") = nonce.to_owned();
    }
}

async fn discovery(State(s): State<Shared>) -> Json<Value> {
    Json(json!({
        "issuer": s.issuer,
        "authorization_endpoint": format!("{}/authorize", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "jwks_uri": format!("{}/jwks", s.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
    }))
}

async fn jwks(State(s): State<Shared>) -> Json<Value> {
    Json(json!({ "keys": [s.jwk] }))
}

async fn token(State(s): State<Shared>) -> Json<Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let nonce = s.nonce.lock().expect("nonce").clone();
    let mut claims = json!({
        "iss": s.issuer,
        "sub": s.email,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": nonce,
        "email": s.email,
        "email_verified": true,
        "name": "Eve",
    });
    match s.flaw {
        Flaw::WrongAudience => claims["aud"] = json!("someone-else"),
        Flaw::ExtraAudience => claims["aud"] = json!([CLIENT_ID, "someone-else"]),
        Flaw::WrongNonce => claims["nonce"] = json!("not-the-nonce"),
        Flaw::Expired => {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
        }
        Flaw::WrongIssuer => claims["iss"] = json!("https://other.example"),
        Flaw::WrongAtHash => claims["at_hash"] = json!("AAAAAAAAAAAAAAAAAAAAAA"),
        _ => {}
    }
    let serde_json::Value::Object(map) = claims else {
        unreachable!()
    };
    let payload = JwtPayload::from_map(map).expect("payload");
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id("k1");
    let id_token = match s.flaw {
        Flaw::AlgNone => jwt::encode_unsecured(&payload, &header).expect("unsecured"),
        Flaw::HmacWithSecret => {
            let signer = jws::HS256
                .signer_from_bytes(CLIENT_SECRET.as_bytes())
                .expect("HMAC signer");
            jwt::encode_with_signer(&payload, &header, &signer).expect("signed")
        }
        Flaw::BadSignature => {
            jwt::encode_with_signer(&payload, &header, s.other_key.as_ref()).expect("signed")
        }
        _ => jwt::encode_with_signer(&payload, &header, s.key.as_ref()).expect("signed"),
    };
    let mut body = json!({
        "access_token": "rogue-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
    });
    if s.flaw != Flaw::NoIdToken {
        body["id_token"] = json!(id_token);
    }
    Json(body)
}
