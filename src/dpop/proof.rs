//! Checking a DPoP proof JWT (RFC 9449 §4.3): the `DPoP` header, the JOSE header (`typ`, `alg`, a
//! public `jwk`), the signature by that key, and the claims (`jti`, `htm`, `htu`, `iat`, `nonce`,
//! `ath`). What only a server can decide (is the nonce current, was the proof seen before) is left to
//! [`super::nonce`] and [`super::store`] (the replay cache); this module is pure.

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use serde_json::{Map, Value};

use crate::crypto::keys::jwk_map_thumbprint;
use crate::crypto::tokens::{constant_time_eq, sha256_b64url};

/// The request header carrying the proof (RFC 9449 §4.1).
pub const DPOP_HEADER: &str = "dpop";
/// The JOSE `typ` of a proof (RFC 9449 §4.2).
pub const PROOF_TYP: &str = "dpop+jwt";
/// Longest proof read: a proof with an RSA-4096 key is well under 2 KiB.
const MAX_PROOF_LEN: usize = 8 * 1024;
/// Longest `jti` accepted (RFC 9449 §4.2 asks for enough entropy, not a length; a bound keeps rows
/// and hashing small).
const MAX_JTI_LEN: usize = 256;
/// A proof may be this many seconds younger than our clock (a client clock slightly ahead).
pub const MAX_FUTURE_SECS: i64 = 60;
/// A proof is accepted this many seconds after its `iat` (RFC 9449 §11.1: "a relatively brief
/// period"); the replay cache keeps it exactly as long.
pub const MAX_AGE_SECS: i64 = 300;
/// JWK members of a private key (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): a proof's `jwk` must be
/// public (RFC 9449 §4.3 item 7).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// RFC 9449 §4.3: malformed, badly signed, or not for this request: `invalid_dpop_proof`.
    Invalid(&'static str),
    /// RFC 9449 §8: no nonce, or not a current one: `use_dpop_nonce`.
    UseNonce(&'static str),
    /// Our fault (the replay cache could not be written).
    Server,
}

/// What the proof must match: this request and, at a resource server, the presented token.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method (`htm`).
    pub method: &'a str,
    /// The request's public URL without query and fragment (`htu`): the issuer and the path.
    pub url: &'a str,
    /// Now, in unix seconds.
    pub now: i64,
    /// The access token presented with the proof: `ath` must be its hash (RFC 9449 §4.3 item 11).
    pub access_token: Option<&'a str>,
    /// The access token's `cnf.jkt`: the proof's key must be that one (RFC 9449 §7.1).
    pub jkt: Option<&'a str>,
}

/// A proof whose signature and claims check out.
#[derive(Debug, Clone)]
pub struct Proof {
    /// RFC 7638 JWK SHA-256 thumbprint of the proof's key, base64url: the `jkt` tokens are bound to.
    pub jkt: String,
    /// The proof's unique id.
    pub jti: String,
    /// Its `iat`.
    pub iat: i64,
    /// Its `nonce`, if any.
    pub nonce: Option<String>,
}

/// The one `DPoP` header of a request: `Ok(None)` without one, an error for several (RFC 9449 §4.3
/// item 1) or one that is not text.
pub fn header(headers: &HeaderMap) -> Result<Option<&str>, ProofError> {
    let mut values = headers.get_all(DPOP_HEADER).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ProofError::Invalid("send exactly one DPoP header"));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| ProofError::Invalid("the DPoP header is not a JWT"))
}

/// RFC 9449 §4.3 checks 2-11, except the nonce's freshness and replay (done by the caller).
pub fn verify(proof: &str, expected: &Expected<'_>) -> Result<Proof, ProofError> {
    let invalid = ProofError::Invalid;
    if proof.len() > MAX_PROOF_LEN {
        return Err(invalid("the DPoP proof is too long"));
    }
    // Item 2: one well-formed JWS in compact form.
    let mut parts = proof.split('.');
    let (Some(encoded_header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the DPoP proof is not a compact JWS"));
    };
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(encoded_header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(invalid("the DPoP proof's header is not JSON"))?;
    // Item 4: `typ` (a media type: compared without regard to case, RFC 7515 §4.1.9).
    if !header
        .get("typ")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(PROOF_TYP))
    {
        return Err(invalid("the DPoP proof's typ is not dpop+jwt"));
    }
    // Item 5: an asymmetric algorithm we support (never `none`, never a MAC).
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .filter(|a| super::SIGNING_ALGS.contains(a))
        .ok_or(invalid("the DPoP proof's alg is not supported"))?;
    // Item 7: a public key.
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(invalid("the DPoP proof has no jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid("the DPoP proof's jwk must be a public key"));
    }
    // RFC 7638 thumbprint, as `cnf.jkt` carries it (§6.1).
    let jkt = jwk_map_thumbprint(jwk).map_err(|_| invalid("the DPoP proof's jwk is malformed"))?;
    if expected
        .jkt
        .is_some_and(|bound| !constant_time_eq(bound.as_bytes(), jkt.as_bytes()))
    {
        return Err(invalid(
            "the DPoP proof is not signed by the access token's key",
        ));
    }
    // Item 6: the signature, by that key, with the header's algorithm (which the key must suit).
    let key =
        Jwk::from_map(jwk.clone()).map_err(|_| invalid("the DPoP proof's jwk is malformed"))?;
    let verifier =
        verifier(alg, &key).ok_or(invalid("the DPoP proof's jwk does not suit its alg"))?;
    let (payload, _) = jws::deserialize_compact(proof, verifier.as_ref())
        .map_err(|_| invalid("the DPoP proof's signature does not verify"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| invalid("the DPoP proof's claims are not JSON"))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    // Item 3: the required claims.
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or(invalid("the DPoP proof needs a jti"))?;
    // Item 8: the method (case-sensitive, RFC 9110 §9.1).
    if text("htm") != Some(expected.method) {
        return Err(invalid("the DPoP proof's htm is not this request's method"));
    }
    // Item 9: the URL, without query and fragment, after syntax-based normalisation.
    if !text("htu").is_some_and(|htu| same_url(htu, expected.url)) {
        return Err(invalid("the DPoP proof's htu is not this request's URL"));
    }
    // Item 11: the hash of the access token, at a resource server.
    if let Some(token) = expected.access_token {
        let ath = text("ath").ok_or(invalid("the DPoP proof needs ath"))?;
        if !constant_time_eq(ath.as_bytes(), sha256_b64url(token.as_bytes()).as_bytes()) {
            return Err(invalid(
                "the DPoP proof's ath is not the access token's hash",
            ));
        }
    }
    // Item 11 (iat): within the window.
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(invalid("the DPoP proof needs an integer iat"))?;
    if iat > expected.now + MAX_FUTURE_SECS || iat < expected.now - MAX_AGE_SECS {
        return Err(invalid(
            "the DPoP proof's iat is outside the acceptable window",
        ));
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(invalid("the DPoP proof's nonce is not a string")),
    };
    Ok(Proof {
        jkt,
        jti: jti.to_owned(),
        iat,
        nonce,
    })
}

/// A verifier for `alg` with `key`; `None` when the key does not suit the algorithm.
fn verifier(alg: &str, key: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    Some(match alg {
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(key).ok()?),
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(key).ok()?),
        "PS256" => Box::new(jws::PS256.verifier_from_jwk(key).ok()?),
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(key).ok()?),
        _ => return None,
    })
}

/// RFC 9449 §4.3 item 9: `htu` and the request URL are equal after RFC 3986 §6.2.2 and §6.2.3
/// normalisation (case of scheme and host, default port, dot segments, as the `url` crate parses),
/// ignoring any query and fragment.
fn same_url(htu: &str, expected: &str) -> bool {
    let normal = |text: &str| {
        url::Url::parse(text).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u
        })
    };
    match (normal(htu), normal(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk: Map<String, Value> = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk_map_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn urls_compare_after_normalisation_without_query() {
        assert!(same_url(
            "HTTP://LocalHost:80/token?x=1#f",
            "http://localhost/token"
        ));
        assert!(!same_url(
            "http://localhost/token",
            "https://localhost/token"
        ));
        assert!(!same_url(
            "http://localhost/userinfo",
            "http://localhost/token"
        ));
        assert!(!same_url("not a url", "http://localhost/token"));
    }

    /// A proof by `private` (its public half in the header) for `POST https://id.example/token`.
    fn sign(alg: &str, private: &Jwk, public: &Jwk, now: i64) -> String {
        let mut header = jws::JwsHeader::new();
        header.set_token_type(PROOF_TYP);
        header.set_jwk(public.clone());
        let claims = serde_json::json!({
            "jti": "j1", "htm": "POST", "htu": "https://id.example/token", "iat": now,
        })
        .to_string();
        let signer: Box<dyn jws::JwsSigner> = match alg {
            "ES256" => Box::new(jws::ES256.signer_from_jwk(private).unwrap()),
            "RS256" => Box::new(jws::RS256.signer_from_jwk(private).unwrap()),
            "PS256" => Box::new(jws::PS256.signer_from_jwk(private).unwrap()),
            _ => Box::new(jws::EdDSA.signer_from_jwk(private).unwrap()),
        };
        jws::serialize_compact(claims.as_bytes(), &header, signer.as_ref()).unwrap()
    }

    #[test]
    fn every_advertised_algorithm_verifies_and_others_do_not() {
        use josekit::jwk::KeyPair as _;
        let now = 1_700_000_000;
        let expected = Expected {
            method: "POST",
            url: "https://id.example/token",
            now,
            access_token: None,
            jkt: None,
        };
        for alg in super::super::SIGNING_ALGS {
            let (private, public) = match alg {
                "ES256" => {
                    let pair = jws::ES256.generate_key_pair().unwrap();
                    (pair.to_jwk_private_key(), pair.to_jwk_public_key())
                }
                "RS256" | "PS256" => {
                    let pair = jws::RS256.generate_key_pair(2048).unwrap();
                    (pair.to_jwk_private_key(), pair.to_jwk_public_key())
                }
                _ => {
                    let pair = jws::EdDSA
                        .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
                        .unwrap();
                    (pair.to_jwk_private_key(), pair.to_jwk_public_key())
                }
            };
            let mut public = public;
            public.set_algorithm(alg);
            let mut private = private;
            private.set_algorithm(alg);
            let proof = verify(&sign(alg, &private, &public, now), &expected)
                .unwrap_or_else(|e| panic!("{alg}: {e:?}"));
            assert_eq!(
                proof.jkt,
                jwk_map_thumbprint(public.as_ref()).unwrap(),
                "{alg}"
            );
            assert_eq!(proof.jti, "j1");
        }
        // A MAC is not a proof of possession.
        let mut header = jws::JwsHeader::new();
        header.set_token_type(PROOF_TYP);
        let signer = jws::HS256.signer_from_bytes([7u8; 32]).unwrap();
        let mac = jws::serialize_compact(b"{}", &header, &signer).unwrap();
        assert!(matches!(
            verify(&mac, &expected),
            Err(ProofError::Invalid(_))
        ));
    }

    #[test]
    fn several_dpop_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.append(DPOP_HEADER, "a.b.c".parse().unwrap());
        headers.append(DPOP_HEADER, "d.e.f".parse().unwrap());
        assert!(matches!(header(&headers), Err(ProofError::Invalid(_))));
    }
}
