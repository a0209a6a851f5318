//! The device authorization grant (RFC 8628) for command-line tools and TVs: the device asks
//! `/device_authorization` for a device code and a user code, the person enters the user code at
//! `/device` (signed in; they confirm the application, the scopes and the organization), and the
//! device polls the token endpoint with `grant_type=urn:ietf:params:oauth:grant-type:device_code`
//! ([`grant`]). docs/device.md is the reference.

pub mod confirm;
pub mod grant;
pub mod pages;
pub mod store;
pub mod user_code;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::app::AppState;
use crate::clients::GrantType;
use crate::crypto::tokens::{TokenHash, random_token};
use crate::oauth::client_auth;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::oauth::request::MAX_ORGANIZATION_LEN;
use crate::routes;
use crate::web::request_meta::RequestMeta;

/// How long a device code and its user code live (RFC 8628 §3.2 `expires_in`): ten minutes, time
/// enough to find a browser and sign in, short enough for a user code of 34 bits (§5.1).
pub const CODE_TTL_SECS: i64 = 600;

/// Seconds the device waits between polls at first (RFC 8628 §3.2 `interval`, its default).
pub const POLL_INTERVAL_SECS: i64 = 5;

/// Attempts at a fresh user code when the one drawn is live already (one in 2^34: a retry is
/// practically never needed, and three never fail together).
const USER_CODE_ATTEMPTS: usize = 3;

/// Machine-facing routes (no browser session): the device authorization endpoint.
pub fn router() -> Router<AppState> {
    Router::new().route(routes::DEVICE_AUTHORIZATION, post(device_authorization))
}

/// Browser-facing routes (session layer): the `/device` page.
pub fn browser_router() -> Router<AppState> {
    Router::new().route(
        routes::DEVICE,
        get(pages::device_page).post(pages::device_submit),
    )
}

/// RFC 8628 §3.2 device authorization response.
#[derive(Debug, Serialize)]
pub struct DeviceAuthorizationResponse {
    /// The device's secret, for polling the token endpoint.
    pub device_code: String,
    /// What the person types, `XXXX-XXXX`.
    pub user_code: String,
    /// Where the person types it.
    pub verification_uri: String,
    /// The same with the code filled in (for a QR code or a link).
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds between polls.
    pub interval: i64,
}

impl IntoResponse for DeviceAuthorizationResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        crate::web::headers::forbid_caching(&mut response);
        response
    }
}

/// `POST /device_authorization` (RFC 8628 §3.1): the client authenticates as at the token endpoint
/// (§3.1: "the client MUST authenticate" when confidential; a public client sends `client_id`), must
/// be allowed the device code grant, and names scopes it may request; an optional `organization`
/// (id or slug) preselects that organization on the confirmation page.
pub async fn device_authorization(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    let body = body.map_err(|r| OAuthError::unreadable_body(&r))?;
    let params = Params::from_form(&headers, &body)
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let client = client_auth::authenticate_throttled(&state, &meta, &headers, &params).await?;
    if !client.client.grant_types.contains(&GrantType::DeviceCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the device authorization grant",
        ));
    }
    let scope = validate_scope(&client.client.scopes, params.get("scope"))?;
    let org_hint = match params.get("organization").map(str::trim) {
        None => None,
        Some(o) if o.is_empty() || o.len() > MAX_ORGANIZATION_LEN => {
            return Err(OAuthError::invalid_request(
                "organization must be an organization id or slug",
            ));
        }
        Some(o) => Some(o),
    };
    let now = state.clock.now();
    let device_code = random_token();
    let device_code_hash = device_code.hash();
    for _ in 0..USER_CODE_ATTEMPTS {
        let code = user_code::generate();
        let user_code_hash = TokenHash::of(&code);
        let new = store::NewDeviceAuthorization {
            device_code_hash: device_code_hash.as_str(),
            user_code_hash: user_code_hash.as_str(),
            client_id: &client.client.id,
            scope: &scope,
            org_hint,
            interval: POLL_INTERVAL_SECS,
            created_at: now,
            expires_at: now + CODE_TTL_SECS,
        };
        if !crate::db::inserted(store::insert(&state.db.pool, &new).await)? {
            continue;
        }
        let shown = user_code::display(&code);
        let verification_uri = format!("{}{}", state.config.issuer, routes::DEVICE);
        let verification_uri_complete = format!("{verification_uri}?user_code={shown}");
        tracing::info!(client_id = %client.client.id, "device authorization started");
        return Ok(DeviceAuthorizationResponse {
            device_code: device_code.into_inner(),
            user_code: shown,
            verification_uri,
            verification_uri_complete,
            expires_in: CODE_TTL_SECS,
            interval: POLL_INTERVAL_SECS,
        });
    }
    Err(OAuthError::server_error("no free user code after retries"))
}

/// The scopes of a device authorization, validated as at the authorization endpoint: each one the
/// client may request (else `invalid_scope`, RFC 8628 §3.2 refers to RFC 6749 §5.2), duplicates
/// dropped, order kept, at least one.
fn validate_scope(allowed: &[String], requested: Option<&str>) -> Result<String, OAuthError> {
    crate::oauth::request::requested_scopes(allowed, requested.unwrap_or_default())
        .map_err(|why| OAuthError::new(ErrorCode::InvalidScope, why))
}

#[cfg(test)]
mod tests {
    use super::validate_scope;

    #[test]
    fn scopes_are_the_clients_deduplicated_and_required() {
        let allowed = vec!["openid".to_owned(), "email".to_owned()];
        assert_eq!(
            validate_scope(&allowed, Some("openid email openid")).ok(),
            Some("openid email".to_owned())
        );
        assert!(validate_scope(&allowed, Some("openid admin")).is_err());
        assert!(validate_scope(&allowed, Some("  ")).is_err());
        assert!(validate_scope(&allowed, None).is_err());
    }
}
