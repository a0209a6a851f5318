//! SQL of the authenticator app (`totp_factors`, migration 0011): one row per account, unconfirmed
//! until its first code.

use sqlx::Row;

use crate::db::Exec;

/// An account's authenticator.
#[derive(Debug, Clone)]
pub struct TotpRow {
    /// The secret, sealed ([`super::seal`]).
    pub secret_sealed: String,
    /// The RFC 6238 step of the last accepted code (0: none yet).
    pub last_step: i64,
    /// When the secret was made.
    pub created_at: i64,
    /// When the first code confirmed it (`None`: enrolment not finished).
    pub confirmed_at: Option<i64>,
}

/// The authenticator of `user_id`, confirmed or not.
pub async fn find<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<Option<TotpRow>, sqlx::Error> {
    let row = sqlx::query(
        "select secret_sealed, last_step, created_at, confirmed_at from totp_factors \
         where user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok(TotpRow {
            secret_sealed: r.try_get("secret_sealed")?,
            last_step: r.try_get("last_step")?,
            created_at: r.try_get("created_at")?,
            confirmed_at: r.try_get("confirmed_at")?,
        })
    })
    .transpose()
}

/// Replaces any unconfirmed authenticator of `user_id` by a new one with `sealed`; a confirmed one
/// is kept (false: nothing was written).
pub async fn put_unconfirmed<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    sealed: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    // One statement (no read-then-write race between two tabs): insert, or overwrite a row that is
    // still unconfirmed.
    let done = sqlx::query(
        "insert into totp_factors (user_id, secret_sealed, last_step, created_at, confirmed_at) \
         values ($1, $2, 0, $3, null) \
         on conflict (user_id) do update set secret_sealed = excluded.secret_sealed, \
           last_step = 0, created_at = excluded.created_at \
         where totp_factors.confirmed_at is null",
    )
    .bind(user_id)
    .bind(sealed)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Confirms the unconfirmed authenticator of `user_id` with the code of `step`; false when there is
/// none (confirmed meanwhile, or replaced).
pub async fn confirm<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    sealed: &str,
    step: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update totp_factors set confirmed_at = $1, last_step = $2 \
         where user_id = $3 and secret_sealed = $4 and confirmed_at is null and last_step < $2",
    )
    .bind(now)
    .bind(step)
    .bind(user_id)
    .bind(sealed)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Uses up the code of `step` (RFC 6238 §5.2: each code once): true when `step` is later than every
/// step accepted before. The condition is in the update itself, so two concurrent requests (two
/// processes on PostgreSQL) cannot both see "not used yet".
pub async fn accept_step<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    step: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update totp_factors set last_step = $1 \
         where user_id = $2 and confirmed_at is not null and last_step < $1",
    )
    .bind(step)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes the authenticator of `user_id`; true when there was a confirmed one.
pub async fn delete<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("delete from totp_factors where user_id = $1 returning confirmed_at")
            .bind(user_id)
            .fetch_optional(ex)
            .await?;
    Ok(row.is_some_and(|(confirmed,)| confirmed.is_some()))
}

/// Replaces the sealed secret of `user_id` when it is still `old` (`keys rewrap`).
pub async fn replace_sealed<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    old: &str,
    new: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update totp_factors set secret_sealed = $1 where user_id = $2 and secret_sealed = $3",
    )
    .bind(new)
    .bind(user_id)
    .bind(old)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}
