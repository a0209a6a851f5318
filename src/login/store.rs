//! SQL for the browsers each account has signed in from (the new-device alert).

use crate::db::Exec;

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
