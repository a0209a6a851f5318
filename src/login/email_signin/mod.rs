//! Email sign-in: a mailed single-use link and 6-digit code instead of a password
//! (`LATCHKEY_EMAIL_SIGNIN`, on by default).
//!
//! 1. `GET/POST /login/email` ([`request_page`], [`request_submit`]) asks for an address. The answer is
//!    always the same "check your inbox" page, for known and unknown addresses and disabled accounts,
//!    after the same work (one lookup, one limit count, one inserted request, one audit event): no
//!    account enumeration (OWASP Authentication Cheat Sheet, "Authentication and Error Messages").
//!    Only a usable account's request gets a mail, with a link carrying a 256-bit token and a
//!    6-digit code, both valid [`REQUEST_TTL_SECS`] and once. The token is stored as its SHA-256; the
//!    code as an HMAC-SHA256 under a key derived from the key-encryption key ([`CODE_KEY_PURPOSE`]),
//!    because the 10^6 possible codes are hashed back from a plain SHA-256 in no time.
//! 2. The "check your inbox" page holds a code form bound to this browser by a signed cookie naming
//!    the request ([`crate::web::signed_cookies`]; no session row for an anonymous visitor): typing
//!    the code there signs in THIS browser and continues its pending authorization, so the mail can be
//!    read on a phone and the code typed on the laptop ([`code::submit`]). At most
//!    [`MAX_CODE_ATTEMPTS`] codes per request (the last wrong one ends it); every code typed counts on
//!    the login throttling's counters like a password ([`super::throttle`]).
//! 3. The link `GET /login/email/confirm?token=…` only shows a button (mail scanners open links); its
//!    POST signs in the browser that pressed it and continues the pending authorization saved in
//!    that browser's session, else goes to `next` or home ([`link::page`], [`link::submit`]).
//!
//! A sign-in by mail proves the address (the account's email becomes verified) and is recorded as
//! `amr` `["email", "otp"]` (RFC 8176 §2: `otp`, a one-time secret delivered out of band; `email`
//! names the channel); its login history rows have method `email`. Mails are limited to
//! [`MAX_PER_ACCOUNT`] per account and [`MAX_PER_IP`] requests per client address within
//! [`LIMIT_WINDOW_SECS`] (NIST SP 800-63B §5.1.3.1 asks out-of-band secrets to be short-lived and
//! single use, §5.2.2 for the rate limits).

pub mod code;
pub mod link;
mod mail;
pub mod store;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::pages::{LoginQuery, local_next};
use super::session;
use super::throttle;
use crate::accounts;
use crate::app::AppState;
use crate::audit::login_history::{self, LoginEvent};
use crate::audit::{self, Actor, AuditEvent, action};
use crate::crypto::tokens::new_id;
use crate::crypto::tokens::random_token;
use crate::db::Tx;
use crate::error::{AppError, Result};
use crate::routes;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;
use crate::web::{csrf, signed_cookies};

/// A request (its link and its code) works this long.
pub const REQUEST_TTL_SECS: i64 = 10 * 60;
/// Codes typed per request; the last wrong one ends the request (a new mail is needed).
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// The window of the sending limits.
pub const LIMIT_WINDOW_SECS: i64 = 60 * 60;
/// Sign-in mails per account per window; further requests get the same page and no mail.
pub const MAX_PER_ACCOUNT: i64 = 5;
/// Requests from one client address per window, whatever address they name (known or not);
/// further requests get a 429 page.
pub const MAX_PER_IP: i64 = 30;
/// Purpose label of the code's HMAC key, derived from the key-encryption key.
pub const CODE_KEY_PURPOSE: &str = "email-signin-code";
/// Subject of the mail (no code in it: subjects show on lock screens).
pub const SIGNIN_SUBJECT: &str = "Your sign-in link";
/// The signed cookie naming this browser's request.
const REQUEST_COOKIE: &str = "email_signin";
/// Digits of the code.
const CODE_DIGITS: usize = 6;
/// Longest link token accepted (ours are 43 characters).
const MAX_TOKEN_LEN: usize = 128;
/// The RFC 8176 method of the login history and audit events.
const METHOD: &str = "email";
/// The session's `amr`.
const AMR: &[&str] = &["email", "otp"];
/// What a wrong code says (the same for every address).
pub const WRONG_CODE: &str = "That code is not correct.";
/// The start of the message of a throttled code; the wait follows.
pub const CODE_THROTTLED: &str = "Too many wrong codes. Try again in";

/// The "email me a sign-in link" form.
#[derive(Template)]
#[template(path = "pages/login_email.html")]
struct RequestPage<'a> {
    csrf: &'a str,
    authz: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// "Check your inbox", with the code form; the same for every address but the echoed one.
#[derive(Template)]
#[template(path = "pages/login_email_sent.html")]
struct SentPage<'a> {
    csrf: &'a str,
    email: &'a str,
    minutes: i64,
    error: Option<&'a str>,
    links: ReturnLinks,
    asset_version: &'a str,
}

/// The mailed link's page: a button, or why the link or code no longer works.
#[derive(Template)]
#[template(path = "pages/login_email_confirm.html")]
struct ConfirmPage<'a> {
    csrf: &'a str,
    token: &'a str,
    email: &'a str,
    /// Set when the request cannot be used: the reason, shown instead of the button.
    refused: Option<&'a str>,
    /// Where a refused page's "ask for a new mail" and "back to sign in" lead.
    links: ReturnLinks,
    minutes: i64,
    asset_version: &'a str,
}

/// Fields of the request form.
#[derive(Deserialize)]
pub struct RequestForm {
    /// Defaulted so that a missing token is refused like a wrong one (400).
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    authz: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    email: String,
}

/// Every page of the feature answers 404 when `LATCHKEY_EMAIL_SIGNIN=off`, like an unknown path.
fn enabled(state: &AppState) -> Result<()> {
    if state.config.email_signin {
        Ok(())
    } else {
        Err(AppError::not_found("There is nothing at this address."))
    }
}

/// The links of the "check your inbox" and refusal pages back to the request form ("ask for a new
/// mail") and to the login page, carrying the pending authorization and `next` of the request, so
/// that a person who starts over still ends at the application that sent them.
#[derive(Debug, Clone)]
struct ReturnLinks {
    again: String,
    login: String,
}

impl ReturnLinks {
    fn new(authz: &str, next: &str) -> ReturnLinks {
        ReturnLinks {
            again: request_link(authz, next),
            login: with_return(routes::LOGIN, authz, next),
        }
    }
}

/// The link of the login page to the request form, carrying the pending authorization and `next`.
pub fn request_link(authz: &str, next: &str) -> String {
    with_return(routes::LOGIN_EMAIL, authz, next)
}

/// `path` with the `authz` and `next` query parameters that are not empty.
fn with_return(path: &str, authz: &str, next: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !authz.is_empty() {
        query.append_pair("authz", authz);
    }
    if !next.is_empty() {
        query.append_pair("next", next);
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// The pending authorization `authz` names, when this browser's session holds it (else empty).
async fn pending_authz<'a>(session: &Session, authz: &'a str) -> Result<&'a str> {
    if authz.is_empty() || session::pending(session, authz).await?.is_none() {
        return Ok("");
    }
    Ok(authz)
}

async fn render_request(
    authz: &str,
    next: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let mut response = render(&RequestPage {
        csrf: &csrf,
        authz,
        next,
        email,
        error,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    Ok(response)
}

fn render_sent(
    email: &str,
    error: Option<&str>,
    status: StatusCode,
    links: ReturnLinks,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let mut response = render(&SentPage {
        csrf: &csrf,
        email,
        minutes: REQUEST_TTL_SECS / 60,
        error,
        links,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// The page of a link or code that cannot be used (400): `reason`, and a way to ask again.
fn refused(reason: &str, links: ReturnLinks) -> Response {
    let mut response = render(&ConfirmPage {
        csrf: "",
        token: "",
        email: "",
        refused: Some(reason),
        links,
        minutes: REQUEST_TTL_SECS / 60,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// What the refusal page says about a request that can no longer be used.
fn unusable_reason(request: Option<&store::Request>, now: i64) -> (&'static str, &'static str) {
    match request {
        None => (
            "unknown_request",
            "This sign-in request is not known in this browser: ask for a new mail here.",
        ),
        Some(r) if r.used_at.is_some() => (
            "already_used",
            "This sign-in link or code was already used. Each works only once.",
        ),
        Some(r) if r.attempts >= MAX_CODE_ATTEMPTS => (
            "too_many_attempts",
            "Too many wrong codes were typed for this request. Ask for a new mail.",
        ),
        Some(r) if r.expires_at <= now => (
            "expired",
            "This sign-in link or code has expired: they work for 10 minutes.",
        ),
        Some(_) => (
            "unusable",
            "This sign-in link or code no longer works. Ask for a new mail.",
        ),
    }
}

/// A 429 with `Retry-After` (RFC 9110 §10.2.3) on `response`.
fn too_many(mut response: Response, retry_after: i64) -> Response {
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    response
}

/// `GET /login/email`: the form, carrying the pending authorization and `next` of the login page.
pub async fn request_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response> {
    enabled(&state)?;
    let authz = pending_authz(&session, &q.authz).await?;
    let hint = match authz {
        "" => None,
        id => session::pending(&session, id)
            .await?
            .and_then(|r| r.login_hint),
    };
    let next = local_next(&q.next).unwrap_or_default();
    let email = hint.unwrap_or_default();
    render_request(authz, next, &email, None, StatusCode::OK).await
}

/// `POST /login/email`: the same "check your inbox" page for every valid address (see the module
/// doc); a sign-in request in every case, bound to this browser by its signed cookie; a mail only for
/// a usable account under its limit, queued after the answer so that its work does not show in the
/// answer's timing (OWASP Forgot Password Cheat Sheet: "ensure that responses return in a consistent
/// amount of time").
pub async fn request_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    axum::Form(form): axum::Form<RequestForm>,
) -> Result<Response> {
    enabled(&state)?;
    csrf::check(&form.csrf)?;
    let authz = pending_authz(&session, &form.authz).await?;
    let next = local_next(&form.next).unwrap_or_default();
    let typed = form.email.trim();
    let email = match accounts::validate_email(typed) {
        Ok(email) => email,
        Err(e) => {
            let message = if typed.is_empty() {
                "Enter the email address of your account.".to_owned()
            } else {
                crate::web::page::sentence(&e.to_string())
            };
            return render_request(authz, next, typed, Some(&message), StatusCode::BAD_REQUEST)
                .await;
        }
    };
    let now = state.clock.now();
    let user = accounts::store::find_by_email(&state.db.pool, &email)
        .await?
        .filter(|u| !u.disabled);
    let mut tx = state.db.begin().await?;
    // Every request counts, known address or not: a limit that only counted real accounts would
    // itself reveal them.
    if let Some(ip) = meta.ip.as_deref() {
        let (recent, oldest) = store::count_from_ip(&mut *tx, ip, now - LIMIT_WINDOW_SECS).await?;
        if recent >= MAX_PER_IP {
            drop(tx);
            let wait = oldest.unwrap_or(now) + LIMIT_WINDOW_SECS - now;
            let message = format!(
                "Too many sign-in mails were asked for from your network. Try again in {}.",
                throttle::wait_text(wait)
            );
            let page = render_request(authz, next, typed, Some(&message), StatusCode::OK).await?;
            return Ok(too_many(page, wait));
        }
    }
    let user_id = user.as_ref().map(|u| u.id.clone()).unwrap_or_default();
    let user_id = user_id.as_str();
    store::lock_user(&mut *tx, user_id).await?;
    let recent = store::count_for_user(&mut *tx, user_id, now - LIMIT_WINDOW_SECS).await?;
    let mailed = user.filter(|_| recent < MAX_PER_ACCOUNT);
    let id = new_id();
    let token = random_token();
    let code = code::new_code();
    let code_hash = code::code_mac(&state, &id, &code)?;
    store::insert(
        &mut *tx,
        &store::NewRequest {
            id: &id,
            user_id: mailed.as_ref().map(|u| u.id.as_str()),
            email: &email,
            token_hash: token.hash().as_str(),
            code_hash: &code_hash,
            authz,
            next,
            requested_ip: meta.ip.as_deref(),
            created_at: now,
            expires_at: now + REQUEST_TTL_SECS,
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::anonymous(meta.clone()),
            action: action::LOGIN_EMAIL_REQUESTED,
            target_type: (!user_id.is_empty()).then_some("user"),
            target_id: (!user_id.is_empty()).then_some(user_id),
            details: json!({ "mailed": mailed.is_some() }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    signed_cookies::set(REQUEST_COOKIE, &id, Some(REQUEST_TTL_SECS))?;
    if let Some(user) = mailed {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(err) = mail::send_mail(&state, &user, &token, &code, &meta, now).await {
                tracing::error!(user_id = %user.id, error = %err, "sign-in mail not queued");
            }
        });
    } else if !user_id.is_empty() {
        tracing::info!(user_id, "email sign-in limit reached; no mail");
    }
    render_sent(&email, None, StatusCode::OK, ReturnLinks::new(authz, next))
}

/// Records a failed sign-in by mail in `tx`: the login history and `login.failed` (with the reason).
async fn record_failure(
    tx: &mut Tx,
    event: &LoginEvent<'_>,
    meta: &RequestMeta,
    reason: &str,
    now: i64,
) -> Result<()> {
    login_history::record_login(&mut **tx, event, false, now).await?;
    audit::record(
        &mut **tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::anonymous(meta.clone()),
            action: action::LOGIN_FAILED,
            target_type: event.user_id.map(|_| "user"),
            target_id: event.user_id,
            details: json!({
                "email": event.email.chars().take(254).collect::<String>(),
                "reason": reason,
                "method": METHOD,
            }),
        },
        now,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_link_carries_authz_and_next() {
        assert_eq!(request_link("", ""), "/login/email");
        assert_eq!(request_link("a1", ""), "/login/email?authz=a1");
        assert_eq!(
            request_link("", "/account?x=1&y=2"),
            "/login/email?next=%2Faccount%3Fx%3D1%26y%3D2"
        );
    }
}
