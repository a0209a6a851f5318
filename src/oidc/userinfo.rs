//! The UserInfo endpoint (OIDC Core §5.3): GET or POST with a bearer access token (RFC 6750 §2.1
//! header, or §2.2 form body on POST), claims by scope, RFC 6750 §3 errors with `WWW-Authenticate`.
//! A DPoP-bound access token comes as `Authorization: DPoP` with a proof (RFC 9449 §7,
//! [`crate::dpop::resource`]); refusals under that scheme carry a `DPoP` challenge instead.
//!
//! Organization claims (`org_id`, `org_slug`, `roles`) are read live for the organization the access
//! token was issued for: userinfo answers with current claims (OIDC Core §5.3.2), so a renamed
//! organization or a changed role shows at once, and a member removed since gets none.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, json};

use crate::accounts;
use crate::app::AppState;
use crate::dpop::resource::{self as dpop, Presentation, ResourceError, Scheme};
use crate::oauth::access_token::{self, OrgClaims, VerifiedAccessToken};
use crate::oauth::params::Params;
use crate::oauth::store;
use crate::oidc::claims;
use crate::orgs;

/// An RFC 6750 §3 failure.
#[derive(Debug)]
pub enum BearerError {
    /// No token at all: a bare challenge (§3.1 says no error code then).
    Missing,
    /// §3.1 `invalid_request`.
    InvalidRequest(&'static str),
    /// §3.1 `invalid_token`.
    InvalidToken(&'static str),
    /// §3.1 `insufficient_scope`.
    InsufficientScope(&'static str),
    /// Our fault.
    Server,
    /// A refusal under the DPoP scheme, or of a DPoP-bound token presented as Bearer (RFC 9449 §7):
    /// 401 with a `DPoP` challenge.
    Dpop(ResourceError),
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match self {
            BearerError::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"latchkey\"".to_owned(),
                json!({"error": "invalid_token", "error_description": "a bearer access token is required"}),
            ),
            BearerError::InvalidRequest(d) => (
                StatusCode::BAD_REQUEST,
                format!(
                    "Bearer realm=\"latchkey\", error=\"invalid_request\", error_description=\"{d}\""
                ),
                json!({"error": "invalid_request", "error_description": d}),
            ),
            BearerError::InvalidToken(d) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"{d}\""
                ),
                json!({"error": "invalid_token", "error_description": d}),
            ),
            BearerError::InsufficientScope(d) => (
                StatusCode::FORBIDDEN,
                format!(
                    "Bearer realm=\"latchkey\", error=\"insufficient_scope\", scope=\"openid\", error_description=\"{d}\""
                ),
                json!({"error": "insufficient_scope", "error_description": d}),
            ),
            BearerError::Server => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Bearer realm=\"latchkey\"".to_owned(),
                json!({"error": "server_error"}),
            ),
            BearerError::Dpop(error) => {
                let body = json!({"error": error.error, "error_description": error.description});
                let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                error.apply(&mut response);
                crate::web::headers::forbid_caching(&mut response);
                return response;
            }
        };
        let mut response = (status, Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        crate::web::headers::forbid_caching(&mut response);
        response
    }
}

/// Finds the bearer token of a request: the `Authorization` header or, on POST, the form body; both
/// at once is an `invalid_request` (RFC 6750 §2). A `DPoP` scheme counts as no bearer token.
pub fn bearer_token(headers: &HeaderMap, form_body: Option<&[u8]>) -> Result<String, BearerError> {
    match access_token_of(headers, form_body)? {
        (Scheme::Bearer, token) => Ok(token),
        (Scheme::Dpop, _) => Err(BearerError::Missing),
    }
}

/// Finds the access token of a request and its scheme: `Authorization: Bearer` or `DPoP` (RFC 9449
/// §7.1: header only), or, on POST, a bearer token in the form body; two at once is an
/// `invalid_request` (RFC 6750 §2).
pub fn access_token_of(
    headers: &HeaderMap,
    form_body: Option<&[u8]>,
) -> Result<(Scheme, String), BearerError> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| BearerError::InvalidRequest("malformed Authorization header"))?;
            let (scheme, token) = text.split_once(' ').ok_or(BearerError::InvalidRequest(
                "malformed Authorization header",
            ))?;
            let scheme = if scheme.eq_ignore_ascii_case("bearer") {
                Scheme::Bearer
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Scheme::Dpop
            } else {
                return Err(BearerError::Missing);
            };
            Some((scheme, token.trim().to_owned()))
        }
    };
    let from_body = match form_body {
        Some(body) if !body.is_empty() => {
            let params = Params::from_form(headers, body)
                .map_err(|_| BearerError::InvalidRequest("malformed form body"))?;
            params
                .get("access_token")
                .map(|t| (Scheme::Bearer, t.to_owned()))
        }
        _ => None,
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(BearerError::InvalidRequest(
            "send the token in one place only",
        )),
        (Some(t), None) | (None, Some(t)) if !t.1.is_empty() => Ok(t),
        _ => Err(BearerError::Missing),
    }
}

/// Verifies a bearer access token, including the revocation deny-list.
pub async fn authenticate(
    state: &AppState,
    token: &str,
) -> Result<VerifiedAccessToken, BearerError> {
    let verified = access_token::verify(state, token).ok_or(BearerError::InvalidToken(
        "the access token is invalid or expired",
    ))?;
    // A deleted client's tokens die with it (`client delete`), within the registry's cache TTL.
    match state.clients.exists(&verified.client_id).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(BearerError::InvalidToken(
                "the client of this access token no longer exists",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            return Err(BearerError::Server);
        }
    }
    match store::is_access_token_denied(&state.db.pool, &verified.jti).await {
        Ok(false) => Ok(verified),
        Ok(true) => Err(BearerError::InvalidToken("the access token was revoked")),
        Err(e) => {
            tracing::error!(error = %e, "deny-list lookup failed");
            Err(BearerError::Server)
        }
    }
}

/// Verifies a presented access token as [`authenticate`] does, then its DPoP binding (RFC 9449 §7).
/// Under the `DPoP` scheme an invalid token is refused with a `DPoP` challenge.
pub async fn authenticate_presented(
    state: &AppState,
    presented: &Presentation<'_>,
) -> Result<VerifiedAccessToken, BearerError> {
    let verified =
        authenticate(state, presented.token)
            .await
            .map_err(|e| match (presented.scheme, e) {
                (Scheme::Dpop, BearerError::InvalidToken(d)) => {
                    BearerError::Dpop(ResourceError::invalid_token(d))
                }
                (_, e) => e,
            })?;
    dpop::confirm(state, presented, &verified)
        .await
        .map_err(BearerError::Dpop)?;
    Ok(verified)
}

async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    (scheme, token): (Scheme, String),
) -> Result<Response, BearerError> {
    let presented = Presentation {
        headers,
        method,
        path: crate::routes::USERINFO,
        scheme,
        token: &token,
    };
    let verified = authenticate_presented(state, &presented).await?;
    if !verified.has_scope("openid") {
        return Err(BearerError::InsufficientScope(
            "the token was not granted the openid scope",
        ));
    }
    let user = match accounts::store::find_by_id(&state.db.pool, &verified.subject).await {
        Ok(Some(user)) if !user.disabled => user,
        Ok(_) => return Err(BearerError::InvalidToken("the user no longer exists")),
        Err(e) => {
            tracing::error!(error = %e, "userinfo lookup failed");
            return Err(BearerError::Server);
        }
    };
    let scope = verified.scopes.join(" ");
    let mut body = Map::new();
    body.insert("sub".into(), json!(user.id));
    claims::add_user_claims(&mut body, &user, &scope);
    if let Some(org_id) = verified.claims.get("org_id").and_then(|v| v.as_str()) {
        match orgs::store::find_org_with_role(&state.db.pool, org_id, &user.id).await {
            Ok(Some((org, role))) => OrgClaims::of_member(org.id, org.slug, role).add_to(&mut body),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "userinfo membership lookup failed");
                return Err(BearerError::Server);
            }
        }
    }
    let mut response = Json(body).into_response();
    crate::web::headers::forbid_caching(&mut response);
    Ok(response)
}

/// `GET /userinfo`
pub async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match access_token_of(&headers, None) {
        Ok(token) => respond(&state, &headers, "GET", token)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(e) => e.into_response(),
    }
}

/// `POST /userinfo`
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return BearerError::InvalidRequest("the request body is too large or could not be read")
            .into_response();
    };
    match access_token_of(&headers, Some(&body)) {
        Ok(token) => respond(&state, &headers, "POST", token)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(e) => e.into_response(),
    }
}
