//! `/account/email`: changing the sign-in address (OWASP ASVS V2.5 / Authentication Cheat Sheet
//! "change email": re-enter the password, prove the new mailbox, tell the old one).
//!
//! 1. `POST /account/email` with the new address and the current password (throttled like a
//!    sign-in, [`super::reauth`]). A taken address is said to be taken: the person is signed in and
//!    proved the password, and sign-up tells as much anyway. A single-use link valid
//!    [`CHANGE_TTL_SECS`] goes to the NEW address (only its SHA-256 is stored, in `email_changes`);
//!    the OLD address is told a change was asked for. A newer request replaces older pending ones;
//!    at most [`MAX_CHANGES_PER_WINDOW`] per [`CHANGE_WINDOW_SECS`], so the form cannot be used to
//!    mail strangers in bulk.
//! 2. `GET /account/email/confirm?token=…` shows a button (mail scanners open links: a GET changes
//!    nothing); its `POST` makes the change in one transaction: the token used, the address and its
//!    lower-case key replaced and marked verified, the user's other pending changes dropped, a notice
//!    to the old address, an audit event. An address another account took meanwhile is refused by the
//!    unique index (a clear page, nothing changed). Until then, tokens and userinfo keep the old one.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::pages::{holder, nav};
use super::reauth::{self};
use super::{mail, notice, store};
use crate::accounts;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::crypto::password::Password;
use crate::crypto::tokens::{TokenHash, random_token};
use crate::error::{AppError, Result};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render, sentence};
use crate::web::request_meta::RequestMeta;

/// How long a confirmation link works.
pub const CHANGE_TTL_SECS: i64 = 24 * 60 * 60;
/// The window of the per-account request limit.
pub const CHANGE_WINDOW_SECS: i64 = 24 * 60 * 60;
/// Address changes one account may ask for per window.
pub const MAX_CHANGES_PER_WINDOW: i64 = 5;
/// Longest token accepted from a link (ours are 43 characters).
const MAX_TOKEN_LEN: usize = 128;

/// `GET /account/email`: the form.
#[derive(Template)]
#[template(path = "pages/account/email.html")]
struct EmailPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    csrf: &'a str,
    email: &'a str,
    verified: bool,
    pending: Option<&'a str>,
    new_email: &'a str,
    has_password: bool,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// `GET /account/email/sent`: check your inbox.
#[derive(Template)]
#[template(path = "pages/account/email_sent.html")]
struct SentPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    pending: Option<&'a str>,
    hours: i64,
    asset_version: &'a str,
}

/// The confirmation link's page: the button, the result, or why it cannot be used. `kind` is
/// `confirm`, `done`, `invalid` or `taken`.
#[derive(Template)]
#[template(path = "pages/account/email_confirm.html")]
struct ConfirmPage<'a> {
    kind: &'a str,
    csrf: &'a str,
    token: &'a str,
    new_email: &'a str,
    hours: i64,
    asset_version: &'a str,
}

/// Fields of the change form.
#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    password: String,
}

/// Query of the mailed link.
#[derive(Debug, Deserialize)]
pub struct ConfirmQuery {
    #[serde(default)]
    token: String,
}

/// Fields of the confirm button's form.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// What the form shows besides the account: the typed address and why it was refused.
struct Shown<'a> {
    new_email: &'a str,
    error: Option<&'a str>,
    status: StatusCode,
}

async fn email_page(
    state: &AppState,
    session: &Session,
    user: &accounts::User,
    form: Shown<'_>,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let pending = store::pending_email_change(&state.db.pool, &user.id, state.clock.now()).await?;
    let notice = notice::take(session).await?;
    let mut response = render(&EmailPage {
        nav: nav(routes::ACCOUNT_EMAIL),
        csrf: &csrf,
        email: &user.email,
        verified: user.email_verified,
        pending: pending.as_deref(),
        new_email: form.new_email,
        has_password: reauth::has_password(state, user).await?,
        notice: notice.as_deref(),
        error: form.error,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = form.status;
    Ok(response)
}

/// `GET /account/email`.
pub async fn email_form(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_EMAIL).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let form = Shown {
        new_email: "",
        error: None,
        status: StatusCode::OK,
    };
    email_page(&state, &session, &holder.user, form).await
}

/// `POST /account/email`: checks the address and the password, stores the pending change, mails the
/// link to the new address and the notice to the old one, audits `user.email_change_requested`;
/// 303 to the "check your inbox" page.
pub async fn email_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(mut form): Form<EmailForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let holder = match holder(&state, &session, routes::ACCOUNT_EMAIL).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let user = &holder.user;
    let typed = form.new_email.trim().to_owned();
    let refuse = |message: &str, status: StatusCode| {
        let message = message.to_owned();
        let typed = typed.clone();
        let state = state.clone();
        let session = session.clone();
        let user = user.clone();
        async move {
            let form = Shown {
                new_email: &typed,
                error: Some(&message),
                status,
            };
            email_page(&state, &session, &user, form).await
        }
    };
    let new_email = match accounts::validate_email(&typed) {
        Ok(email) => email,
        Err(AppError::Invalid(message)) => {
            return refuse(&sentence(&message), StatusCode::BAD_REQUEST).await;
        }
        Err(other) => return Err(other),
    };
    if accounts::email_key(&new_email) == accounts::email_key(&user.email) {
        let message = "This is already the address of your account.";
        return refuse(message, StatusCode::BAD_REQUEST).await;
    }
    let password = Password::new(std::mem::take(&mut form.password));
    if let Some(refused) = reauth::verify(&state, user, &password)
        .await?
        .page_refusal()
    {
        let page = refuse(&refused.message, refused.status).await?;
        return Ok(refused.finish(page));
    }
    // Checked after the password, so that a stolen session does not even learn which addresses
    // have accounts without it.
    if accounts::store::find_by_email(&state.db.pool, &new_email)
        .await?
        .is_some()
    {
        let message = "This address belongs to another account. Choose another one.";
        return refuse(message, StatusCode::CONFLICT).await;
    }

    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    // Serialises this account's requests (PostgreSQL row lock) so the limit cannot be outrun.
    crate::recovery::store::lock_user(&mut *tx, &user.id).await?;
    let asked = store::count_email_changes(&mut *tx, &user.id, now - CHANGE_WINDOW_SECS).await?;
    if asked >= MAX_CHANGES_PER_WINDOW {
        drop(tx);
        let message = "You asked for too many address changes today. Try again tomorrow.";
        let mut response = refuse(message, StatusCode::TOO_MANY_REQUESTS).await?;
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(CHANGE_WINDOW_SECS));
        return Ok(response);
    }
    // Only the newest link works: an older one may sit in a mailbox typed by mistake.
    store::drop_pending_email_changes(&mut *tx, &user.id, now).await?;
    let token = random_token();
    let hash = token.hash();
    store::insert_email_change(
        &mut *tx,
        &store::NewEmailChange {
            hash: &hash,
            user_id: &user.id,
            new_email: &new_email,
            created_at: now,
            expires_at: now + CHANGE_TTL_SECS,
        },
    )
    .await?;
    mail::queue_change_requested(
        &mut tx,
        &state,
        &user.email,
        &new_email,
        token.expose(),
        meta.ip.as_deref(),
        now,
    )
    .await?;
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::user(user.id.clone(), meta),
            action: action::USER_EMAIL_CHANGE_REQUESTED,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({ "email": user.email, "new_email": new_email }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(user_id = %user.id, "email change requested");
    Ok(see_other(routes::ACCOUNT_EMAIL_SENT))
}

/// `GET /account/email/sent`: the link is on its way.
pub async fn sent_page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_EMAIL).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let pending =
        store::pending_email_change(&state.db.pool, &holder.user.id, state.clock.now()).await?;
    Ok(render(&SentPage {
        nav: nav(routes::ACCOUNT_EMAIL),
        pending: pending.as_deref(),
        hours: CHANGE_TTL_SECS / 3600,
        asset_version: ASSET_VERSION,
    }))
}

fn token_hash(token: &str) -> Option<TokenHash> {
    let token = token.trim();
    (!token.is_empty() && token.len() <= MAX_TOKEN_LEN).then(|| TokenHash::of(token))
}

fn confirm_page(kind: &str, csrf: &str, token: &str, new_email: &str) -> Response {
    let mut response = render(&ConfirmPage {
        kind,
        csrf,
        token,
        new_email,
        hours: CHANGE_TTL_SECS / 3600,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = match kind {
        "invalid" => StatusCode::BAD_REQUEST,
        "taken" => StatusCode::CONFLICT,
        _ => StatusCode::OK,
    };
    response
}

/// `GET /account/email/confirm?token=…`: a button that confirms (nothing changes on a GET), or the
/// page of a link that no longer works. No sign-in needed: the link is the proof, and it may be
/// opened on another device than the one that asked.
pub async fn confirm_form(
    State(state): State<AppState>,
    Query(q): Query<ConfirmQuery>,
) -> Result<Response> {
    let Some(hash) = token_hash(&q.token) else {
        return Ok(confirm_page("invalid", "", "", ""));
    };
    match store::find_email_change(&state.db.pool, &hash, state.clock.now()).await? {
        Some((_, new_email)) => {
            let csrf = csrf::token()?;
            Ok(confirm_page("confirm", &csrf, q.token.trim(), &new_email))
        }
        None => Ok(confirm_page("invalid", "", "", "")),
    }
}

/// `POST /account/email/confirm`: makes the change (see the module doc); audits
/// `user.email_changed`.
pub async fn confirm_submit(
    State(state): State<AppState>,
    meta: RequestMeta,
    Form(form): Form<ConfirmForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let Some(hash) = token_hash(&form.token) else {
        return Ok(confirm_page("invalid", "", "", ""));
    };
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    // The deciding statement: of two submissions of one link, one uses it, the other sees it used.
    let Some((user_id, new_email)) = store::consume_email_change(&mut *tx, &hash, now).await?
    else {
        return Ok(confirm_page("invalid", "", "", ""));
    };
    let Some(user) = accounts::store::find_by_id(&mut *tx, &user_id)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(confirm_page("invalid", "", "", ""));
    };
    // The unique index on the lower-cased address decides a race with a sign-up or another change:
    // the transaction is dropped (rolled back), so the link stays as it was.
    match store::set_email(&mut *tx, &user.id, &new_email, now).await {
        Ok(_) => {}
        Err(e) if crate::db::is_unique_violation(&e) => {
            drop(tx);
            return Ok(confirm_page("taken", "", "", &new_email));
        }
        Err(e) => return Err(e.into()),
    }
    store::drop_pending_email_changes(&mut *tx, &user.id, now).await?;
    mail::queue_email_changed(&mut tx, &state, &user.email, &new_email, now).await?;
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::user(user.id.clone(), meta),
            action: action::USER_EMAIL_CHANGED,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({ "from": user.email, "to": new_email }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(user_id = %user.id, "email changed");
    Ok(confirm_page("done", "", "", &new_email))
}
