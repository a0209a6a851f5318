//! The key-encryption key (KEK): the one secret that seals what a copy of the database must not
//! reveal (signing private keys, TOTP secrets, upstream client secrets), and from which the keys of
//! other server-side secrets are derived (the signature of the CSRF cookie).
//!
//! Every process sharing a database must use the same KEK. Sub-keys are derived with HMAC-SHA256
//! over a fixed purpose label (a one-step KDF in the spirit of NIST SP 800-108), so that a key used
//! for one purpose reveals nothing about the KEK or the keys of other purposes.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

use super::CryptoError;
use super::tokens::{hmac_sha256, sha256};

/// Length of the KEK and of every derived key, in bytes (AES-256, HMAC-SHA256).
pub const KEK_LEN: usize = 32;
/// Prefix of a value sealed by [`KeyEncryptionKey::seal`], version 1: AES-256-GCM.
pub const SEALED_V1_PREFIX: &str = "v1:";
/// AES-GCM nonce length: 96 bits, the size NIST SP 800-38D §8.2.2 recommends for random nonces.
const NONCE_LEN: usize = 12;
/// AES-GCM tag length: the full 128 bits (NIST SP 800-38D §5.2.1.2).
const TAG_LEN: usize = 16;

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
        let label = format!("latchkey/{purpose}");
        // HMAC with a 32-byte key does not fail in OpenSSL; should it, a plain SHA-256 of key and
        // label still gives a key only the KEK's holder can compute.
        hmac_sha256(&self.0, &[label.as_bytes()])
            .unwrap_or_else(|| sha256(&[&self.0[..], label.as_bytes()].concat()))
    }
}

impl KeyEncryptionKey {
    /// Parses the configured text form: base64 of exactly 32 bytes, standard or URL-safe alphabet,
    /// padding optional, surrounding whitespace ignored. The error never echoes the text.
    pub fn from_base64(text: &str) -> Result<KeyEncryptionKey, String> {
        const EXPECTED: &str =
            "expected base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)";
        let normalized: String = text
            .trim()
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        let bytes = STANDARD_NO_PAD
            .decode(normalized.as_bytes())
            .map_err(|_| EXPECTED.to_owned())?;
        let bytes: [u8; KEK_LEN] = bytes.try_into().map_err(|_| EXPECTED.to_owned())?;
        Ok(KeyEncryptionKey(bytes))
    }

    /// The text form (standard base64 with padding), for the key file and `keys rewrap` only.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Seals `plaintext` for storage: AES-256-GCM under the sub-key of `purpose`, a fresh random
    /// 96-bit nonce, and `aad` (e.g. the row's id) as associated data so a sealed value copied into
    /// another row does not open (NIST SP 800-38D). Returns `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, purpose: &str, aad: &[u8], plaintext: &[u8]) -> Result<String, CryptoError> {
        let failed = |e: openssl::error::ErrorStack| CryptoError::Sealing(e.to_string());
        let key = self.derive(purpose);
        let mut nonce = [0u8; NONCE_LEN];
        openssl::rand::rand_bytes(&mut nonce).map_err(failed)?;
        let mut tag = [0u8; TAG_LEN];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &key,
            Some(&nonce),
            aad,
            plaintext,
            &mut tag,
        )
        .map_err(failed)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out.extend_from_slice(&tag);
        Ok(format!("{SEALED_V1_PREFIX}{}", STANDARD.encode(out)))
    }

    /// Opens a value made by [`KeyEncryptionKey::seal`] with the same `purpose` and `aad`. Fails
    /// (without detail, as AES-GCM gives none) for another key, another `aad`, or any change.
    pub fn open(&self, purpose: &str, aad: &[u8], sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let not_ours = || CryptoError::Sealing("sealed value does not open with this key".into());
        let body = sealed
            .strip_prefix(SEALED_V1_PREFIX)
            .ok_or_else(|| CryptoError::Sealing("not a sealed value (no v1: prefix)".into()))?;
        let raw = STANDARD
            .decode(body.trim())
            .map_err(|_| CryptoError::Sealing("sealed value is not base64".into()))?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Sealing("sealed value is too short".into()));
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.derive(purpose),
            Some(nonce),
            aad,
            ciphertext,
            tag,
        )
        .map_err(|_| not_ours())
    }

    /// Whether `value` is in a sealed format (as opposed to legacy plaintext).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(SEALED_V1_PREFIX)
    }
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(***)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
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

    #[test]
    fn base64_forms_are_accepted_and_wrong_lengths_refused() {
        let bytes: [u8; KEK_LEN] = std::array::from_fn(|i| (i * 9 + 250) as u8);
        let standard = STANDARD.encode(bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        assert!(standard.contains('+') || standard.contains('/'));
        for text in [
            standard.clone(),
            url,
            format!("{standard}\n"),
            standard.replace('=', ""),
        ] {
            let kek = KeyEncryptionKey::from_base64(&text).unwrap();
            assert_eq!(kek.bytes(), &bytes);
        }
        assert_eq!(KeyEncryptionKey::from_bytes(bytes).to_base64(), standard);
        for bad in [
            "",
            "not base64!",
            &STANDARD.encode([1u8; 31]),
            &STANDARD.encode([1u8; 33]),
        ] {
            let e = KeyEncryptionKey::from_base64(bad).unwrap_err();
            assert!(e.contains("32 bytes"), "{e}");
        }
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_purpose_and_aad() {
        let kek = KeyEncryptionKey::ephemeral();
        let a = kek.seal("p", b"kid-1", b"secret").unwrap();
        let b = kek.seal("p", b"kid-1", b"secret").unwrap();
        assert!(a.starts_with("v1:") && KeyEncryptionKey::is_sealed(&a));
        assert_ne!(a, b, "a fresh nonce every time");
        assert!(!a.contains("secret"));
        assert_eq!(kek.open("p", b"kid-1", &a).unwrap(), b"secret");
        assert!(kek.open("p", b"kid-2", &a).is_err(), "another row");
        assert!(kek.open("q", b"kid-1", &a).is_err(), "another purpose");
        assert!(
            KeyEncryptionKey::ephemeral()
                .open("p", b"kid-1", &a)
                .is_err()
        );
        let mut tampered = a.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(kek.open("p", b"kid-1", &tampered).is_err());
        assert!(kek.open("p", b"kid-1", "v1:AAAA").is_err());
        assert!(
            kek.open("p", b"kid-1", "-----BEGIN PRIVATE KEY-----")
                .is_err()
        );
    }
}
