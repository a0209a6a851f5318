//! The token endpoint (RFC 6749 §3.2): parses the form (repeated parameters refused), authenticates
//! the client, checks a DPoP proof when one is sent (RFC 9449 §5: the tokens issued are then bound
//! to its key), and dispatches to the grant. Every answer carries `Cache-Control: no-store` (§5.1),
//! and every answer to a request with a `DPoP` header a fresh `DPoP-Nonce` (RFC 9449 §8).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::grants;
use super::params::Params;
use crate::app::AppState;
use crate::clients::GrantType;
use crate::web::request_meta::RequestMeta;

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access token (RFC 9068 JWT).
    pub access_token: String,
    /// `Bearer`, or `DPoP` for tokens bound to a proof's key (RFC 9449 §5.1).
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
    /// ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Refresh token, when one was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        crate::web::headers::forbid_caching(&mut response);
        response
    }
}

/// `POST /token`
pub async fn token(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = issue(&state, &meta, &headers, body).await;
    crate::dpop::answer(&state, &headers, result)
}

/// Authenticates, checks the proof, and runs the grant.
async fn issue(
    state: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<TokenResponse, OAuthError> {
    let body = body.map_err(|r| OAuthError::unreadable_body(&r))?;
    let params = Params::from_form(headers, &body)
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let grant = GrantType::parse(grant_type).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("unsupported grant_type {grant_type}"),
        )
    })?;
    let client = client_auth::authenticate_throttled(state, meta, headers, &params).await?;
    if !client.client.grant_types.contains(&grant) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use {grant_type}"),
        ));
    }
    // After client authentication, so that only a known client's proofs reach the replay cache.
    let dpop_jkt = crate::dpop::request_jkt(state, headers, crate::routes::TOKEN).await?;
    let request = grants::TokenRequest {
        client: &client,
        params: &params,
        dpop_jkt: dpop_jkt.as_deref(),
    };
    let issued = match grant {
        GrantType::AuthorizationCode => grants::authorization_code::exchange(state, &request).await,
        GrantType::ClientCredentials => grants::client_credentials::exchange(state, &request),
        GrantType::RefreshToken => grants::refresh_token::exchange(state, &request).await,
        GrantType::DeviceCode => crate::device::grant::exchange(state, &request).await,
    }?;
    crate::metrics::token_issued(grant, client.client.public);
    Ok(issued)
}
