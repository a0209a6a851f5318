//! SQL for password reset: tokens (stored as SHA-256 hashes), the counts behind the rate limits, and
//! the password change itself.

use sqlx::Row;

use crate::crypto::tokens::TokenHash;
use crate::db::Exec;

/// A new reset token.
#[derive(Debug)]
pub struct NewResetToken<'a> {
    /// SHA-256 of the mailed token.
    pub hash: &'a TokenHash,
    /// Whose password it resets.
    pub user_id: &'a str,
    /// Address the request came from (for the per-IP limit).
    pub requested_ip: Option<&'a str>,
    /// When it was requested.
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
}

/// Stores a reset token.
pub async fn insert_token<'c>(ex: impl Exec<'c>, t: &NewResetToken<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into password_reset_tokens (token_hash, user_id, requested_ip, created_at, \
         expires_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(t.hash.as_str())
    .bind(t.user_id)
    .bind(t.requested_ip)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Reset links requested for `user_id` since `since`.
pub async fn count_for_user<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    since: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from password_reset_tokens where user_id = $1 and created_at >= $2",
    )
    .bind(user_id)
    .bind(since)
    .fetch_one(ex)
    .await
}

/// Takes the account's row lock (PostgreSQL; SQLite transactions are serialised already) by a
/// no-op update, so that concurrent reset requests for one account count and issue links in turn.
pub async fn lock_user<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update users set updated_at = updated_at where id = $1")
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The user a token resets, when the token is unused and not expired at `now`.
pub async fn find_usable<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "select user_id from password_reset_tokens \
         where token_hash = $1 and used_at is null and expires_at > $2",
    )
    .bind(hash.as_str())
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("user_id")).transpose()
}

/// Uses a token: one conditional update, so two submissions of one link cannot both succeed.
/// The user it resets, or `None` when it was unknown, expired or already used.
pub async fn consume<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "update password_reset_tokens set used_at = $1 \
         where token_hash = $2 and used_at is null and expires_at > $1 returning user_id",
    )
    .bind(now)
    .bind(hash.as_str())
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("user_id")).transpose()
}

/// Invalidates every still-open reset token of `user_id` (after a password change).
pub async fn invalidate_user_tokens<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update password_reset_tokens set used_at = $1 where user_id = $2 and used_at is null",
    )
    .bind(now)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Replaces the password hash of `user_id`. The reset link reached the address, which proves it
/// (like a verification link), so the address counts as verified from now on.
pub async fn set_password_hash<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    phc: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update users set password_hash = $1, email_verified = 1, updated_at = $2 where id = $3",
    )
    .bind(phc)
    .bind(now)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(())
}
