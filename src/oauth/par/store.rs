//! SQL for pushed authorization requests (RFC 9126): stored by the SHA-256 of their `request_uri`,
//! claimed once by a conditional update.

use sqlx::Row;

use crate::crypto::tokens::TokenHash;
use crate::db::Exec;

/// A pushed request as stored.
#[derive(Debug, Clone)]
pub struct PushedRow {
    /// SHA-256 of the `request_uri`.
    pub request_uri_hash: TokenHash,
    /// The client that pushed it (and the only one that may use it).
    pub client_id: String,
    /// The authorization request's parameters: a JSON array of `[name, value]` pairs.
    pub params: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

/// Stores a pushed request.
pub async fn insert<'c>(ex: impl Exec<'c>, row: &PushedRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into pushed_authorization_requests \
         (request_uri_hash, client_id, params, created_at, expires_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(row.request_uri_hash.as_str())
    .bind(&row.client_id)
    .bind(&row.params)
    .bind(row.created_at)
    .bind(row.expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Claims the unused, unexpired request `hash` of `client_id` at `now` and returns its parameters;
/// `None` when there is no such request (unknown, another client's, expired or used). The claim is
/// one conditional update, so of two concurrent uses (even in two processes) exactly one wins.
pub async fn claim<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
    client_id: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "update pushed_authorization_requests set used_at = $3 \
         where request_uri_hash = $1 and client_id = $2 and used_at is null and expires_at > $3 \
         returning params",
    )
    .bind(hash.as_str())
    .bind(client_id)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("params")).transpose()
}
