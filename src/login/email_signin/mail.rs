//! The sign-in mail: the link and the code, queued after the "check your inbox" answer.

use askama::Template;

use super::{REQUEST_TTL_SECS, SIGNIN_SUBJECT};
use crate::accounts::User;
use crate::app::AppState;
use crate::crypto::tokens::SecretToken;
use crate::error::Result;
use crate::mail::{self, MailContext, compose};
use crate::routes;
use crate::web::request_meta::RequestMeta;

/// Text of the mail.
#[derive(Template)]
#[template(path = "mail/email_signin.txt")]
struct SigninText<'a> {
    ctx: &'a MailContext,
    link: &'a str,
    code: &'a str,
    minutes: i64,
    ip: &'a str,
}

/// HTML of the mail.
#[derive(Template)]
#[template(path = "mail/email_signin.html")]
struct SigninHtml<'a> {
    ctx: &'a MailContext,
    link: &'a str,
    code: &'a str,
    minutes: i64,
    ip: &'a str,
}

/// Queues the mail with the link and the code.
pub(super) async fn send_mail(
    state: &AppState,
    user: &User,
    token: &SecretToken,
    code: &str,
    meta: &RequestMeta,
    now: i64,
) -> Result<()> {
    let ctx = MailContext::new(&state.config);
    let link = ctx.link(&format!(
        "{}?token={}",
        routes::LOGIN_EMAIL_CONFIRM,
        token.expose()
    ));
    let ip = meta.ip.as_deref().unwrap_or("an unknown address");
    let minutes = REQUEST_TTL_SECS / 60;
    let text = SigninText {
        ctx: &ctx,
        link: &link,
        code,
        minutes,
        ip,
    };
    let html = SigninHtml {
        ctx: &ctx,
        link: &link,
        code,
        minutes,
        ip,
    };
    let mut tx = state.db.begin().await?;
    mail::queue(
        &mut *tx,
        &compose(&user.email, SIGNIN_SUBJECT, &text, &html)?,
        now,
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    Ok(())
}
