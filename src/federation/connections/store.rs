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
