//! Leases in the database, so that each background job runs in one process at a time even when
//! several `latchkey serve` processes share a PostgreSQL database.

use crate::db::Exec;

/// Takes the lease `name` for `holder` until `until`, if it is free or expired (or already ours).
/// True when this holder has it now. One statement, so two processes can never both win.
pub async fn acquire<'c>(
    ex: impl Exec<'c>,
    name: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into job_leases (name, holder, leased_until) values ($1, $2, $3) \
         on conflict (name) do update set holder = excluded.holder, leased_until = excluded.leased_until \
         where job_leases.leased_until <= $4 or job_leases.holder = excluded.holder",
    )
    .bind(name)
    .bind(holder)
    .bind(until)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}
