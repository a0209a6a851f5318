//! The invitation mail: who invited, to which organization, with which role, the link, its expiry,
//! and why the recipient gets it. The link carries the token and goes out only here.

use askama::Template;

use crate::error::Result;
use crate::mail::{Mail, MailContext};
use crate::orgs::roles::Role;

/// What the invitation mail says.
#[derive(Debug)]
pub(super) struct InvitationMail<'a> {
    /// The inviter's name and address ("An administrator of <org>" for an operator).
    pub inviter: &'a str,
    /// The organization's display name.
    pub org_name: &'a str,
    /// The role the invitee gets.
    pub role: Role,
    /// `{issuer}/invitation?token=…`
    pub link: &'a str,
    /// The expiry, readable (UTC).
    pub expires: &'a str,
}

#[derive(Template)]
#[template(path = "mail/invitation.txt")]
struct Text<'a> {
    ctx: &'a MailContext,
    m: &'a InvitationMail<'a>,
}

#[derive(Template)]
#[template(path = "mail/invitation.html")]
struct Html<'a> {
    ctx: &'a MailContext,
    m: &'a InvitationMail<'a>,
}

/// Renders the mail to `to` (text and HTML alternatives) in the shared mail layout.
pub(super) fn compose(ctx: &MailContext, to: &str, m: &InvitationMail<'_>) -> Result<Mail> {
    crate::mail::compose(
        to,
        format!("{} invited you to join {}", m.inviter, m.org_name),
        &Text { ctx, m },
        &Html { ctx, m },
    )
}

/// Unix seconds as `2026-11-29 14:05 UTC`.
pub(super) fn format_utc(secs: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    let rfc3339 = humantime::format_rfc3339_seconds(at).to_string();
    // `2026-11-29T14:05:09Z` → `2026-11-29 14:05 UTC`
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => rfc3339,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_minutes() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_795_000_000), "2026-11-18 11:06 UTC");
    }

    #[test]
    fn mail_names_inviter_org_role_link_and_expiry() {
        let ctx = MailContext {
            site: "Latchkey".to_owned(),
            issuer: "https://id.example.com".to_owned(),
        };
        let m = InvitationMail {
            inviter: "Ada <ada@example.com>",
            org_name: "Acme & Co",
            role: Role::Admin,
            link: "https://id.example.com/invitation?token=abc",
            expires: "2026-11-29 14:05 UTC",
        };
        let mail = compose(&ctx, "bob@example.com", &m).unwrap();
        assert_eq!(mail.to, "bob@example.com");
        assert!(mail.subject.contains("Acme & Co"));
        for needle in [
            "Ada <ada@example.com>",
            "Acme & Co",
            "admin",
            m.link,
            m.expires,
        ] {
            assert!(
                mail.text.contains(needle),
                "text lacks {needle}: {}",
                mail.text
            );
        }
        assert!(
            mail.text
                .contains("You receive this because Ada <ada@example.com> invited")
        );
        let html = mail.html.unwrap();
        assert!(
            html.contains("Acme &amp; Co") || html.contains("Acme &#38; Co"),
            "{html}"
        );
        assert!(
            html.contains("https://id.example.com/invitation?token=abc"),
            "{html}"
        );
    }
}
