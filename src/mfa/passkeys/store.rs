//! SQL on `passkeys` (migration 0011): one row per registered credential, its webauthn-rs
//! `Passkey` as JSON (public key, counter, backup flags: nothing secret), keyed by the base64url
//! credential id (unique across accounts, WebAuthn L2 §7.1 step 22).

use sqlx::Row;
use webauthn_rs::prelude::Passkey;

use crate::db::{Exec, Tx};
use crate::error::{AppError, Result};

/// One passkey as the account page lists it.
#[derive(Debug, Clone)]
pub struct PasskeyRow {
    /// Our id (UUIDv7).
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// The base64url credential id.
    pub credential_id: String,
    /// The name the person gave it.
    pub name: String,
    /// The webauthn-rs credential.
    pub credential: Passkey,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last sign-in with it.
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, credential_id, name, credential, created_at, last_used_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<PasskeyRow> {
    let json: String = row.try_get("credential")?;
    let credential: Passkey = serde_json::from_str(&json)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored passkey: {e}")))?;
    Ok(PasskeyRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        credential_id: row.try_get("credential_id")?,
        name: row.try_get("name")?,
        credential,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// The passkeys of `user_id`, oldest first.
pub async fn list<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<Vec<PasskeyRow>> {
    let rows = sqlx::query(&format!(
        "select {COLUMNS} from passkeys where user_id = $1 order by created_at, id"
    ))
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The passkey whose credential id is `credential_id` (base64url), whoever owns it.
pub async fn find_by_credential<'c>(
    ex: impl Exec<'c>,
    credential_id: &str,
) -> Result<Option<PasskeyRow>> {
    let row = sqlx::query(&format!(
        "select {COLUMNS} from passkeys where credential_id = $1"
    ))
    .bind(credential_id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Passkey `id` of `user_id` (another account's id finds nothing).
pub async fn find_for_user<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    id: &str,
) -> Result<Option<PasskeyRow>> {
    let row = sqlx::query(&format!(
        "select {COLUMNS} from passkeys where id = $1 and user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A new passkey row.
pub struct NewPasskey<'a> {
    /// Our id.
    pub id: &'a str,
    /// The owner.
    pub user_id: &'a str,
    /// The base64url credential id.
    pub credential_id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// The credential.
    pub credential: &'a Passkey,
}

/// Stores a new passkey inside `tx`.
pub async fn insert(tx: &mut Tx, new: &NewPasskey<'_>, now: i64) -> Result<()> {
    let json = serde_json::to_string(new.credential).map_err(|e| AppError::Internal(e.into()))?;
    sqlx::query(
        "insert into passkeys (id, user_id, credential_id, name, credential, created_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new.id)
    .bind(new.user_id)
    .bind(new.credential_id)
    .bind(new.name)
    .bind(json)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Notes a use of passkey `id` at `now`, with its updated credential (signature counter, backup
/// state: WebAuthn L2 §7.2 steps 21-22).
pub async fn record_use(tx: &mut Tx, id: &str, credential: &Passkey, now: i64) -> Result<()> {
    let json = serde_json::to_string(credential).map_err(|e| AppError::Internal(e.into()))?;
    sqlx::query("update passkeys set credential = $1, last_used_at = $2 where id = $3")
        .bind(json)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes passkey `id` of `user_id` inside `tx`; false when there was none.
pub async fn delete(tx: &mut Tx, user_id: &str, id: &str) -> Result<bool> {
    let done = sqlx::query("delete from passkeys where id = $1 and user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Renames passkey `id` of `user_id` inside `tx`; false when there was none.
pub async fn rename(tx: &mut Tx, user_id: &str, id: &str, name: &str) -> Result<bool> {
    let done = sqlx::query("update passkeys set name = $1 where id = $2 and user_id = $3")
        .bind(name)
        .bind(id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}
