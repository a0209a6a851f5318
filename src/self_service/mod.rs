//! Your account: what a signed-in person manages themselves, as server-rendered pages under
//! `/account` ([`pages`]) and as JSON for single-page apps under `/api/v1/me/…` ([`api_router`]).
//!
//! The pages are one section each (profile, email, password, sessions and devices, connected apps,
//! sign-in history, organizations, deleting the account) on a shared layout with a navigation
//! column. Each feature keeps its page and API handlers in one file ([`profile`], [`email_change`],
//! [`password`], [`sessions`], [`apps`], [`history`], [`organizations`], [`deletion`]); password
//! re-entry is [`reauth`], their mails [`mail`], their SQL [`store`]; what ends sign-ins or the
//! account itself is
//! [`crate::accounts::lifecycle`], shared with the operator's controls; every change is audited.

pub mod apps;
pub mod deletion;
pub mod display;
pub mod email_change;
pub mod history;
pub mod mail;
pub mod notice;
pub mod organizations;
pub mod pages;
pub mod password;
pub mod profile;
pub mod reauth;
pub mod sessions;
pub mod store;

use axum::Router;
use axum::routing::{get, post};

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
        .route(routes::ACCOUNT_SESSIONS, get(sessions::page))
        .route(routes::ACCOUNT_SESSIONS_END, post(sessions::end_form))
        .route(
            routes::ACCOUNT_SESSIONS_END_OTHERS,
            post(sessions::end_others_form),
        )
        .route(routes::ACCOUNT_APPS, get(apps::page))
        .route(routes::ACCOUNT_APPS_REMOVE, post(apps::remove_form))
        .route(routes::ACCOUNT_HISTORY, get(history::page))
        .route(routes::ACCOUNT_ORGANIZATIONS, get(organizations::page))
        .route(
            routes::ACCOUNT_ORGANIZATIONS_LEAVE,
            post(organizations::leave_form),
        )
}

/// `/api/v1/me/…`: the person's own account over the API (Bearer token of a user: `account:read`
/// to read, `account:write` to change; a client's own token is refused with 403
/// `user-token-required`).
pub fn api_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(sessions::api_list))
        .routes(routes!(sessions::api_end))
        .routes(routes!(sessions::api_end_others))
        .routes(routes!(apps::api_list))
        .routes(routes!(apps::api_remove))
        .routes(routes!(history::api_list))
        .routes(routes!(organizations::api_leave))
}
