//! The mail that tells the owner of an account about every change of its second factors (OWASP
//! ASVS V2.2.3: notify after updates to authentication details), queued inside the transaction of
//! the change (the caller wakes the mailer after the commit).

use askama::Template;

use crate::config::Config;
use crate::db::Tx;
use crate::error::Result;
use crate::mail::{self, MailContext, compose, format_utc};
use crate::routes;

/// A change of an account's factors, as the mail names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorChange<'a> {
    /// An authenticator app was set up.
    TotpEnabled,
    /// The authenticator app was removed.
    TotpRemoved,
    /// New recovery codes were made (the old ones stopped working).
    RecoveryCodesGenerated,
    /// A recovery code was used to sign in (`left`: how many are unused).
    RecoveryCodeUsed {
        /// Unused codes left.
        left: i64,
    },
    /// A passkey was added (its name).
    PasskeyAdded(&'a str),
    /// A passkey was removed (its name).
    PasskeyRemoved(&'a str),
    /// An operator removed every factor and ended every session.
    ResetByOperator,
}

impl FactorChange<'_> {
    /// The mail's subject.
    pub fn subject(&self) -> &'static str {
        match self {
            FactorChange::TotpEnabled => "An authenticator app was set up for your account",
            FactorChange::TotpRemoved => "The authenticator app of your account was removed",
            FactorChange::RecoveryCodesGenerated => "New recovery codes were made for your account",
            FactorChange::RecoveryCodeUsed { .. } => "A recovery code was used to sign in",
            FactorChange::PasskeyAdded(_) => "A passkey was added to your account",
            FactorChange::PasskeyRemoved(_) => "A passkey was removed from your account",
            FactorChange::ResetByOperator => "The second factors of your account were removed",
        }
    }

    /// What happened, one sentence without the time.
    pub fn sentence(&self) -> String {
        match self {
            FactorChange::TotpEnabled => {
                "An authenticator app now gives the second factor of your account".to_owned()
            }
            FactorChange::TotpRemoved => {
                "The authenticator app no longer gives the second factor of your account".to_owned()
            }
            FactorChange::RecoveryCodesGenerated => {
                "New recovery codes were made for your account; the earlier ones no longer work"
                    .to_owned()
            }
            FactorChange::RecoveryCodeUsed { left } => {
                format!("A recovery code was used to sign in to your account ({left} left)")
            }
            FactorChange::PasskeyAdded(name) => {
                format!("The passkey \"{name}\" was added to your account")
            }
            FactorChange::PasskeyRemoved(name) => {
                format!("The passkey \"{name}\" was removed from your account")
            }
            FactorChange::ResetByOperator => "An administrator removed every second factor of \
                 your account and signed it out everywhere"
                .to_owned(),
        }
    }
}

#[derive(Template)]
#[template(path = "mail/factor_changed.txt")]
struct ChangedText<'a> {
    ctx: &'a MailContext,
    sentence: &'a str,
    when: &'a str,
    ip: &'a str,
    account_link: &'a str,
    forgot_link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/factor_changed.html")]
struct ChangedHtml<'a> {
    ctx: &'a MailContext,
    subject: &'a str,
    sentence: &'a str,
    when: &'a str,
    ip: &'a str,
    account_link: &'a str,
    forgot_link: &'a str,
}

/// Queues the notice of `change` to `email` (the account's address); `ip` is where the change came
/// from, if a browser or API caller made it. It takes the configuration, not the server's state, so
/// that the command line (an operator's reset) queues the same mail; a running server sends it.
pub async fn queue_factor_changed(
    tx: &mut Tx,
    config: &Config,
    email: &str,
    change: FactorChange<'_>,
    ip: Option<&str>,
    now: i64,
) -> Result<()> {
    let ctx = MailContext::new(config);
    let when = format_utc(now);
    let sentence = change.sentence();
    let ip = ip.unwrap_or("an unknown address");
    let account_link = ctx.link(routes::ACCOUNT);
    let forgot_link = ctx.link(routes::PASSWORD_FORGOT);
    let subject = change.subject();
    let notice = compose(
        email,
        subject,
        &ChangedText {
            ctx: &ctx,
            sentence: &sentence,
            when: &when,
            ip,
            account_link: &account_link,
            forgot_link: &forgot_link,
        },
        &ChangedHtml {
            ctx: &ctx,
            subject,
            sentence: &sentence,
            when: &when,
            ip,
            account_link: &account_link,
            forgot_link: &forgot_link,
        },
    )?;
    mail::queue(&mut **tx, &notice, now).await?;
    Ok(())
}
