//! SQL of the login feature: the browsers each account has signed in from (the new-device alert)
//! and the failed-attempt counters of [`super::throttle`].

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

/// A row of `login_throttles` (see [`super::throttle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Failures counted since the count was last forgotten.
    pub failures: i64,
    /// When the count is forgotten (unix seconds).
    pub window_ends_at: i64,
    /// Attempts before this time (unix seconds) are refused.
    pub blocked_until: i64,
}

fn counter(row: (i64, i64, i64)) -> Counter {
    Counter {
        failures: row.0,
        window_ends_at: row.1,
        blocked_until: row.2,
    }
}

/// Returns the counter of `key`, creating an empty one, and locks its row until the transaction ends
/// (PostgreSQL locks the row an `on conflict do update` touches; SQLite transactions here hold the
/// write lock from their start), so concurrent attempts on one key are counted one after the other.
pub async fn lock_throttle<'c>(
    ex: impl Exec<'c>,
    key: &str,
    now: i64,
) -> Result<Counter, sqlx::Error> {
    sqlx::query_as::<_, (i64, i64, i64)>(
        "insert into login_throttles (key, failures, window_ends_at, blocked_until) \
         values ($1, 0, $2, 0) \
         on conflict (key) do update set failures = login_throttles.failures \
         returning failures, window_ends_at, blocked_until",
    )
    .bind(key)
    .bind(now)
    .fetch_one(ex)
    .await
    .map(counter)
}

/// Stores the counter of a key locked by [`lock_throttle`].
pub async fn save_throttle<'c>(
    ex: impl Exec<'c>,
    key: &str,
    c: &Counter,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update login_throttles set failures = $2, window_ends_at = $3, blocked_until = $4 \
         where key = $1",
    )
    .bind(key)
    .bind(c.failures)
    .bind(c.window_ends_at)
    .bind(c.blocked_until)
    .execute(ex)
    .await?;
    Ok(())
}

/// The counter of `key`, if there is one (no lock: a read-only check).
pub async fn read_throttle<'c>(
    ex: impl Exec<'c>,
    key: &str,
) -> Result<Option<Counter>, sqlx::Error> {
    sqlx::query_as::<_, (i64, i64, i64)>(
        "select failures, window_ends_at, blocked_until from login_throttles where key = $1",
    )
    .bind(key)
    .fetch_optional(ex)
    .await
    .map(|row| row.map(counter))
}

/// Forgets the counter of `key`.
pub async fn delete_throttle<'c>(ex: impl Exec<'c>, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from login_throttles where key = $1")
        .bind(key)
        .execute(ex)
        .await?;
    Ok(())
}

/// Forgets an account's counter (`account_key`) and those of its browsers (keys starting with
/// `device_prefix`, which holds no `LIKE` wildcard: user ids are UUIDs).
pub async fn delete_account_throttles<'c>(
    ex: impl Exec<'c>,
    account_key: &str,
    device_prefix: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from login_throttles where key = $1 or key like $2")
        .bind(account_key)
        .bind(format!("{device_prefix}%"))
        .execute(ex)
        .await?;
    Ok(())
}

/// Whether the browser with `device_hash` signed in to `user_id` before.
pub async fn is_known_device<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    device_hash: &str,
) -> Result<bool, sqlx::Error> {
    let found: i64 = sqlx::query_scalar(
        "select count(*) from known_devices where user_id = $1 and device_hash = $2",
    )
    .bind(user_id)
    .bind(device_hash)
    .fetch_one(ex)
    .await?;
    Ok(found > 0)
}
