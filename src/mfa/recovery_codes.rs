//! Single-use recovery codes: made at enrolment, regenerable, each accepted once.

use axum::Router;

use crate::app::AppState;

/// The recovery-code pages.
pub fn router() -> Router<AppState> {
    Router::new()
}
