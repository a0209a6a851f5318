//! SQL of DPoP: the replay cache of accepted proofs (migration 0019). Proofs past their
//! `expires_at` are deleted by the purge job (`jobs::purge`).

use crate::db::Exec;

/// Records a proof by its hash until `expires_at`; `false` when it was recorded before (a replay).
/// The primary key decides, so two processes racing with the same proof cannot both win.
pub async fn record_proof<'c>(
    ex: impl Exec<'c>,
    jti_hash: &str,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into dpop_proofs (jti_hash, expires_at) values ($1, $2) \
         on conflict (jti_hash) do nothing",
    )
    .bind(jti_hash)
    .bind(expires_at)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}
