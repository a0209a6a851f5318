//! The logout token (Back-Channel Logout 1.0 §2.4): a JWT signed like the client's ID tokens (its
//! `id_token_alg`, else `LATCHKEY_ID_TOKEN_ALG`, §2.6: "the same way as ID Tokens"), with the JOSE
//! `typ` `logout+jwt` (§2.4, RFC 8725 §3.11: it cannot pass for an ID token or an access token).

use serde_json::{Map, json};

use crate::app::AppState;
use crate::clients::Client;
use crate::crypto::tokens::new_id;
use crate::error::{AppError, Result};
use crate::oidc::id_token::alg_for;

/// The JOSE `typ` of logout tokens (§2.4).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// The member of `events` that makes a JWT a logout token (§2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid: §2.4 recommends "at most two minutes".
pub const LOGOUT_TOKEN_TTL_SECS: i64 = 120;

/// Signs the logout token telling `client` that session `sid` of `sub` ended. Claims: `iss`, `aud`
/// (the client), `iat`, `exp`, `jti` (fresh for every token), `sub`, `sid` and `events`; never a
/// `nonce` (§2.4 forbids it, so that a logout token cannot be used as an ID token).
pub fn sign(state: &AppState, client: &Client, sub: &str, sid: &str, now: i64) -> Result<String> {
    let alg = alg_for(state, client);
    let key = state.keyring.active(alg).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!(
            "no active {} key for logout tokens",
            alg.as_str()
        ))
    })?;
    let mut c = Map::new();
    c.insert("iss".into(), json!(state.config.issuer));
    c.insert("aud".into(), json!(client.id));
    c.insert("iat".into(), json!(now));
    c.insert("exp".into(), json!(now + LOGOUT_TOKEN_TTL_SECS));
    c.insert("jti".into(), json!(new_id()));
    c.insert("sub".into(), json!(sub));
    c.insert("sid".into(), json!(sid));
    c.insert("events".into(), json!({ LOGOUT_EVENT: {} }));
    Ok(key.sign_jwt(Some(LOGOUT_TOKEN_TYP), &c)?)
}
