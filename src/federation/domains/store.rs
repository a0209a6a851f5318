//! SQL on `org_domains` (migration 0013).

use crate::db::Exec;
use crate::error::Result;

/// The organization that verified `domain` (lower-case), if one did.
pub async fn verified_owner<'c>(ex: impl Exec<'c>, domain: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "select org_id from org_domains where domain = $1 and verified_at is not null",
    )
    .bind(domain)
    .fetch_optional(ex)
    .await?)
}
