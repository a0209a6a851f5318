//! Login: the login page, browser sessions (stored in our own database), known browsers and the
//! throttling of failed sign-ins and client authentications.

pub mod device;
pub mod pages;
pub mod session;
pub mod session_store;
pub mod store;
pub mod throttle;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;
use crate::routes;

/// Routes of the login feature.
pub fn router() -> Router<AppState> {
    Router::new().route(
        routes::LOGIN,
        get(pages::login_page).post(pages::login_submit),
    )
}
