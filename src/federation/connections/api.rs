//! The management API of connections: an organization's (`/api/v1/orgs/{org}/connections`, admins
//! and owners) and the instance's (`/api/v1/connections`, operators).

use axum::Router;

use crate::app::AppState;

/// The connection routes of the management API.
pub fn router() -> Router<AppState> {
    Router::new()
}
