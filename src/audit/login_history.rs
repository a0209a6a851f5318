//! The login history: one row per sign-in attempt (`login_events`), successful or not, with the
//! email as typed, the client address and the browser. It backs the per-account and per-address
//! sign-in limits and what a person sees of their own sign-ins; like the audit log, it is written
//! inside the transaction of the attempt it describes.

use crate::crypto::tokens::new_id;
use crate::db::{self, Exec};

/// One login attempt.
#[derive(Debug)]
pub struct LoginEvent<'a> {
    /// The account, when the email matched one.
    pub user_id: Option<&'a str>,
    /// The email as typed.
    pub email: &'a str,
    /// Client address.
    pub ip: &'a str,
    /// Browser.
    pub user_agent: Option<&'a str>,
}

/// Records a login attempt.
pub async fn record_login<'c>(
    ex: impl Exec<'c>,
    e: &LoginEvent<'_>,
    success: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into login_events (id, user_id, email, success, ip, user_agent, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(e.user_id)
    .bind(e.email.chars().take(254).collect::<String>())
    .bind(db::flag(success))
    .bind(e.ip)
    .bind(
        e.user_agent
            .map(|ua| ua.chars().take(512).collect::<String>()),
    )
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}
