//! The device authorization grant (RFC 8628) for command-line tools and TVs: the device asks
//! `/device_authorization` for a device code and a user code, the person enters the user code at
//! `/device` (then signs in, picks an organization and consents as for any authorization), and the
//! device polls the token endpoint with `grant_type=urn:ietf:params:oauth:grant-type:device_code`.

pub mod grant;

use axum::Router;

use crate::app::AppState;

/// Machine-facing routes (no browser session): the device authorization endpoint.
pub fn router() -> Router<AppState> {
    Router::new()
}

/// Browser-facing routes (session layer): the `/device` page.
pub fn browser_router() -> Router<AppState> {
    Router::new()
}
