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

/// Deletes up to `batch` login events recorded before `before` (the retention purge, NIST SP 800-92
/// §5.1: keep logs as long as policy says, then dispose of them); returns how many went. The
/// `login_events_time` index keeps the selection to the rows deleted.
pub async fn delete_before<'c>(
    ex: impl Exec<'c>,
    before: i64,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from login_events where id in \
         (select id from login_events where created_at < $1 limit $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}
