//! Passkeys (WebAuthn Level 2 through webauthn-rs): registration on `/account/passkeys`, use as
//! the second factor, and sign-in with a passkey alone (discoverable credentials).

use axum::Router;

use crate::app::AppState;

/// The passkey pages and ceremonies.
pub fn router() -> Router<AppState> {
    Router::new()
}
