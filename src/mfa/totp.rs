//! The authenticator app (TOTP, RFC 6238): enrolment on `/account/totp`, verification of codes.

use axum::Router;

use crate::app::AppState;

/// The TOTP pages.
pub fn router() -> Router<AppState> {
    Router::new()
}
