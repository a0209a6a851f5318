//! Home-realm discovery: when connections exist the login page asks for the email first
//! (`POST /login/identify`); an address whose domain an organization verified and connected goes
//! straight to that organization's provider, any other to the password step.

use axum::Router;

use crate::app::AppState;

/// The email-first step of the login page.
pub fn router() -> Router<AppState> {
    Router::new()
}
