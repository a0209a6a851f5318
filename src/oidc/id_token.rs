//! ID tokens (OIDC Core §2, §3.1.3.6): signed with the client's registered alg or
//! `LATCHKEY_ID_TOKEN_ALG`; JOSE `typ` is `JWT`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::accounts::User;
use crate::app::AppState;
use crate::clients::Client;
use crate::clock;
use crate::config::SigningAlg;
use crate::crypto::key_store::ID_TOKEN_TTL;
use crate::error::{AppError, Result};
use crate::oauth::access_token::OrgClaims;
use crate::oidc::claims;

/// The JOSE `typ` of our ID tokens; access tokens carry `at+jwt` instead (RFC 9068 §2.1), which keeps
/// one from being accepted as the other (RFC 8725 §3.11).
pub const ID_TOKEN_TYP: &str = "JWT";

/// The claims of an ID token we issued, whatever its `exp` (hints may be expired, OIDC Core §3.1.2.1,
/// RP-Initiated Logout 1.0 §2): signed by one of our keys, `typ` `JWT` (so an access token, `at+jwt`,
/// is refused) and `iss` ours. `None` otherwise.
pub fn verify_ours(state: &AppState, jwt: &str) -> Option<Map<String, Value>> {
    let (claims, typ) = state.keyring.verify_typed(jwt).ok()?;
    if typ.as_deref() != Some(ID_TOKEN_TYP) {
        return None;
    }
    (claims.get("iss")?.as_str()? == state.config.issuer).then_some(claims)
}

/// Everything an ID token states.
#[derive(Debug)]
pub struct IdTokenInput<'a> {
    /// The signed-in user.
    pub user: &'a User,
    /// The relying party (`aud`, `azp`, signing alg).
    pub client: &'a Client,
    /// Granted scopes (profile and email claims follow them).
    pub scope: &'a str,
    /// `nonce` from the authorization request, echoed exactly.
    pub nonce: Option<&'a str>,
    /// `auth_time`.
    pub auth_time: i64,
    /// Authentication methods (`amr`, RFC 8176).
    pub amr: &'a [String],
    /// Browser session id (`sid`).
    pub sid: Option<&'a str>,
    /// The access token issued alongside, for `at_hash`.
    pub access_token: Option<&'a str>,
    /// Organization claims.
    pub org: Option<&'a OrgClaims>,
}

/// The ID-token alg for `client`: its registered alg, else the configured default.
pub fn alg_for(state: &AppState, client: &Client) -> SigningAlg {
    client.id_token_alg.unwrap_or(state.config.id_token_alg)
}

/// OIDC Core §3.1.3.6: base64url of the left half of the hash of the access token, the hash being the
/// one of the signing alg (SHA-256 for RS256/ES256; SHA-512 for Ed25519, as certified RPs expect).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlg::EdDSA => Sha512::digest(access_token.as_bytes()).to_vec(),
        SigningAlg::RS256 | SigningAlg::ES256 => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Signs an ID token.
pub fn mint(state: &AppState, input: &IdTokenInput<'_>) -> Result<String> {
    let alg = alg_for(state, input.client);
    let key = state.keyring.active(alg).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!(
            "no active {} key for ID tokens",
            alg.as_str()
        ))
    })?;
    let now = state.clock.now();
    let mut c = Map::new();
    c.insert("iss".into(), json!(state.config.issuer));
    c.insert("sub".into(), json!(input.user.id));
    c.insert("aud".into(), json!(input.client.id));
    c.insert("azp".into(), json!(input.client.id));
    c.insert("exp".into(), json!(now + clock::secs(ID_TOKEN_TTL)));
    c.insert("iat".into(), json!(now));
    c.insert("auth_time".into(), json!(input.auth_time));
    c.insert("amr".into(), json!(input.amr));
    // OIDC Core §2: the Authentication Context Class the sign-in satisfied (two factors or one).
    c.insert("acr".into(), json!(crate::mfa::acr(input.amr)));
    if let Some(nonce) = input.nonce {
        c.insert("nonce".into(), json!(nonce));
    }
    if let Some(sid) = input.sid {
        c.insert("sid".into(), json!(sid));
    }
    if let Some(token) = input.access_token {
        c.insert("at_hash".into(), Value::String(at_hash(alg, token)));
    }
    claims::add_user_claims(&mut c, input.user, input.scope);
    if let Some(org) = input.org {
        org.add_to(&mut c);
    }
    Ok(key.sign_jwt(Some(ID_TOKEN_TYP), &c)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OIDC Core A.3 example: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" -> at_hash
        // "77QmUPtjPfzWtF2AnpK9RQ" (RS256).
        assert_eq!(
            at_hash(
                SigningAlg::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
