//! The caller of the management API: a Bearer access token from this issuer (RFC 6750 §2.1), verified
//! offline, checked against the revocation deny-list, and classified as a user or a client.
//!
//! Failures are RFC 9457 problem+json (the API's format) with the RFC 6750 §3 `WWW-Authenticate`
//! challenge: 401 `invalid-token` for a missing, bad, expired or revoked token (or one of a user who
//! was since deleted or disabled), 403
//! `insufficient-scope` when the token lacks the scope an endpoint needs.
//!
//! A DPoP-bound token (RFC 9449) comes as `Authorization: DPoP` with a proof for this request
//! ([`crate::dpop::resource`]); its refusals (`invalid-token`, `invalid-dpop-proof`,
//! `use-dpop-nonce`) carry a `DPoP` challenge instead.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::accounts::{self, User};
use crate::app::AppState;
use crate::dpop::resource::{Presentation, ResourceError};
use crate::error::AppError;
use crate::oauth::access_token::VerifiedAccessToken;
use crate::oidc::userinfo::{self, BearerError};

/// Scope that lets a token read organizations, members and their audit log.
pub const SCOPE_ORG_READ: &str = "org:read";
/// Scope that lets a token change organizations, members and invitations.
pub const SCOPE_ORG_WRITE: &str = "org:write";
/// Scope that lets a person's token read their own account (`/api/v1/me/…`: sessions, apps, sign-in
/// history).
pub const SCOPE_ACCOUNT_READ: &str = "account:read";
/// Scope that lets a person's token change their own account (`/api/v1/me/…`: end sessions, remove
/// apps, leave organizations, delete the account).
pub const SCOPE_ACCOUNT_WRITE: &str = "account:write";
/// Scope that makes a `client_credentials` token an operator over every organization (and every
/// user: `/api/v1/users`).
pub const SCOPE_ADMIN: &str = "admin";

/// Who presented the token.
#[derive(Debug, Clone)]
pub enum CallerKind {
    /// A person, through a token from the code or refresh grant (`sub` = user id), as read when the
    /// token was checked (handlers need not read the user again).
    User(User),
    /// A client acting for itself (`client_credentials`, `sub` = client id).
    Client(String),
}

/// An authenticated API caller.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    /// User or client.
    pub kind: CallerKind,
    /// The verified token.
    pub token: VerifiedAccessToken,
}

impl ApiCaller {
    /// The user id, when a person is calling.
    pub fn user_id(&self) -> Option<&str> {
        match &self.kind {
            CallerKind::User(user) => Some(&user.id),
            CallerKind::Client(_) => None,
        }
    }

    /// True for a `client_credentials` token with the `admin` scope: an operator over every
    /// organization (docs/api.md).
    pub fn is_operator(&self) -> bool {
        matches!(self.kind, CallerKind::Client(_)) && self.token.has_scope(SCOPE_ADMIN)
    }

    /// Refuses with 403 `operator-required` unless [`ApiCaller::is_operator`] (the audit log, the
    /// statistics and the users API are the operator's).
    pub fn require_operator(&self) -> Result<(), AppError> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(AppError::problem(
                StatusCode::FORBIDDEN,
                "operator-required",
                "this endpoint needs an operator token (client_credentials with the admin scope)",
            ))
        }
    }

    /// Refuses with 403 `insufficient-scope` unless the token holds `scope`.
    pub fn require_scope(&self, scope: &'static str) -> Result<(), AppError> {
        if self.token.has_scope(scope) {
            Ok(())
        } else {
            Err(insufficient_scope(scope))
        }
    }

    /// The user, when a person is calling.
    pub fn user(&self) -> Option<&User> {
        match &self.kind {
            CallerKind::User(user) => Some(user),
            CallerKind::Client(_) => None,
        }
    }

    /// The person calling, or 403 for a client token (the endpoint is about "me").
    pub fn require_user(&self) -> Result<&User, AppError> {
        self.user().ok_or_else(|| {
            AppError::problem(
                StatusCode::FORBIDDEN,
                "user-token-required",
                "this endpoint needs a token issued to a user",
            )
        })
    }
}

/// 403 with the RFC 6750 §3.1 `insufficient_scope` challenge naming the scope.
fn insufficient_scope(scope: &'static str) -> AppError {
    AppError::problem(
        StatusCode::FORBIDDEN,
        "insufficient-scope",
        format!("the access token lacks the {scope} scope"),
    )
}

/// Why a request carries no usable token: the problem, and the DPoP refusal behind it, if any (then
/// the challenge is `DPoP`, RFC 9449 §7.1).
#[derive(Debug)]
pub struct BearerRejection(AppError, Option<ResourceError>);

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        if let Some(dpop) = &self.1 {
            dpop.apply(&mut response);
        } else if response.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"latchkey\", error=\"invalid_token\""),
            );
        }
        crate::web::headers::forbid_caching(&mut response);
        response
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = BearerRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let invalid = |detail: &str| {
            BearerRejection(
                AppError::problem(StatusCode::UNAUTHORIZED, "invalid-token", detail),
                None,
            )
        };
        // The API takes the token from the Authorization header only (RFC 6750 §2.1), as `Bearer`
        // or, bound to a key, as `DPoP` (RFC 9449 §7.1).
        let (scheme, token) =
            userinfo::access_token_of(&parts.headers, None).map_err(|e| match e {
                BearerError::InvalidRequest(d) => invalid(d),
                _ => invalid("a bearer access token is required"),
            })?;
        // The path as the client addressed it (a nested router sees only its own part).
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path(), |original| original.0.path())
            .to_owned();
        let presented = Presentation {
            headers: &parts.headers,
            method: parts.method.as_str(),
            path: &path,
            scheme,
            token: &token,
        };
        let token = userinfo::authenticate_presented(state, &presented)
            .await
            .map_err(|e| match e {
                BearerError::InvalidToken(d) => invalid(d),
                BearerError::Dpop(dpop) => BearerRejection(
                    AppError::problem(
                        StatusCode::UNAUTHORIZED,
                        dpop.problem_code(),
                        dpop.description,
                    ),
                    Some(dpop),
                ),
                BearerError::Server => BearerRejection(
                    AppError::Internal(anyhow::anyhow!("bearer token check failed")),
                    None,
                ),
                _ => invalid("the access token is invalid"),
            })?;
        // A client_credentials token has `sub` = `client_id` (docs/tokens.md); ids are random UUIDs, so a
        // user id never equals a client id.
        let kind = if token.subject == token.client_id {
            CallerKind::Client(token.client_id.clone())
        } else {
            // A deleted or disabled user's tokens stop working at once, not when they expire.
            match accounts::store::find_by_id(&state.db.pool, &token.subject).await {
                Ok(Some(user)) if !user.disabled => CallerKind::User(user),
                Ok(_) => {
                    return Err(invalid(
                        "the user of this token no longer exists or is disabled",
                    ));
                }
                Err(e) => return Err(BearerRejection(AppError::from(e), None)),
            }
        };
        Ok(ApiCaller { kind, token })
    }
}
