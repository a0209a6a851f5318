//! A DPoP client for the tests (RFC 9449): an EC P-256 key, proofs built and signed with josekit, the
//! key's RFC 7638 thumbprint computed here independently of the server, and the nonce dance at the
//! token and pushed authorization request endpoints.

// Not every test module uses every helper.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::{Jwk, KeyPair as _};
use josekit::jws::{self, JwsHeader};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::helpers::TestApp;
use crate::rp::{self, RegisteredClient};

/// A client's DPoP key pair.
pub struct DpopKey {
    private: Jwk,
    /// The public half, as sent in the proofs' `jwk` header.
    pub public: Jwk,
}

/// What a proof says besides `htm` and `htu`; the defaults make a valid proof without a nonce.
#[derive(Default, Clone)]
pub struct Proof<'a> {
    /// `nonce`.
    pub nonce: Option<&'a str>,
    /// The access token whose hash goes in `ath`.
    pub access_token: Option<&'a str>,
    /// `ath` as given, instead of the token's hash.
    pub ath: Option<&'a str>,
    /// `iat` other than now.
    pub iat: Option<i64>,
    /// `typ` other than `dpop+jwt`.
    pub typ: Option<&'a str>,
    /// A `jwk` header other than this key's public half (the signature is still this key's).
    pub jwk: Option<Jwk>,
    /// `jti` other than a fresh random one.
    pub jti: Option<&'a str>,
}

impl DpopKey {
    /// A fresh P-256 key.
    pub fn generate() -> DpopKey {
        let pair = jws::ES256.generate_key_pair().expect("EC key");
        DpopKey {
            private: pair.to_jwk_private_key(),
            public: pair.to_jwk_public_key(),
        }
    }

    /// The private JWK (to test that a proof carrying it is refused).
    pub fn private_jwk(&self) -> Jwk {
        self.private.clone()
    }

    /// RFC 7638 §3.1: SHA-256 over `{"crv","kty","x","y"}` in that order, no whitespace, base64url.
    pub fn thumbprint(&self) -> String {
        let member = |name: &str| {
            self.public
                .parameter(name)
                .and_then(Value::as_str)
                .expect("EC member")
                .to_owned()
        };
        let canonical = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            member("crv"),
            member("x"),
            member("y")
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A signed proof for `htm` `htu` with `p`.
    pub fn proof(&self, htm: &str, htu: &str, p: &Proof<'_>) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type(p.typ.unwrap_or("dpop+jwt"));
        header.set_jwk(p.jwk.clone().unwrap_or_else(|| self.public.clone()));
        let mut claims = json!({
            "jti": p.jti.map(str::to_owned).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            "htm": htm,
            "htu": htu,
            "iat": p.iat.unwrap_or_else(now),
        });
        if let Some(nonce) = p.nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(ath) = p.ath {
            claims["ath"] = json!(ath);
        } else if let Some(token) = p.access_token {
            claims["ath"] = json!(ath_of(token));
        }
        let signer = jws::ES256
            .signer_from_jwk(&self.private)
            .expect("ES256 signer");
        jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer).expect("signed")
    }
}

/// `ath`: base64url(SHA-256(token)) (RFC 9449 §4.2).
pub fn ath_of(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Now in unix seconds (the test server's clock is the system clock unless a test moves it).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).expect("time"))
        .expect("time")
}

/// `POST path` with `form`, Basic authentication for a confidential client, and `proof` in the
/// `DPoP` header.
pub async fn post_with_proof(
    app: &TestApp,
    client: &RegisteredClient,
    path: &str,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> reqwest::Response {
    let mut request = rp::rp_http().post(app.url(path)).form(form);
    if let Some(secret) = &client.secret {
        request = request.basic_auth(&client.id, Some(secret));
    }
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.expect("request sent")
}

/// `POST /token` with `form` and `proof` ([`post_with_proof`]).
pub async fn post_token(
    app: &TestApp,
    client: &RegisteredClient,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> reqwest::Response {
    post_with_proof(app, client, "/token", form, proof).await
}

/// `POST /par` with `form` and `proof` ([`post_with_proof`]).
pub async fn post_par(
    app: &TestApp,
    client: &RegisteredClient,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> reqwest::Response {
    post_with_proof(app, client, "/par", form, proof).await
}

/// The nonce dance (RFC 9449 §8) at `path`: a proof without a nonce is refused with
/// `use_dpop_nonce` and a `DPoP-Nonce`; the retry carries it. Returns the retry's response, after
/// checking that it carries a fresh nonce too.
pub async fn with_nonce_dance(
    app: &TestApp,
    client: &RegisteredClient,
    key: &DpopKey,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let htu = format!("{}{path}", app.issuer());
    let first = post_with_proof(
        app,
        client,
        path,
        form,
        Some(&key.proof("POST", &htu, &Proof::default())),
    )
    .await;
    let nonce = rp::header(&first, "dpop-nonce");
    assert!(!nonce.is_empty(), "a DPoP-Nonce comes with use_dpop_nonce");
    let body = rp::json_with_status(first, 400).await;
    assert_eq!(body["error"], "use_dpop_nonce", "{body}");
    let retry = key.proof(
        "POST",
        &htu,
        &Proof {
            nonce: Some(&nonce),
            ..Proof::default()
        },
    );
    let response = post_with_proof(app, client, path, form, Some(&retry)).await;
    assert!(
        !rp::header(&response, "dpop-nonce").is_empty(),
        "every answer to a DPoP request carries a fresh nonce"
    );
    response
}

/// [`with_nonce_dance`] at the token endpoint. Returns the successful token response.
pub async fn token_with_nonce_dance(
    app: &TestApp,
    client: &RegisteredClient,
    key: &DpopKey,
    form: &[(&str, &str)],
) -> Value {
    rp::json_with_status(
        with_nonce_dance(app, client, key, "/token", form).await,
        200,
    )
    .await
}

/// A fresh nonce from the token endpoint: the answer to a proof without one.
pub async fn fresh_nonce(app: &TestApp, client: &RegisteredClient, key: &DpopKey) -> String {
    let htu = format!("{}/token", app.issuer());
    let response = post_token(
        app,
        client,
        &[("grant_type", "client_credentials")],
        Some(&key.proof("POST", &htu, &Proof::default())),
    )
    .await;
    rp::header(&response, "dpop-nonce")
}
