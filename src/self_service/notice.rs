//! The one-time "saved" notice of an account form: set before the 303 that ends a successful POST
//! (Post/Redirect/Get), shown once by the page the browser lands on, kept in the browser session.

use axum::response::Response;
use tower_sessions::Session;

use crate::error::Result;
use crate::login::session::session_error;
use crate::oauth::authorize::see_other;

/// Session key of the pending notice.
const NOTICE_KEY: &str = "account_notice";

/// Leaves `message` for the next account page this browser shows.
pub async fn set(session: &Session, message: &str) -> Result<()> {
    session
        .insert(NOTICE_KEY, message)
        .await
        .map_err(session_error)
}

/// The pending notice, removed as it is read.
pub async fn take(session: &Session) -> Result<Option<String>> {
    session
        .remove::<String>(NOTICE_KEY)
        .await
        .map_err(session_error)
}

/// Leaves `message` for the page at `to` and answers the 303 there (the end of a successful form).
pub async fn back(session: &Session, to: &str, message: &str) -> Result<Response> {
    set(session, message).await?;
    Ok(see_other(to))
}
