//! DPoP (RFC 9449): sender-constrained access and refresh tokens. A client proves possession of a
//! key with a signed proof JWT in the `DPoP` header; the tokens issued carry the key's thumbprint
//! (`cnf.jkt`), and a resource server accepts them only with a fresh proof by the same key.

/// JWS algorithms accepted in DPoP proofs (RFC 9449 §5.1: `dpop_signing_alg_values_supported`).
pub const SIGNING_ALGS: [&str; 3] = ["ES256", "RS256", "EdDSA"];
