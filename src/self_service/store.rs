//! SQL of the account pages (the name is [`crate::accounts::store::set_name`]): the password hash, the sign-in address and its pending
//! changes (`email_changes`, migration 0009: only the SHA-256 of each mailed token is stored).

use sqlx::Row;

use crate::crypto::tokens::TokenHash;
use crate::db::Exec;

/// Replaces the password hash of `user_id`. Unlike [`crate::recovery::store::set_password_hash`]
/// (a reset link proves the mailbox, so it marks the address verified), a change from the account
/// page proves nothing about the mailbox and leaves `email_verified` alone.
pub async fn set_password_hash<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    phc: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update users set password_hash = $1, updated_at = $2 where id = $3")
        .bind(phc)
        .bind(now)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// A new pending address change.
#[derive(Debug)]
pub struct NewEmailChange<'a> {
    /// SHA-256 of the mailed token.
    pub hash: &'a TokenHash,
    /// Whose address changes.
    pub user_id: &'a str,
    /// The address asked for (validated).
    pub new_email: &'a str,
    /// When it was asked for.
    pub created_at: i64,
    /// When the link stops working.
    pub expires_at: i64,
}

/// Stores a pending address change.
pub async fn insert_email_change<'c>(
    ex: impl Exec<'c>,
    c: &NewEmailChange<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into email_changes (token_hash, user_id, new_email, created_at, expires_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(c.hash.as_str())
    .bind(c.user_id)
    .bind(c.new_email)
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Address changes asked for by `user_id` since `since` (the per-account limit).
pub async fn count_email_changes<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    since: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from email_changes where user_id = $1 and created_at >= $2")
        .bind(user_id)
        .bind(since)
        .fetch_one(ex)
        .await
}

/// Ends every still-open change of `user_id` (a newer request replaces them; a confirmed one drops
/// the others).
pub async fn drop_pending_email_changes<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("update email_changes set used_at = $1 where user_id = $2 and used_at is null")
            .bind(now)
            .bind(user_id)
            .execute(ex)
            .await?;
    Ok(done.rows_affected())
}

/// The newest usable change of `user_id` at `now`: the address it waits for.
pub async fn pending_email_change<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "select new_email from email_changes where user_id = $1 and used_at is null \
         and expires_at > $2 order by created_at desc limit 1",
    )
    .bind(user_id)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("new_email")).transpose()
}

/// The `(user_id, new_email)` of a usable (unused, unexpired at `now`) change token.
pub async fn find_email_change<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
    now: i64,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "select user_id, new_email from email_changes \
         where token_hash = $1 and used_at is null and expires_at > $2",
    )
    .bind(hash.as_str())
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|r| Ok((r.try_get("user_id")?, r.try_get("new_email")?)))
        .transpose()
}

/// Uses a change token: one conditional update, so of two submissions of one link only one
/// succeeds. `(user_id, new_email)`, or `None` when it was unknown, expired or used.
pub async fn consume_email_change<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
    now: i64,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "update email_changes set used_at = $1 \
         where token_hash = $2 and used_at is null and expires_at > $1 \
         returning user_id, new_email",
    )
    .bind(now)
    .bind(hash.as_str())
    .fetch_optional(ex)
    .await?;
    row.map(|r| Ok((r.try_get("user_id")?, r.try_get("new_email")?)))
        .transpose()
}

/// Makes `email` the sign-in address of `user_id`, verified (the confirmation link reached it).
/// The unique index on `email_lower` refuses an address another account took meanwhile: the
/// caller maps [`crate::db::is_unique_violation`] to a page.
pub async fn set_email<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    email: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update users set email = $1, email_lower = $2, email_verified = 1, updated_at = $3 \
         where id = $4",
    )
    .bind(email)
    .bind(crate::accounts::email_key(email))
    .bind(now)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}
