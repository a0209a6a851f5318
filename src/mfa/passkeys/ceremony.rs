//! The WebAuthn relying party (WebAuthn Level 2 §5.1.3, §7 through webauthn-rs), derived from the
//! issuer: the RP ID is the issuer's host (a registrable domain: browsers refuse IP addresses as RP
//! IDs, WebAuthn L2 §5.1.4.1 step 8) and the only accepted origin is the issuer's origin.
//!
//! Also what every ceremony shares: the stable user handle of an account, the session keys of the
//! ceremonies in progress, and turning the browser's JSON answer into webauthn-rs types.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tower_sessions::Session;
use webauthn_rs::prelude::{Url, Uuid, Webauthn, WebauthnBuilder};

use crate::config::Config;
use crate::crypto::tokens::sha256;
use crate::error::{AppError, Result};
use crate::login::session::session_error;

/// How long a started ceremony waits for the browser's answer (the options' `timeout` is 5
/// minutes; a little more for the form post).
pub const CEREMONY_TTL_SECS: i64 = 6 * 60;

/// The longest `credential` JSON accepted from a form (a `none` attestation is well under 2 KiB).
pub const MAX_CREDENTIAL_LEN: usize = 16 * 1024;

/// The message of a server whose issuer cannot be a WebAuthn relying party.
pub const UNAVAILABLE: &str = "Passkeys are not available on this server: its address must be a \
     domain name (such as localhost or id.example.com), not an IP address.";

/// The relying party of `config`'s issuer, or `None` when the issuer's host is not a domain
/// name (an IP address cannot be an RP ID).
pub fn relying_party(config: &Config) -> Option<Webauthn> {
    let issuer = Url::parse(&config.issuer).ok()?;
    let host = issuer.domain()?.to_owned();
    let origin = Url::parse(&issuer.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&host, &origin)
        .ok()?
        .rp_name("Latchkey")
        .build()
        .ok()
}

/// The relying party, or the 400 page that says passkeys are not available here.
pub fn require_relying_party(config: &Config) -> Result<Webauthn> {
    relying_party(config).ok_or_else(|| AppError::invalid(UNAVAILABLE))
}

/// The WebAuthn user handle of `user_id` (L2 §5.4.3: opaque, at most 64 bytes, no personal
/// data): the account's UUIDv7 id itself, or for an id that is not a UUID a UUID made of its
/// SHA-256; stable either way, so every passkey of an account carries the same handle.
pub fn user_handle(user_id: &str) -> Uuid {
    match Uuid::parse_str(user_id) {
        Ok(uuid) => uuid,
        Err(_) => {
            let digest = sha256(user_id.as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            Uuid::from_bytes(bytes)
        }
    }
}

/// A ceremony in progress, kept in the server-side session (never sent to the browser: its
/// challenge must be used once, WebAuthn L2 §13.4.3).
pub async fn keep<T: Serialize>(session: &Session, key: &str, value: &T) -> Result<()> {
    session.insert(key, value).await.map_err(session_error)
}

/// Takes the ceremony kept under `key` out of the session: a second answer to the same challenge
/// finds nothing (replay).
pub async fn take<T: DeserializeOwned>(session: &Session, key: &str) -> Result<Option<T>> {
    session.remove::<T>(key).await.map_err(session_error)
}

/// The browser's answer of a ceremony (the `credential` form field: the JSON that
/// `static/passkeys.js` made of the `PublicKeyCredential`), or a 400 with `what` went wrong.
pub fn parse_credential<T: DeserializeOwned>(json: &str) -> Result<T> {
    if json.trim().is_empty() {
        return Err(AppError::invalid(
            "No passkey answer was sent. This page needs JavaScript to talk to your passkey.",
        ));
    }
    if json.len() > MAX_CREDENTIAL_LEN {
        return Err(AppError::invalid("The passkey answer is too long."));
    }
    serde_json::from_str(json)
        .map_err(|_| AppError::invalid("The passkey answer is not a WebAuthn credential."))
}

/// The options of a ceremony as the `data-options` attribute carries them.
pub fn options_json<T: Serialize>(options: &T) -> Result<String> {
    serde_json::to_string(options).map_err(|e| AppError::Internal(e.into()))
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn user_handle_is_the_uuid_or_a_stable_digest() {
        let id = "0190b7a4-1c2d-7e3f-8a9b-0c1d2e3f4a5b";
        assert_eq!(user_handle(id).hyphenated().to_string(), id);
        assert_eq!(user_handle("not-a-uuid"), user_handle("not-a-uuid"));
        assert_ne!(user_handle("not-a-uuid"), user_handle("other"));
    }

    #[test]
    fn forged_answers_are_refused() {
        type Reg = webauthn_rs::prelude::RegisterPublicKeyCredential;
        assert!(parse_credential::<Reg>("").is_err());
        assert!(parse_credential::<Reg>("{\"id\":1}").is_err());
        assert!(parse_credential::<Reg>(&"x".repeat(MAX_CREDENTIAL_LEN + 1)).is_err());
    }
}
