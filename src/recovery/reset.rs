//! Step 2 of password reset: the mailed link, the new-password form, and the change itself.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::store;
use crate::accounts;
use crate::accounts::password_strength::check_new_password;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::crypto::password::Password;
use crate::crypto::tokens::TokenHash;
use crate::error::Result;
use crate::mail::{self, MailContext, compose, format_utc};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, mismatched, render, sentence};
use crate::web::request_meta::RequestMeta;

/// Subject of the notification sent after a reset.
pub const CHANGED_SUBJECT: &str = "Your password was changed";
/// `revoked_reason` of the refresh-token families a reset revokes.
const REVOKED_REASON: &str = "password_reset";
/// Longest token accepted from a link (ours are 43 characters).
const MAX_TOKEN_LEN: usize = 128;

/// The new-password form.
#[derive(Template)]
#[template(path = "pages/password_reset.html")]
struct ResetPage<'a> {
    csrf: &'a str,
    token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    /// Why the new password was refused, shown under the field.
    password_error: Option<&'a str>,
    asset_version: &'a str,
}

/// A link that is unknown, expired or used.
#[derive(Template)]
#[template(path = "pages/password_reset_invalid.html")]
struct InvalidPage<'a> {
    minutes: i64,
    asset_version: &'a str,
}

/// After a successful reset.
#[derive(Template)]
#[template(path = "pages/password_reset_done.html")]
struct DonePage<'a> {
    asset_version: &'a str,
}

/// Text of the "password changed" mail (also sent by a change on the account page).
#[derive(Template)]
#[template(path = "mail/password_changed.txt")]
pub(crate) struct ChangedText<'a> {
    pub(crate) ctx: &'a MailContext,
    pub(crate) when: &'a str,
    /// How it was changed ("through a reset link opened from …").
    pub(crate) how: &'a str,
    /// What else happened (signed out), a sentence, or empty.
    pub(crate) aftermath: &'a str,
    pub(crate) forgot_link: &'a str,
}

/// HTML of the "password changed" mail (also sent by a change on the account page).
#[derive(Template)]
#[template(path = "mail/password_changed.html")]
pub(crate) struct ChangedHtml<'a> {
    pub(crate) ctx: &'a MailContext,
    pub(crate) when: &'a str,
    /// How it was changed ("through a reset link opened from …").
    pub(crate) how: &'a str,
    /// What else happened (signed out), a sentence, or empty.
    pub(crate) aftermath: &'a str,
    pub(crate) forgot_link: &'a str,
}

/// Query of the mailed link.
#[derive(Debug, Deserialize)]
pub struct ResetQuery {
    /// The token from the mail.
    #[serde(default)]
    token: String,
}

/// Fields of the new-password form.
#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    /// The page always sends it; a scripted client that leaves it out is not refused for that.
    #[serde(default)]
    password_confirm: Option<String>,
}

fn token_hash(token: &str) -> Option<TokenHash> {
    let token = token.trim();
    (!token.is_empty() && token.len() <= MAX_TOKEN_LEN).then(|| TokenHash::of(token))
}

/// The page for a link that cannot be used (400), with a way to ask for a new one.
fn invalid_link() -> Response {
    let mut response = render(&InvalidPage {
        minutes: super::RESET_TTL_SECS / 60,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// The account a still-usable token resets.
async fn usable_account(state: &AppState, token: &str) -> Result<Option<accounts::User>> {
    let Some(hash) = token_hash(token) else {
        return Ok(None);
    };
    let now = state.clock.now();
    let Some(user_id) = store::find_usable(&state.db.pool, &hash, now).await? else {
        return Ok(None);
    };
    Ok(accounts::store::find_by_id(&state.db.pool, &user_id)
        .await?
        .filter(|u| !u.disabled))
}

async fn render_form(
    token: &str,
    email: &str,
    error: Option<&str>,
    password_error: Option<&str>,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let mut response = render(&ResetPage {
        csrf: &csrf,
        token,
        email,
        error,
        password_error,
        asset_version: ASSET_VERSION,
    });
    if error.is_some() || password_error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// `GET /password/reset?token=…`: the new-password form, or a page saying the link is no good.
pub async fn reset_page(
    State(state): State<AppState>,
    Query(q): Query<ResetQuery>,
) -> Result<Response> {
    match usable_account(&state, &q.token).await? {
        Some(user) => render_form(q.token.trim(), &user.email, None, None).await,
        None => Ok(invalid_link()),
    }
}

/// `POST /password/reset`: checks the new password, then changes it and revokes every session and
/// refresh token of the account in one transaction; mails a notification; 303 to the done page.
pub async fn reset_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<ResetForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let Some(user) = usable_account(&state, &form.token).await? else {
        return Ok(invalid_link());
    };
    let token = form.token.trim();
    let password = Password::new(form.password);
    // Length, then strength: common, breached-style or personal passwords are refused with the
    // reason (NIST SP 800-63B §5.1.1.2).
    if let Err(e) = check_new_password(&password, &user.email, &user.name) {
        let message = sentence(&format!("the new {e}"));
        return render_form(token, &user.email, None, Some(&message)).await;
    }
    if mismatched(password.expose(), form.password_confirm.as_deref()) {
        let message = "The two passwords are not the same.";
        return render_form(token, &user.email, Some(message), None).await;
    }
    let phc = state.hasher.hash(&password).await?;
    let Some(hash) = token_hash(token) else {
        return Ok(invalid_link());
    };

    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    // The deciding statement: of two submissions of one link, one uses it, the other sees it used.
    if store::consume(&mut *tx, &hash, now).await?.as_deref() != Some(user.id.as_str()) {
        return Ok(invalid_link());
    }
    store::set_password_hash(&mut *tx, &user.id, &phc, now).await?;
    // The owner proved control of the mailbox: failed sign-ins no longer delay the account.
    crate::login::throttle::clear_account(&mut *tx, &user.id).await?;
    let tokens = store::invalidate_user_tokens(&mut *tx, &user.id, now).await?;
    // Signed out everywhere, as a disabled account is (back-channel logouts included).
    let ended = accounts::lifecycle::end_everything(&mut tx, &user.id, now, REVOKED_REASON).await?;
    let (sessions, families) = (ended.sessions, ended.refresh_families);
    let ctx = MailContext::new(&state.config);
    let when = format_utc(now);
    let ip = meta.ip.as_deref().unwrap_or("an unknown address");
    let forgot_link = ctx.link(routes::PASSWORD_FORGOT);
    let how = format!("through a reset link opened from {ip}");
    let aftermath = "You were signed out everywhere; applications will ask you to sign in again.";
    let text = ChangedText {
        ctx: &ctx,
        when: &when,
        how: &how,
        aftermath,
        forgot_link: &forgot_link,
    };
    let html = ChangedHtml {
        ctx: &ctx,
        when: &when,
        how: &how,
        aftermath,
        forgot_link: &forgot_link,
    };
    mail::queue(
        &mut *tx,
        &compose(&user.email, CHANGED_SUBJECT, &text, &html)?,
        now,
    )
    .await?;
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::user(user.id.clone(), meta.clone()),
            action: action::PASSWORD_RESET,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({
                "sessions_ended": sessions,
                "refresh_families_revoked": families,
                "other_reset_links_invalidated": tokens,
            }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    // This browser's session row is gone; forget its cookie too.
    session
        .flush()
        .await
        .map_err(crate::login::session::session_error)?;
    tracing::info!(user_id = %user.id, sessions, families, "password reset");
    Ok(see_other(routes::PASSWORD_RESET_DONE))
}

/// `GET /password/reset/done`: the password was changed; sign in with it.
pub async fn done_page() -> Response {
    render(&DonePage {
        asset_version: ASSET_VERSION,
    })
}
