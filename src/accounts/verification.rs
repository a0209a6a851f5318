//! Email verification: a single-use link (256-bit token, stored as SHA-256, valid
//! [`VERIFICATION_TTL_SECS`]) mailed at sign-up, and a page that verifies the address.
//!
//! Opening the link (`GET`) only shows a confirm button; the address is verified by the `POST` it
//! sends (with the CSRF token), because mail scanners and link previews fetch `GET` links on their own
//! and must not spend the token. Unverified users can sign in; their tokens say
//! `email_verified: false` (OIDC Core §5.1) until they confirm.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use sqlx::AnyConnection;
use tower_sessions::Session;

use super::{User, store};
use crate::app::AppState;
use crate::crypto::tokens::{TokenHash, random_token};
use crate::error::Result;
use crate::login::session;
use crate::mail;
use crate::mail::template::{MailContext, compose};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};

/// How long a verification link works (24 hours).
pub const VERIFICATION_TTL_SECS: i64 = 24 * 60 * 60;
/// A signed-in user may ask for a new link at most once per this many seconds.
pub const RESEND_INTERVAL_SECS: i64 = 60;
/// Subject of the verification mail.
pub const VERIFICATION_SUBJECT: &str = "Confirm your email address";

/// Plain-text body of the verification mail. It carries nothing the signer-up typed (no name, no
/// organization): the address is not proven yet, so the form must not become a way to mail arbitrary
/// text to strangers.
#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyMailText<'a> {
    ctx: &'a MailContext,
    link: &'a str,
    hours: i64,
}

/// HTML body of the verification mail.
#[derive(Template)]
#[template(path = "mail/verify_email.html")]
struct VerifyMailHtml<'a> {
    ctx: &'a MailContext,
    link: &'a str,
    hours: i64,
}

/// Creates a verification token for `user` and queues the mail carrying its link, on `conn` (the
/// caller's transaction); the caller wakes the mailer after committing.
pub async fn issue(
    conn: &mut AnyConnection,
    state: &AppState,
    user: &User,
    now: i64,
) -> Result<()> {
    let token = random_token();
    store::insert_verification_token(
        &mut *conn,
        token.hash().as_str(),
        &user.id,
        now,
        now + VERIFICATION_TTL_SECS,
    )
    .await?;
    let ctx = MailContext::new(&state.config);
    let link = ctx.link(&format!(
        "{}?token={}",
        routes::VERIFY_EMAIL,
        token.expose()
    ));
    let hours = VERIFICATION_TTL_SECS / 3600;
    let text = VerifyMailText {
        ctx: &ctx,
        link: &link,
        hours,
    };
    let html = VerifyMailHtml {
        ctx: &ctx,
        link: &link,
        hours,
    };
    let mail = compose(&user.email, VERIFICATION_SUBJECT, &text, &html)?;
    mail::queue(&mut *conn, &mail, now).await?;
    Ok(())
}

/// The confirm page behind the link.
#[derive(Template)]
#[template(path = "pages/verify_email.html")]
struct ConfirmPage<'a> {
    csrf: &'a str,
    token: &'a str,
    email: &'a str,
    asset_version: &'a str,
}

/// The outcome of a verification, or why there is none.
#[derive(Template)]
#[template(path = "pages/verify_result.html")]
struct ResultPage<'a> {
    title: &'a str,
    message: &'a str,
    success: bool,
    /// CSRF token for the "send a new link" button, shown to a signed-in unverified user.
    resend_csrf: Option<&'a str>,
    asset_version: &'a str,
}

/// What a presented token turned out to be.
enum Lookup {
    /// Usable: the user it belongs to.
    Valid(User),
    /// No such token (mistyped, cut, or long expired and purged).
    Unknown,
    /// Used before.
    Used,
    /// Past its lifetime.
    Expired,
}

async fn lookup(conn: &mut AnyConnection, token: &str, now: i64) -> Result<Lookup> {
    if token.is_empty() || token.len() > 128 {
        return Ok(Lookup::Unknown);
    }
    let hash = TokenHash::of(token);
    let Some(row) = store::find_verification_token(&mut *conn, hash.as_str()).await? else {
        return Ok(Lookup::Unknown);
    };
    if row.used_at.is_some() {
        return Ok(Lookup::Used);
    }
    if row.expires_at <= now {
        return Ok(Lookup::Expired);
    }
    Ok(match store::find_by_id(&mut *conn, &row.user_id).await? {
        Some(user) => Lookup::Valid(user),
        None => Lookup::Unknown,
    })
}

/// Renders the page for a token that cannot be used: 404 unknown, 410 used or expired. A signed-in,
/// still unverified user gets a button for a new link.
async fn refusal(state: &AppState, session: &Session, lookup: &Lookup) -> Result<Response> {
    let (status, title, message) = match lookup {
        Lookup::Used => (
            StatusCode::GONE,
            "This link was already used",
            "Each verification link works once, and this one has been used. If your address is \
             not verified yet, ask for a new link.",
        ),
        Lookup::Expired => (
            StatusCode::GONE,
            "This link has expired",
            "Verification links work for 24 hours. Ask for a new link and use it within a day.",
        ),
        Lookup::Unknown | Lookup::Valid(_) => (
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "The link may be incomplete (copy the whole address from the mail) or too old. Ask \
             for a new link.",
        ),
    };
    let csrf = resend_csrf(state, session).await?;
    let mut response = render(&ResultPage {
        title,
        message,
        success: false,
        resend_csrf: csrf.as_deref(),
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// The CSRF token for the resend button, when the session's user is signed in and unverified.
async fn resend_csrf(state: &AppState, session: &Session) -> Result<Option<String>> {
    let Some(signed) = session::signed_in(session, &state.clock).await? else {
        return Ok(None);
    };
    match store::find_by_id(&state.db.pool, &signed.user_id).await? {
        Some(user) if !user.email_verified => Ok(Some(csrf::token()?)),
        _ => Ok(None),
    }
}

/// Query of `GET /verify-email`.
#[derive(Debug, Deserialize)]
pub struct VerifyQuery {
    /// The token from the mail.
    #[serde(default)]
    pub token: String,
}

/// `GET /verify-email?token=…`: a confirm button for a usable token (nothing is spent yet), or the
/// page saying why the link cannot be used.
pub async fn verify_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<VerifyQuery>,
) -> Result<Response> {
    let mut conn = state.db.pool.acquire().await?;
    let found = lookup(&mut conn, &q.token, state.clock.now()).await?;
    drop(conn);
    let Lookup::Valid(user) = found else {
        return refusal(&state, &session, &found).await;
    };
    let csrf = csrf::token()?;
    Ok(render(&ConfirmPage {
        csrf: &csrf,
        token: &q.token,
        email: &user.email,
        asset_version: ASSET_VERSION,
    }))
}

/// Fields of the confirm form.
#[derive(Deserialize)]
pub struct VerifyForm {
    /// Defaulted so that a missing token is refused like a wrong one (400).
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// `POST /verify-email`: spends the token and marks the address verified, in one transaction. The
/// token verifies the user it was mailed to, whoever is signed in in this browser.
pub async fn verify_submit(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<VerifyForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let found = lookup(&mut tx, &form.token, now).await?;
    let Lookup::Valid(user) = found else {
        drop(tx);
        return refusal(&state, &session, &found).await;
    };
    if !store::use_verification_token(&mut *tx, TokenHash::of(&form.token).as_str(), now).await? {
        drop(tx);
        return refusal(&state, &session, &Lookup::Used).await;
    }
    store::mark_email_verified(&mut *tx, &user.id, now).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "email address verified");
    Ok(see_other(routes::VERIFY_EMAIL_DONE))
}

/// `GET /verify-email/verified`: where a successful confirmation lands (303 after the POST).
pub async fn verified_page() -> Response {
    render(&ResultPage {
        title: "Email address verified",
        message: "Thank you: the address is confirmed. You can close this page or go back to the \
                  application you came from.",
        success: true,
        resend_csrf: None,
        asset_version: ASSET_VERSION,
    })
}

/// Fields of the resend form.
#[derive(Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /verify-email/resend`: a new link for the signed-in user, at most once per
/// [`RESEND_INTERVAL_SECS`]; then the "check your inbox" page.
pub async fn resend(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<ResendForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let Some(signed) = session::signed_in(&session, &state.clock).await? else {
        return Ok(see_other(routes::LOGIN));
    };
    let Some(user) = store::find_by_id(&state.db.pool, &signed.user_id).await? else {
        return Ok(see_other(routes::LOGIN));
    };
    if user.email_verified {
        return Ok(see_other(routes::HOME));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    // Read inside the transaction, so two quick clicks send one mail (SQLite's write gate and the
    // recheck here; on PostgreSQL the window is a few milliseconds, which is harmless).
    let last = store::last_verification_sent_at(&mut *tx, &user.id).await?;
    if last.is_some_and(|t| now - t < RESEND_INTERVAL_SECS) {
        drop(tx);
        let csrf = csrf::token()?;
        let mut response = render(&ResultPage {
            title: "Please wait a minute",
            message: "We sent you a link less than a minute ago. Check your inbox (and spam \
                      folder); you can ask for another link in a minute.",
            success: false,
            resend_csrf: Some(&csrf),
            asset_version: ASSET_VERSION,
        });
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return Ok(response);
    }
    issue(&mut tx, &state, &user, now).await?;
    tx.commit().await?;
    state.mailer.wake();
    Ok(see_other(routes::SIGNUP_DONE))
}
