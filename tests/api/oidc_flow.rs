//! Complete OpenID Connect flows with the `openidconnect` crate as the relying party, its validation
//! fully on: discovery, authorization code with PKCE, the three client authentication methods, ID
//! tokens signed with RS256, ES256 and EdDSA (nonce, `at_hash`, audience, issuer, signature), RFC 9068
//! access tokens checked against the JWKS, userinfo, and `client_credentials`.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreTokenResponse,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, Scope, SubjectIdentifier, TokenResponse,
};
use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, Consent, RegisteredClient, Rp};

on_both_databases!(
    confidential_client_with_client_secret_basic,
    confidential_client_with_client_secret_post,
    public_client_with_pkce_and_no_authentication,
    id_token_signed_with_es256_when_the_client_registered_it,
    id_token_signed_with_eddsa_when_the_client_registered_it,
    client_credentials_token_speaks_for_the_client,
);

const EMAIL: &str = "ada@example.com";
const NAME: &str = "Ada Lovelace";

/// What a successful flow leaves the relying party with.
struct Outcome {
    tokens: CoreTokenResponse,
    claims: CoreIdTokenClaims,
    alg: CoreJwsSigningAlgorithm,
    nonce: Nonce,
}

/// Runs the authorization code flow as the `openidconnect` relying party `rp` would, with PKCE, a
/// state and a nonce, and validates everything the crate can: the ID token's signature (with the
/// `expected_alg` pinned), issuer, audience, expiry, nonce and `at_hash`.
async fn code_flow(
    app: &TestApp,
    rp: &Rp,
    expected_alg: CoreJwsSigningAlgorithm,
    consent: bool,
) -> Outcome {
    let browser = rp::browser();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    let journey = rp::authorize(app, &browser, url.as_str(), EMAIL, Consent::Allow).await;

    assert!(journey.saw_login);
    assert_eq!(journey.saw_consent, consent, "consent page shown?");
    let callback = journey.callback;
    callback.assert_at(rp::REDIRECT_URI);
    assert_eq!(
        callback.get("state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(callback.get("iss"), Some(app.issuer()), "RFC 9207 iss");
    let tokens = rp
        .exchange_code(AuthorizationCode::new(callback.code()))
        .set_pkce_verifier(verifier)
        .request_async(&rp::rp_http())
        .await
        .expect("the code is exchanged");

    let id_token = tokens.id_token().expect("an ID token");
    let verifier = rp
        .id_token_verifier()
        .set_allowed_algs([expected_alg.clone()]);
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token validates")
        .clone();
    let alg = id_token.signing_alg().expect("signing alg").clone();
    assert_eq!(alg, expected_alg);
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        &alg,
        id_token.signing_key(&verifier).expect("signing key"),
    )
    .expect("at_hash computed");
    assert_eq!(
        claims.access_token_hash(),
        Some(&expected_hash),
        "at_hash binds the access token"
    );
    Outcome {
        tokens,
        claims,
        alg,
        nonce,
    }
}

/// Checks the claims of a user's ID token and the RFC 9068 access token beside it, and userinfo.
async fn assert_user_tokens(app: &TestApp, rp: &Rp, client: &RegisteredClient, out: &Outcome) {
    let user_id: String = sqlx::query_scalar("select id from users where email = $1")
        .bind(EMAIL)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let claims = &out.claims;
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(claims.issuer().as_str(), app.issuer());
    assert_eq!(claims.audiences().len(), 1);
    assert_eq!(claims.audiences()[0].as_str(), client.id);
    assert_eq!(
        claims.authorized_party().map(|a| a.as_str()),
        Some(client.id.as_str())
    );
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(claims.email_verified(), Some(false));
    assert_eq!(
        claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some(NAME)
    );
    let now = unix_now();
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!(
        (now - 60..=now).contains(&auth_time),
        "{auth_time} vs {now}"
    );
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .expect("amr")
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(amr, ["pwd"]);

    // The access token: an RFC 9068 JWT a resource server can verify offline with the JWKS.
    let access = out.tokens.access_token().secret();
    let (header, at) = app.verify_jwt(access).await;
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256", "LATCHKEY_ACCESS_TOKEN_ALG default");
    assert_access_claims(app, &at, &user_id, &client.id);
    let scope: Vec<&str> = at["scope"].as_str().unwrap().split(' ').collect();
    for s in ["openid", "email", "profile"] {
        assert!(scope.contains(&s), "{scope:?}");
    }
    assert_eq!(at["auth_time"].as_i64(), Some(auth_time));
    assert_eq!(
        out.tokens.token_type(),
        &openidconnect::core::CoreTokenType::Bearer
    );
    let expires_in = out.tokens.expires_in().expect("expires_in").as_secs();
    assert_eq!(expires_in, 600);
    // Issuance rules (offline_access, or a first-party client) are checked in `refresh.rs`; here:
    // a refresh token, when issued, is opaque, never a JWT.
    if let Some(refresh) = out.tokens.refresh_token() {
        assert!(!refresh.secret().contains('.'), "an opaque refresh token");
    }

    // Userinfo, as the crate calls it (it also checks that `sub` matches the ID token's).
    let info: CoreUserInfoClaims = rp
        .user_info(
            out.tokens.access_token().clone(),
            Some(SubjectIdentifier::new(user_id.clone())),
        )
        .request_async(&rp::rp_http())
        .await
        .expect("userinfo answers");
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(info.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(
        info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some(NAME)
    );
}

/// The RFC 9068 claims every access token carries.
fn assert_access_claims(app: &TestApp, at: &Value, sub: &str, client_id: &str) {
    assert_eq!(at["iss"], app.issuer().as_str());
    assert_eq!(at["sub"], sub);
    assert_eq!(at["client_id"], client_id);
    let aud_ok = at["aud"] == client_id
        || at["aud"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == client_id));
    assert!(aud_ok, "aud {}", at["aud"]);
    let iat = at["iat"].as_i64().expect("iat");
    let exp = at["exp"].as_i64().expect("exp");
    let now = unix_now();
    assert!((now - 60..=now + 1).contains(&iat), "iat {iat} vs {now}");
    assert_eq!(exp - iat, 600, "LATCHKEY_ACCESS_TOKEN_TTL default");
    assert!(
        at["jti"].as_str().is_some_and(|j| j.len() >= 16),
        "jti {}",
        at["jti"]
    );
    assert!(at["scope"].is_string(), "scope {}", at["scope"]);
}

/// Unix seconds now (the server's clock is not advanced in these tests).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn confidential_client_with_client_secret_basic(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.create_person(EMAIL, NAME).await;
    let client = app.register_client(&[]).await;
    let rp = app
        .relying_party(&client)
        .await
        .set_auth_type(AuthType::BasicAuth);

    let out = code_flow(
        &app,
        &rp,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        true,
    )
    .await;

    let id_token = out.tokens.id_token().unwrap().to_string();
    let (header, _) = rp::decode_jwt(&id_token);
    assert_eq!(header["alg"], "RS256", "LATCHKEY_ID_TOKEN_ALG default");
    assert_eq!(header["typ"], "JWT");
    assert_user_tokens(&app, &rp, &client, &out).await;
}

async fn confidential_client_with_client_secret_post(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.create_person(EMAIL, NAME).await;
    let client = app.register_client(&["--first-party"]).await;
    let rp = app
        .relying_party(&client)
        .await
        .set_auth_type(AuthType::RequestBody);

    let out = code_flow(
        &app,
        &rp,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        false,
    )
    .await;

    assert_user_tokens(&app, &rp, &client, &out).await;
}

async fn public_client_with_pkce_and_no_authentication(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.create_person(EMAIL, NAME).await;
    let client = app.register_client(&["--public"]).await;
    assert!(client.secret.is_none());
    let rp = app.relying_party(&client).await;

    let out = code_flow(
        &app,
        &rp,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        true,
    )
    .await;

    assert_user_tokens(&app, &rp, &client, &out).await;
}

async fn id_token_signed_with_es256_when_the_client_registered_it(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    app.create_person(EMAIL, NAME).await;
    let client = app
        .register_client(&["--first-party", "--id-token-alg", "ES256"])
        .await;
    let rp = app.relying_party(&client).await;

    let out = code_flow(&app, &rp, CoreJwsSigningAlgorithm::EcdsaP256Sha256, false).await;

    assert_eq!(out.alg, CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    assert_user_tokens(&app, &rp, &client, &out).await;
    // A relying party that insists on the OIDC default refuses it: the alg really is ES256.
    let strict = rp
        .id_token_verifier()
        .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    let refused = out.tokens.id_token().unwrap().claims(&strict, &out.nonce);
    assert!(refused.is_err(), "an RS256-only verifier refuses it");
}

async fn id_token_signed_with_eddsa_when_the_client_registered_it(backend: Backend) {
    // An EdDSA key exists only when configured (the documented interface (README): "EdDSA when configured").
    let app = TestApp::spawn_with_own_issuer(backend, &[("LATCHKEY_ID_TOKEN_ALG", "EdDSA")]).await;
    app.create_person(EMAIL, NAME).await;
    let client = app
        .register_client(&["--first-party", "--id-token-alg", "EdDSA"])
        .await;
    let rp = app.relying_party(&client).await;

    let out = code_flow(&app, &rp, CoreJwsSigningAlgorithm::EdDsa, false).await;

    let (header, _) = rp::decode_jwt(&out.tokens.id_token().unwrap().to_string());
    assert_eq!(header["alg"], "EdDSA");
    let jwks = app.jwks().await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the signing key is published");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    // at_hash for Ed25519 uses SHA-512 (checked by code_flow through the crate).
    assert_user_tokens(&app, &rp, &client, &out).await;
}

async fn client_credentials_token_speaks_for_the_client(backend: Backend) {
    let app = TestApp::spawn_with_own_issuer(backend, &[]).await;
    let client = app
        .register_client(&[
            "--grant-type",
            "client_credentials",
            "--scope",
            "org:read",
            "--scope",
            "org:write",
        ])
        .await;
    let rp = app.relying_party(&client).await;

    let tokens = rp
        .exchange_client_credentials()
        .add_scope(Scope::new("org:read".to_owned()))
        .request_async(&rp::rp_http())
        .await
        .expect("client_credentials succeeds");

    assert!(tokens.id_token().is_none(), "no ID token without a user");
    assert!(tokens.refresh_token().is_none(), "RFC 6749 §4.4.3");
    let scopes: Vec<&str> = tokens
        .scopes()
        .expect("scope in the response")
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(scopes, ["org:read"]);
    let (header, at) = app.verify_jwt(tokens.access_token().secret()).await;
    assert_eq!(header["typ"], "at+jwt");
    assert_access_claims(&app, &at, &client.id, &client.id);
    assert_eq!(at["scope"], "org:read");
    assert!(at.get("auth_time").is_none());

    // Without a scope the client gets every scope it may have (RFC 6749 §3.3 default).
    let all = rp
        .exchange_client_credentials()
        .request_async(&rp::rp_http())
        .await
        .expect("client_credentials without scope succeeds");
    let (_, at) = app.verify_jwt(all.access_token().secret()).await;
    assert_eq!(at["scope"], "org:read org:write");
}
