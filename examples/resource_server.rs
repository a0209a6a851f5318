//! A resource server that trusts Latchkey access tokens, verified offline (RFC 9068).
//!
//! It is what an API behind Latchkey needs and nothing more:
//! * the JWK Set is found through discovery (`jwks_uri` of `/.well-known/openid-configuration`,
//!   whose `issuer` must be the one configured; OIDC Discovery 1.0 §4.3), fetched once, cached, and
//!   fetched again when a token names an unknown `kid` (a key rotation), at most once per
//!   [`Verifier::min_refetch`] so that forged kids cannot make it hammer the server;
//! * the signature algorithm is pinned to the key's own `alg`, never taken from the token alone
//!   (RFC 8725 §3.1);
//! * `typ` must be `at+jwt` (RFC 9068 §4: an ID token is not an access token), `iss` the issuer,
//!   `aud` this API's audience (Latchkey puts the client id there), `exp` in the future;
//! * DPoP (RFC 9449 §7): a token bound to a key (`cnf.jkt`) is accepted only as
//!   `Authorization: DPoP <token>` with a `DPoP` proof signed by that key (`typ` `dpop+jwt`, an
//!   asymmetric `alg`, a public `jwk` whose RFC 7638 thumbprint is `cnf.jkt`), made for this request
//!   (`htm`, `htu` = [`Verifier::public_url`] + path), recent (`iat`), for this token (`ath`), and
//!   never seen before (an in-memory `jti` cache: one process; several need a shared store). A
//!   bound token presented as `Bearer` is refused (§7.2: no downgrade), and so is an unbound token
//!   under the `DPoP` scheme; unbound `Bearer` tokens work as before;
//! * routes are guarded by the caller's role in their organization (`roles` claim):
//!   `GET /reports` for members and up, `GET /settings` for admins and up, `GET /whoami` for any
//!   valid token.
//!
//! Run it next to a Latchkey:
//! ```text
//! RS_ISSUER=http://localhost:8080 RS_AUDIENCE=<client_id> RS_BIND=127.0.0.1:9090 \
//!     RS_PUBLIC_URL=http://127.0.0.1:9090 cargo run --example resource_server
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:9090/reports
//! curl -H "Authorization: DPoP $ACCESS_TOKEN" -H "DPoP: $PROOF" http://127.0.0.1:9090/reports
//! ```
//! The integration test `tests/api/resource_server.rs` includes this file as a module and drives it
//! against a running Latchkey.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Mutex, RwLock};

/// RFC 9068 §2.1: the `typ` of JWT access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Allowed clock difference with the issuer when checking `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;
/// Roles, strongest first (Latchkey's the documented interface (README)).
pub const ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];
/// RFC 9449 §4.2: the `typ` of DPoP proofs.
pub const PROOF_TYP: &str = "dpop+jwt";
/// Algorithms accepted in proofs (asymmetric only, RFC 9449 §4.3 item 5).
pub const DPOP_ALGS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];
/// A proof is accepted this long after its `iat`, and this long before (a client clock ahead).
pub const PROOF_MAX_AGE_SECS: i64 = 300;
/// See [`PROOF_MAX_AGE_SECS`].
pub const PROOF_MAX_FUTURE_SECS: i64 = 60;

/// Verifies access tokens of one issuer for one audience.
pub struct Verifier {
    issuer: String,
    audience: String,
    jwks_uri: String,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, Jwk>>,
    last_fetch: Mutex<Option<Instant>>,
    /// Shortest time between two JWKS fetches triggered by unknown kids.
    pub min_refetch: Duration,
    /// This API's public base URL, the start of a proof's `htu`; `None`: `http://` and the request's
    /// `Host` header (fine on a development machine, not behind a proxy).
    pub public_url: Option<String>,
    /// Proofs seen (thumbprint and `jti`) until they are too old anyway (RFC 9449 §11.1).
    seen_proofs: Mutex<HashMap<String, i64>>,
}

/// Why a token was refused (401 with an RFC 6750 §3 challenge).
#[derive(Debug)]
pub struct Invalid(pub &'static str);

/// The claims this API uses.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `sub`: the user (or the client, for `client_credentials`).
    pub subject: String,
    /// `org_id`, when the token speaks for an organization.
    pub org_id: Option<String>,
    /// `org_slug`.
    pub org_slug: Option<String>,
    /// `roles` in that organization.
    pub roles: Vec<String>,
    /// `scope`.
    pub scope: String,
    /// `cnf.jkt`: the thumbprint of the DPoP key the token is bound to, if it is.
    pub jkt: Option<String>,
}

impl Caller {
    /// True when one of the caller's roles is `role` or stronger.
    pub fn has_role_at_least(&self, role: &str) -> bool {
        let rank = |r: &str| ROLES.iter().position(|x| *x == r);
        let Some(needed) = rank(role) else {
            return false;
        };
        self.roles
            .iter()
            .filter_map(|r| rank(r))
            .any(|have| have <= needed)
    }
}

impl Verifier {
    /// Reads the issuer's discovery document and fetches its JWK Set.
    pub async fn discover(issuer: &str, audience: &str) -> anyhow::Result<Verifier> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let issuer = issuer.trim_end_matches('/').to_owned();
        let doc: Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if doc["issuer"].as_str() != Some(issuer.as_str()) {
            anyhow::bail!(
                "the discovery document names another issuer: {}",
                doc["issuer"]
            );
        }
        let jwks_uri = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("the discovery document has no jwks_uri"))?
            .to_owned();
        let verifier = Verifier {
            issuer,
            audience: audience.to_owned(),
            jwks_uri,
            http,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            min_refetch: Duration::from_secs(10),
            public_url: None,
            seen_proofs: Mutex::new(HashMap::new()),
        };
        verifier.fetch_keys().await?;
        Ok(verifier)
    }

    /// Replaces the cached keys by the current JWK Set.
    async fn fetch_keys(&self) -> anyhow::Result<()> {
        let set: Value = self
            .http
            .get(&self.jwks_uri)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut keys = HashMap::new();
        for key in set["keys"].as_array().into_iter().flatten() {
            let (Some(kid), Some(map)) = (key["kid"].as_str(), key.as_object()) else {
                continue;
            };
            if let Ok(jwk) = Jwk::from_map(map.clone()) {
                keys.insert(kid.to_owned(), jwk);
            }
        }
        *self.keys.write().await = keys;
        *self.last_fetch.lock().await = Some(Instant::now());
        Ok(())
    }

    /// The key named `kid`, fetching the JWK Set again when it is unknown (a rotation) and the last
    /// fetch is older than [`Verifier::min_refetch`].
    async fn key(&self, kid: &str) -> Option<Jwk> {
        if let Some(jwk) = self.keys.read().await.get(kid) {
            return Some(jwk.clone());
        }
        let due = {
            let last = self.last_fetch.lock().await;
            last.is_none_or(|at| at.elapsed() >= self.min_refetch)
        };
        if due && let Err(e) = self.fetch_keys().await {
            eprintln!("resource server: JWKS fetch failed: {e:#}");
        }
        self.keys.read().await.get(kid).cloned()
    }

    /// Verifies `token` and returns its caller.
    pub async fn verify(&self, token: &str) -> Result<Caller, Invalid> {
        let header = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .ok_or(Invalid("the token is not a JWT"))?;
        let typ = header["typ"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if typ != ACCESS_TOKEN_TYP && typ != format!("application/{ACCESS_TOKEN_TYP}") {
            return Err(Invalid("the token is not an access token (typ at+jwt)"));
        }
        let kid = header["kid"]
            .as_str()
            .ok_or(Invalid("the token names no key"))?;
        let jwk = self
            .key(kid)
            .await
            .ok_or(Invalid("the token's key is unknown"))?;
        // The key decides the algorithm; the token's header must agree (RFC 8725 §3.1).
        let alg = jwk.algorithm().ok_or(Invalid("the key has no alg"))?;
        if header["alg"].as_str() != Some(alg) {
            return Err(Invalid("the token's alg is not its key's"));
        }
        let verifier: Box<dyn JwsVerifier> = match alg {
            "RS256" => Box::new(
                jws::RS256
                    .verifier_from_jwk(&jwk)
                    .map_err(|_| Invalid("bad key"))?,
            ),
            "ES256" => Box::new(
                jws::ES256
                    .verifier_from_jwk(&jwk)
                    .map_err(|_| Invalid("bad key"))?,
            ),
            "EdDSA" => Box::new(
                jws::EdDSA
                    .verifier_from_jwk(&jwk)
                    .map_err(|_| Invalid("bad key"))?,
            ),
            _ => return Err(Invalid("unsupported alg")),
        };
        let (payload, _) = jws::deserialize_compact(token, verifier.as_ref())
            .map_err(|_| Invalid("the signature does not verify"))?;
        let claims: Value =
            serde_json::from_slice(&payload).map_err(|_| Invalid("the claims are not JSON"))?;
        self.check_claims(&claims)
    }

    /// RFC 9068 §4: issuer, audience, lifetime.
    fn check_claims(&self, claims: &Value) -> Result<Caller, Invalid> {
        if claims["iss"].as_str() != Some(self.issuer.as_str()) {
            return Err(Invalid("the token is from another issuer"));
        }
        let audience_ok = match &claims["aud"] {
            Value::String(aud) => *aud == self.audience,
            Value::Array(auds) => auds
                .iter()
                .any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(Invalid("the token is for another audience"));
        }
        let now = unix_now();
        let exp = claims["exp"]
            .as_i64()
            .ok_or(Invalid("the token has no exp"))?;
        if exp + LEEWAY_SECS <= now {
            return Err(Invalid("the token has expired"));
        }
        if claims["nbf"]
            .as_i64()
            .is_some_and(|nbf| nbf - LEEWAY_SECS > now)
        {
            return Err(Invalid("the token is not valid yet"));
        }
        let text = |name: &str| claims[name].as_str().map(str::to_owned);
        Ok(Caller {
            subject: text("sub").ok_or(Invalid("the token has no sub"))?,
            org_id: text("org_id"),
            org_slug: text("org_slug"),
            roles: claims["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
            scope: text("scope").unwrap_or_default(),
            jkt: claims["cnf"]["jkt"].as_str().map(str::to_owned),
        })
    }

    /// RFC 9449 §4.3 and §7.1: checks the `DPoP` proof of a request presenting `token`, bound to
    /// `jkt`, with `method` to `url` (without query).
    pub async fn verify_proof(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        token: &str,
        jkt: &str,
    ) -> Result<(), Invalid> {
        let header: Map<String, Value> = proof
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(Invalid("the DPoP proof is not a JWT"))?;
        if !header["typ"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(PROOF_TYP))
        {
            return Err(Invalid("the DPoP proof's typ is not dpop+jwt"));
        }
        let alg = header["alg"]
            .as_str()
            .filter(|a| DPOP_ALGS.contains(a))
            .ok_or(Invalid("the DPoP proof's alg is not accepted"))?;
        let jwk = header["jwk"]
            .as_object()
            .ok_or(Invalid("the DPoP proof has no jwk"))?;
        if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
            .iter()
            .any(|m| jwk.contains_key(*m))
        {
            return Err(Invalid("the DPoP proof's jwk is not a public key"));
        }
        // The token is bound to this key: its thumbprint must be `cnf.jkt`.
        if thumbprint(jwk).as_deref() != Some(jkt) {
            return Err(Invalid("the DPoP proof is not by the token's key"));
        }
        let key = Jwk::from_map(jwk.clone()).map_err(|_| Invalid("the DPoP proof's jwk is bad"))?;
        let verifier: Box<dyn JwsVerifier> = match alg {
            "ES256" => Box::new(
                jws::ES256
                    .verifier_from_jwk(&key)
                    .map_err(|_| Invalid("bad jwk"))?,
            ),
            "RS256" => Box::new(
                jws::RS256
                    .verifier_from_jwk(&key)
                    .map_err(|_| Invalid("bad jwk"))?,
            ),
            "PS256" => Box::new(
                jws::PS256
                    .verifier_from_jwk(&key)
                    .map_err(|_| Invalid("bad jwk"))?,
            ),
            _ => Box::new(
                jws::EdDSA
                    .verifier_from_jwk(&key)
                    .map_err(|_| Invalid("bad jwk"))?,
            ),
        };
        let (payload, _) = jws::deserialize_compact(proof, verifier.as_ref())
            .map_err(|_| Invalid("the DPoP proof's signature does not verify"))?;
        let claims: Value = serde_json::from_slice(&payload)
            .map_err(|_| Invalid("the DPoP proof's claims are not JSON"))?;
        if claims["htm"].as_str() != Some(method) {
            return Err(Invalid("the DPoP proof is for another method"));
        }
        let without_query = |text: &str| {
            url::Url::parse(text).ok().map(|mut u| {
                u.set_query(None);
                u.set_fragment(None);
                u
            })
        };
        let htu = claims["htu"].as_str().and_then(without_query);
        if htu.is_none() || htu != without_query(url) {
            return Err(Invalid("the DPoP proof is for another URL"));
        }
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if claims["ath"].as_str() != Some(ath.as_str()) {
            return Err(Invalid("the DPoP proof is for another access token"));
        }
        let now = unix_now();
        let iat = claims["iat"]
            .as_i64()
            .ok_or(Invalid("the DPoP proof has no iat"))?;
        if iat < now - PROOF_MAX_AGE_SECS || iat > now + PROOF_MAX_FUTURE_SECS {
            return Err(Invalid("the DPoP proof is too old or too new"));
        }
        let jti = claims["jti"]
            .as_str()
            .filter(|j| !j.is_empty())
            .ok_or(Invalid("the DPoP proof has no jti"))?;
        let mut seen = self.seen_proofs.lock().await;
        seen.retain(|_, expires| *expires >= now);
        if seen
            .insert(format!("{jkt}:{jti}"), iat + PROOF_MAX_AGE_SECS)
            .is_some()
        {
            return Err(Invalid("the DPoP proof was used before"));
        }
        Ok(())
    }
}

/// RFC 7638: the base64url SHA-256 of the key's required members, sorted, without whitespace.
fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut required = BTreeMap::new();
    for member in members {
        required.insert(*member, jwk.get(*member)?.as_str()?);
    }
    let canonical = serde_json::to_string(&required).ok()?;
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// Now, in unix seconds.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// The API's errors: 401 with `WWW-Authenticate` (RFC 6750 §3, RFC 9449 §7.1) or 403 for a weak
/// role.
#[derive(Debug)]
pub enum ApiError {
    /// No or bad token.
    Unauthorized(&'static str),
    /// A refusal about DPoP: `error` (`invalid_token` or `invalid_dpop_proof`) and why; the
    /// challenge is `DPoP` with the accepted algorithms.
    Dpop(&'static str, &'static str),
    /// A valid token whose role is too weak.
    Forbidden(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized(why) => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "invalid_token", "error_description": why})),
                )
                    .into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
                r
            }
            ApiError::Dpop(error, why) => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": error, "error_description": why})),
                )
                    .into_response();
                let challenge = format!("DPoP error=\"{error}\", algs=\"{}\"", DPOP_ALGS.join(" "));
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                r
            }
            ApiError::Forbidden(why) => (
                StatusCode::FORBIDDEN,
                Json(json!({"error": "forbidden", "error_description": why})),
            )
                .into_response(),
        }
    }
}

impl FromRequestParts<Arc<Verifier>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        verifier: &Arc<Verifier>,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized("a bearer token is required"))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or(ApiError::Unauthorized("a bearer token is required"))?;
        let token = token.trim();
        let dpop = if scheme.eq_ignore_ascii_case("dpop") {
            true
        } else if scheme.eq_ignore_ascii_case("bearer") {
            false
        } else {
            return Err(ApiError::Unauthorized("a bearer token is required"));
        };
        let caller = verifier.verify(token).await.map_err(|Invalid(why)| {
            if dpop {
                ApiError::Dpop("invalid_token", why)
            } else {
                ApiError::Unauthorized(why)
            }
        })?;
        match (&caller.jkt, dpop) {
            (None, false) => Ok(caller),
            // RFC 9449 §7.2: a bound token is never accepted as a bearer token.
            (Some(_), false) => Err(ApiError::Dpop(
                "invalid_token",
                "this token is DPoP-bound: use the DPoP scheme and a proof",
            )),
            (None, true) => Err(ApiError::Dpop(
                "invalid_token",
                "this token is not DPoP-bound: use the Bearer scheme",
            )),
            (Some(jkt), true) => {
                let mut proofs = parts.headers.get_all("dpop").iter();
                let (Some(proof), None) = (proofs.next(), proofs.next()) else {
                    return Err(ApiError::Dpop(
                        "invalid_dpop_proof",
                        "send exactly one DPoP proof",
                    ));
                };
                let proof = proof
                    .to_str()
                    .map_err(|_| ApiError::Dpop("invalid_dpop_proof", "the proof is not text"))?;
                let base = match &verifier.public_url {
                    Some(base) => base.trim_end_matches('/').to_owned(),
                    None => format!(
                        "http://{}",
                        parts
                            .headers
                            .get(header::HOST)
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or_default()
                    ),
                };
                let url = format!("{base}{}", parts.uri.path());
                verifier
                    .verify_proof(proof, parts.method.as_str(), &url, token, jkt)
                    .await
                    .map_err(|Invalid(why)| ApiError::Dpop("invalid_dpop_proof", why))?;
                Ok(caller)
            }
        }
    }
}

/// 403 unless the caller holds `role` or stronger in their organization.
fn require_role(caller: &Caller, role: &str) -> Result<(), ApiError> {
    if caller.has_role_at_least(role) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "this needs the {role} role or stronger in an organization"
        )))
    }
}

/// `GET /whoami`: any valid token.
async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({
        "sub": caller.subject,
        "org_id": caller.org_id,
        "org_slug": caller.org_slug,
        "roles": caller.roles,
        "scope": caller.scope,
    }))
}

/// `GET /reports`: members and up.
async fn reports(caller: Caller) -> Result<Json<Value>, ApiError> {
    require_role(&caller, "member")?;
    Ok(Json(
        json!({"org": caller.org_slug, "reports": ["q1", "q2"]}),
    ))
}

/// `GET /settings`: admins and up.
async fn settings(caller: Caller) -> Result<Json<Value>, ApiError> {
    require_role(&caller, "admin")?;
    Ok(Json(
        json!({"org": caller.org_slug, "settings": {"retention_days": 30}}),
    ))
}

/// The resource server's routes.
pub fn app(verifier: Arc<Verifier>) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/reports", get(reports))
        .route("/settings", get(settings))
        .with_state(verifier)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = |name: &str, default: Option<&str>| {
        std::env::var(name)
            .ok()
            .or_else(|| default.map(str::to_owned))
            .ok_or_else(|| anyhow::anyhow!("set {name}"))
    };
    let issuer = env("RS_ISSUER", Some("http://localhost:8080"))?;
    let audience = env("RS_AUDIENCE", None)?;
    let bind = env("RS_BIND", Some("127.0.0.1:9090"))?;
    let mut verifier = Verifier::discover(&issuer, &audience).await?;
    verifier.public_url = std::env::var("RS_PUBLIC_URL").ok();
    let verifier = Arc::new(verifier);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    eprintln!("resource server listening on {}", listener.local_addr()?);
    axum::serve(listener, app(verifier)).await?;
    Ok(())
}
