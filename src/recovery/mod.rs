//! Password reset by email (OWASP Forgot Password Cheat Sheet; NIST SP 800-63B §6.1.2.3).
//!
//! 1. [`forgot`]: `GET/POST /password/forgot` asks for an address. The answer is the same page
//!    whether or not an account has it (no account enumeration); only a real, enabled account gets a
//!    mail, with a single-use link valid [`RESET_TTL_SECS`], issued after the answer so that its
//!    timing tells nothing either. Requests are limited per account ([`MAX_PER_ACCOUNT`], counted
//!    from `password_reset_tokens`) and per client address ([`MAX_PER_IP`], counted from the audit
//!    events every request writes) within [`LIMIT_WINDOW_SECS`].
//! 2. [`reset`]: `GET/POST /password/reset?token=…` sets a new password (length and strength of
//!    [`crate::accounts::password_strength::check_new_password`]). In one transaction: the new
//!    hash, the token used, every other open token of the account invalidated, every browser session ended and every
//!    refresh-token family revoked (whoever had the old password may hold those), an audit event,
//!    and a "your password was changed" mail.
//!
//! Tokens are 256-bit random values; only their SHA-256 is stored.

pub mod forgot;
pub mod reset;
pub mod store;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;
use crate::routes;

/// A reset link works this long (OWASP: short-lived).
pub const RESET_TTL_SECS: i64 = 15 * 60;
/// The window of the request limits.
pub const LIMIT_WINDOW_SECS: i64 = 15 * 60;
/// Reset mails per account per window; further requests get the same neutral page and no mail.
pub const MAX_PER_ACCOUNT: i64 = 3;
/// Reset requests from one client address per window, whatever address they name (known or not);
/// further requests get a 429 page.
pub const MAX_PER_IP: i64 = 10;

/// Routes of password reset (pages, under the browser session for CSRF).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            routes::PASSWORD_FORGOT,
            get(forgot::forgot_page).post(forgot::forgot_submit),
        )
        .route(routes::PASSWORD_FORGOT_SENT, get(forgot::sent_page))
        .route(
            routes::PASSWORD_RESET,
            get(reset::reset_page).post(reset::reset_submit),
        )
        .route(routes::PASSWORD_RESET_DONE, get(reset::done_page))
}
