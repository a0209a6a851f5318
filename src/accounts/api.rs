//! `POST /api/v1/signup`: sign-up for programs (a single-page app's own form, a script), with the same
//! rules as the page. No authentication; the body must be `application/json`, which a cross-site HTML
//! form cannot send without a CORS preflight, so no CSRF token is needed.
//!
//! Errors are RFC 9457 problem+json with a stable `type` (`urn:latchkey:problem:<code>`):
//! `signup-disabled` (403); the body errors of [`ApiJson`] (`missing-body`, `malformed-json`,
//! `invalid-body` for wrong types, missing or unknown fields, `unsupported-media-type`,
//! `payload-too-large`); `invalid-email`, `invalid-name`, `weak-password`,
//! `invalid-organization-name` (400), `email-taken` (409) and `too-many-signups` (429: more than
//! [`MAX_SIGNUPS_PER_IP`](super::registration::MAX_SIGNUPS_PER_IP) accounts from one address within
//! the hour).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::registration::{self, SignupInput};
use crate::app::AppState;
use crate::config::SignupPolicy;
use crate::crypto::password::Password;
use crate::error::{AppError, Result};
use crate::web::api::ApiJson;
use crate::web::openapi::{
    BadRequest, Conflict, Forbidden, PayloadTooLarge, TooManyRequests, UnsupportedMediaType,
};
use crate::web::request_meta::RequestMeta;

/// Body of `POST /api/v1/signup`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The address to sign up with (ASCII).
    email: String,
    /// The password (checked for strength).
    password: String,
    /// Display name.
    #[serde(default)]
    name: Option<String>,
    /// When given, an organization of that name is created with the user as its owner.
    #[serde(default)]
    organization: Option<String>,
}

/// The organization created with the account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedOrganization {
    /// Organization id (`org_id` claim).
    pub id: String,
    /// Its slug, derived from the name (`org_slug` claim).
    pub slug: String,
    /// Its name.
    pub name: String,
}

/// Answer of `POST /api/v1/signup` (201).
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[utoipa::path(
    operation_id = "signup",
    post,
    path = crate::routes::API_SIGNUP,
    tag = "signup",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "The account, unverified; the verification link goes by email", body = SignupResponse),
        BadRequest, Forbidden, Conflict, PayloadTooLarge, UnsupportedMediaType, TooManyRequests,
    ),
)]
pub async fn signup(
    State(state): State<AppState>,
    meta: RequestMeta,
    body: std::result::Result<ApiJson<SignupRequest>, AppError>,
) -> Result<Response> {
    // The policy first: an invite-only server says so whatever the body.
    if state.config.signup == SignupPolicy::InviteOnly {
        return Err(AppError::problem(
            StatusCode::FORBIDDEN,
            "signup-disabled",
            "sign-up on this server is by invitation only",
        ));
    }
    let ApiJson(request) = body?;
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
