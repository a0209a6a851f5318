//! The management API of an organization's domains: claim (`POST …/domains {domain}` answers the
//! TXT record to publish), list, read, remove, and `POST …/domains/{domain}/verify`.

use axum::Router;

use crate::app::AppState;

/// The domain routes of the management API.
pub fn router() -> Router<AppState> {
    Router::new()
}
