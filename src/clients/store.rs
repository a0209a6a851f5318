//! SQL for clients. Lists are stored as JSON text, portable across both databases.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Client, GrantType};
use crate::crypto::tokens::TokenHash;
use crate::db::{self, Exec, Tx};

fn json_list<T: serde::Serialize>(items: &[T]) -> Result<String, sqlx::Error> {
    serde_json::to_string(items).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

fn parse_list<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    column: &str,
) -> Result<Vec<T>, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn client_from_row(row: &AnyRow) -> Result<Client, sqlx::Error> {
    let id_token_alg: Option<String> = row.try_get("id_token_alg")?;
    Ok(Client {
        id: row.try_get("id")?,
        secret_hash: row
            .try_get::<Option<String>, _>("secret_hash")?
            .map(TokenHash::from_hex),
        name: row.try_get("name")?,
        redirect_uris: parse_list(row, "redirect_uris")?,
        post_logout_redirect_uris: parse_list(row, "post_logout_redirect_uris")?,
        grant_types: parse_list::<GrantType>(row, "grant_types")?,
        scopes: parse_list(row, "scopes")?,
        public: row.try_get::<i64, _>("public")? != 0,
        first_party: row.try_get::<i64, _>("first_party")? != 0,
        require_org: row.try_get::<i64, _>("require_org")? != 0,
        id_token_alg: id_token_alg.and_then(|a| a.parse().ok()),
        allow_no_pkce: row.try_get::<i64, _>("allow_no_pkce")? != 0,
        introspect: row.try_get::<i64, _>("introspect")? != 0,
        previous_secret_hash: row
            .try_get::<Option<String>, _>("previous_secret_hash")?
            .map(TokenHash::from_hex),
        previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
        backchannel_logout_uri: row.try_get("backchannel_logout_uri")?,
        resources: parse_list(row, "resources")?,
        require_par: row.try_get::<i64, _>("require_par")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The columns [`client_from_row`] reads.
const CLIENT_COLUMNS: &str = "id, secret_hash, name, redirect_uris, post_logout_redirect_uris, \
     grant_types, scopes, public, first_party, require_org, id_token_alg, allow_no_pkce, introspect, \
     previous_secret_hash, previous_secret_expires_at, backchannel_logout_uri, resources, require_par, \
     created_at, updated_at";

/// Inserts a client.
pub async fn insert<'c>(ex: impl Exec<'c>, c: &Client, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into clients (id, secret_hash, name, redirect_uris, post_logout_redirect_uris, grant_types, \
         scopes, public, first_party, require_org, id_token_alg, allow_no_pkce, introspect, created_at, \
         updated_at, backchannel_logout_uri, resources, require_par) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, $17)",
    )
    .bind(&c.id)
    .bind(c.secret_hash.as_ref().map(|h| h.as_str().to_owned()))
    .bind(&c.name)
    .bind(json_list(&c.redirect_uris)?)
    .bind(json_list(&c.post_logout_redirect_uris)?)
    .bind(json_list(&c.grant_types)?)
    .bind(json_list(&c.scopes)?)
    .bind(db::flag(c.public))
    .bind(db::flag(c.first_party))
    .bind(db::flag(c.require_org))
    .bind(c.id_token_alg.map(|a| a.as_str()))
    .bind(db::flag(c.allow_no_pkce))
    .bind(db::flag(c.introspect))
    .bind(now)
    .bind(c.backchannel_logout_uri.as_deref())
    .bind(json_list(&c.resources)?)
    .bind(db::flag(c.require_par))
    .execute(ex)
    .await?;
    Ok(())
}

/// Finds a client by id.
pub async fn find<'c>(ex: impl Exec<'c>, id: &str) -> Result<Option<Client>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "select {CLIENT_COLUMNS} from clients where id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(client_from_row).transpose()
}

/// Clients oldest first (by registration time, then id), strictly after the keyset position
/// `after`; at most `limit`.
pub async fn list<'c>(
    ex: impl Exec<'c>,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<Client>, sqlx::Error> {
    let (after_at, after_id) = match after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    // The condition is always present and neutralised by a null parameter: one static statement.
    let rows = sqlx::query(&format!(
        "select {CLIENT_COLUMNS} from clients \
         where ($1 is null or created_at > $1 or (created_at = $1 and id > $2)) \
         order by created_at, id limit $3"
    ))
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(client_from_row).collect()
}

/// Stores a client's settings (everything but its id, kind, secrets and creation time).
pub async fn update_settings<'c>(ex: impl Exec<'c>, c: &Client) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update clients set name = $2, redirect_uris = $3, post_logout_redirect_uris = $4, \
         grant_types = $5, scopes = $6, first_party = $7, require_org = $8, id_token_alg = $9, \
         allow_no_pkce = $10, introspect = $11, updated_at = $12, backchannel_logout_uri = $13, \
         resources = $14, require_par = $15 where id = $1",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(json_list(&c.redirect_uris)?)
    .bind(json_list(&c.post_logout_redirect_uris)?)
    .bind(json_list(&c.grant_types)?)
    .bind(json_list(&c.scopes)?)
    .bind(db::flag(c.first_party))
    .bind(db::flag(c.require_org))
    .bind(c.id_token_alg.map(|a| a.as_str()))
    .bind(db::flag(c.allow_no_pkce))
    .bind(db::flag(c.introspect))
    .bind(c.updated_at)
    .bind(c.backchannel_logout_uri.as_deref())
    .bind(json_list(&c.resources)?)
    .bind(db::flag(c.require_par))
    .execute(ex)
    .await?;
    Ok(())
}

/// Stores a client's secrets after a rotation: the new hash, and the previous one with the end of
/// its grace period (both `None` for no grace).
pub async fn set_secrets<'c>(
    ex: impl Exec<'c>,
    id: &str,
    secret_hash: &TokenHash,
    previous: Option<(&TokenHash, i64)>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update clients set secret_hash = $2, previous_secret_hash = $3, \
         previous_secret_expires_at = $4, updated_at = $5 where id = $1",
    )
    .bind(id)
    .bind(secret_hash.as_str())
    .bind(previous.map(|(hash, _)| hash.as_str()))
    .bind(previous.map(|(_, expires_at)| expires_at))
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// What went with a deleted client.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Removed {
    /// Authorization codes, redeemed or not.
    pub authorization_codes: u64,
    /// Refresh-token families (their tokens with them).
    pub refresh_families: u64,
    /// Consents (per user and organization).
    pub consents: u64,
}

/// Deletes a client and every row that names it: authorization codes, refresh-token families (their
/// tokens go by cascade), consents. The foreign keys cascade too; deleting
/// explicitly counts what went and does not depend on SQLite's `foreign_keys` pragma. Returns
/// `None` when no such client exists. Run inside a transaction.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<Option<Removed>, sqlx::Error> {
    let exec = |sql: &'static str| sqlx::query(sql).bind(id.to_owned());
    let authorization_codes = exec("delete from authorization_codes where client_id = $1")
        .execute(&mut **tx)
        .await?
        .rows_affected();
    exec(
        "delete from refresh_tokens where family_id in \
         (select id from refresh_families where client_id = $1)",
    )
    .execute(&mut **tx)
    .await?;
    let refresh_families = exec("delete from refresh_families where client_id = $1")
        .execute(&mut **tx)
        .await?
        .rows_affected();
    // One table since migration 0006 (per user, client and organization).
    let consents = exec("delete from consents where client_id = $1")
        .execute(&mut **tx)
        .await?
        .rows_affected();
    let gone = exec("delete from clients where id = $1")
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok((gone > 0).then_some(Removed {
        authorization_codes,
        refresh_families,
        consents,
    }))
}
