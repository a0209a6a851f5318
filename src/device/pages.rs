//! The `/device` page (RFC 8628 §3.3): a signed-in person types the user code their device shows,
//! confirms what the device will get (§5.4: always a confirmation, since a code can be phished
//! remotely: the application's name, the scopes, who is signed in, the organization) and approves
//! or denies it. One route, one form field `decision` telling the steps apart: none (look the code
//! up and show the confirmation), `approve`, `deny`.
//!
//! The confirmation and the answer are in [`super::confirm`].
//!
//! Signed-out browsers go to the login page, which comes back here with the code
//! ([`crate::self_service::pages::holder`]). Wrong codes are counted per browser session: after
//! [`MAX_FAILURES`] within [`FAILURE_WINDOW_SECS`] the page refuses every code until the oldest
//! failure leaves the window (§5.1: 34 bits of user code stand only with a limit on guesses).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use super::confirm::Confirm;
use super::store;
use super::user_code;
use crate::app::AppState;
use crate::crypto::tokens::TokenHash;
use crate::error::Result;
use crate::login::session::session_error;
use crate::orgs::picker;
use crate::routes;
use crate::self_service::pages::holder;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// Wrong user codes a browser session may type within [`FAILURE_WINDOW_SECS`].
pub const MAX_FAILURES: usize = 5;

/// The window wrong user codes are counted in.
pub const FAILURE_WINDOW_SECS: i64 = 10 * 60;

/// Session key: the times of this session's recent wrong user codes.
const FAILURES_KEY: &str = "device_code_failures";

/// Longest typed code shown back in the form (a code is 9 characters; the rest is noise).
const MAX_SHOWN_INPUT: usize = 32;

/// What a code not found says (the same for a malformed one: no hint about the alphabet).
pub const UNKNOWN_CODE: &str =
    "That code is not valid. Check the code your device shows and type it again.";

/// What an expired code says.
pub const EXPIRED_CODE: &str =
    "That code has expired. Start again on your device to get a new one.";

/// What a code answered already says.
pub const ANSWERED_CODE: &str =
    "That code was already used. Start again on your device if it did not sign in.";

/// What the page says once the limit of wrong codes is reached.
pub const TOO_MANY_CODES: &str = "Too many wrong codes. Wait a few minutes and try again";

/// The page where the code is typed.
#[derive(Template)]
#[template(path = "pages/device.html")]
struct EntryPage<'a> {
    action: &'a str,
    csrf: &'a str,
    user_code: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// Query of `GET /device`.
#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    /// The code from `verification_uri_complete`, to prefill the form.
    #[serde(default)]
    user_code: String,
}

/// Fields of the forms of `/device`; defaulted so that a missing field is a clear refusal.
#[derive(Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_code: String,
    /// Empty: look the code up; `approve` or `deny`: the answer on the confirmation page.
    #[serde(default)]
    decision: String,
    /// The organization chosen on the confirmation page.
    #[serde(default)]
    org: String,
}

/// Where the login page returns to: this page with the code, when it is one.
pub(super) fn here(typed: &str) -> String {
    match user_code::normalise(typed) {
        Some(code) => format!("{}?user_code={}", routes::DEVICE, user_code::display(&code)),
        None => routes::DEVICE.to_owned(),
    }
}

/// What the form shows back of what was typed.
pub(super) fn shown(typed: &str) -> String {
    match user_code::normalise(typed) {
        Some(code) => user_code::display(&code),
        None => typed.trim().chars().take(MAX_SHOWN_INPUT).collect(),
    }
}

/// The entry form with `error`, answered with `status`.
pub(super) fn entry(
    email: &str,
    typed: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let mut response = render(&EntryPage {
        action: routes::DEVICE,
        csrf: &csrf,
        user_code: &shown(typed),
        email,
        error,
        asset_version: ASSET_VERSION,
    });
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// `GET /device[?user_code=…]`: the form, prefilled from `verification_uri_complete`. Looking the
/// code up waits for the form's POST, so that opening a link never answers anything and every
/// lookup is counted.
pub async fn device_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<DeviceQuery>,
) -> Result<Response> {
    let person = match holder(&state, &session, &here(&q.user_code)).await? {
        Ok(person) => person,
        Err(to_login) => return Ok(to_login),
    };
    entry(&person.user.email, &q.user_code, None, StatusCode::OK)
}

/// `POST /device`: the code typed (then the confirmation page), or the answer on it.
pub async fn device_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<DeviceForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let person = match holder(&state, &session, &here(&form.user_code)).await? {
        Ok(person) => person,
        Err(to_login) => return Ok(to_login),
    };
    let email = person.user.email.clone();
    let now = state.clock.now();
    let mut failures = recent_failures(&session, now).await?;
    if failures.len() >= MAX_FAILURES {
        let oldest = failures.iter().min().copied().unwrap_or(now);
        let retry_after = (oldest + FAILURE_WINDOW_SECS - now).max(1);
        let message = format!(
            "{TOO_MANY_CODES} ({}).",
            crate::login::throttle::wait_text(retry_after)
        );
        let mut response = entry(
            &email,
            &form.user_code,
            Some(&message),
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after));
        return Ok(response);
    }
    let found = match user_code::normalise(&form.user_code) {
        Some(code) => {
            store::find_by_user_code(&state.db.pool, TokenHash::of(&code).as_str()).await?
        }
        None => None,
    };
    let Some(row) = found else {
        failures.push(now);
        session
            .insert(FAILURES_KEY, &failures)
            .await
            .map_err(session_error)?;
        tracing::info!(user_id = %person.user.id, "wrong device user code");
        return entry(
            &email,
            &form.user_code,
            Some(UNKNOWN_CODE),
            StatusCode::BAD_REQUEST,
        );
    };
    if row.expires_at <= now {
        return entry(
            &email,
            &form.user_code,
            Some(EXPIRED_CODE),
            StatusCode::BAD_REQUEST,
        );
    }
    if row.status != store::PENDING {
        return entry(
            &email,
            &form.user_code,
            Some(ANSWERED_CODE),
            StatusCode::BAD_REQUEST,
        );
    }
    let Some(client) = state.clients.find(&row.client_id).await? else {
        return entry(
            &email,
            &form.user_code,
            Some(UNKNOWN_CODE),
            StatusCode::BAD_REQUEST,
        );
    };
    let memberships = picker::store::memberships_of(&state.db.pool, &person.user.id).await?;
    if memberships.is_empty() && client.require_org {
        return Ok(picker::required_page(&client, &email));
    }
    let page = Confirm {
        state: &state,
        person: &person,
        client: &client,
        row: &row,
        memberships: &memberships,
        typed: &form.user_code,
        meta,
    };
    page.respond(&form.decision, &form.org).await
}

/// The session's wrong codes still within the window.
async fn recent_failures(session: &Session, now: i64) -> Result<Vec<i64>> {
    let failures: Vec<i64> = session
        .get(FAILURES_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    Ok(failures
        .into_iter()
        .filter(|t| now - t < FAILURE_WINDOW_SECS)
        .collect())
}
