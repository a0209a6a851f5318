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
    Ok(())
}
