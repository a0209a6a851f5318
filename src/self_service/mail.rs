//! The mails of the account pages, queued inside the transaction of the change they tell about
//! (the caller wakes the mailer after the commit): the confirmation link to a new address, the
//! notices to the old address (a change was asked for; it was made), the "password changed" notice
//! (the template of password reset) and the goodbye after a deletion.

use askama::Template;

use crate::app::AppState;
use crate::db::Tx;
use crate::error::Result;
use crate::mail::{self, MailContext, compose, format_utc};
use crate::recovery::reset::{CHANGED_SUBJECT, ChangedHtml, ChangedText};
use crate::routes;

/// Subject of the confirmation link sent to the new address.
pub const CONFIRM_SUBJECT: &str = "Confirm your new email address";
/// Subject of the notice to the old address when a change is asked for.
pub const REQUESTED_SUBJECT: &str = "A change of your email address was asked for";
/// Subject of the notice to the old address once the change is made.
pub const CHANGED_EMAIL_SUBJECT: &str = "Your sign-in address was changed";
/// Subject of the goodbye.
pub const DELETED_SUBJECT: &str = "Your account was deleted";

/// `n…@e…`: an address as a notice to another mailbox shows it, enough for its owner to recognise
/// it, not enough to hand a stranger who reads the old mailbox the new one (OWASP: do not disclose
/// more than needed).
pub fn mask_email(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    format!("{}…@{}…", first(local), first(domain))
}

#[derive(Template)]
#[template(path = "mail/email_change_confirm.txt")]
struct ConfirmText<'a> {
    ctx: &'a MailContext,
    old_masked: &'a str,
    new_email: &'a str,
    hours: i64,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change_confirm.html")]
struct ConfirmHtml<'a> {
    ctx: &'a MailContext,
    old_masked: &'a str,
    new_email: &'a str,
    hours: i64,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change_requested.txt")]
struct RequestedText<'a> {
    ctx: &'a MailContext,
    when: &'a str,
    ip: &'a str,
    new_masked: &'a str,
    forgot_link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change_requested.html")]
struct RequestedHtml<'a> {
    ctx: &'a MailContext,
    when: &'a str,
    ip: &'a str,
    new_masked: &'a str,
    forgot_link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_changed.txt")]
struct ChangedEmailText<'a> {
    ctx: &'a MailContext,
    when: &'a str,
    new_masked: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_changed.html")]
struct ChangedEmailHtml<'a> {
    ctx: &'a MailContext,
    when: &'a str,
    new_masked: &'a str,
}

#[derive(Template)]
#[template(path = "mail/account_deleted.txt")]
struct DeletedText<'a> {
    ctx: &'a MailContext,
    when: &'a str,
}

#[derive(Template)]
#[template(path = "mail/account_deleted.html")]
struct DeletedHtml<'a> {
    ctx: &'a MailContext,
    when: &'a str,
}

/// Queues the confirmation link (`token` in clear) to `new_email`, and the notice that a change was
/// asked for to `old_email`.
pub async fn queue_change_requested(
    tx: &mut Tx,
    state: &AppState,
    old_email: &str,
    new_email: &str,
    token: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<()> {
    let ctx = MailContext::new(&state.config);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish();
    let link = ctx.link(&format!("{}?{query}", routes::ACCOUNT_EMAIL_CONFIRM));
    let old_masked = mask_email(old_email);
    let hours = super::email_change::CHANGE_TTL_SECS / 3600;
    let confirm = compose(
        new_email,
        CONFIRM_SUBJECT,
        &ConfirmText {
            ctx: &ctx,
            old_masked: &old_masked,
            new_email,
            hours,
            link: &link,
        },
        &ConfirmHtml {
            ctx: &ctx,
            old_masked: &old_masked,
            new_email,
            hours,
            link: &link,
        },
    )?;
    mail::queue(&mut **tx, &confirm, now).await?;
    let when = format_utc(now);
    let ip = ip.unwrap_or("an unknown address");
    let new_masked = mask_email(new_email);
    let forgot_link = ctx.link(routes::PASSWORD_FORGOT);
    let notice = compose(
        old_email,
        REQUESTED_SUBJECT,
        &RequestedText {
            ctx: &ctx,
            when: &when,
            ip,
            new_masked: &new_masked,
            forgot_link: &forgot_link,
        },
        &RequestedHtml {
            ctx: &ctx,
            when: &when,
            ip,
            new_masked: &new_masked,
            forgot_link: &forgot_link,
        },
    )?;
    mail::queue(&mut **tx, &notice, now).await?;
    Ok(())
}

/// Queues the notice to `old_email` that the address is now `new_email` (masked).
pub async fn queue_email_changed(
    tx: &mut Tx,
    state: &AppState,
    old_email: &str,
    new_email: &str,
    now: i64,
) -> Result<()> {
    let ctx = MailContext::new(&state.config);
    let when = format_utc(now);
    let new_masked = mask_email(new_email);
    let notice = compose(
        old_email,
        CHANGED_EMAIL_SUBJECT,
        &ChangedEmailText {
            ctx: &ctx,
            when: &when,
            new_masked: &new_masked,
        },
        &ChangedEmailHtml {
            ctx: &ctx,
            when: &when,
            new_masked: &new_masked,
        },
    )?;
    mail::queue(&mut **tx, &notice, now).await?;
    Ok(())
}

/// Queues the "your password was changed" notice (the template password reset sends) for a change
/// made on the account page.
pub async fn queue_password_changed(
    tx: &mut Tx,
    state: &AppState,
    email: &str,
    ip: Option<&str>,
    signed_out_others: bool,
    now: i64,
) -> Result<()> {
    let ctx = MailContext::new(&state.config);
    let when = format_utc(now);
    let how = format!(
        "on your account page, from {}",
        ip.unwrap_or("an unknown address")
    );
    let aftermath = if signed_out_others {
        "Your other browsers were signed out."
    } else {
        ""
    };
    let forgot_link = ctx.link(routes::PASSWORD_FORGOT);
    let notice = compose(
        email,
        CHANGED_SUBJECT,
        &ChangedText {
            ctx: &ctx,
            when: &when,
            how: &how,
            aftermath,
            forgot_link: &forgot_link,
        },
        &ChangedHtml {
            ctx: &ctx,
            when: &when,
            how: &how,
            aftermath,
            forgot_link: &forgot_link,
        },
    )?;
    mail::queue(&mut **tx, &notice, now).await?;
    Ok(())
}

/// Queues the goodbye to the address of a deleted account.
pub async fn queue_account_deleted(
    tx: &mut Tx,
    state: &AppState,
    email: &str,
    now: i64,
) -> Result<()> {
    let ctx = MailContext::new(&state.config);
    let when = format_utc(now);
    let goodbye = compose(
        email,
        DELETED_SUBJECT,
        &DeletedText {
            ctx: &ctx,
            when: &when,
        },
        &DeletedHtml {
            ctx: &ctx,
            when: &when,
        },
    )?;
    mail::queue(&mut **tx, &goodbye, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::mask_email;

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask_email("new@example.com"), "n…@e…");
        assert_eq!(mask_email("x"), "x…@…");
        assert_eq!(mask_email(""), "…@…");
    }
}
