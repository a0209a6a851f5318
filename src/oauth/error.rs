//! `OAuthError`: protocol errors as RFC 6749 defines them — a JSON body at the token endpoint
//! (§5.2), an error redirect from the authorization endpoint (§4.1.2.1, OIDC Core §3.1.2.6, with `iss`
//! per RFC 9207), and `WWW-Authenticate` challenges for bearer tokens (RFC 6750 §3).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::INVALID_TEXT;

/// The registered error codes we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 §5.2 / §4.1.2.1
    InvalidRequest,
    /// RFC 6749 §5.2
    InvalidClient,
    /// RFC 6749 §5.2
    InvalidGrant,
    /// RFC 6749 §5.2 / §4.1.2.1
    UnauthorizedClient,
    /// RFC 6749 §5.2
    UnsupportedGrantType,
    /// RFC 6749 §5.2 / §4.1.2.1
    InvalidScope,
    /// RFC 6749 §4.1.2.1
    AccessDenied,
    /// RFC 6749 §4.1.2.1
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1
    ServerError,
    /// RFC 6749 §4.1.2.1: overloaded (no password-hashing slot free in time); 503 with `Retry-After`
    /// at the token endpoint too.
    TemporarilyUnavailable,
    /// OIDC Core §3.1.2.6
    LoginRequired,
    /// OIDC Core §3.1.2.6
    ConsentRequired,
    /// OIDC Core §3.1.2.6
    InteractionRequired,
    /// OIDC Core §3.1.2.6
    AccountSelectionRequired,
    /// OIDC Core §3.1.2.6
    RequestNotSupported,
    /// OIDC Core §3.1.2.6
    RequestUriNotSupported,
    /// RFC 6750 §3.1
    InvalidToken,
    /// RFC 6750 §3.1
    InsufficientScope,
    /// RFC 8628 §3.5: the person has not yet approved the device.
    AuthorizationPending,
    /// RFC 8628 §3.5: poll less often (the interval grows by 5 seconds).
    SlowDown,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
    /// RFC 8707 §2: the resource is unknown, not registered for the client, or malformed.
    InvalidTarget,
    /// RFC 9449 §5: the DPoP proof is invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: the proof must carry the server's current nonce.
    UseDpopNonce,
    /// RFC 9126 §2.2 / RFC 9101 §6.2: the `request_uri` is unknown, used or expired.
    InvalidRequestUri,
    /// RFC 7591 §3.2.2
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2
    InvalidClientMetadata,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::AccountSelectionRequired => "account_selection_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
        }
    }
}

/// A protocol error with a human-readable description (RFC 6749 `error_description`: printable ASCII
/// without `"` and `\`).
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// The error code.
    pub code: ErrorCode,
    /// What went wrong, for the developer of the client.
    pub description: String,
    /// Set when the client tried HTTP Basic authentication and failed (RFC 6749 §5.2: 401 with a
    /// `WWW-Authenticate` header).
    pub basic_challenge: bool,
    /// A status other than the code's usual one (413 for an oversized body, 429 when throttled).
    pub status_override: Option<StatusCode>,
    /// Seconds for a `Retry-After` header (RFC 9110 §10.2.3), sent with 429.
    pub retry_after: Option<i64>,
    /// A fresh `DPoP-Nonce` header (RFC 9449 §8): every answer to a request with a DPoP proof
    /// carries one, so that a client told `use_dpop_nonce` can retry at once.
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    /// A new error.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: sanitize(&description.into()),
            basic_challenge: false,
            status_override: None,
            retry_after: None,
            dpop_nonce: None,
        }
    }

    /// The same error with a `DPoP-Nonce` header, when `nonce` is given.
    pub fn with_dpop_nonce(self, nonce: Option<String>) -> OAuthError {
        OAuthError {
            dpop_nonce: nonce,
            ..self
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_client`, with a Basic challenge when Basic authentication was used.
    pub fn invalid_client(description: impl Into<String>, basic: bool) -> OAuthError {
        OAuthError {
            basic_challenge: basic,
            ..OAuthError::new(ErrorCode::InvalidClient, description)
        }
    }

    /// `invalid_client` with 429 and `Retry-After`: too many failed client authentications (OWASP
    /// Authentication Cheat Sheet, login throttling); the secret was not checked.
    pub fn throttled(retry_after: i64) -> OAuthError {
        OAuthError {
            status_override: Some(StatusCode::TOO_MANY_REQUESTS),
            retry_after: Some(retry_after),
            ..OAuthError::new(
                ErrorCode::InvalidClient,
                "too many failed attempts; retry later",
            )
        }
    }

    /// `invalid_request` with 413: the body is larger than we read, or could not be read.
    pub fn unreadable_body(rejection: &axum::extract::rejection::BytesRejection) -> OAuthError {
        OAuthError {
            status_override: Some(rejection.status()),
            ..OAuthError::invalid_request("the request body is too large or could not be read")
        }
    }

    /// `server_error`, after logging the cause (never shown to the client).
    pub fn server_error(cause: impl std::fmt::Display) -> OAuthError {
        tracing::error!(error = %cause, "server error in a protocol endpoint");
        OAuthError::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    /// HTTP status for a token-endpoint style JSON response.
    pub fn status(&self) -> StatusCode {
        if let Some(status) = self.status_override {
            return status;
        }
        match self.code {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Keeps a description within RFC 6749's allowed characters (%x20-21 / %x23-5B / %x5D-7E).
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                '\''
            } else {
                c
            }
        })
        .collect()
}

impl From<sqlx::Error> for OAuthError {
    fn from(err: sqlx::Error) -> Self {
        OAuthError::from(crate::error::AppError::from(err))
    }
}

impl From<crate::error::AppError> for OAuthError {
    /// A server error, except text the database cannot store (a NUL character in a parameter,
    /// [`crate::db::is_invalid_text`]): that request is malformed, `invalid_request`.
    fn from(err: crate::error::AppError) -> Self {
        if err.code() == INVALID_TEXT {
            return OAuthError::invalid_request(err.to_string());
        }
        if let crate::error::AppError::Unavailable(message) = &err {
            return OAuthError::new(ErrorCode::TemporarilyUnavailable, message.clone());
        }
        OAuthError::server_error(err)
    }
}

impl From<crate::crypto::CryptoError> for OAuthError {
    fn from(err: crate::crypto::CryptoError) -> Self {
        OAuthError::from(crate::error::AppError::from(err))
    }
}

/// RFC 6749 §5.2 JSON error response, `Cache-Control: no-store`.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code.as_str(), "error_description": self.description});
        let mut response = (self.status(), axum::Json(body)).into_response();
        crate::web::headers::forbid_caching(&mut response);
        // Throttled client authentication says when to retry; a busy server a short fixed pause.
        let retry_after = self.retry_after.or_else(|| {
            (self.code == ErrorCode::TemporarilyUnavailable)
                .then_some(crate::error::RETRY_AFTER_SECS as i64)
        });
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(nonce) = &self.dpop_nonce {
            crate::dpop::nonce::attach_value(nonce, &mut response);
        }
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"latchkey\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_hasher_is_503_temporarily_unavailable_with_retry_after() {
        let response = OAuthError::from(crate::crypto::CryptoError::Busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn descriptions_stay_within_rfc6749_characters() {
        assert_eq!(sanitize("bad \"uri\" \\ é"), "bad 'uri' ' '");
    }
}
