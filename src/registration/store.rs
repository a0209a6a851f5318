//! SQL for dynamic registration: initial access tokens and the registration access token of each
//! dynamically registered client (only SHA-256 hashes of either).

use sqlx::Row;

use crate::crypto::tokens::TokenHash;
use crate::db::Exec;

/// Stores an initial access token.
pub async fn insert_initial_token<'c>(
    ex: impl Exec<'c>,
    id: &str,
    hash: &TokenHash,
    created_at: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into registration_initial_tokens (id, token_hash, created_at, expires_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(hash.as_str())
    .bind(created_at)
    .bind(expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// The id of the initial access token with `hash` when it is still valid at `now`.
pub async fn valid_initial_token<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "select id from registration_initial_tokens where token_hash = $1 and expires_at > $2",
    )
    .bind(hash.as_str())
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("id")).transpose()
}

/// A dynamically registered client's registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The client.
    pub client_id: String,
    /// SHA-256 of the registration access token.
    pub token_hash: TokenHash,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_endpoint_auth_method: String,
}

/// Stores the registration of a new client.
pub async fn insert_registration<'c>(
    ex: impl Exec<'c>,
    registration: &Registration,
    initial_token_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into client_registrations \
         (client_id, token_hash, token_endpoint_auth_method, initial_token_id, created_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(&registration.client_id)
    .bind(registration.token_hash.as_str())
    .bind(&registration.token_endpoint_auth_method)
    .bind(initial_token_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// The registration of `client_id`, if it was registered dynamically.
pub async fn find_registration<'c>(
    ex: impl Exec<'c>,
    client_id: &str,
) -> Result<Option<Registration>, sqlx::Error> {
    let row = sqlx::query(
        "select client_id, token_hash, token_endpoint_auth_method from client_registrations \
         where client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok(Registration {
            client_id: r.try_get("client_id")?,
            token_hash: TokenHash::from_hex(r.try_get("token_hash")?),
            token_endpoint_auth_method: r.try_get("token_endpoint_auth_method")?,
        })
    })
    .transpose()
}

/// Records a new token endpoint authentication method (RFC 7592 §2.2 update).
pub async fn set_auth_method<'c>(
    ex: impl Exec<'c>,
    client_id: &str,
    method: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update client_registrations set token_endpoint_auth_method = $2 where client_id = $1",
    )
    .bind(client_id)
    .bind(method)
    .execute(ex)
    .await?;
    Ok(())
}
