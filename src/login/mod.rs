//! Login: the login page, sign-in by a mailed link or code, browser sessions (stored in our own
//! database), known browsers and the throttling of failed sign-ins and client authentications.

pub mod completion;
pub mod device;
pub mod email_signin;
pub mod pages;
pub mod session;
pub mod session_store;
pub mod store;
pub mod throttle;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::routes;

/// Routes of the login feature.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            routes::LOGIN,
            get(pages::login_page).post(pages::login_submit),
        )
        .route(
            routes::LOGIN_EMAIL,
            get(email_signin::request_page).post(email_signin::request_submit),
        )
        .route(routes::LOGIN_EMAIL_CODE, post(email_signin::code::submit))
        .route(
            routes::LOGIN_EMAIL_CONFIRM,
            get(email_signin::link::page).post(email_signin::link::submit),
        )
}
