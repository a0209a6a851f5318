//! The 6-digit code typed on the "check your inbox" page: made and hashed here, checked by
//! [`submit`] under the login throttling and the per-request attempt limit.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    AMR, CODE_DIGITS, CODE_KEY_PURPOSE, CODE_THROTTLED, MAX_CODE_ATTEMPTS, METHOD, REQUEST_COOKIE,
    ReturnLinks, WRONG_CODE, enabled, record_failure, refused, render_sent, store, too_many,
    unusable_reason,
};
use crate::accounts;
use crate::app::AppState;
use crate::audit::login_history::LoginEvent;
use crate::crypto::tokens::{constant_time_eq, hmac_sha256};
use crate::db::Tx;
use crate::error::{AppError, Result};
use crate::login::completion::{self, Completion, finish_sign_in, record_throttled};
use crate::login::device;
use crate::login::throttle::{self, Key, Throttled};
use crate::web::request_meta::RequestMeta;
use crate::web::{csrf, signed_cookies};

/// Fields of the code form.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// The keyed hash of `code` for request `id`: HMAC-SHA256 under the feature's key (the request id in
/// the input, so equal codes of two requests hash apart), base64url.
pub(super) fn code_mac(state: &AppState, id: &str, code: &str) -> Result<String> {
    let key = state.kek.derive(CODE_KEY_PURPOSE);
    let mac = hmac_sha256(&key, &[id.as_bytes(), &[0], code.as_bytes()])
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("cannot compute the code's HMAC")))?;
    Ok(URL_SAFE_NO_PAD.encode(mac))
}

/// A fresh code: [`CODE_DIGITS`] decimal digits, uniform, from the OS CSPRNG.
pub(super) fn new_code() -> String {
    let n: u32 = rand::rngs::OsRng.gen_range(0..1_000_000);
    format!("{n:0width$}", width = CODE_DIGITS)
}

/// The code as typed, without the spaces or dashes people add; `None` when it is not
/// [`CODE_DIGITS`] digits (then it is simply wrong).
fn normalise_code(typed: &str) -> Option<String> {
    if typed.len() > 32 {
        return None;
    }
    let digits: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// `POST /login/email/code`: the code typed on the "check your inbox" page. Throttled and counted
/// like a password (before the code is compared), at most [`MAX_CODE_ATTEMPTS`] per request; a right
/// code for a usable account signs this browser in and continues the request's authorization.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CodeForm>,
) -> Result<Response> {
    enabled(&state)?;
    csrf::check(&form.csrf)?;
    let now = state.clock.now();
    let request = match signed_cookies::get(REQUEST_COOKIE) {
        Some(id) => store::find(&state.db.pool, &id).await?,
        None => None,
    };
    let user = match request.as_ref().and_then(|r| r.user_id.as_deref()) {
        Some(id) => accounts::store::find_by_id(&state.db.pool, id).await?,
        None => None,
    };
    let email = request
        .as_ref()
        .map(|r| r.email.as_str())
        .unwrap_or_default();
    let device_token = device::device_token(&headers, &state.config);
    // The same counters as a password attempt on this address; a code posted with no request
    // known counts on the client address only (there is no account to name).
    let keys = match &request {
        Some(r) => {
            completion::throttle_keys(&state, r.user_id.as_deref(), email, &device_token, &meta)
                .await?
        }
        None => meta
            .limit_key()
            .map(|a| vec![Key::login_address(&a)])
            .unwrap_or_default(),
    };
    let ip = meta.ip.clone().unwrap_or_default();
    let event = LoginEvent {
        user_id: request.as_ref().and_then(|r| r.user_id.as_deref()),
        email,
        ip: &ip,
        user_agent: meta.user_agent.as_deref(),
        method: METHOD,
    };
    if let Some(throttled) = throttle::blocked(&state.db.pool, &keys, now).await? {
        let tx = state.db.begin().await?;
        return refuse_throttled(tx, &event, &meta, throttled, links(&request), now).await;
    }
    let mut tx = state.db.begin().await?;
    if let Some(throttled) = throttle::admit(&mut tx, &keys, now).await? {
        return refuse_throttled(tx, &event, &meta, throttled, links(&request), now).await;
    }
    let counted = match &request {
        Some(r) => store::count_attempt(&mut *tx, &r.id, now, MAX_CODE_ATTEMPTS).await?,
        None => None,
    };
    let Some(counted) = counted else {
        let (reason, message) = unusable_reason(request.as_ref(), now);
        record_failure(&mut tx, &event, &meta, reason, now).await?;
        tx.commit().await?;
        signed_cookies::remove(REQUEST_COOKIE)?;
        return Ok(refused(message, links(&request)));
    };
    let right = match normalise_code(&form.code) {
        Some(code) => {
            let mac = code_mac(&state, &counted.id, &code)?;
            constant_time_eq(mac.as_bytes(), counted.code_hash.as_bytes())
        }
        None => false,
    };
    let usable = user.as_ref().filter(|u| !u.disabled);
    match usable {
        Some(user) if right => {
            store::mark_used(&mut *tx, &counted.id, now).await?;
            // The mail reached the address: it is proven, like by a verification link.
            accounts::store::mark_email_verified(&mut *tx, &user.id, now).await?;
            signed_cookies::remove(REQUEST_COOKIE)?;
            let completion = Completion {
                user,
                email: &counted.email,
                method: METHOD,
                amr: AMR,
                keys: &keys,
                authz: &counted.authz,
                next: &counted.next,
                device_token: &device_token,
            };
            finish_sign_in(&state, &session, &meta, tx, completion).await
        }
        _ => {
            let reason = match (&user, right) {
                (None, _) => "unknown_email",
                (Some(_), true) => "account_disabled",
                (Some(_), false) => "wrong_code",
            };
            record_failure(&mut tx, &event, &meta, reason, now).await?;
            tx.commit().await?;
            let left = MAX_CODE_ATTEMPTS - counted.attempts;
            if left <= 0 {
                signed_cookies::remove(REQUEST_COOKIE)?;
                return Ok(refused(
                    "That code is not correct, and too many wrong codes were typed for this \
                     request. Ask for a new mail.",
                    ReturnLinks::new(&counted.authz, &counted.next),
                ));
            }
            let message = match left {
                1 => format!("{WRONG_CODE} One more try."),
                n => format!("{WRONG_CODE} {n} more tries."),
            };
            let links = ReturnLinks::new(&counted.authz, &counted.next);
            render_sent(
                &counted.email,
                Some(&message),
                StatusCode::UNAUTHORIZED,
                links,
            )
        }
    }
}

/// The return links of the request this browser holds, if any.
fn links(request: &Option<store::Request>) -> ReturnLinks {
    match request {
        Some(r) => ReturnLinks::new(&r.authz, &r.next),
        None => ReturnLinks::new("", ""),
    }
}

/// The 429 answer to a throttled code (the same for every address, with `Retry-After`), recorded in
/// `tx` (login history and `login.throttled`).
async fn refuse_throttled(
    mut tx: Tx,
    event: &LoginEvent<'_>,
    meta: &RequestMeta,
    throttled: Throttled,
    links: ReturnLinks,
    now: i64,
) -> Result<Response> {
    record_throttled(&mut tx, event, meta, throttled, now).await?;
    tx.commit().await?;
    let message = format!(
        "{CODE_THROTTLED} {}.",
        throttle::wait_text(throttled.retry_after)
    );
    let page = render_sent(event.email, Some(&message), StatusCode::OK, links)?;
    Ok(too_many(page, throttled.retry_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_typing_is_forgiving() {
        for _ in 0..200 {
            let code = new_code();
            assert_eq!(code.len(), 6, "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        }
        assert_eq!(normalise_code(" 012 345 ").as_deref(), Some("012345"));
        assert_eq!(normalise_code("012-345").as_deref(), Some("012345"));
        assert_eq!(normalise_code("12345"), None);
        assert_eq!(normalise_code("1234567"), None);
        assert_eq!(normalise_code("12345a"), None);
        assert_eq!(normalise_code("１２３４５６"), None);
    }
}
