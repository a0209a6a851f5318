//! Step 1 of password reset: the "forgot your password?" form and the mail with the link.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::{LIMIT_WINDOW_SECS, MAX_PER_ACCOUNT, MAX_PER_IP, RESET_TTL_SECS, store};
use crate::accounts::{self, User};
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::crypto::tokens::random_token;
use crate::error::{AppError, Result};
use crate::mail::{self, MailContext, compose};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// Subject of the reset mail.
pub const RESET_SUBJECT: &str = "Reset your password";

/// The request form.
#[derive(Template)]
#[template(path = "pages/password_forgot.html")]
struct ForgotPage<'a> {
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// The neutral page shown after a request, account or not.
#[derive(Template)]
#[template(path = "pages/password_forgot_sent.html")]
struct SentPage<'a> {
    minutes: i64,
    asset_version: &'a str,
}

/// Text of the reset mail.
#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct ResetText<'a> {
    ctx: &'a MailContext,
    link: &'a str,
    minutes: i64,
    ip: &'a str,
}

/// HTML of the reset mail.
#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct ResetHtml<'a> {
    ctx: &'a MailContext,
    link: &'a str,
    minutes: i64,
    ip: &'a str,
}

/// Fields of the request form.
#[derive(Deserialize)]
pub struct ForgotForm {
    /// Defaulted so that a missing token is refused like a wrong one (400).
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

async fn render_form(email: &str, error: Option<&str>) -> Result<Response> {
    let csrf = csrf::token()?;
    let mut response = render(&ForgotPage {
        csrf: &csrf,
        email,
        error,
        asset_version: ASSET_VERSION,
    });
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// `GET /password/forgot`: the form.
pub async fn forgot_page() -> Result<Response> {
    render_form("", None).await
}

/// `POST /password/forgot`: mails a reset link when the address belongs to an enabled account,
/// then shows the same page in every case (303 to [`routes::PASSWORD_FORGOT_SENT`]).
///
/// The answer must not tell accounts apart by its timing either (OWASP Forgot Password Cheat Sheet:
/// "return a consistent message for both existent and non-existent accounts" and "ensure that
/// responses return in a consistent amount of time"). So before answering, both paths do the same
/// work: look the address up, check and count the per-address limit, and write one audit event (the
/// row that counts). Only then, and off the request, is the real account's link issued and its mail
/// queued ([`send_link`] in a spawned task); the response never waits for it.
pub async fn forgot_submit(
    State(state): State<AppState>,
    meta: RequestMeta,
    Form(form): Form<ForgotForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let typed = form.email.trim();
    if typed.is_empty() {
        return render_form("", Some("Enter the email address of your account.")).await;
    }
    let now = state.clock.now();
    let user = if typed.len() <= accounts::MAX_EMAIL_LEN {
        accounts::store::find_by_email(&state.db.pool, typed).await?
    } else {
        None
    };
    let user = user.filter(|u| !u.disabled);
    let mut tx = state.db.begin().await?;
    // Every request counts, known address or not: a limit that only counted real accounts would
    // itself reveal them (the refusal would come after the tenth real one).
    if let Some(ip) = meta.ip.as_deref()
        && audit::count_from_ip(
            &mut *tx,
            action::PASSWORD_RESET_REQUESTED,
            ip,
            now - LIMIT_WINDOW_SECS,
        )
        .await?
            >= MAX_PER_IP
    {
        return Err(AppError::TooManyRequests(
            "Too many password reset requests from your network. Wait a few minutes and try again."
                .into(),
        ));
    }
    let actor = Actor::anonymous(meta.clone());
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor: &actor,
            action: action::PASSWORD_RESET_REQUESTED,
            target_type: user.as_ref().map(|_| "user"),
            target_id: user.as_ref().map(|u| u.id.as_str()),
            details: json!({}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    if let Some(user) = user {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(err) = send_link(&state, &user, &meta, now).await {
                tracing::error!(user_id = %user.id, error = %err, "password reset link not issued");
            }
        });
    }
    Ok(see_other(routes::PASSWORD_FORGOT_SENT))
}

/// Issues a token and queues its mail, unless the account had [`MAX_PER_ACCOUNT`] links already in
/// the window (then nothing happens: the page was the same, and the inbox is not flooded). Runs after
/// the answer; the account's row lock makes concurrent requests for one account take turns, so the
/// count holds on PostgreSQL too.
async fn send_link(state: &AppState, user: &User, meta: &RequestMeta, now: i64) -> Result<()> {
    let mut tx = state.db.begin().await?;
    store::lock_user(&mut *tx, &user.id).await?;
    // The account may have been disabled (or deleted) since the request was answered: a disabled
    // account gets the same page but no mail, whenever the operator acted.
    let usable = accounts::store::find_by_id(&mut *tx, &user.id)
        .await?
        .is_some_and(|u| !u.disabled);
    if !usable {
        tracing::info!(user_id = %user.id, "account disabled or deleted; no reset mail");
        return Ok(());
    }
    let recent = store::count_for_user(&mut *tx, &user.id, now - LIMIT_WINDOW_SECS).await?;
    if recent >= MAX_PER_ACCOUNT {
        tracing::info!(user_id = %user.id, "password reset limit reached; no mail");
        return Ok(());
    }
    let token = random_token();
    let hash = token.hash();
    store::insert_token(
        &mut *tx,
        &store::NewResetToken {
            hash: &hash,
            user_id: &user.id,
            requested_ip: meta.ip.as_deref(),
            created_at: now,
            expires_at: now + RESET_TTL_SECS,
        },
    )
    .await?;
    let ctx = MailContext::new(&state.config);
    let link = ctx.link(&format!(
        "{}?token={}",
        routes::PASSWORD_RESET,
        token.expose()
    ));
    let ip = meta.ip.as_deref().unwrap_or("an unknown address");
    let minutes = RESET_TTL_SECS / 60;
    let text = ResetText {
        ctx: &ctx,
        link: &link,
        minutes,
        ip,
    };
    let html = ResetHtml {
        ctx: &ctx,
        link: &link,
        minutes,
        ip,
    };
    mail::queue(
        &mut *tx,
        &compose(&user.email, RESET_SUBJECT, &text, &html)?,
        now,
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    Ok(())
}

/// `GET /password/forgot/sent`: "if an account has this address, a link is on its way".
pub async fn sent_page() -> Response {
    render(&SentPage {
        minutes: RESET_TTL_SECS / 60,
        asset_version: ASSET_VERSION,
    })
}
