//! The device code grant at the token endpoint (RFC 8628 §3.4–3.5).

use crate::app::AppState;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::grants::TokenRequest;
use crate::oauth::token::TokenResponse;

/// Exchanges a device code for tokens once the person approved it.
pub async fn exchange(
    _state: &AppState,
    _req: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    Err(OAuthError::new(
        ErrorCode::UnsupportedGrantType,
        "the device code grant is not available yet",
    ))
}
