//! The signing keys' private halves at rest: sealed under the key-encryption key (AES-256-GCM, the
//! kid as associated data; see [`super::kek`]), so a copy of the database (a backup, a replica, a
//! leaked dump) reveals no key that could sign tokens, and a row written by someone without the KEK
//! is never loaded (OWASP Cryptographic Storage Cheat Sheet, "Encrypting stored keys"; NIST SP 800-57
//! Part 1 §6.2.2, confidentiality of private keys).
//!
//! * [`unlock`] runs before a process uses the keys: it refuses a KEK that opens none of the sealed
//!   keys ([`KekError::WrongKey`]) and seals keys an earlier version stored as plain PEM.
//! * [`rewrap`] (`latchkey keys rewrap`) moves every key to a new KEK in one transaction.

use sqlx::Row;

use super::CryptoError;
use super::kek::{KeyEncryptionKey, SEALED_V1_PREFIX};
use super::kek_file::KekError;
use crate::db::{Backend, Database, Exec};
use crate::error::{AppError, Result};

/// Purpose label of the sub-key that seals signing keys (see [`KeyEncryptionKey::seal`]).
pub const SEAL_PURPOSE: &str = "signing-key";

/// Seals a private PEM for row `kid` (the kid is the associated data, so rows cannot be swapped).
pub fn seal_private_key(
    kek: &KeyEncryptionKey,
    kid: &str,
    pem: &str,
) -> Result<String, CryptoError> {
    kek.seal(SEAL_PURPOSE, kid.as_bytes(), pem.as_bytes())
}

/// Opens what [`seal_private_key`] sealed for row `kid`.
pub fn open_private_key(
    kek: &KeyEncryptionKey,
    kid: &str,
    sealed: &str,
) -> Result<String, CryptoError> {
    let bytes = kek.open(SEAL_PURPOSE, kid.as_bytes(), sealed)?;
    String::from_utf8(bytes).map_err(|_| CryptoError::InvalidKey("PEM is not UTF-8".to_owned()))
}

/// `(kid, private_key)` of every key, sealed or not, in kid order (so concurrent writers lock rows
/// in the same order and cannot deadlock).
async fn private_keys<'c>(ex: impl Exec<'c>) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query("select kid, private_key from signing_keys order by kid")
        .fetch_all(ex)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("kid")?, r.try_get("private_key")?)))
        .collect()
}

/// Whether `kek` opens at least one sealed key; `None` when no key is sealed yet.
pub async fn kek_opens_stored<'c>(
    ex: impl Exec<'c>,
    kek: &KeyEncryptionKey,
) -> Result<Option<bool>, sqlx::Error> {
    let sealed: Vec<(String, String)> = private_keys(ex)
        .await?
        .into_iter()
        .filter(|(_, value)| KeyEncryptionKey::is_sealed(value))
        .collect();
    if sealed.is_empty() {
        return Ok(None);
    }
    Ok(Some(sealed.iter().any(|(kid, value)| {
        open_private_key(kek, kid, value).is_ok()
    })))
}

/// Makes the stored keys usable with `kek`: refuses a KEK that opens none of the sealed keys, then
/// seals the keys stored as plain PEM (databases written before sealing existed). Returns how many
/// were sealed. Idempotent, and safe when several processes start at once: each plain row is
/// replaced only if it still holds the PEM that was read (on PostgreSQL a second process waits for
/// the first one's row lock, then finds the row changed and leaves it).
pub async fn unlock(db: &Database, kek: &KeyEncryptionKey) -> anyhow::Result<usize> {
    if kek_opens_stored(&db.pool, kek).await? == Some(false) {
        return Err(KekError::WrongKey.into());
    }
    let mut tx = db.begin().await?;
    let mut sealed = 0;
    for (kid, value) in private_keys(&mut *tx).await? {
        if KeyEncryptionKey::is_sealed(&value) {
            continue;
        }
        let new = seal_private_key(kek, &kid, &value)?;
        sealed += replace(&mut *tx, &kid, &value, &new).await?;
    }
    tx.commit().await?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "signing keys stored in plaintext are now sealed under the key-encryption key"
        );
    }
    Ok(sealed)
}

/// Replaces `old` by `new` in row `kid` if it still holds `old`; returns the rows changed (0 or 1).
async fn replace<'c>(
    ex: impl Exec<'c>,
    kid: &str,
    old: &str,
    new: &str,
) -> Result<usize, sqlx::Error> {
    let done =
        sqlx::query("update signing_keys set private_key = $1 where kid = $2 and private_key = $3")
            .bind(new)
            .bind(kid)
            .bind(old)
            .execute(ex)
            .await?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(0))
}

/// Re-seals every signing key under `new` (opening it with `old`) in one transaction, with every
/// other secret sealed under the KEK (second factors, connections' client secrets), so the
/// database is entirely under one key or the other. Fails, changing nothing, when a key does not
/// open with `old` or changed meanwhile. Returns how many keys were re-sealed.
///
/// Processes still running with `old` keep signing with the keys they hold in memory, but cannot
/// load keys created from now on and refuse to create any: restart them with `new` right after.
pub async fn rewrap(
    db: &Database,
    old: &KeyEncryptionKey,
    new: &KeyEncryptionKey,
) -> Result<usize> {
    let mut tx = db.begin().await?;
    if db.backend == Backend::Postgres {
        // Reads go on; key inserts and rotations from other processes wait for this transaction, so
        // none can add a key under the old KEK that this pass would miss (SQLite: BEGIN IMMEDIATE).
        sqlx::query("lock table signing_keys in exclusive mode")
            .execute(&mut *tx)
            .await?;
    }
    let mut rewrapped = 0;
    for (kid, value) in private_keys(&mut *tx).await? {
        let pem = if value.starts_with(SEALED_V1_PREFIX) {
            open_private_key(old, &kid, &value).map_err(|_| {
                AppError::invalid(format!(
                    "signing key {kid} does not open with the current key-encryption key; nothing was changed"
                ))
            })?
        } else {
            value.clone()
        };
        let sealed = seal_private_key(new, &kid, &pem)?;
        if replace(&mut *tx, &kid, &value, &sealed).await? != 1 {
            return Err(AppError::invalid(format!(
                "signing key {kid} changed during the rewrap; nothing was changed, run it again"
            )));
        }
        rewrapped += 1;
    }
    // The second factors' secrets are sealed under the same KEK (crate::mfa::totp, the
    // recovery-code key): moved in the same transaction, or a rewrap would lock every person with
    // an authenticator out.
    crate::mfa::totp::rewrap(&mut tx, old, new).await?;
    crate::mfa::recovery_codes::rewrap(&mut tx, old, new).await?;
    // The connections' client secrets (enterprise SSO), likewise: a connection whose secret no
    // longer opens cannot redeem a code at its upstream.
    crate::federation::connections::manage::rewrap(&mut tx, old, new).await?;
    tx.commit().await?;
    Ok(rewrapped)
}
