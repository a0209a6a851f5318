//! SQL for the login history.

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

/// Notes that `user_id` signed in again from a known browser; false when the browser is not known.
pub async fn touch_known_device<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    device_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update known_devices set last_seen_at = $1 where user_id = $2 and device_hash = $3",
    )
    .bind(now)
    .bind(user_id)
    .bind(device_hash)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// How many browsers `user_id` has signed in from.
pub async fn count_known_devices<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from known_devices where user_id = $1")
        .bind(user_id)
        .fetch_one(ex)
        .await
}

/// Remembers a browser of `user_id`; false when a concurrent login remembered it first.
pub async fn insert_known_device<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    device_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into known_devices (user_id, device_hash, first_seen_at, last_seen_at) \
         values ($1, $2, $3, $3) on conflict (user_id, device_hash) do nothing",
    )
    .bind(user_id)
    .bind(device_hash)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}
