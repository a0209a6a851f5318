//! JWT access tokens per RFC 9068: signed with `LATCHKEY_ACCESS_TOKEN_ALG`, header `typ: at+jwt`, and
//! verifiable offline by any resource server with our JWKS.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::clock;
use crate::crypto::tokens::new_id;
use crate::error::{AppError, Result};
use crate::orgs::roles::Role;

/// RFC 9068 §2.1: the media type of JWT access tokens, used as the JOSE `typ`.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The organization a token speaks for.
#[derive(Debug, Clone)]
pub struct OrgClaims {
    /// `org_id`
    pub id: String,
    /// `org_slug`
    pub slug: String,
    /// `roles`
    pub roles: Vec<String>,
}

impl OrgClaims {
    /// The claims of a member of organization `id` (`slug`) holding `role`, read from the live
    /// membership (docs/tokens.md: one role per member).
    pub fn of_member(id: String, slug: String, role: Role) -> Self {
        Self {
            id,
            slug,
            roles: vec![role.as_str().to_owned()],
        }
    }

    /// Adds `org_id`, `org_slug` and `roles` to a claim set.
    pub fn add_to(&self, claims: &mut Map<String, Value>) {
        claims.insert("org_id".into(), json!(self.id));
        claims.insert("org_slug".into(), json!(self.slug));
        claims.insert("roles".into(), json!(self.roles));
    }
}

/// What an access token is issued for.
#[derive(Debug, Clone)]
pub struct AccessGrant<'a> {
    /// `sub`: the user id, or the client id for `client_credentials`.
    pub subject: &'a str,
    /// `client_id` (and `aud` when no resource is named).
    pub client_id: &'a str,
    /// `aud` when the client named a resource server (RFC 8707 §2.2); `None`: the client itself.
    pub audience: Option<&'a str>,
    /// JWK SHA-256 thumbprint of the DPoP key the token is bound to (RFC 9449 §6.1: `cnf.jkt`).
    pub jkt: Option<&'a str>,
    /// Granted scopes, space-separated.
    pub scope: &'a str,
    /// When the user authenticated, if a user is involved.
    pub auth_time: Option<i64>,
    /// The `acr` of that authentication (RFC 9068 §2.2.1), if a user is involved.
    pub acr: Option<&'a str>,
    /// Browser session id (`sid`), if any.
    pub sid: Option<&'a str>,
    /// Organization claims, if an organization was selected.
    pub org: Option<&'a OrgClaims>,
}

/// A signed access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`, for revocation.
    pub jti: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// The RFC 9068 §2.2 claim set, serialized straight from borrowed fields (the hot path of the token
/// endpoint: no intermediate JSON map).
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_slug: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation<'a>>,
}

/// RFC 7800 §3.1 confirmation claim of a DPoP-bound token (RFC 9449 §6.1).
#[derive(Serialize)]
struct Confirmation<'a> {
    jkt: &'a str,
}

/// Signs an access token for `grant`.
pub fn mint(state: &AppState, grant: &AccessGrant<'_>) -> Result<AccessToken> {
    let config = &state.config;
    let key = state
        .keyring
        .active(config.access_token_alg)
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "no active {} key",
                config.access_token_alg.as_str()
            ))
        })?;
    let now = state.clock.now();
    let expires_in = clock::secs(config.access_token_ttl);
    let jti = new_id();
    let claims = AccessClaims {
        iss: &config.issuer,
        sub: grant.subject,
        aud: grant.audience.unwrap_or(grant.client_id),
        client_id: grant.client_id,
        exp: now + expires_in,
        iat: now,
        jti: &jti,
        scope: grant.scope,
        auth_time: grant.auth_time,
        acr: grant.acr,
        sid: grant.sid,
        org_id: grant.org.map(|o| o.id.as_str()),
        org_slug: grant.org.map(|o| o.slug.as_str()),
        roles: grant.org.map(|o| o.roles.as_slice()),
        cnf: grant.jkt.map(|jkt| Confirmation { jkt }),
    };
    let token = key.sign_jwt(Some(ACCESS_TOKEN_TYP), &claims)?;
    Ok(AccessToken {
        token,
        jti,
        expires_in,
    })
}

/// The verified claims of an access token presented to us.
#[derive(Debug, Clone)]
pub struct VerifiedAccessToken {
    /// `sub`
    pub subject: String,
    /// `client_id`
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// `jti`
    pub jti: String,
    /// `exp`
    pub expires_at: i64,
    /// `sid`: the browser session the token was issued in (tokens of the code and refresh grants
    /// carry it, RFC 9068 §2.2 allows such extra claims; `client_credentials` tokens have none). The
    /// `/api/v1/me/sessions` routes mark that session as the current one.
    pub sid: Option<String>,
    /// All claims.
    pub claims: Map<String, Value>,
}

impl VerifiedAccessToken {
    /// True when `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// True when a JOSE `typ` names an RFC 9068 access token: `at+jwt`, or its full media type
/// `application/at+jwt` (§4; media types compare case-insensitively, RFC 7515 §4.1.9).
pub fn is_access_token_typ(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t == ACCESS_TOKEN_TYP || t.strip_prefix("application/") == Some(ACCESS_TOKEN_TYP)
    })
}

/// Verifies an access token presented to one of OUR resource servers (userinfo, the management
/// API): [`verify_issued`], and its `aud` must be its own `client_id`, the audience of a token
/// issued without a resource. RFC 9068 §4: a resource server "MUST validate that the aud claim
/// contains a resource indicator value corresponding to an identifier the resource server expects
/// for itself"; RFC 8707 §1: a token minted for another resource server (`resource`) must not be
/// usable here. `None` when invalid.
pub fn verify(state: &AppState, token: &str) -> Option<VerifiedAccessToken> {
    let verified = verify_issued(state, token)?;
    let aud = verified.claims.get("aud").and_then(Value::as_str)?;
    (aud == verified.client_id).then_some(verified)
}

/// Verifies an access token we issued, whatever its audience (introspection and revocation deal
/// with tokens for any resource server): signature by one of our keys (alg pinned by the key),
/// header `typ` `at+jwt` (RFC 9068 §4: an ID token signed by the same key is not an access token),
/// `iss`, `exp`, and the RFC 9068 claims. `None` when invalid.
pub fn verify_issued(state: &AppState, token: &str) -> Option<VerifiedAccessToken> {
    let (claims, typ) = state.keyring.verify_typed(token).ok()?;
    if !is_access_token_typ(typ.as_deref()) {
        return None;
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    if text("iss")? != state.config.issuer {
        return None;
    }
    let expires_at = claims.get("exp").and_then(Value::as_i64)?;
    if expires_at <= state.clock.now() {
        return None;
    }
    let scopes = text("scope")?
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Some(VerifiedAccessToken {
        subject: text("sub")?,
        client_id: text("client_id")?,
        jti: text("jti")?,
        scopes,
        expires_at,
        sid: text("sid").filter(|sid| !sid.is_empty()),
        claims,
    })
}
