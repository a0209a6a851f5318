//! `AppError`: the one error type of pages, the management API and the CLI.
//!
//! A handler returns `Result<T, AppError>`; the error turns into a bare response that carries an
//! [`ErrorBody`] extension, and [`crate::web::errors::render`] (a middleware that knows the path and the
//! request id) renders it as an HTML page or, under `/api/`, as RFC 9457 problem+json. Internal errors
//! are logged once there and never echoed to the client. OAuth protocol errors have their own type
//! (RFC 6749 §5.2 bodies and error redirects) in `oauth`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Result alias for handlers, services and the CLI.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// What can go wrong while serving a request or running a command.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is malformed or breaks a rule (400).
    #[error("{0}")]
    Invalid(String),
    /// The caller is not authenticated (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist, or the caller may not know that it does (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state: a duplicate email, a taken slug (409).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts (429).
    #[error("{0}")]
    TooManyRequests(String),
    /// A client error with its own stable problem type (RFC 9457 §3.1.1), for API callers that branch
    /// on it: `last-owner`, `insufficient-scope`, `slug-taken`, ... The status is a 4xx.
    #[error("{detail}")]
    Problem {
        /// 4xx status.
        status: StatusCode,
        /// Stable code, the last part of the problem `type` URI.
        code: &'static str,
        /// Message safe to show.
        detail: String,
    },
    /// The server is overloaded (no password-hashing slot free in time): 503 with `Retry-After`
    /// ([`RETRY_AFTER_SECS`]), RFC 9110 §15.6.4.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: a database or crypto failure (500). The message is logged, never shown.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl AppError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Invalid(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Problem { status, .. } => *status,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable code (the last part of the problem `type` URI).
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Invalid(_) => "invalid-request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not-found",
            AppError::Conflict(_) => "conflict",
            AppError::TooManyRequests(_) => "too-many-requests",
            AppError::Problem { code, .. } => code,
            AppError::Unavailable(_) => UNAVAILABLE,
            AppError::Internal(_) => "internal",
        }
    }

    /// Shorthand for [`AppError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::Invalid(message.into())
    }

    /// Shorthand for [`AppError::NotFound`].
    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::NotFound(message.into())
    }

    /// Shorthand for [`AppError::Problem`]: a 4xx with its own stable problem type.
    pub fn problem(status: StatusCode, code: &'static str, detail: impl Into<String>) -> AppError {
        AppError::Problem {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// Shorthand for [`AppError::Forbidden`].
    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::Forbidden(message.into())
    }

    /// Shorthand for [`AppError::Conflict`].
    pub fn conflict(message: impl Into<String>) -> AppError {
        AppError::Conflict(message.into())
    }
}

/// Problem code of [`AppError::Unavailable`].
pub const UNAVAILABLE: &str = "temporarily-unavailable";

/// Seconds an overloaded server asks clients to wait before retrying (`Retry-After`, RFC 9110
/// §10.2.3): about one hashing slot's turnover under load, short enough for a person to retry.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Problem code of text the database cannot store (see [`crate::db::is_invalid_text`]).
pub const INVALID_TEXT: &str = "invalid-text";

impl From<sqlx::Error> for AppError {
    /// A database failure is a 500, except text the database cannot store (a NUL character sent in
    /// a path or query parameter, refused by PostgreSQL): a malformed request, 400 `invalid-text`.
    fn from(err: sqlx::Error) -> Self {
        if crate::db::is_invalid_text(&err) {
            return AppError::problem(
                StatusCode::BAD_REQUEST,
                INVALID_TEXT,
                "the request contains a NUL character",
            );
        }
        AppError::Internal(err.into())
    }
}

impl From<crate::crypto::CryptoError> for AppError {
    /// A busy hasher is a 503 the client may retry; any other crypto failure is a 500.
    fn from(err: crate::crypto::CryptoError) -> Self {
        match err {
            crate::crypto::CryptoError::Busy => AppError::Unavailable(err.to_string()),
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::Internal(err)
    }
}

/// What the error-rendering middleware needs to render an error response.
#[derive(Debug, Clone)]
pub struct ErrorBody {
    /// Stable code, see [`AppError::code`].
    pub code: &'static str,
    /// A message safe to show the user (internal details are never put here).
    pub detail: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            AppError::Internal(err) => {
                // Logged here, once; the client sees only the request id.
                tracing::error!(error = %format!("{err:#}"), "internal error");
                "Something went wrong on our side. Please try again.".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = status.into_response();
        if matches!(self, AppError::Unavailable(_)) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(RETRY_AFTER_SECS),
            );
        }
        response.extensions_mut().insert(ErrorBody {
            code: self.code(),
            detail,
        });
        response
    }
}
