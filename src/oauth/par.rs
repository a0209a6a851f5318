//! Pushed authorization requests (RFC 9126): a client posts its authorization request to `/par`
//! (authenticated like at the token endpoint) and sends the browser to `/authorize` with only
//! `client_id` and the `request_uri` it got back; clients registered with `--require-par` must.

use axum::Router;

use crate::app::AppState;

/// The pushed authorization request endpoint.
pub fn router() -> Router<AppState> {
    Router::new()
}
