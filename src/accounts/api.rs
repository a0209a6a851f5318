//! `POST /api/v1/signup`: sign-up for programs (a single-page app's own form, a script), with the same
//! rules as the page. No authentication; the body must be `application/json`, which a cross-site HTML
//! form cannot send without a CORS preflight, so no CSRF token is needed.
//!
//! Errors are RFC 9457 problem+json with a stable `type` (`urn:latchkey:problem:<code>`):
//! `signup-disabled` (403), `unsupported-media-type` (415), `body-too-large` (413), `malformed-json`
//! (400, not JSON), `invalid-body` (400, wrong types or missing fields), `unknown-field` (400),
//! `invalid-email`, `invalid-name`, `weak-password`, `invalid-organization-name` (400) and
//! `email-taken` (409).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::registration::{self, SignupInput};
use crate::app::AppState;
use crate::config::SignupPolicy;
use crate::crypto::password::Password;
use crate::error::{AppError, Result};
use crate::web::request_meta::RequestMeta;

/// Body of `POST /api/v1/signup`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    organization: Option<String>,
}

/// The organization created with the account.
#[derive(Debug, Serialize)]
pub struct CreatedOrganization {
    /// Organization id (`org_id` claim).
    pub id: String,
    /// Its slug, derived from the name (`org_slug` claim).
    pub slug: String,
    /// Its name.
    pub name: String,
}

/// Answer of `POST /api/v1/signup` (201).
#[derive(Debug, Serialize)]
pub struct SignupResponse {
    /// User id (`sub`).
    pub id: String,
    /// The address as given (trimmed).
    pub email: String,
    /// Display name, possibly empty.
    pub name: String,
    /// Always false: the verification mail is on its way.
    pub email_verified: bool,
    /// The organization the user owns, or null.
    pub organization: Option<CreatedOrganization>,
}

/// `POST /api/v1/signup`: creates an unverified account (and an organization it owns, when named),
/// mails the verification link, and answers 201 with the account.
pub async fn signup(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    if state.config.signup == SignupPolicy::InviteOnly {
        return Err(AppError::problem(
            StatusCode::FORBIDDEN,
            "signup-disabled",
            "sign-up on this server is by invitation only",
        ));
    }
    let request = parse(&headers, body)?;
    let password = Password::new(request.password);
    let input = SignupInput {
        email: &request.email,
        name: request.name.as_deref().unwrap_or_default(),
        password: &password,
        organization: request.organization.as_deref(),
    };
    let registered = registration::register(&state, &input, &meta)
        .await
        .map_err(registration::SignupError::into_problem)?;
    let body = SignupResponse {
        id: registered.user.id,
        email: registered.user.email,
        name: registered.user.name,
        email_verified: registered.user.email_verified,
        organization: registered.organization.map(|o| CreatedOrganization {
            id: o.id,
            slug: o.slug,
            name: o.name,
        }),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    crate::web::headers::forbid_caching(&mut response);
    Ok(response)
}

/// Checks the content type and decodes the body, mapping each failure to its problem type.
fn parse(
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<SignupRequest> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if !json {
        return Err(AppError::problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the body as application/json",
        ));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "the request body is too large",
            )
        } else {
            AppError::problem(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "the request body could not be read",
            )
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        let message = e.to_string();
        let code = match e.classify() {
            Category::Data if message.starts_with("unknown field") => "unknown-field",
            Category::Data => "invalid-body",
            Category::Syntax | Category::Eof | Category::Io => "malformed-json",
        };
        AppError::problem(
            StatusCode::BAD_REQUEST,
            code,
            format!("invalid request body: {message}"),
        )
    })
}
