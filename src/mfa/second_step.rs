//! The second step of a sign-in: after the first factor ([`crate::login::completion`] keeps a
//! [`PendingFactor`] and sends the browser here), the person proves a second one: a TOTP code or a
//! recovery code in the form's input `code`, or a passkey ([`super::passkeys`]). A signed-in
//! session that must add a factor (a step-up asked by [`crate::oauth::authorize`]) comes here too.
//!
//! Every second factor ends in [`complete`], which hands both factors back to
//! [`finish_sign_in`]: one end for every way of signing in.

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use tower_sessions::Session;

use super::pending::{self, PendingFactor};
use crate::accounts;
use crate::app::AppState;
use crate::error::Result;
use crate::login::completion::{self, Completion, finish_sign_in};
use crate::login::device;
use crate::oauth::authorize::expired_request;
use crate::web::request_meta::RequestMeta;

/// The second-step page and its forms.
pub fn router() -> Router<AppState> {
    Router::new()
}

/// Ends a sign-in (or a step-up) whose second factor was just proved: `second` are its RFC 8176
/// methods (`["otp"]`, `["hwk", "user"]`, ...), `method` its name in the login history. The pending
/// state is cleared; the session is signed in with both factors in `amr` (a step-up keeps its
/// `sid`), the attempt's throttling counters are settled, and the pending authorization request
/// continues. An account disabled or deleted meanwhile is refused like an expired request.
pub async fn complete(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    headers: &HeaderMap,
    pending: &PendingFactor,
    second: &[&str],
    method: &str,
) -> Result<Response> {
    pending::clear(session).await?;
    let user = accounts::store::find_by_id(&state.db.pool, &pending.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(expired_request)?;
    let amr = super::with_second_factor(&pending.amr, second);
    let amr: Vec<&str> = amr.iter().map(String::as_str).collect();
    let device_token = device::device_token(headers, &state.config);
    let keys =
        completion::throttle_keys(state, Some(&user.id), &pending.email, &device_token, meta)
            .await?;
    let method = format!("{}+{method}", pending.method);
    let tx = state.db.begin().await?;
    let c = Completion {
        user: &user,
        email: &pending.email,
        method: &method,
        amr: &amr,
        keys: &keys,
        authz: &pending.authz,
        next: &pending.next,
        device_token: &device_token,
    };
    finish_sign_in(state, session, meta, tx, c).await
}
