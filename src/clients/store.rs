//! SQL for clients. Lists are stored as JSON text, portable across both databases.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Client, GrantType};
use crate::crypto::tokens::TokenHash;
use crate::db::{self, Exec};

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
    })
}

/// Inserts a client.
pub async fn insert<'c>(ex: impl Exec<'c>, c: &Client, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into clients (id, secret_hash, name, redirect_uris, post_logout_redirect_uris, grant_types, \
         scopes, public, first_party, require_org, id_token_alg, allow_no_pkce, introspect, created_at, \
         updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
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
    .execute(ex)
    .await?;
    Ok(())
}

/// Finds a client by id.
pub async fn find<'c>(ex: impl Exec<'c>, id: &str) -> Result<Option<Client>, sqlx::Error> {
    let row = sqlx::query(
        "select id, secret_hash, name, redirect_uris, post_logout_redirect_uris, grant_types, scopes, public, \
         first_party, require_org, id_token_alg, allow_no_pkce, introspect from clients where id = $1",
    )
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(client_from_row).transpose()
}
