//! Mail bodies from askama templates.
//!
//! A message is a pair `templates/mail/<name>.txt` + `templates/mail/<name>.html`; both extend a
//! base layout (`mail/base.txt`, `mail/base.html`) that names the issuer and ends with the line
//! "You receive this because …", filled by the message's `reason` block: every mail says why it was
//! sent. The pattern, for a message with a `link`:
//!
//! ```ignore
//! #[derive(askama::Template)]
//! #[template(path = "mail/password_reset.txt")]
//! struct ResetText<'a> { ctx: &'a MailContext, link: &'a str }
//! #[derive(askama::Template)]
//! #[template(path = "mail/password_reset.html")]
//! struct ResetHtml<'a> { ctx: &'a MailContext, link: &'a str }
//!
//! let ctx = MailContext::new(&state.config);
//! let mail = compose(&user.email, "Reset your password",
//!     &ResetText { ctx: &ctx, link: &link }, &ResetHtml { ctx: &ctx, link: &link })?;
//! mail::queue(&mut *tx, &mail, now).await?;
//! ```
//!
//! The HTML template is escaped by askama (the `.html` extension); the text one is not.

use askama::Template;

use super::Mail;
use crate::config::Config;
use crate::error::{AppError, Result};

/// What every mail layout shows: who sends it and where that service lives.
#[derive(Debug, Clone)]
pub struct MailContext {
    /// Display name of the service: the name of `LATCHKEY_MAIL_FROM`, or "Latchkey".
    pub site: String,
    /// The issuer URL, linked from every mail.
    pub issuer: String,
}

impl MailContext {
    /// The context of this server.
    pub fn new(config: &Config) -> MailContext {
        MailContext {
            site: config
                .mail_from
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| "Latchkey".to_owned()),
            issuer: config.issuer.clone(),
        }
    }

    /// An absolute link to `path_and_query` on this server, for a mail body.
    pub fn link(&self, path_and_query: &str) -> String {
        format!("{}{}", self.issuer, path_and_query)
    }
}

/// Renders a text and an HTML template into one [`Mail`] to `to`; a template error is internal.
pub fn compose(
    to: &str,
    subject: impl Into<String>,
    text: &impl Template,
    html: &impl Template,
) -> Result<Mail> {
    let text = text
        .render()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("mail text template: {e}")))?;
    let html = html
        .render()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("mail html template: {e}")))?;
    Ok(Mail {
        to: to.to_owned(),
        subject: subject.into(),
        text,
        html: Some(html),
    })
}

/// `2026-11-29 14:05 UTC`: a time as mail bodies show it (mail readers are anywhere, so UTC, named).
pub fn format_utc(unix_secs: i64) -> String {
    let at = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(unix_secs).unwrap_or(0));
    let rfc3339 = humantime::format_rfc3339_seconds(at).to_string();
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => rfc3339,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_for_mail() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_795_000_000), "2026-11-18 11:06 UTC");
        assert_eq!(format_utc(-5), "1970-01-01 00:00 UTC");
    }
}
