//! SQL for the mail outbox.

use super::Mail;
use crate::crypto::tokens::new_id;
use crate::db::Exec;

/// Queues `mail` for delivery as soon as possible after `now`.
pub async fn queue<'c>(ex: impl Exec<'c>, mail: &Mail, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into mail_outbox (id, to_address, subject, text_body, html_body, created_at, \
         next_attempt_at) values ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(new_id())
    .bind(&mail.to)
    .bind(&mail.subject)
    .bind(&mail.text)
    .bind(mail.html.as_deref())
    .bind(now)
    .execute(ex)
    .await?;
    crate::metrics::mail_queued();
    Ok(())
}

/// When the oldest message still waiting for delivery was queued (unsent, not given up after
/// `max_attempts`), or `None` when the outbox has nothing waiting: the mail-queue age of the metrics.
pub async fn oldest_waiting<'c>(
    ex: impl Exec<'c>,
    max_attempts: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select min(created_at) from mail_outbox where sent_at is null and attempts < $1",
    )
    .bind(max_attempts)
    .fetch_one(ex)
    .await
}

/// A queued message as the delivery loop reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    /// Row id.
    pub id: String,
    /// Recipient.
    pub to_address: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text_body: String,
    /// HTML body, if any.
    pub html_body: Option<String>,
    /// When the action that caused the mail happened (the `Date` header).
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: i64,
}

/// Ids of unsent messages that are due at `now`, not leased by a process and not given up
/// (fewer than `max_attempts` failures), oldest first.
pub async fn due<'c>(
    ex: impl Exec<'c>,
    now: i64,
    max_attempts: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from mail_outbox where sent_at is null and next_attempt_at <= $1 \
         and attempts < $2 and (locked_until is null or locked_until < $1) \
         order by next_attempt_at, created_at limit $3",
    )
    .bind(now)
    .bind(max_attempts)
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// Leases message `id` until `until` and returns it, or `None` when another process holds or has
/// sent it. The lease is taken by one conditional update, so two processes never both win it.
pub async fn claim<'c>(
    ex: impl Exec<'c> + Copy,
    id: &str,
    now: i64,
    until: i64,
) -> Result<Option<OutboxRow>, sqlx::Error> {
    let done = sqlx::query(
        "update mail_outbox set locked_until = $2 where id = $1 and sent_at is null \
         and (locked_until is null or locked_until < $3)",
    )
    .bind(id)
    .bind(until)
    .bind(now)
    .execute(ex)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    sqlx::query_as(
        "select id, to_address, subject, text_body, html_body, created_at, attempts \
         from mail_outbox where id = $1",
    )
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// Records that message `id` was handed over at `now`, and empties its body in the same statement:
/// bodies carry live links (sign-in, reset, invitation tokens) that must not outlive delivery in the
/// database; recipient, subject and status stay for the record (OWASP ASVS V8.3, data minimization).
pub async fn mark_sent<'c>(ex: impl Exec<'c>, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update mail_outbox set sent_at = $2, locked_until = null, attempts = attempts + 1, \
         last_error = null, text_body = '', html_body = null where id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records a failed attempt: `attempts` so far, the error, the next try at `next_attempt_at`. When
/// `attempts` reaches `max_attempts` the message is given up and its body emptied in the same
/// statement, as [`mark_sent`] does.
pub async fn mark_failed<'c>(
    ex: impl Exec<'c>,
    id: &str,
    attempts: i64,
    max_attempts: i64,
    error: &str,
    next_attempt_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update mail_outbox set attempts = $2, last_error = $3, next_attempt_at = $4, \
         locked_until = null, \
         text_body = case when $2 >= $5 then '' else text_body end, \
         html_body = case when $2 >= $5 then null else html_body end where id = $1",
    )
    .bind(id)
    .bind(attempts)
    .bind(error)
    .bind(next_attempt_at)
    .bind(max_attempts)
    .execute(ex)
    .await?;
    Ok(())
}
