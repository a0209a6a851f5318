//! DPoP (RFC 9449): sender-constrained access and refresh tokens. A client proves possession of a
//! key with a signed proof JWT in the `DPoP` header; the tokens issued carry the key's thumbprint
//! (`cnf.jkt`), and a resource server accepts them only with a fresh proof by the same key.
//!
//! * [`proof`]: the proof JWT itself (§4.3), pure;
//! * [`nonce`]: stateless server nonces (§8, §9) every process accepts;
//! * [`store`]: the replay cache (§11.1), one row per accepted proof, shared by every process;
//! * [`resource`]: the resource-server side (§7) for `/userinfo` and the management API.
//!
//! The token endpoint requires a nonce (§8); resource servers validate one when sent but do not
//! require it (the `ath` and `iat` window already bind a proof to one token and a short time, and
//! the replay cache makes it single-use).

pub mod nonce;
pub mod proof;
pub mod resource;
pub mod store;

use axum::http::HeaderMap;

use crate::app::AppState;
use crate::crypto::tokens::{TokenHash, constant_time_eq};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::routes;
use proof::{Expected, Proof, ProofError};

/// JWS algorithms accepted in DPoP proofs (RFC 9449 §5.1: `dpop_signing_alg_values_supported`):
/// the asymmetric ones josekit verifies.
pub const SIGNING_ALGS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];

/// Whether a proof must carry one of our nonces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoncePolicy {
    /// No nonce (or a stale one) is `use_dpop_nonce` (the token endpoint, §8).
    Required,
    /// A nonce is checked when present (resource servers, §9).
    IfPresent,
}

/// Verifies `jwt` against `expected`, checks its nonce under `policy`, and records it in the replay
/// cache: a proof is accepted once, by whichever process sees it first (§11.1).
pub async fn accept(
    state: &AppState,
    jwt: &str,
    expected: &Expected<'_>,
    policy: NoncePolicy,
) -> Result<Proof, ProofError> {
    let proof = proof::verify(jwt, expected)?;
    match (proof.nonce.as_deref(), policy) {
        (None, NoncePolicy::Required) => {
            return Err(ProofError::UseNonce("a DPoP nonce is required"));
        }
        (Some(n), _) if !nonce::is_valid(state, n) => {
            return Err(ProofError::UseNonce("the DPoP nonce is stale or unknown"));
        }
        _ => {}
    }
    // Scoped by key: two clients choosing the same jti do not collide. Only the hash is kept.
    let key = TokenHash::of(&format!("{}:{}", proof.jkt, proof.jti));
    match store::record_proof(
        &state.db.pool,
        key.as_str(),
        proof.iat + proof::MAX_AGE_SECS,
    )
    .await
    {
        Ok(true) => Ok(proof),
        Ok(false) => Err(ProofError::Invalid("the DPoP proof was already used")),
        Err(e) => {
            tracing::error!(error = %e, "recording a DPoP proof failed");
            Err(ProofError::Server)
        }
    }
}

/// The token endpoint's proof (§5): `None` without a `DPoP` header, the key's thumbprint for a valid
/// one (htm `POST`, htu the issuer's token endpoint, our nonce required).
pub async fn token_request_jkt(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, OAuthError> {
    let Some(jwt) = proof::header(headers).map_err(oauth_error)? else {
        return Ok(None);
    };
    let url = format!("{}{}", state.config.issuer, routes::TOKEN);
    let expected = Expected {
        method: "POST",
        url: &url,
        now: state.clock.now(),
        access_token: None,
        jkt: None,
    };
    let proof = accept(state, jwt, &expected, NoncePolicy::Required)
        .await
        .map_err(oauth_error)?;
    Ok(Some(proof.jkt))
}

/// A refused proof as the token endpoint answers it (§5.2, §8).
fn oauth_error(error: ProofError) -> OAuthError {
    match error {
        ProofError::Invalid(d) => OAuthError::new(ErrorCode::InvalidDpopProof, d),
        ProofError::UseNonce(d) => OAuthError::new(ErrorCode::UseDpopNonce, d),
        ProofError::Server => OAuthError::server_error("the DPoP replay cache failed"),
    }
}

/// §5: a refresh-token family bound to a key (a public client's, born with a proof) is refreshed
/// only with a proof by that key: none is `invalid_dpop_proof`, another key's `invalid_grant` (the
/// refresh token is not this key's). An unbound family needs nothing.
pub fn check_family_binding(
    bound: Option<&str>,
    presented: Option<&str>,
) -> Result<(), OAuthError> {
    match (bound, presented) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this refresh token is bound to a DPoP key: send a DPoP proof by that key",
        )),
        (Some(bound), Some(presented))
            if constant_time_eq(bound.as_bytes(), presented.as_bytes()) =>
        {
            Ok(())
        }
        (Some(_), Some(_)) => Err(OAuthError::invalid_grant(
            "this refresh token is bound to another DPoP key",
        )),
    }
}
