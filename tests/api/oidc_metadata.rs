//! Discovery (OIDC Discovery 1.0, RFC 8414) and the JWK Set (RFC 7517): content, caching, and key
//! rotation reaching a running server.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Backend, TestApp};

on_both_databases!(
    discovery_documents_advertise_every_endpoint_under_the_issuer,
    jwks_lists_the_active_keys_without_private_members,
    jwks_answers_304_when_the_etag_matches,
    a_rotated_key_is_published_within_two_seconds
);

const ISSUER: &str = "http://localhost:8080";
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_owned()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn jwks_kids(app: &TestApp) -> BTreeSet<String> {
    let jwks: Value = app.get("/jwks.json").await.json().await.unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn discovery_documents_advertise_every_endpoint_under_the_issuer(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = app.get(path).await;

        assert_eq!(response.status(), 200, "{path}");
        assert!(header(&response, "content-type").starts_with("application/json"));
        assert_eq!(header(&response, "cache-control"), "public, max-age=3600");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], ISSUER);
        for (member, endpoint) in [
            ("authorization_endpoint", "/authorize"),
            ("token_endpoint", "/token"),
            ("userinfo_endpoint", "/userinfo"),
            ("jwks_uri", "/jwks.json"),
            ("revocation_endpoint", "/revoke"),
            ("introspection_endpoint", "/introspect"),
            ("end_session_endpoint", "/logout"),
        ] {
            assert_eq!(
                doc[member],
                format!("{ISSUER}{endpoint}"),
                "{path} {member}"
            );
        }
        let expect: &[(&str, &[&str])] = &[
            (
                "scopes_supported",
                &[
                    "openid",
                    "profile",
                    "email",
                    "offline_access",
                    "org:read",
                    "org:write",
                    "account:read",
                    "account:write",
                ],
            ),
            ("response_types_supported", &["code"]),
            ("response_modes_supported", &["query"]),
            (
                "grant_types_supported",
                &[
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                    "urn:ietf:params:oauth:grant-type:device_code",
                ],
            ),
            ("subject_types_supported", &["public"]),
            (
                "id_token_signing_alg_values_supported",
                &["RS256", "ES256", "EdDSA"],
            ),
            (
                "token_endpoint_auth_methods_supported",
                &["client_secret_basic", "client_secret_post", "none"],
            ),
            (
                "revocation_endpoint_auth_methods_supported",
                &["client_secret_basic", "client_secret_post"],
            ),
            (
                "introspection_endpoint_auth_methods_supported",
                &["client_secret_basic", "client_secret_post"],
            ),
            ("code_challenge_methods_supported", &["S256"]),
            (
                "claims_supported",
                &[
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "nonce",
                    "azp",
                    "at_hash",
                    "sid",
                    "amr",
                    "acr",
                    "name",
                    "email",
                    "email_verified",
                    "org_id",
                    "org_slug",
                    "roles",
                ],
            ),
            (
                "acr_values_supported",
                &["urn:latchkey:acr:pwd", "urn:latchkey:acr:mfa"],
            ),
            (
                "prompt_values_supported",
                &["none", "login", "consent", "select_account"],
            ),
        ];
        for &(member, values) in expect {
            assert_eq!(strings(&doc[member]), set(values), "{path} {member}");
        }
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        for member in [
            "claims_parameter_supported",
            "request_parameter_supported",
            "request_uri_parameter_supported",
            "require_request_uri_registration",
            "frontchannel_logout_supported",
        ] {
            assert_eq!(doc[member], false, "{path} {member}");
        }
        assert_eq!(doc["backchannel_logout_supported"], true);
        assert_eq!(doc["backchannel_logout_session_supported"], true);
        assert!(doc.get("userinfo_signing_alg_values_supported").is_none());
    }
}

async fn jwks_lists_the_active_keys_without_private_members(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let listed = app.cli(&["keys", "list"]).await.json();

    let response = app.get("/jwks.json").await;

    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("application/json"));
    assert_eq!(header(&response, "cache-control"), "public, max-age=300");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let active: BTreeSet<(String, String)> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "active")
        .map(|k| {
            (
                k["kid"].as_str().unwrap().into(),
                k["alg"].as_str().unwrap().into(),
            )
        })
        .collect();
    let published: BTreeSet<(String, String)> = keys
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().into(),
                k["alg"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(published, active);
    let algs: BTreeSet<&str> = active.iter().map(|(_, alg)| alg.as_str()).collect();
    assert_eq!(algs, BTreeSet::from(["ES256", "RS256"]));
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert!(key["kty"].is_string());
        for member in PRIVATE_MEMBERS {
            assert!(
                key.get(member).is_none(),
                "private member {member} in {key}"
            );
        }
    }
}

async fn jwks_answers_304_when_the_etag_matches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.get("/jwks.json").await;
    let etag = header(&first, "etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let revalidated = app
        .http
        .get(app.url("/jwks.json"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    let stale = app
        .http
        .get(app.url("/jwks.json"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();

    assert_eq!(revalidated.status(), 304);
    assert_eq!(header(&revalidated, "etag"), etag);
    assert_eq!(header(&revalidated, "cache-control"), "public, max-age=300");
    assert!(revalidated.bytes().await.unwrap().is_empty());
    assert_eq!(stale.status(), 200);
    assert_eq!(header(&stale, "etag"), etag);
}

async fn a_rotated_key_is_published_within_two_seconds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = jwks_kids(&app).await;
    let etag_before = header(&app.get("/jwks.json").await, "etag");

    let rotated = app.cli(&["keys", "rotate"]).await.json();
    let started = Instant::now();

    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert!(!before.contains(&new_kid));
    // Polling is the point here: the contract gives a running server two seconds to see the rotation.
    let mut after = before.clone();
    while !after.contains(&new_kid) && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = jwks_kids(&app).await;
    }
    assert!(after.contains(&new_kid), "rotated key never published");
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "published after {:?}",
        started.elapsed()
    );
    assert!(
        before.is_subset(&after),
        "old keys still verify: {before:?} ⊄ {after:?}"
    );
    assert_ne!(header(&app.get("/jwks.json").await, "etag"), etag_before);
}
