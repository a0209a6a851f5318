//! Your account: what a signed-in person manages themselves, as server-rendered pages under
//! `/account` ([`pages`]) and as JSON for single-page apps under `/api/v1/me/…` ([`api`]).
//!
//! The pages are one section each (profile, email, password, sessions and devices, connected apps,
//! sign-in history, organizations, deleting the account) on a shared layout with a navigation
//! column. What ends sign-ins or the account itself is [`crate::accounts::lifecycle`], shared with
//! the operator's controls; every change is audited.

pub mod pages;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;
use crate::routes;

/// The account pages (they use the browser session).
pub fn router() -> Router<AppState> {
    Router::new().route(routes::ACCOUNT, get(pages::overview))
}
