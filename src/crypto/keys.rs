//! JWS signing keys: generation, loading, signing and verifying compact JWTs.
//!
//! * **Algorithms** ([RFC 7518 §3.1], [RFC 8037]): `RS256` uses an RSA 2048-bit
//!   key (the minimum allowed by RFC 7518 §3.3, and the one algorithm every
//!   OpenID Connect relying party must support), `ES256` a P-256 key
//!   (RFC 7518 §3.4), `EdDSA` an Ed25519 key (RFC 8037 §3.1).
//! * **Key ids are [RFC 7638] JWK thumbprints**: SHA-256 over the canonical
//!   JSON of the public key's required members. They are derived from the key
//!   itself, stable, collision-free in practice, and reveal nothing else.
//! * **Only public halves are published** ([RFC 7517 §4–6]): the public JWK
//!   built here contains the required public members plus `kid`, `alg` and
//!   `use: "sig"`, by construction and never any private member.
//! * **Hot path.** ID tokens and [RFC 9068] access tokens are signed on every
//!   token response, so [`load`] parses the key once and [`LoadedKey`] keeps
//!   the josekit signer and pre-encoded protected headers; [`LoadedKey::sign_jwt`]
//!   then only serializes the claims, base64url-encodes and signs.
//! * **Verification** ([RFC 7515 §5.2]) checks that the header `alg` and `kid`
//!   match this key (so `alg: none` or algorithm confusion is impossible),
//!   rejects any `crit` extension, and checks the signature. Validating claims
//!   (`iss`, `aud`, `exp`, …) is the caller's job.
//!
//! [RFC 7515 §5.2]: https://www.rfc-editor.org/rfc/rfc7515#section-5.2
//! [RFC 7517 §4–6]: https://www.rfc-editor.org/rfc/rfc7517#section-4
//! [RFC 7518 §3.1]: https://www.rfc-editor.org/rfc/rfc7518#section-3.1
//! [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
//! [RFC 8037]: https://www.rfc-editor.org/rfc/rfc8037
//! [RFC 9068]: https://www.rfc-editor.org/rfc/rfc9068

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::{Jwk, KeyPair as _};
use josekit::jws::{self, JwsSigner, JwsVerifier};
use serde_json::{Map, Value};

use super::CryptoError;
use super::tokens::sha256_b64url;
use crate::config::SigningAlg;

/// RSA modulus size for newly generated `RS256` keys.
pub const RSA_BITS: u32 = 2048;

/// JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2,
/// RFC 8037 §2); they must never appear in a published key.
pub const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A freshly generated signing key, ready to be stored.
#[derive(Clone)]
pub struct GeneratedKey {
    /// RFC 7638 thumbprint of the public key (SHA-256, base64url).
    pub kid: String,
    /// The algorithm the key is for.
    pub alg: SigningAlg,
    /// The private key, PKCS#8 PEM. Secret: store encrypted or access-controlled.
    pub private_pem: String,
    /// The public JWK (`kty`, key members, `kid`, `alg`, `use`), safe to publish.
    pub public_jwk: Value,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_pem", &"***")
            .field("public_jwk", &self.public_jwk)
            .finish()
    }
}

/// Generates a new key for `alg`: RSA 2048 for `RS256`, P-256 for `ES256`,
/// Ed25519 for `EdDSA`.
pub fn generate(alg: SigningAlg) -> Result<GeneratedKey, CryptoError> {
    let gen_err = |e: josekit::JoseError| CryptoError::KeyGeneration(e.to_string());
    let (pem, public) = match alg {
        SigningAlg::RS256 => {
            let kp = jws::RS256.generate_key_pair(RSA_BITS).map_err(gen_err)?;
            (kp.to_pem_private_key(), kp.to_jwk_public_key())
        }
        SigningAlg::ES256 => {
            let kp = jws::ES256.generate_key_pair().map_err(gen_err)?;
            (kp.to_pem_private_key(), kp.to_jwk_public_key())
        }
        SigningAlg::EdDSA => {
            let kp = jws::EdDSA
                .generate_key_pair(josekit::jwk::Ed25519)
                .map_err(gen_err)?;
            (kp.to_pem_private_key(), kp.to_jwk_public_key())
        }
    };
    let private_pem = String::from_utf8(pem)
        .map_err(|_| CryptoError::KeyGeneration("private key PEM is not UTF-8".to_owned()))?;
    let required = required_members(public.as_ref()).map_err(CryptoError::KeyGeneration)?;
    let kid = thumbprint_of(&required);
    let mut jwk = required;
    jwk.insert("kid".to_owned(), Value::String(kid.clone()));
    jwk.insert("alg".to_owned(), Value::String(alg.as_str().to_owned()));
    jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
    Ok(GeneratedKey {
        kid,
        alg,
        private_pem,
        public_jwk: Value::Object(jwk),
    })
}

/// Computes the RFC 7638 thumbprint (SHA-256, base64url) of a JWK.
///
/// Only the required public members take part (`RSA`: `e`, `kty`, `n`;
/// `EC`: `crv`, `kty`, `x`, `y`; `OKP`: `crv`, `kty`, `x`), in lexicographic
/// order and without whitespace, so the result is the same for the public and
/// the private form of a key and ignores `kid`, `alg`, `use`, ….
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, CryptoError> {
    let map = jwk
        .as_object()
        .ok_or_else(|| CryptoError::InvalidKey("JWK is not a JSON object".to_owned()))?;
    jwk_map_thumbprint(map)
}

/// [`jwk_thumbprint`] of a JWK already read as a JSON object (a DPoP proof's `jwk` header).
pub fn jwk_map_thumbprint(jwk: &Map<String, Value>) -> Result<String, CryptoError> {
    let required = required_members(jwk).map_err(CryptoError::InvalidKey)?;
    Ok(thumbprint_of(&required))
}

/// The `kid` of a compact JWS's protected header, without verifying anything:
/// for choosing which [`LoadedKey`] should verify it.
pub fn peek_kid(jwt: &str) -> Option<String> {
    let (header, _) = jwt.split_once('.')?;
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    match header.get("kid") {
        Some(Value::String(kid)) => Some(kid.clone()),
        _ => None,
    }
}

/// Required members of a public key per RFC 7638 §3.2, in lexicographic order.
fn required_members(jwk: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let kty = match jwk.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        _ => return Err("JWK has no string \"kty\"".to_owned()),
    };
    let names: &[&str] = match kty {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        other => return Err(format!("unsupported JWK key type {other:?}")),
    };
    let mut out = Map::new();
    for &name in names {
        match jwk.get(name) {
            Some(Value::String(v)) => out.insert(name.to_owned(), Value::String(v.clone())),
            _ => return Err(format!("JWK member {name:?} is missing or not a string")),
        };
    }
    Ok(out)
}

/// Thumbprint of the output of [`required_members`]. The canonical JSON is
/// written by hand so member order never depends on serde_json features.
fn thumbprint_of(required: &Map<String, Value>) -> String {
    let mut names: Vec<&String> = required.keys().collect();
    names.sort();
    let mut json = String::from("{");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&Value::String((*name).clone()).to_string());
        json.push(':');
        json.push_str(&required[name.as_str()].to_string());
    }
    json.push('}');
    sha256_b64url(json.as_bytes())
}

/// A signing key ready for use: parsed once, then used for every token.
///
/// The josekit signer and verifier traits have `Send + Sync` as supertraits,
/// so a `LoadedKey` can be shared (e.g. in an `Arc`) across tasks.
pub struct LoadedKey {
    /// Key id, written into every header this key signs.
    pub kid: String,
    /// The algorithm, written into every header this key signs.
    pub alg: SigningAlg,
    signer: Box<dyn JwsSigner>,
    verifier: Box<dyn JwsVerifier>,
    /// The public JWK, as published in the JWKS.
    pub public_jwk: Value,
    headers: Headers,
    /// ES256 signs straight through OpenSSL's ECDSA on a parsed key: josekit builds a signing context
    /// and round-trips the signature through DER on every call, which costs the token endpoint ~8%.
    es256: Option<openssl::ec::EcKey<openssl::pkey::Private>>,
}

/// Pre-encoded protected headers for the common `typ` values.
#[derive(Clone)]
struct Headers {
    none: String,
    jwt: String,
    at_jwt: String,
}

/// Loads a stored key: the PKCS#8 (or traditional) private PEM for signing and
/// the public JWK for verifying. Fails if either cannot be parsed for `alg`,
/// if the public JWK contains private members, or if the two do not form a
/// key pair.
pub fn load(
    kid: &str,
    alg: SigningAlg,
    private_pem: &str,
    public_jwk: Value,
) -> Result<LoadedKey, CryptoError> {
    let key_err = |e: josekit::JoseError| CryptoError::InvalidKey(e.to_string());
    let map = public_jwk
        .as_object()
        .ok_or_else(|| CryptoError::InvalidKey("public JWK is not a JSON object".to_owned()))?;
    if let Some(m) = PRIVATE_JWK_MEMBERS.iter().find(|m| map.contains_key(**m)) {
        return Err(CryptoError::InvalidKey(format!(
            "public JWK contains private member {m:?}"
        )));
    }
    let mut jwk = Jwk::from_map(map.clone()).map_err(key_err)?;
    jwk.set_key_id(kid);

    let pem = private_pem.as_bytes();
    // The same three steps for every algorithm; only the josekit type differs.
    macro_rules! parts {
        ($alg:expr) => {{
            let signer: Box<dyn JwsSigner> = Box::new($alg.signer_from_pem(pem).map_err(key_err)?);
            let verifier: Box<dyn JwsVerifier> =
                Box::new($alg.verifier_from_jwk(&jwk).map_err(key_err)?);
            let derived = $alg
                .key_pair_from_pem(pem)
                .map_err(key_err)?
                .to_jwk_public_key();
            (signer, verifier, derived)
        }};
    }
    let (signer, verifier, derived) = match alg {
        SigningAlg::RS256 => parts!(jws::RS256),
        SigningAlg::ES256 => parts!(jws::ES256),
        SigningAlg::EdDSA => parts!(jws::EdDSA),
    };
    let from_private =
        thumbprint_of(&required_members(derived.as_ref()).map_err(CryptoError::InvalidKey)?);
    if from_private != jwk_thumbprint(&public_jwk)? {
        return Err(CryptoError::InvalidKey(
            "private key and public JWK do not match".to_owned(),
        ));
    }
    let headers = Headers {
        none: encode_header(alg, kid, None)?,
        jwt: encode_header(alg, kid, Some("JWT"))?,
        at_jwt: encode_header(alg, kid, Some("at+jwt"))?,
    };
    let es256 = match alg {
        SigningAlg::ES256 => Some(
            openssl::ec::EcKey::private_key_from_pem(pem)
                .map_err(|e| CryptoError::InvalidKey(e.to_string()))?,
        ),
        _ => None,
    };
    Ok(LoadedKey {
        kid: kid.to_owned(),
        alg,
        signer,
        verifier,
        public_jwk,
        headers,
        es256,
    })
}

/// base64url of the protected header `{"alg":…,"kid":…[,"typ":…]}`.
fn encode_header(alg: SigningAlg, kid: &str, typ: Option<&str>) -> Result<String, CryptoError> {
    let mut header = Map::new();
    header.insert("alg".to_owned(), Value::String(alg.as_str().to_owned()));
    header.insert("kid".to_owned(), Value::String(kid.to_owned()));
    if let Some(typ) = typ {
        header.insert("typ".to_owned(), Value::String(typ.to_owned()));
    }
    let json = serde_json::to_vec(&header).map_err(|e| CryptoError::Signing(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

impl LoadedKey {
    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) whose protected header
    /// is `alg`, `kid` and, when given, `typ` (`"at+jwt"` for RFC 9068 access
    /// tokens; `"JWT"` or `None` for ID tokens).
    pub fn sign_jwt(
        &self,
        header_typ: Option<&str>,
        claims: &impl serde::Serialize,
    ) -> Result<String, CryptoError> {
        let header: Cow<'_, str> = match header_typ {
            None => Cow::Borrowed(&self.headers.none),
            Some("JWT") => Cow::Borrowed(&self.headers.jwt),
            Some("at+jwt") => Cow::Borrowed(&self.headers.at_jwt),
            Some(typ) => Cow::Owned(encode_header(self.alg, &self.kid, Some(typ))?),
        };
        let payload =
            serde_json::to_vec(claims).map_err(|e| CryptoError::Signing(e.to_string()))?;
        let b64_len = |n: usize| n.div_ceil(3) * 4;
        let mut jws = String::with_capacity(
            header.len() + b64_len(payload.len()) + b64_len(self.signer.signature_len()) + 2,
        );
        jws.push_str(&header);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
        let signature = match &self.es256 {
            Some(key) => es256_sign(key, jws.as_bytes())?,
            None => self
                .signer
                .sign(jws.as_bytes())
                .map_err(|e| CryptoError::Signing(e.to_string()))?,
        };
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        Ok(jws)
    }

    /// Verifies a compact JWS signed by this key and returns its claims.
    ///
    /// Checks only the header (`alg` and `kid` must be this key's, no `crit`)
    /// and the signature; validating `iss`, `aud`, `exp`, … is the caller's job.
    pub fn verify_jwt(&self, jwt: &str) -> Result<Map<String, Value>, CryptoError> {
        self.verify_jwt_typed(jwt).map(|(claims, _)| claims)
    }

    /// [`LoadedKey::verify_jwt`], also returning the protected header's `typ`, which tells an
    /// access token (`at+jwt`, RFC 9068 §4) from an ID token (`JWT`) signed by the same key.
    pub fn verify_jwt_typed(
        &self,
        jwt: &str,
    ) -> Result<(Map<String, Value>, Option<String>), CryptoError> {
        let (payload, header) = jws::deserialize_compact(jwt, self.verifier.as_ref())
            .map_err(|e| CryptoError::InvalidJwt(e.to_string()))?;
        if header.claim("crit").is_some() {
            return Err(CryptoError::InvalidJwt(
                "unsupported \"crit\" header parameter".to_owned(),
            ));
        }
        let claims = serde_json::from_slice(&payload)
            .map_err(|_| CryptoError::InvalidJwt("payload is not a JSON object".to_owned()))?;
        Ok((claims, header.token_type().map(str::to_owned)))
    }
}

/// RFC 7518 §3.4: ECDSA P-256 over SHA-256, signature as the 32-byte big-endian `r` then `s`.
fn es256_sign(
    key: &openssl::ec::EcKey<openssl::pkey::Private>,
    signing_input: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let failed = |e: openssl::error::ErrorStack| CryptoError::Signing(e.to_string());
    let digest = super::tokens::sha256(signing_input);
    let sig = openssl::ecdsa::EcdsaSig::sign(&digest, key).map_err(failed)?;
    let mut out = sig.r().to_vec_padded(32).map_err(failed)?;
    out.extend(sig.s().to_vec_padded(32).map_err(failed)?);
    Ok(out)
}

impl Clone for LoadedKey {
    fn clone(&self) -> Self {
        Self {
            kid: self.kid.clone(),
            alg: self.alg,
            signer: self.signer.box_clone(),
            verifier: self.verifier.box_clone(),
            public_jwk: self.public_jwk.clone(),
            headers: self.headers.clone(),
            es256: self.es256.clone(),
        }
    }
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("public_jwk", &self.public_jwk)
            .finish_non_exhaustive()
    }
}

// `LoadedKey` must be shareable across tasks.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoadedKey>();
};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims() -> Map<String, Value> {
        let v = json!({"iss": "https://id.example", "sub": "u1", "exp": 2_000_000_000u64});
        v.as_object().unwrap().clone()
    }

    fn header_of(jwt: &str) -> Map<String, Value> {
        let h = URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap();
        serde_json::from_slice(&h).unwrap()
    }

    fn flip_char(s: &str, at: usize) -> String {
        let mut b = s.as_bytes().to_vec();
        b[at] = if b[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn rfc7638_thumbprint_vector() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert!(jwk_thumbprint(&json!({"kty": "oct", "k": "x"})).is_err());
    }

    #[test]
    fn round_trip_all_algs() {
        for alg in [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::EdDSA] {
            let g = generate(alg).unwrap();
            let jwk = g.public_jwk.as_object().unwrap();
            for m in PRIVATE_JWK_MEMBERS {
                assert!(!jwk.contains_key(m), "{alg}: public JWK has {m}");
            }
            assert_eq!(jwk["kid"], json!(g.kid));
            assert_eq!(jwk["alg"], json!(alg.as_str()));
            assert_eq!(jwk["use"], json!("sig"));
            assert_eq!(jwk_thumbprint(&g.public_jwk).unwrap(), g.kid);
            assert!(!format!("{g:?}").contains("PRIVATE KEY"));

            let key = load(&g.kid, alg, &g.private_pem, g.public_jwk.clone()).unwrap();
            assert!(!format!("{key:?}").contains("PRIVATE"));
            for typ in [None, Some("JWT"), Some("at+jwt"), Some("logout+jwt")] {
                let jwt = key.sign_jwt(typ, &claims()).unwrap();
                let h = header_of(&jwt);
                assert_eq!(h["alg"], json!(alg.as_str()));
                assert_eq!(h["kid"], json!(g.kid));
                assert_eq!(h.get("typ").and_then(Value::as_str), typ);
                assert_eq!(peek_kid(&jwt).as_deref(), Some(g.kid.as_str()));
                assert_eq!(key.verify_jwt(&jwt).unwrap(), claims());
                assert_eq!(key.clone().verify_jwt(&jwt).unwrap(), claims());
            }
        }
    }

    #[test]
    fn tampered_or_foreign_jwts_fail() {
        let g = generate(SigningAlg::ES256).unwrap();
        let key = load(&g.kid, g.alg, &g.private_pem, g.public_jwk.clone()).unwrap();
        let jwt = key.sign_jwt(Some("at+jwt"), &claims()).unwrap();
        let dots: Vec<usize> = jwt.match_indices('.').map(|(i, _)| i).collect();
        // Payload, signature and header tampering.
        for at in [dots[0] + 5, dots[1] + 5, 3] {
            assert!(
                key.verify_jwt(&flip_char(&jwt, at)).is_err(),
                "flip at {at}"
            );
        }
        assert!(key.verify_jwt("not.a.jwt").is_err());
        assert!(key.verify_jwt("").is_err());
        // alg=none with the same payload.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, g.kid)),
            &jwt[dots[0] + 1..dots[1]]
        );
        assert!(key.verify_jwt(&none).is_err());
        // Another key of the same alg, given the same kid, does not verify it.
        let other = generate(SigningAlg::ES256).unwrap();
        let other = load(&g.kid, other.alg, &other.private_pem, other.public_jwk).unwrap();
        assert!(other.verify_jwt(&jwt).is_err());
        // A different kid in the header is rejected too.
        let renamed = load("other-kid", g.alg, &g.private_pem, g.public_jwk.clone()).unwrap();
        assert!(renamed.verify_jwt(&jwt).is_err());
    }

    #[test]
    fn load_rejects_bad_material() {
        let g = generate(SigningAlg::EdDSA).unwrap();
        let e = generate(SigningAlg::ES256).unwrap();
        // Wrong algorithm for the key.
        assert!(
            load(
                &g.kid,
                SigningAlg::ES256,
                &g.private_pem,
                g.public_jwk.clone()
            )
            .is_err()
        );
        // Mismatched private key and public JWK.
        let g2 = generate(SigningAlg::EdDSA).unwrap();
        assert!(load(&g.kid, g.alg, &g2.private_pem, g.public_jwk.clone()).is_err());
        assert!(load(&e.kid, e.alg, &g.private_pem, e.public_jwk.clone()).is_err());
        // Private members in the "public" JWK.
        let mut leaky = g.public_jwk.clone();
        leaky["d"] = json!("AAAA");
        assert!(load(&g.kid, g.alg, &g.private_pem, leaky).is_err());
        assert!(load(&g.kid, g.alg, "garbage", g.public_jwk.clone()).is_err());
    }

    #[test]
    #[ignore = "throughput measurement; run with --release --ignored --nocapture"]
    fn es256_sign_throughput() {
        let g = generate(SigningAlg::ES256).unwrap();
        let key = load(&g.kid, g.alg, &g.private_pem, g.public_jwk).unwrap();
        let c = claims();
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(key.sign_jwt(Some("at+jwt"), &c).unwrap());
        }
        let per_sec = f64::from(n) / start.elapsed().as_secs_f64();
        println!("ES256 sign_jwt: {per_sec:.0} tokens/s on one core");
    }
}
