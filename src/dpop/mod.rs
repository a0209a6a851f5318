//! DPoP (RFC 9449): sender-constrained access and refresh tokens. A client proves possession of a
//! key with a signed proof JWT in the `DPoP` header; the tokens issued carry the key's thumbprint
//! (`cnf.jkt`), and a resource server accepts them only with a fresh proof by the same key.
//!
//! * [`proof`]: the proof JWT itself (§4.3), pure;
//! * [`nonce`]: stateless server nonces (§8, §9) every process accepts;
//! * [`store`]: the replay cache (§11.1), one row per accepted proof, shared by every process;
//! * [`resource`]: the resource-server side (§7) for `/userinfo` and the management API.
//!
//! The token endpoint and the pushed authorization request endpoint require a nonce (§8);
//! resource servers validate one when sent but do not require it (the `ath` and `iat` window
//! already bind a proof to one token and a short time, and the replay cache makes it single-use).
//!
//! An authorization code may be bound to a key too (§10): by the `dpop_jkt` authorization request
//! parameter, or by a proof sent to `/par` (§10.1); it is then redeemed only with a proof by that key
//! ([`check_binding`]).

pub mod nonce;
pub mod proof;
pub mod resource;
pub mod store;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::crypto::tokens::{TokenHash, constant_time_eq};
use crate::oauth::error::{ErrorCode, OAuthError};
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
    // One write, queued behind this process's other SQLite writes like every single write (`db`).
    let _gate = state.db.write_gate().await;
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

/// The proof of a request to one of our OAuth endpoints: the token endpoint (§5) and the pushed
/// authorization request endpoint (§10.1). `None` without a `DPoP` header, the key's thumbprint for
/// a valid one (htm `POST`, htu the issuer and `path`, our nonce required, §8).
pub async fn request_jkt(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Result<Option<String>, OAuthError> {
    let Some(jwt) = proof::header(headers).map_err(oauth_error)? else {
        return Ok(None);
    };
    let url = format!("{}{}", state.config.issuer, path);
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

/// The answer of an endpoint taking proofs under [`NoncePolicy::Required`] (§8): to a request with
/// a `DPoP` header, success or error, a fresh `DPoP-Nonce`, so that the client learns the nonce for
/// its next proof from every answer.
pub fn answer<T: IntoResponse>(
    state: &AppState,
    headers: &HeaderMap,
    result: Result<T, OAuthError>,
) -> Response {
    let nonce = headers
        .contains_key(proof::DPOP_HEADER)
        .then(|| nonce::current(state));
    match result {
        Ok(answer) => {
            let mut response = answer.into_response();
            if let Some(nonce) = &nonce {
                nonce::attach_value(nonce, &mut response);
            }
            response
        }
        Err(error) => error.with_dpop_nonce(nonce).into_response(),
    }
}

/// A refused proof as the token endpoint answers it (§5.2, §8).
fn oauth_error(error: ProofError) -> OAuthError {
    match error {
        ProofError::Invalid(d) => OAuthError::new(ErrorCode::InvalidDpopProof, d),
        ProofError::UseNonce(d) => OAuthError::new(ErrorCode::UseDpopNonce, d),
        ProofError::Server => OAuthError::server_error("the DPoP replay cache failed"),
    }
}

/// What a key binding holds, named in its refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A refresh-token family (§5: a public client's, born with a proof).
    RefreshToken,
    /// An authorization code whose request named `dpop_jkt` or was pushed with a proof (§10).
    AuthorizationCode,
}

impl Bound {
    fn noun(self) -> &'static str {
        match self {
            Bound::RefreshToken => "refresh token",
            Bound::AuthorizationCode => "authorization code",
        }
    }
}

/// A grant of something bound to a key's thumbprint is made only with a proof by that key: none is
/// `invalid_dpop_proof`, another key's `invalid_grant` (§5 for refresh tokens; §10: "the
/// authorization server MUST ensure that the DPoP proof … uses the same key" as `dpop_jkt`). An
/// unbound one needs nothing.
pub fn check_binding(
    what: Bound,
    bound: Option<&str>,
    presented: Option<&str>,
) -> Result<(), OAuthError> {
    match (bound, presented) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            format!(
                "this {} is bound to a DPoP key: send a DPoP proof by that key",
                what.noun()
            ),
        )),
        (Some(bound), Some(presented))
            if constant_time_eq(bound.as_bytes(), presented.as_bytes()) =>
        {
            Ok(())
        }
        (Some(_), Some(_)) => Err(OAuthError::invalid_grant(format!(
            "this {} is bound to another DPoP key",
            what.noun()
        ))),
    }
}

/// Length of a base64url (unpadded) SHA-256 digest: 32 bytes in 43 characters.
const THUMBPRINT_LEN: usize = 43;

/// True when `value` can be a JWK SHA-256 thumbprint as `dpop_jkt` carries it (§10: "the base64url
/// encoding of the JWK SHA-256 Thumbprint", RFC 7638): 43 characters of the base64url alphabet.
pub fn is_thumbprint(value: &str) -> bool {
    value.len() == THUMBPRINT_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbprint_is_43_base64url_characters() {
        let jkt = crate::crypto::tokens::sha256_b64url(b"any key");
        assert!(is_thumbprint(&jkt));
        assert!(!is_thumbprint(&format!("{jkt}=")));
        assert!(!is_thumbprint(&jkt[1..]));
        assert!(!is_thumbprint(&format!("+{}", &jkt[1..])));
        assert!(!is_thumbprint(&format!("~{}", &jkt[1..])));
        assert!(!is_thumbprint(""));
    }

    #[test]
    fn a_binding_names_what_is_bound() {
        let (a, b) = (Some("a"), Some("b"));
        assert!(check_binding(Bound::AuthorizationCode, None, None).is_ok());
        assert!(check_binding(Bound::AuthorizationCode, None, a).is_ok());
        assert!(check_binding(Bound::AuthorizationCode, a, a).is_ok());
        let missing = check_binding(Bound::AuthorizationCode, a, None).unwrap_err();
        assert_eq!(missing.code, ErrorCode::InvalidDpopProof);
        assert!(missing.description.contains("authorization code"));
        let other = check_binding(Bound::RefreshToken, a, b).unwrap_err();
        assert_eq!(other.code, ErrorCode::InvalidGrant);
        assert!(other.description.contains("refresh token"));
    }
}
