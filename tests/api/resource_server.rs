//! The resource-server example (`examples/resource_server.rs`, included here as a module) against a
//! running Latchkey: JWKS through discovery, refetched after a key rotation; `typ`, `iss`, `aud` and
//! `exp` checked; routes guarded by the organization role in the token.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers as m;
use crate::rp::{self, REDIRECT_URI};

#[allow(dead_code)]
#[path = "../../examples/resource_server.rs"]
mod example;

on_both_databases!(
    the_example_guards_routes_by_organization_role,
    the_example_refuses_tokens_it_must_not_trust,
    the_example_accepts_dpop_bound_tokens_only_with_a_proof,
);

/// Starts the example for `audience` on a free port; returns its base URL.
async fn start_resource_server(app: &TestApp, audience: &str) -> String {
    let mut verifier = example::Verifier::discover(&app.issuer(), audience)
        .await
        .expect("discovery and JWKS");
    verifier.min_refetch = Duration::ZERO;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, example::app(Arc::new(verifier))).await;
    });
    address
}

/// `GET base+path` with `token`: status and JSON body.
async fn call(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = rp::rp_http().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    if status == 401 {
        assert!(rp::header(&response, "www-authenticate").starts_with("Bearer"));
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn the_example_guards_routes_by_organization_role(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let client = app.register_client(&["--first-party"]).await;
    for who in ["owner", "admin", "member", "viewer"] {
        app.create_person(&format!("{who}@example.com"), who).await;
    }
    m::cli_org(&app, "Acme", "acme", "owner@example.com").await;
    for role in ["admin", "member", "viewer"] {
        m::cli_member(&app, "acme", &format!("{role}@example.com"), role).await;
    }
    let base = start_resource_server(&app, &client.id).await;
    let scopes = "openid email";
    let mut tokens = Vec::new();
    for who in ["owner", "admin", "member", "viewer"] {
        let token = m::user_token(&app, &client, &format!("{who}@example.com"), scopes).await;
        tokens.push((who, token));
    }
    for (who, token) in &tokens {
        let (status, body) = call(&base, "/whoami", Some(token)).await;
        assert_eq!(status, 200, "{who}: {body}");
        assert_eq!(body["org_slug"], "acme");
        assert_eq!(body["roles"], serde_json::json!([who]));
        let reports = call(&base, "/reports", Some(token)).await.0;
        let settings = call(&base, "/settings", Some(token)).await.0;
        let (want_reports, want_settings) = match *who {
            "owner" | "admin" => (200, 200),
            "member" => (200, 403),
            _ => (403, 403),
        };
        assert_eq!((reports, settings), (want_reports, want_settings), "{who}");
    }

    // A rotated key is fetched when a token names it.
    let rotated = app.cli(&["keys", "rotate"]).await.json();
    let kid = rotated["kid"].as_str().expect("kid").to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let token = loop {
        let token = m::user_token(&app, &client, "member@example.com", scopes).await;
        let (header, _) = rp::decode_jwt(&token);
        if header["kid"] == kid.as_str() {
            break token;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never signed with {kid}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(call(&base, "/reports", Some(&token)).await.0, 200);
}

async fn the_example_refuses_tokens_it_must_not_trust(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let client = app.register_client(&["--first-party"]).await;
    let other = app.register_client(&["--first-party"]).await;
    app.create_person("ada@example.com", "Ada").await;
    m::cli_org(&app, "Acme", "acme", "ada@example.com").await;
    let base = start_resource_server(&app, &client.id).await;

    assert_eq!(call(&base, "/whoami", None).await.0, 401);
    assert_eq!(call(&base, "/whoami", Some("garbage")).await.0, 401);
    // Another client's token is for another audience.
    let foreign = m::user_token(&app, &other, "ada@example.com", "openid").await;
    assert_eq!(call(&base, "/whoami", Some(&foreign)).await.0, 401);
    // An ID token is not an access token (typ).
    let (code, verifier) =
        rp::code_with_pkce(&app, &rp::browser(), &client, "ada@example.com").await;
    let tokens = rp::json_with_status(
        app.post_token(
            Some((&client.id, client.secret())),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", REDIRECT_URI),
            ],
        )
        .await,
        200,
    )
    .await;
    let id_token = tokens["id_token"].as_str().expect("id_token");
    assert_eq!(call(&base, "/whoami", Some(id_token)).await.0, 401);
    let access = tokens["access_token"].as_str().expect("access_token");
    assert_eq!(call(&base, "/reports", Some(access)).await.0, 200);
    // A tampered payload breaks the signature.
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    let (_, mut claims) = rp::decode_jwt(access);
    claims["org_slug"] = serde_json::json!("evil-corp");
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_eq!(
        call(&base, "/settings", Some(&parts.join("."))).await.0,
        401
    );
    // Expired: minted by a server whose clock is two hours behind.
    app.clock.advance(-7200);
    let expired = m::user_token(&app, &client, "ada@example.com", "openid").await;
    app.clock.advance(7200);
    assert_eq!(call(&base, "/whoami", Some(&expired)).await.0, 401);
}

async fn the_example_accepts_dpop_bound_tokens_only_with_a_proof(backend: Backend) {
    use crate::dpop_helpers::{self as d, DpopKey, Proof};
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let client = app
        .register_client(&["--grant-type", "client_credentials", "--scope", "admin"])
        .await;
    let base = start_resource_server(&app, &client.id).await;
    let key = DpopKey::generate();
    let tokens =
        d::token_with_nonce_dance(&app, &client, &key, &[("grant_type", "client_credentials")])
            .await;
    let token = tokens["access_token"].as_str().expect("access_token");
    let htu = format!("{base}/whoami");
    let proof = |key: &DpopKey, htm: &str, htu: &str| {
        key.proof(
            htm,
            htu,
            &Proof {
                access_token: Some(token),
                ..Proof::default()
            },
        )
    };
    let send = |scheme: &'static str, proof: Option<String>| {
        let mut request = rp::rp_http()
            .get(&htu)
            .header("authorization", format!("{scheme} {token}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            let challenge = rp::header(&response, "www-authenticate");
            (
                status,
                challenge,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    let once = proof(&key, "GET", &htu);
    let (status, _, body) = send("DPoP", Some(once.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], client.id.as_str());
    // Replayed, as Bearer, without a proof, by another key, for another method or URL, without ath.
    let other = DpopKey::generate();
    for (why, scheme, bad) in [
        ("replay", "DPoP", Some(once)),
        ("as Bearer", "Bearer", None),
        ("no proof", "DPoP", None),
        ("another key", "DPoP", Some(proof(&other, "GET", &htu))),
        ("another method", "DPoP", Some(proof(&key, "POST", &htu))),
        (
            "another URL",
            "DPoP",
            Some(proof(&key, "GET", &format!("{base}/reports"))),
        ),
        (
            "no ath",
            "DPoP",
            Some(key.proof("GET", &htu, &Proof::default())),
        ),
    ] {
        let (status, challenge, body) = send(scheme, bad).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert!(challenge.starts_with("DPoP "), "{why}: {challenge}");
    }
    // An unbound token still works as Bearer.
    let plain = rp::json_with_status(
        d::post_token(&app, &client, &[("grant_type", "client_credentials")], None).await,
        200,
    )
    .await;
    let plain = plain["access_token"].as_str().expect("access_token");
    assert_eq!(call(&base, "/whoami", Some(plain)).await.0, 200);
}
