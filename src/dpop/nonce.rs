//! Server-issued DPoP nonces (RFC 9449 §8 at the token endpoint, §9 at resource servers), stateless:
//! a nonce is the HMAC of a five-minute time slot under a key derived from the key-encryption key,
//! so every process sharing the database issues and accepts the same nonces without storing any.
//! A nonce is accepted during its slot and the next one (5 to 10 minutes), which lets a client reuse
//! the last `DPoP-Nonce` it saw (§8.2) without a round trip at every slot boundary.

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::app::AppState;
use crate::crypto::tokens::{constant_time_eq, hmac_sha256, sha256};

/// The response header carrying a fresh nonce (RFC 9449 §8.1).
pub const NONCE_HEADER: &str = "dpop-nonce";
/// Length of a nonce slot in seconds.
pub const SLOT_SECS: i64 = 300;
/// Purpose label of the nonce key derived from the key-encryption key.
const KEY_PURPOSE: &str = "dpop-nonce";

/// The nonce of `slot` under `state`'s key.
fn of_slot(state: &AppState, slot: i64) -> String {
    let key = state.kek.derive(KEY_PURPOSE);
    let slot = slot.to_be_bytes();
    // HMAC with a 32-byte key does not fail in OpenSSL; should it, a hash of key and slot is still
    // something only the key's holder can compute.
    let mac = hmac_sha256(&key, &[&slot]).unwrap_or_else(|| sha256(&[&key[..], &slot].concat()));
    URL_SAFE_NO_PAD.encode(mac)
}

/// The nonce to hand out now.
pub fn current(state: &AppState) -> String {
    of_slot(state, state.clock.now().div_euclid(SLOT_SECS))
}

/// True when `nonce` is the current slot's or the previous one's (compared in constant time).
pub fn is_valid(state: &AppState, nonce: &str) -> bool {
    let slot = state.clock.now().div_euclid(SLOT_SECS);
    [slot, slot - 1]
        .into_iter()
        .any(|s| constant_time_eq(of_slot(state, s).as_bytes(), nonce.as_bytes()))
}

/// Adds `DPoP-Nonce: <current nonce>` to `response`.
pub fn attach(state: &AppState, response: &mut Response) {
    attach_value(&current(state), response);
}

/// Adds `DPoP-Nonce: nonce` to `response`.
pub fn attach_value(nonce: &str, response: &mut Response) {
    if let Ok(value) = HeaderValue::from_str(nonce) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(NONCE_HEADER), value);
    }
}
