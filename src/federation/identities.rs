//! Upstream identities linked to accounts, by (connection, `iss`, `sub`) and never by email; the link
//! an existing account makes by signing in here once after a first upstream sign-in with its address;
//! and the account page that lists and removes them (`/account/identities`).

use axum::Router;
use tower_sessions::Session;

use crate::accounts::User;
use crate::app::AppState;
use crate::db::Tx;
use crate::error::Result;
use crate::web::request_meta::RequestMeta;

/// The account page routes.
pub fn router() -> Router<AppState> {
    Router::new()
}

/// Called by [`crate::login::completion::finish_sign_in`] inside the sign-in's transaction once
/// `user` is fully signed in (every factor proved): makes the link a first upstream sign-in left
/// waiting in the session, when `user` is the account it named.
pub async fn complete_pending_link(
    _state: &AppState,
    _session: &Session,
    _tx: &mut Tx,
    _user: &User,
    _meta: &RequestMeta,
    _now: i64,
) -> Result<()> {
    Ok(())
}

/// The notice the login page shows while a first upstream sign-in waits for the person to sign in
/// here to link it (see [`complete_pending_link`]); `None` when nothing waits.
pub async fn pending_link_notice(_session: &Session) -> Result<Option<String>> {
    Ok(None)
}
