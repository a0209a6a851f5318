//! SQL on `org_domains` (migration 0013).

use sqlx::Row;

use crate::db::{self, Exec};
use crate::error::Result;
use crate::federation::connections::{self, Connection};

/// The connection columns of [`connection_if_verified`] ([`connections::store::COLUMNS`]).
const CONNECTION_COLUMNS: &str = "c.id, c.org_id, c.name, c.issuer, c.client_id, c.scopes, \
     c.role_mapping, c.created_at, c.updated_at";

/// A domain claimed by an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgDomain {
    /// The organization that claimed it.
    pub org_id: String,
    /// The domain, lower-case.
    pub domain: String,
    /// The random value of the TXT record to publish (not a secret: it is published).
    pub challenge: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` while unverified.
    pub verified_at: Option<i64>,
}

const COLUMNS: &str = "org_id, domain, challenge, created_at, verified_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<OrgDomain> {
    Ok(OrgDomain {
        org_id: row.try_get("org_id")?,
        domain: row.try_get("domain")?,
        challenge: row.try_get("challenge")?,
        created_at: row.try_get("created_at")?,
        verified_at: row.try_get("verified_at")?,
    })
}

/// The organization that verified `domain` (lower-case), if one did.
pub async fn verified_owner<'c>(ex: impl Exec<'c>, domain: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "select org_id from org_domains where domain = $1 and verified_at is not null",
    )
    .bind(domain)
    .fetch_optional(ex)
    .await?)
}

/// Whether `org_id` verified `domain` (lower-case).
pub async fn is_verified_by<'c>(ex: impl Exec<'c>, org_id: &str, domain: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from org_domains where org_id = $1 and domain = $2 \
         and verified_at is not null",
    )
    .bind(org_id)
    .bind(domain)
    .fetch_one(ex)
    .await?;
    Ok(n > 0)
}

/// The claim of `domain` by `org_id`, if any.
pub async fn find<'c>(ex: impl Exec<'c>, org_id: &str, domain: &str) -> Result<Option<OrgDomain>> {
    let row = sqlx::query(&format!(
        "select {COLUMNS} from org_domains where org_id = $1 and domain = $2"
    ))
    .bind(org_id)
    .bind(domain)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The domains `org_id` claimed, alphabetically.
pub async fn list_for_org<'c>(ex: impl Exec<'c>, org_id: &str) -> Result<Vec<OrgDomain>> {
    let rows = sqlx::query(&format!(
        "select {COLUMNS} from org_domains where org_id = $1 order by domain"
    ))
    .bind(org_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Inserts a claim; `Ok(false)` when `org_id` claimed `domain` already (a concurrent claim).
pub async fn insert<'c>(ex: impl Exec<'c>, claim: &OrgDomain) -> Result<bool> {
    let result = sqlx::query(
        "insert into org_domains (org_id, domain, challenge, created_at, verified_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(&claim.org_id)
    .bind(&claim.domain)
    .bind(&claim.challenge)
    .bind(claim.created_at)
    .bind(claim.verified_at)
    .execute(ex)
    .await;
    Ok(db::inserted(result)?)
}

/// What marking a claim verified did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkVerified {
    /// Verified now (or it was already).
    Done,
    /// The claim is gone (removed meanwhile).
    NoClaim,
    /// Another organization verified the domain meanwhile (the unique index `org_domains_verified`).
    Taken,
}

/// Marks `org_id`'s claim of `domain` verified at `now` (kept as it was when verified already).
/// On PostgreSQL a [`MarkVerified::Taken`] aborts the surrounding transaction: roll it back.
pub async fn mark_verified<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    domain: &str,
    now: i64,
) -> Result<MarkVerified> {
    let result = sqlx::query(
        "update org_domains set verified_at = coalesce(verified_at, $1) \
         where org_id = $2 and domain = $3",
    )
    .bind(now)
    .bind(org_id)
    .bind(domain)
    .execute(ex)
    .await;
    match result {
        Ok(done) if done.rows_affected() == 0 => Ok(MarkVerified::NoClaim),
        Ok(_) => Ok(MarkVerified::Done),
        Err(e) if db::is_unique_violation(&e) => Ok(MarkVerified::Taken),
        Err(e) => Err(e.into()),
    }
}

/// Removes `org_id`'s claim of `domain`; `Ok(false)` when there was none.
pub async fn delete<'c>(ex: impl Exec<'c>, org_id: &str, domain: &str) -> Result<bool> {
    let done = sqlx::query("delete from org_domains where org_id = $1 and domain = $2")
        .bind(org_id)
        .bind(domain)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The first connection (oldest) of `org_id` when `org_id` verified `domain`; one query for the
/// `sso_required` check ([`crate::federation::policy`]), which runs on every authorization and token
/// request for such an organization.
pub async fn connection_if_verified<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    domain: &str,
) -> Result<Option<Connection>> {
    let row = sqlx::query(&format!(
        "select {CONNECTION_COLUMNS} from connections c where c.org_id = $1 \
         and exists (select 1 from org_domains d where d.org_id = $1 and d.domain = $2 \
         and d.verified_at is not null) \
         order by c.created_at, c.id limit 1"
    ))
    .bind(org_id)
    .bind(domain)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(connections::store::from_row).transpose()
}
