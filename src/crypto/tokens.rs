//! Random opaque secrets, stored only as hashes, and small hashing helpers.
//!
//! Authorization codes, refresh tokens, session ids, e-mail verification links
//! and similar bearer values are opaque random strings:
//!
//! * **256 bits from the OS CSPRNG.** [RFC 6749 §10.10] requires that guessing
//!   a token be infeasible (≤ 2⁻¹²⁸, and [RFC 6819 §5.1.4.2.2] recommends
//!   ≥ 128 bits); 256 bits leave a wide margin. They are encoded base64url
//!   without padding ([RFC 4648 §5]), so they are URL- and header-safe.
//! * **Stored only as SHA-256.** [RFC 6819 §5.1.4.1.3] recommends storing token
//!   hashes rather than the tokens, so a database dump yields nothing usable.
//!   Because the input already has 256 bits of entropy, a fast unsalted hash is
//!   enough (no password-hash stretching needed), and it makes lookups by hash
//!   possible.
//! * **Constant-time comparison** of secrets ([`constant_time_eq`]) so that
//!   comparison timing leaks nothing about the expected value.
//! * **Identifiers** are UUIDv7 ([RFC 9562]): unique, index-friendly, and not
//!   sequential integers that would reveal counts or invite enumeration.
//!
//! [`sha256_b64url`] also serves PKCE `S256` ([RFC 7636 §4.2]) and
//! `at_hash`/`c_hash`-style values (OpenID Connect Core §3.1.3.6).
//!
//! [RFC 4648 §5]: https://www.rfc-editor.org/rfc/rfc4648#section-5
//! [RFC 6749 §10.10]: https://www.rfc-editor.org/rfc/rfc6749#section-10.10
//! [RFC 6819 §5.1.4.1.3]: https://www.rfc-editor.org/rfc/rfc6819#section-5.1.4.1.3
//! [RFC 6819 §5.1.4.2.2]: https://www.rfc-editor.org/rfc/rfc6819#section-5.1.4.2.2
//! [RFC 7636 §4.2]: https://www.rfc-editor.org/rfc/rfc7636#section-4.2
//! [RFC 9562]: https://www.rfc-editor.org/rfc/rfc9562

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Number of random bytes in a [`random_token`] (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// Generates a fresh secret: 32 bytes from the OS CSPRNG, base64url without
/// padding (43 characters).
pub fn random_token() -> SecretToken {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretToken(URL_SAFE_NO_PAD.encode(bytes))
}

/// A bearer secret in plaintext, kept out of logs.
///
/// Hand it to the client once; persist only [`SecretToken::hash`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token received from a client (or generated elsewhere).
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// Returns the plaintext token; call only where it must leave the server.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the plaintext token.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// The SHA-256 hash to store and look the token up by.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

/// Lowercase hexadecimal SHA-256 of a token's UTF-8 bytes (64 characters):
/// the only form in which opaque tokens are stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// Hashes a token string.
    pub fn of(s: &str) -> TokenHash {
        TokenHash(hex_lower(&sha256(s.as_bytes())))
    }

    /// Wraps a hash read back from storage (not validated).
    pub fn from_hex(hex: String) -> TokenHash {
        TokenHash(hex)
    }

    /// The hex string, for storage and lookups.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Unwraps the hex string.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Compares two byte strings in time independent of their contents.
///
/// Different lengths return `false` (the length is not considered secret);
/// equal lengths are compared without early exit, using `subtle`.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts` under `key`, through OpenSSL; `None` only
/// if OpenSSL itself fails, which callers treat as "no valid MAC".
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;
    let key = PKey::hmac(key).ok()?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key).ok()?;
    for part in parts {
        signer.update(part).ok()?;
    }
    signer.sign_to_vec().ok()?.try_into().ok()
}

/// SHA-256 digest of `data`, base64url-encoded without padding (43 characters),
/// as used by PKCE `S256` (RFC 7636 §4.2) and JWK thumbprints (RFC 7638).
pub fn sha256_b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sha256(data))
}

/// A new unique identifier: a hyphenated UUIDv7 (time-ordered, 74 random
/// bits), never a sequential integer.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn random_tokens_are_43_chars_and_distinct() {
        let tokens: HashSet<String> = (0..1000).map(|_| random_token().into_inner()).collect();
        assert_eq!(tokens.len(), 1000);
        for t in &tokens {
            assert_eq!(t.len(), 43);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }

    #[test]
    fn secret_token_debug_is_redacted() {
        let t = random_token();
        let dbg = format!("{t:?}");
        assert_eq!(dbg, "SecretToken(***)");
        assert!(!dbg.contains(t.expose()));
    }

    #[test]
    fn token_hash_known_vector() {
        // FIPS 180-2 test vector for SHA-256("abc").
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(TokenHash::of("abc").as_str(), expected);
        assert_eq!(SecretToken::new("abc".into()).hash(), TokenHash::of("abc"));
        assert_eq!(TokenHash::of("abc").to_string(), expected);
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn sha256_b64url_pkce_vector() {
        // RFC 7636 Appendix B.
        assert_eq!(
            sha256_b64url(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn ids_are_uuid_v7() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(a.len(), 36);
    }
}
