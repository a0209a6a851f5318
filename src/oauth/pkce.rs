//! Proof Key for Code Exchange (RFC 7636), `S256` only: `plain` offers no protection once the
//! authorization request leaks, so RFC 9700 §2.1.1 tells servers to refuse it.

use crate::crypto::tokens::{constant_time_eq, sha256_b64url};

/// RFC 7636 §4.1: a verifier is 43 to 128 unreserved characters.
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(is_unreserved)
}

/// A challenge has the same alphabet; an S256 challenge is exactly 43 characters.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(is_unreserved)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, compared in constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    constant_time_eq(
        sha256_b64url(verifier.as_bytes()).as_bytes(),
        challenge.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_verifier(verifier) && valid_challenge(challenge));
        assert!(verify_s256(verifier, challenge));
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge
        ));
        assert!(!valid_verifier("short"));
    }
}
