//! Cryptography: password hashing, opaque secrets and JWS signing keys.
//!
//! Everything security-sensitive that is not protocol logic lives here so it
//! can be reviewed in one place:
//!
//! * [`password`] hashes passwords with Argon2id using the parameters of the
//!   [OWASP Password Storage Cheat Sheet] (m = 19 MiB, t = 2, p = 1), on
//!   blocking threads and with a bounded number of hashes in flight, so a burst
//!   of logins can neither stall the async runtime nor exhaust memory. Unknown
//!   users are verified against a dummy hash so response timing does not reveal
//!   which accounts exist.
//! * [`tokens`] mints 256-bit random opaque values (authorization codes,
//!   refresh tokens, session ids, …) and hashes them with SHA-256 before they
//!   are stored, so a database leak does not leak usable credentials
//!   ([RFC 6819 §5.1.4.1.3] "store hashes of tokens"). Comparisons of secrets
//!   are constant-time.
//! * [`keys`] generates and loads asymmetric signing keys for JWTs
//!   ([RFC 7515] JWS, [RFC 7518] algorithms `RS256`, `ES256`, `EdDSA` per
//!   [RFC 8037]), identifies them by their [RFC 7638] JWK thumbprint and
//!   publishes only their public halves ([RFC 7517] JWK).
//! * [`key_store`] keeps those keys in the database, their private halves
//!   sealed with AES-256-GCM under the key-encryption key ([`kek`], resolved at
//!   start by [`kek_file`]), and decides which one is active, so every process
//!   agrees.
//!
//! Errors are reported as [`CryptoError`], whose messages never contain
//! secrets (passwords, tokens or private keys).
//!
//! [OWASP Password Storage Cheat Sheet]: https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
//! [RFC 6819 §5.1.4.1.3]: https://www.rfc-editor.org/rfc/rfc6819#section-5.1.4.1.3
//! [RFC 7515]: https://www.rfc-editor.org/rfc/rfc7515
//! [RFC 7517]: https://www.rfc-editor.org/rfc/rfc7517
//! [RFC 7518]: https://www.rfc-editor.org/rfc/rfc7518
//! [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
//! [RFC 8037]: https://www.rfc-editor.org/rfc/rfc8037

pub mod kek;
pub mod kek_file;
pub mod key_seal;
pub mod key_store;
pub mod keyring;
pub mod keys;
pub mod password;
pub mod tokens;

pub use keys::{GeneratedKey, LoadedKey, generate, jwk_thumbprint, load};
pub use password::{
    MIN_PASSWORD_CHARS, Password, PasswordHasher, PasswordPolicyError, check_policy,
};
pub use tokens::{
    SecretToken, TokenHash, constant_time_eq, new_id, random_token, sha256, sha256_b64url,
};

/// Failure of a cryptographic operation.
///
/// The messages describe *what* failed, never the secret involved: no
/// password, token or private key material ever ends up in a `CryptoError`.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Computing a password hash failed (bad parameters, or the blocking task
    /// could not run).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// Every password-hashing slot stayed busy for the configured wait: the
    /// server is overloaded and the request should be retried later (503).
    #[error("the server is busy; please try again in a few seconds")]
    Busy,
    /// Generating a new signing key failed.
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    /// A stored key (private PEM or public JWK) could not be used.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Producing a JWS signature failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// Sealing or opening a value with the key-encryption key failed (wrong key, another row's
    /// value, or a damaged value); the message never contains the key or the plaintext.
    #[error("sealed value: {0}")]
    Sealing(String),
    /// A JWT is malformed, not signed by the expected key, or its signature
    /// does not verify.
    #[error("invalid JWT: {0}")]
    InvalidJwt(String),
}
