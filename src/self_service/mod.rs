//! Your account: what a signed-in person manages themselves, as server-rendered pages under
//! `/account` ([`pages`]) and as JSON for single-page apps under `/api/v1/me/…` ([`api`]).
//!
//! The pages are one section each (profile, email, password, sessions and devices, connected apps,
//! sign-in history, organizations, deleting the account) on a shared layout with a navigation
//! column. What ends sign-ins or the account itself is [`crate::accounts::lifecycle`], shared with
//! the operator's controls; every change is audited.

pub mod deletion;
pub mod email_change;
pub mod mail;
pub mod notice;
pub mod pages;
pub mod password;
pub mod profile;
pub mod reauth;
pub mod store;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;
use crate::routes;

/// The account pages (they use the browser session).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(routes::ACCOUNT, get(pages::overview))
        .route(
            routes::ACCOUNT_PROFILE,
            get(profile::profile_page).post(profile::profile_submit),
        )
        .route(
            routes::ACCOUNT_EMAIL,
            get(email_change::email_form).post(email_change::email_submit),
        )
        .route(routes::ACCOUNT_EMAIL_SENT, get(email_change::sent_page))
        .route(
            routes::ACCOUNT_EMAIL_CONFIRM,
            get(email_change::confirm_form).post(email_change::confirm_submit),
        )
        .route(
            routes::ACCOUNT_PASSWORD,
            get(password::password_form).post(password::password_submit),
        )
        .route(
            routes::ACCOUNT_DELETE,
            get(deletion::delete_form).post(deletion::delete_submit),
        )
        .route(routes::ACCOUNT_DELETED, get(deletion::deleted_page))
}
