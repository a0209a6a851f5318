//! SQL shared by every factor (migration 0011): which factors an account has, and removing them
//! all. Each factor keeps its own SQL beside it ([`super::totp`], [`super::recovery_codes`],
//! [`super::passkeys`]).

use sqlx::Row;

use super::Factors;
use crate::db::{Exec, Tx};

/// The factors of `user_id`, in one query.
pub async fn factors<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<Factors, sqlx::Error> {
    let row = sqlx::query(
        "select \
           (select count(*) from totp_factors where user_id = $1 and confirmed_at is not null) as totp, \
           (select count(*) from passkeys where user_id = $1) as passkeys, \
           (select count(*) from recovery_codes where user_id = $1 and used_at is null) as codes",
    )
    .bind(user_id)
    .fetch_one(ex)
    .await?;
    Ok(Factors {
        totp: row.try_get::<i64, _>("totp")? > 0,
        passkeys: row.try_get("passkeys")?,
        recovery_codes: row.try_get("codes")?,
    })
}

/// Removes every factor of `user_id` (TOTP, recovery codes, passkeys) inside `tx`; the rows
/// removed, per kind.
pub async fn delete_all(tx: &mut Tx, user_id: &str) -> Result<FactorsRemoved, sqlx::Error> {
    let mut removed = [0u64; 3];
    for (count, table) in removed
        .iter_mut()
        .zip(["totp_factors", "recovery_codes", "passkeys"])
    {
        *count = sqlx::query(&format!("delete from {table} where user_id = $1"))
            .bind(user_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    let [totp, recovery_codes, passkeys] = removed;
    Ok(FactorsRemoved {
        totp,
        recovery_codes,
        passkeys,
    })
}

/// Rows removed by [`delete_all`], per kind.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FactorsRemoved {
    /// The authenticator app (confirmed or not).
    pub totp: u64,
    /// Recovery codes, used or not.
    pub recovery_codes: u64,
    /// Passkeys.
    pub passkeys: u64,
}

impl FactorsRemoved {
    /// Rows removed in all.
    pub fn total(&self) -> u64 {
        self.totp + self.recovery_codes + self.passkeys
    }
}
