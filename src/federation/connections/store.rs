//! SQL on `connections` (migration 0013). The client secret is sealed under the key-encryption key
//! with the connection id as associated data, and only [`client_secret`] opens it.

use sqlx::Row;

use super::{Connection, RoleMapping, SECRET_PURPOSE};
use crate::crypto::kek::KeyEncryptionKey;
use crate::db::Exec;
use crate::error::{AppError, Result};

/// The columns [`from_row`] reads.
pub const COLUMNS: &str =
    "id, org_id, name, issuer, client_id, scopes, role_mapping, created_at, updated_at";

/// A connection from a row of [`COLUMNS`].
pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Connection> {
    let scopes: String = row.try_get("scopes")?;
    let mapping: Option<String> = row.try_get("role_mapping")?;
    let role_mapping = match mapping {
        Some(json) => Some(
            serde_json::from_str::<RoleMapping>(&json)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("stored role mapping: {e}")))?,
        ),
        None => None,
    };
    Ok(Connection {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        issuer: row.try_get("issuer")?,
        client_id: row.try_get("client_id")?,
        scopes: scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        role_mapping,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The connection `id`, whoever it belongs to.
pub async fn find<'c>(ex: impl Exec<'c>, id: &str) -> Result<Option<Connection>> {
    let row = sqlx::query(&format!("select {COLUMNS} from connections where id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The connections of organization `org_id`, oldest first.
pub async fn list_for_org<'c>(ex: impl Exec<'c>, org_id: &str) -> Result<Vec<Connection>> {
    let rows = sqlx::query(&format!(
        "select {COLUMNS} from connections where org_id = $1 order by created_at, id"
    ))
    .bind(org_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The instance-wide connections (the login page's "Continue with NAME" buttons), oldest first.
pub async fn list_instance<'c>(ex: impl Exec<'c>) -> Result<Vec<Connection>> {
    let rows = sqlx::query(&format!(
        "select {COLUMNS} from connections where org_id is null order by created_at, id"
    ))
    .fetch_all(ex)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Whether any connection exists (the login page then asks for the email first).
pub async fn any<'c>(ex: impl Exec<'c>) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("select count(*) from (select 1 from connections limit 1) c")
        .fetch_one(ex)
        .await?;
    Ok(n > 0)
}

/// The client secret of connection `id`, opened (`None`: no such connection).
pub async fn client_secret<'c>(
    ex: impl Exec<'c>,
    kek: &KeyEncryptionKey,
    id: &str,
) -> Result<Option<String>> {
    let sealed: Option<String> =
        sqlx::query_scalar("select client_secret_sealed from connections where id = $1")
            .bind(id)
            .fetch_optional(ex)
            .await?;
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let plain = kek
        .open(SECRET_PURPOSE, id.as_bytes(), &sealed)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("connection secret: {e}")))?;
    String::from_utf8(plain)
        .map(Some)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("connection secret: {e}")))
}

/// A connection to insert; the secret is sealed here.
pub struct NewConnection<'a> {
    /// The organization, or `None` for an instance-wide connection.
    pub org_id: Option<&'a str>,
    /// Display name.
    pub name: &'a str,
    /// The upstream's issuer, checked by discovery before.
    pub issuer: &'a str,
    /// Our client id at the upstream.
    pub client_id: &'a str,
    /// Our client secret at the upstream (sealed, never returned).
    pub client_secret: &'a str,
    /// Scopes to ask for (with `openid`).
    pub scopes: &'a [String],
    /// The role mapping, if any.
    pub role_mapping: Option<&'a RoleMapping>,
}

/// Inserts a connection with a new id, its secret sealed under `kek`; returns it.
pub async fn insert<'c>(
    ex: impl Exec<'c>,
    kek: &KeyEncryptionKey,
    new: &NewConnection<'_>,
    now: i64,
) -> Result<Connection> {
    let id = crate::crypto::tokens::new_id();
    let sealed = kek
        .seal(SECRET_PURPOSE, id.as_bytes(), new.client_secret.as_bytes())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("sealing a connection secret: {e}")))?;
    let mapping = new
        .role_mapping
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("role mapping: {e}")))?;
    sqlx::query(
        "insert into connections (id, org_id, name, issuer, client_id, client_secret_sealed, \
         scopes, role_mapping, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&id)
    .bind(new.org_id)
    .bind(new.name)
    .bind(new.issuer)
    .bind(new.client_id)
    .bind(&sealed)
    .bind(new.scopes.join(" "))
    .bind(mapping.as_deref())
    .bind(now)
    .execute(ex)
    .await?;
    Ok(Connection {
        id,
        org_id: new.org_id.map(str::to_owned),
        name: new.name.to_owned(),
        issuer: new.issuer.to_owned(),
        client_id: new.client_id.to_owned(),
        scopes: new.scopes.to_vec(),
        role_mapping: new.role_mapping.cloned(),
        created_at: now,
        updated_at: now,
    })
}

/// Writes `conn`'s name, issuer, client id, scopes and role mapping (and, when `new_secret` is
/// given, seals it in place of the old one) at `now`; false when the connection no longer exists.
pub async fn update<'c>(
    ex: impl Exec<'c>,
    kek: &KeyEncryptionKey,
    conn: &Connection,
    new_secret: Option<&str>,
    now: i64,
) -> Result<bool> {
    let sealed = new_secret
        .map(|secret| kek.seal(SECRET_PURPOSE, conn.id.as_bytes(), secret.as_bytes()))
        .transpose()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("sealing a connection secret: {e}")))?;
    let mapping = conn
        .role_mapping
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("role mapping: {e}")))?;
    let done = sqlx::query(
        "update connections set name = $1, issuer = $2, client_id = $3, scopes = $4, \
         role_mapping = $5, client_secret_sealed = coalesce($6, client_secret_sealed), \
         updated_at = $7 where id = $8",
    )
    .bind(&conn.name)
    .bind(&conn.issuer)
    .bind(&conn.client_id)
    .bind(conn.scopes.join(" "))
    .bind(mapping.as_deref())
    .bind(sealed.as_deref())
    .bind(now)
    .bind(&conn.id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes connection `id` (its linked identities go with it: `on delete cascade`); false when
/// there was none.
pub async fn delete<'c>(ex: impl Exec<'c>, id: &str) -> Result<bool> {
    let done = sqlx::query("delete from connections where id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Every connection's id and sealed secret (`keys rewrap`).
pub async fn sealed_secrets<'c>(ex: impl Exec<'c>) -> Result<Vec<(String, String)>> {
    Ok(
        sqlx::query_as("select id, client_secret_sealed from connections order by id")
            .fetch_all(ex)
            .await?,
    )
}

/// Replaces the sealed secret of connection `id` when it is still `old` (`keys rewrap`).
pub async fn replace_sealed<'c>(ex: impl Exec<'c>, id: &str, old: &str, new: &str) -> Result<bool> {
    let done = sqlx::query(
        "update connections set client_secret_sealed = $1 \
         where id = $2 and client_secret_sealed = $3",
    )
    .bind(new)
    .bind(id)
    .bind(old)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many upstream identities are linked through connection `id` (they go with it).
pub async fn count_identities<'c>(ex: impl Exec<'c>, id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from federated_identities where connection_id = $1")
            .bind(id)
            .fetch_one(ex)
            .await?,
    )
}
