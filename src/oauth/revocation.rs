//! The revocation endpoint (RFC 7009): a client revokes one of its own access or refresh tokens.
//!
//! Access tokens are JWTs, so revoking one puts its `jti` on the deny-list until it would
//! have expired anyway; revoking a refresh token revokes its whole family (RFC 9700 §4.14:
//! every rotation of the grant dies with it). A token that is unknown, malformed, expired or
//! issued to another client is answered like a success (§2.2: "invalid tokens do not cause an
//! error"), so the endpoint tells a caller nothing about tokens it does not own.
//!
//! The request plumbing ([`TokenRequest`]) and the refresh-token lookup are shared with the
//! introspection endpoint (RFC 7662), which takes the same parameters.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sqlx::Row;

use super::access_token;
use super::client_auth::{self, AuthenticatedClient};
use super::error::OAuthError;
use super::params::Params;
use super::store;
use crate::app::AppState;
use crate::crypto::tokens::TokenHash;
use crate::db::Exec;
use crate::web::request_meta::RequestMeta;

/// The `revoked_reason` recorded on a family revoked through this endpoint.
pub const REVOKED_BY_CLIENT: &str = "revoked_by_client";

/// RFC 7009 §2.1 / RFC 7662 §2.1 `token_type_hint`. Unknown values are ignored (RFC 7009 §2.2.1:
/// the server "MAY ignore" the hint and searches all its tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    /// `access_token`
    AccessToken,
    /// `refresh_token`
    RefreshToken,
}

/// A revocation or introspection request after client authentication.
pub struct TokenRequest {
    /// The authenticated caller.
    pub client: AuthenticatedClient,
    /// The token in question (a secret: never logged).
    pub token: String,
    /// The caller's hint, when it sent a known one.
    pub hint: Option<TokenTypeHint>,
}

/// Hand-written so that the token never reaches a log.
impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("client", &self.client.client.id)
            .field("token", &"[redacted]")
            .field("hint", &self.hint)
            .finish()
    }
}

impl TokenRequest {
    /// Parses the form body (repeated parameters refused), authenticates the client exactly as the
    /// token endpoint does (RFC 7009 §2.1, RFC 7662 §2.1; throttled the same way), and requires
    /// `token`.
    pub async fn parse(
        state: &AppState,
        meta: &RequestMeta,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<TokenRequest, OAuthError> {
        let body = body.map_err(|r| OAuthError::unreadable_body(&r))?;
        let params = Params::from_form(headers, &body)
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let client = client_auth::authenticate_throttled(state, meta, headers, &params).await?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?
            .to_owned();
        let hint = match params.get("token_type_hint") {
            Some("access_token") => Some(TokenTypeHint::AccessToken),
            Some("refresh_token") => Some(TokenTypeHint::RefreshToken),
            _ => None,
        };
        Ok(TokenRequest {
            client,
            token,
            hint,
        })
    }
}

/// A refresh token found by its hash, with what its family says about it.
#[derive(Debug, Clone)]
pub struct RefreshTokenInfo {
    /// The family (grant) the token belongs to.
    pub family_id: String,
    /// The client the family was issued to.
    pub client_id: String,
    /// The user of the family.
    pub user_id: String,
    /// Granted scopes.
    pub scope: String,
    /// The family's absolute expiry.
    pub expires_at: i64,
    /// Set when the family was revoked.
    pub revoked_at: Option<i64>,
    /// When this token was issued.
    pub created_at: i64,
    /// Set once this token was exchanged for its successor.
    pub rotated_at: Option<i64>,
}

impl RefreshTokenInfo {
    /// True when the token can still be exchanged: the family is neither revoked nor expired and
    /// the token is the family's current one (not rotated).
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.rotated_at.is_none() && self.expires_at > now
    }
}

/// Looks a refresh token up by its SHA-256 (only hashes are stored), joined to its family.
pub async fn find_refresh_token<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
) -> Result<Option<RefreshTokenInfo>, sqlx::Error> {
    let row = sqlx::query(
        "select f.id, f.client_id, f.user_id, f.scope, f.expires_at, f.revoked_at, t.created_at, \
         t.rotated_at from refresh_tokens t join refresh_families f on f.id = t.family_id \
         where t.token_hash = $1",
    )
    .bind(hash.as_str())
    .fetch_optional(ex)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(RefreshTokenInfo {
        family_id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        scope: r.try_get("scope")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        created_at: r.try_get("created_at")?,
        rotated_at: r.try_get("rotated_at")?,
    }))
}

/// The empty 200 of RFC 7009 §2.2, not cacheable.
fn revoked() -> Response {
    let mut response = StatusCode::OK.into_response();
    crate::web::headers::forbid_caching(&mut response);
    response
}

/// Deny-lists `token` when it is a live access token of `client_id`; true when it was one.
async fn revoke_access_token(
    state: &AppState,
    client_id: &str,
    token: &str,
) -> Result<bool, OAuthError> {
    // An expired token fails verification: it needs no deny-listing.
    let Some(verified) = access_token::verify_issued(state, token) else {
        return Ok(false);
    };
    if verified.client_id != client_id {
        return Ok(false);
    }
    store::deny_access_token(&state.db.pool, &verified.jti, verified.expires_at).await?;
    Ok(true)
}

/// Revokes the family of `token` when it is a refresh token of `client_id`; true when it was one.
async fn revoke_refresh_token(
    state: &AppState,
    client_id: &str,
    token: &str,
) -> Result<bool, OAuthError> {
    let Some(info) = find_refresh_token(&state.db.pool, &TokenHash::of(token)).await? else {
        return Ok(false);
    };
    if info.client_id != client_id {
        return Ok(false);
    }
    store::revoke_family(
        &state.db.pool,
        &info.family_id,
        state.clock.now(),
        REVOKED_BY_CLIENT,
    )
    .await?;
    Ok(true)
}

/// `POST /revoke` (RFC 7009 §2.1): 200 with an empty body whether or not the token was ours to
/// revoke; 400/401 only for a malformed request or a failed client authentication (§2.2.1).
pub async fn revoke(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let request = TokenRequest::parse(&state, &meta, &headers, body).await?;
    let client_id = request.client.client.id.as_str();
    let token = request.token.as_str();
    // The hint only decides which kind is tried first (§2.1).
    if request.hint == Some(TokenTypeHint::RefreshToken) {
        if !revoke_refresh_token(&state, client_id, token).await? {
            revoke_access_token(&state, client_id, token).await?;
        }
    } else if !revoke_access_token(&state, client_id, token).await? {
        revoke_refresh_token(&state, client_id, token).await?;
    }
    Ok(revoked())
}
