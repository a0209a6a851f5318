//! The key-encryption key (KEK): the one secret that seals what a copy of the database must not
//! reveal (signing private keys, TOTP secrets, upstream client secrets), and from which the keys of
//! other server-side secrets are derived (the signature of the CSRF cookie).
//!
//! Every process sharing a database must use the same KEK. Sub-keys are derived with HMAC-SHA256
//! over a fixed purpose label (a one-step KDF in the spirit of NIST SP 800-108), so that a key used
//! for one purpose reveals nothing about the KEK or the keys of other purposes.

use std::fmt;

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// Length of the KEK and of every derived key, in bytes (AES-256, HMAC-SHA256).
pub const KEK_LEN: usize = 32;

/// The key-encryption key; `Debug` never shows it.
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; KEK_LEN]);

impl KeyEncryptionKey {
    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; KEK_LEN]) -> KeyEncryptionKey {
        KeyEncryptionKey(bytes)
    }

    /// A random key that lives only as long as this process (tests that need no shared key).
    pub fn ephemeral() -> KeyEncryptionKey {
        let mut bytes = [0u8; KEK_LEN];
        rand::Rng::fill(&mut rand::thread_rng(), &mut bytes[..]);
        KeyEncryptionKey(bytes)
    }

    /// The raw key, for the sealing code of `crypto` only (never log or store it).
    pub fn bytes(&self) -> &[u8; KEK_LEN] {
        &self.0
    }

    /// The key for one `purpose` (a fixed label such as `"csrf-cookie"`): HMAC-SHA256(KEK,
    /// "latchkey/" + purpose).
    pub fn derive(&self, purpose: &str) -> [u8; KEK_LEN] {
        let mut out = [0u8; KEK_LEN];
        let label = format!("latchkey/{purpose}");
        // HMAC with a 32-byte key cannot fail in OpenSSL; should it, the derived key stays all
        // zero only if every step failed, so fall back to a plain SHA-256 of key and label.
        let mac = PKey::hmac(&self.0)
            .and_then(|key| {
                let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
                signer.update(label.as_bytes())?;
                signer.sign_to_vec()
            })
            .ok();
        match mac {
            Some(mac) if mac.len() == KEK_LEN => out.copy_from_slice(&mac),
            _ => {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update(self.0);
                h.update(label.as_bytes());
                out.copy_from_slice(&h.finalize());
            }
        }
        out
    }
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_and_are_stable() {
        let kek = KeyEncryptionKey::from_bytes([7u8; KEK_LEN]);
        assert_eq!(kek.derive("csrf-cookie"), kek.derive("csrf-cookie"));
        assert_ne!(kek.derive("csrf-cookie"), kek.derive("other"));
        assert_ne!(kek.derive("csrf-cookie"), [7u8; KEK_LEN]);
        assert_eq!(format!("{kek:?}"), "KeyEncryptionKey(***)");
    }
}
