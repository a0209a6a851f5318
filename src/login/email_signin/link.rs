//! The mailed link: its page only shows a button (mail scanners open links); the button signs in
//! the browser that pressed it.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    AMR, ConfirmPage, MAX_CODE_ATTEMPTS, MAX_TOKEN_LEN, METHOD, REQUEST_COOKIE, REQUEST_TTL_SECS,
    ReturnLinks, enabled, record_failure, refused, store,
};
use crate::accounts;
use crate::app::AppState;
use crate::audit::login_history::LoginEvent;
use crate::crypto::tokens::TokenHash;
use crate::error::Result;
use crate::login::completion::{Completion, finish_sign_in};
use crate::login::device;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;
use crate::web::{csrf, signed_cookies};

/// Query of the mailed link.
#[derive(Debug, Deserialize)]
pub struct ConfirmQuery {
    #[serde(default)]
    token: String,
}

/// Fields of the link's confirm form.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

fn token_hash(token: &str) -> Option<TokenHash> {
    let token = token.trim();
    (!token.is_empty() && token.len() <= MAX_TOKEN_LEN).then(|| TokenHash::of(token))
}

/// `GET /login/email/confirm?token=…`: a button that signs in (nothing happens on a mere GET, which
/// mail scanners and link previews make), or why the link no longer works.
pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<ConfirmQuery>,
) -> Result<Response> {
    enabled(&state)?;
    let now = state.clock.now();
    let found = match token_hash(&q.token) {
        Some(hash) => {
            store::find_usable_by_token(&state.db.pool, hash.as_str(), now, MAX_CODE_ATTEMPTS)
                .await?
        }
        None => None,
    };
    let user = match found.as_ref().and_then(|r| r.user_id.as_deref()) {
        Some(id) => accounts::store::find_by_id(&state.db.pool, id)
            .await?
            .filter(|u| !u.disabled),
        None => None,
    };
    let Some(user) = user else {
        return Ok(refused(LINK_REFUSED, no_return()));
    };
    let csrf = csrf::token()?;
    Ok(render(&ConfirmPage {
        csrf: &csrf,
        token: q.token.trim(),
        email: &user.email,
        refused: None,
        links: no_return(),
        minutes: REQUEST_TTL_SECS / 60,
        asset_version: ASSET_VERSION,
    }))
}

/// The refusal page's links for a mailed link: plain ones, since a link is often opened on another
/// device than the one whose authorization waits (a code typed there keeps it: [`super::code`]).
fn no_return() -> ReturnLinks {
    ReturnLinks::new("", "")
}

/// What a link that cannot be used says (one message: unknown, expired, used, or ended by codes).
pub const LINK_REFUSED: &str = "This sign-in link no longer works: links work once, for 10 minutes, \
     and not after too many wrong codes. Ask for a new mail.";

/// `POST /login/email/confirm`: uses the link (once) and signs in the browser that pressed the
/// button; continues the pending authorization saved in this browser's session, else `next` or home.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ConfirmForm>,
) -> Result<Response> {
    enabled(&state)?;
    csrf::check(&form.csrf)?;
    let Some(hash) = token_hash(&form.token) else {
        return Ok(refused(LINK_REFUSED, no_return()));
    };
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    // The deciding statement: of two submissions of one link (or the link and its code), one
    // signs in, the other finds it used.
    let Some(request) =
        store::consume_by_token(&mut *tx, hash.as_str(), now, MAX_CODE_ATTEMPTS).await?
    else {
        return Ok(refused(LINK_REFUSED, no_return()));
    };
    let user_id = request.user_id.as_deref().unwrap_or_default();
    let user = accounts::store::find_by_id(&mut *tx, user_id).await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        // Disabled since the mail was sent.
        let ip = meta.ip.clone().unwrap_or_default();
        let event = LoginEvent {
            user_id: Some(user_id),
            email: &request.email,
            ip: &ip,
            user_agent: meta.user_agent.as_deref(),
            method: METHOD,
        };
        record_failure(&mut tx, &event, &meta, "account_disabled", now).await?;
        tx.commit().await?;
        return Ok(refused(LINK_REFUSED, no_return()));
    };
    accounts::store::mark_email_verified(&mut *tx, &user.id, now).await?;
    if signed_cookies::get(REQUEST_COOKIE).as_deref() == Some(request.id.as_str()) {
        signed_cookies::remove(REQUEST_COOKIE)?;
    }
    let device_token = device::device_token(&headers, &state.config);
    // No throttling counter admitted a failure for a link (a 256-bit token is not guessed), so
    // none is settled; this also keeps this transaction's locks in the order of a code's.
    let completion = Completion {
        user: &user,
        email: &request.email,
        method: METHOD,
        amr: AMR,
        keys: &[],
        authz: &request.authz,
        next: &request.next,
        device_token: &device_token,
    };
    finish_sign_in(&state, &session, &meta, tx, completion).await
}
