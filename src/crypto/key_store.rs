//! Signing keys in the database: the database decides which key is active, so every process agrees.
//!
//! Life of a key: `next` (published in the JWKS, not yet signing) → `active` (signs; at most one per
//! algorithm, enforced by a partial unique index) → `retired` (still in the JWKS until `retire_after`,
//! when nothing it signed can still be valid) → deleted.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::CryptoError;
use super::kek::KeyEncryptionKey;
use super::key_seal::{open_private_key, seal_private_key};
use super::keys::{self, GeneratedKey};
use crate::audit::{self, Actor, AuditEvent, action};
use crate::clock::{self, Clock};
use crate::config::{Config, SigningAlg};
use crate::db::{self, Database, Exec};
use crate::error::{AppError, Result};

/// Audit `trigger` of a rotation asked for with `latchkey keys rotate`.
pub const ROTATED_BY_CLI: &str = "cli";
/// Audit `trigger` of a rotation made by the scheduled job (`LATCHKEY_KEY_ROTATION`).
pub const ROTATED_BY_SCHEDULE: &str = "schedule";

/// Lifetime of an ID token; with the access-token TTL it bounds how long a retired key must verify.
pub const ID_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);
/// Allowance for clock skew between us and relying parties when keeping retired keys.
const SKEW_ALLOWANCE_SECS: i64 = 60;
/// How long resource servers may cache the JWKS (`Cache-Control` of `/jwks.json`).
pub const JWKS_MAX_AGE_SECS: i64 = 300;

/// A key as `keys list` and the JWKS see it (no private material).
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Key id: RFC 7638 thumbprint.
    pub kid: String,
    /// Signing algorithm.
    pub alg: SigningAlg,
    /// `next`, `active` or `retired`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When it started signing.
    pub activated_at: Option<i64>,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS.
    pub retire_after: Option<i64>,
    /// Public JWK.
    #[serde(skip)]
    pub public_jwk: String,
}

/// A key with its private material, for the signer.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Public part and lifecycle.
    pub info: KeyInfo,
    /// The PKCS#8 PEM sealed under the KEK with the kid as associated data (`v1:…`), as stored.
    pub sealed_private_key: String,
}

impl StoredKey {
    /// The PKCS#8 PEM, opened with `kek`; fails for another KEK or a value moved from another row.
    pub fn private_pem(&self, kek: &KeyEncryptionKey) -> Result<String, CryptoError> {
        open_private_key(kek, &self.info.kid, &self.sealed_private_key)
    }
}

/// The algorithms that must always have an active key: RS256 and ES256, plus EdDSA when configured.
pub fn required_algs(config: &Config) -> Vec<SigningAlg> {
    let mut algs = vec![SigningAlg::RS256, SigningAlg::ES256];
    if config.access_token_alg == SigningAlg::EdDSA || config.id_token_alg == SigningAlg::EdDSA {
        algs.push(SigningAlg::EdDSA);
    }
    algs
}

/// How long a retired key must stay verifiable: the longest token lifetime it may have signed.
pub fn verify_window(config: &Config) -> i64 {
    clock::secs(config.access_token_ttl.max(ID_TOKEN_TTL)) + SKEW_ALLOWANCE_SECS
}

fn info_from_row(row: &AnyRow) -> Result<KeyInfo, sqlx::Error> {
    let alg: String = row.try_get("alg")?;
    Ok(KeyInfo {
        kid: row.try_get("kid")?,
        alg: alg.parse().map_err(|e: crate::config::UnknownSigningAlg| {
            sqlx::Error::Decode(e.to_string().into())
        })?,
        state: row.try_get("state")?,
        created_at: row.try_get("created_at")?,
        activated_at: row.try_get("activated_at")?,
        retired_at: row.try_get("retired_at")?,
        retire_after: row.try_get("retire_after")?,
        public_jwk: row.try_get("public_jwk")?,
    })
}

const KEY_COLUMNS: &str =
    "kid, alg, state, created_at, activated_at, retired_at, retire_after, public_jwk";

/// Every key, newest first.
pub async fn list<'c>(ex: impl Exec<'c>) -> Result<Vec<KeyInfo>, sqlx::Error> {
    let sql = format!("select {KEY_COLUMNS} from signing_keys order by created_at desc, kid");
    let rows = sqlx::query(&sql).fetch_all(ex).await?;
    rows.iter().map(info_from_row).collect()
}

/// Every key that signs or verifies (all states), with private material.
pub async fn load_all<'c>(ex: impl Exec<'c>) -> Result<Vec<StoredKey>, sqlx::Error> {
    let sql = format!(
        "select {KEY_COLUMNS}, private_key from signing_keys order by created_at desc, kid"
    );
    let rows = sqlx::query(&sql).fetch_all(ex).await?;
    rows.iter()
        .map(|row| {
            Ok(StoredKey {
                info: info_from_row(row)?,
                sealed_private_key: row.try_get("private_key")?,
            })
        })
        .collect()
}

/// Inserts a generated key whose private half the caller sealed ([`seal_for_insert`]).
async fn insert<'c>(
    ex: impl Exec<'c>,
    key: &GeneratedKey,
    sealed: &str,
    state: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let activated_at = (state == "active").then_some(now);
    sqlx::query(
        "insert into signing_keys (kid, alg, private_key, public_jwk, state, created_at, activated_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.kid)
    .bind(key.alg.as_str())
    .bind(sealed)
    .bind(key.public_jwk.to_string())
    .bind(state)
    .bind(now)
    .bind(activated_at)
    .execute(ex)
    .await?;
    Ok(())
}

async fn has_active<'c>(ex: impl Exec<'c>, alg: SigningAlg) -> Result<bool, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("select count(*) from signing_keys where alg = $1 and state = 'active'")
            .bind(alg.as_str())
            .fetch_one(ex)
            .await?;
    Ok(n > 0)
}

fn generate(alg: SigningAlg) -> Result<GeneratedKey> {
    keys::generate(alg).map_err(AppError::from)
}

/// The algorithms that need an active key: [`required_algs`] plus the ID-token algs clients registered.
pub async fn algs_in_use(db: &Database, config: &Config) -> Result<Vec<SigningAlg>> {
    let mut algs = required_algs(config);
    let registered: Vec<String> = sqlx::query_scalar(
        "select distinct id_token_alg from clients where id_token_alg is not null",
    )
    .fetch_all(&db.pool)
    .await?;
    for alg in registered
        .iter()
        .filter_map(|a| a.parse::<SigningAlg>().ok())
    {
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    Ok(algs)
}

/// Seals a new key's private half under `kek`, after checking that `kek` is the key the stored keys
/// are sealed with: a process still running with the key a `keys rewrap` replaced must not add a key
/// the others cannot open (it fails instead, and logs why, until restarted with the new key).
async fn seal_for_insert(
    db: &Database,
    kek: &KeyEncryptionKey,
    key: &GeneratedKey,
) -> Result<String> {
    if super::key_seal::kek_opens_stored(&db.pool, kek).await? == Some(false) {
        return Err(AppError::Internal(
            super::kek_file::KekError::WrongKey.into(),
        ));
    }
    Ok(seal_private_key(kek, &key.kid, &key.private_pem)?)
}

/// Creates an active key for every algorithm in use that has none (first start). Safe to run from
/// several processes at once.
pub async fn ensure_active_keys(
    db: &Database,
    config: &Config,
    clock: &Clock,
    kek: &KeyEncryptionKey,
) -> Result<()> {
    for alg in algs_in_use(db, config).await? {
        ensure_active_key(db, clock, kek, alg).await?;
    }
    Ok(())
}

/// Creates an active key of `alg` unless one exists: the unique index lets one concurrent insert win
/// and the others skip.
pub async fn ensure_active_key(
    db: &Database,
    clock: &Clock,
    kek: &KeyEncryptionKey,
    alg: SigningAlg,
) -> Result<()> {
    if has_active(&db.pool, alg).await? {
        return Ok(());
    }
    let key = generate_blocking(alg).await?;
    let sealed = seal_for_insert(db, kek, &key).await?;
    match insert(&db.pool, &key, &sealed, "active", clock.now()).await {
        Ok(()) => tracing::info!(kid = %key.kid, alg = alg.as_str(), "created signing key"),
        Err(e) if db::is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Makes a new key of `alg` active at once (a published `next` key of that alg is promoted when there is
/// one, since relying parties may have cached it already) and retires the previous active key, which
/// stays in the JWKS for [`verify_window`]. Returns the new active key. Audited as
/// `signing_key.rotated` with `trigger` (`cli` or `schedule`) in the details.
pub async fn rotate_now(
    db: &Database,
    config: &Config,
    clock: &Clock,
    kek: &KeyEncryptionKey,
    alg: SigningAlg,
    trigger: &'static str,
) -> Result<KeyInfo> {
    let next = next_key(&db.pool, alg).await?;
    let generated = match next {
        Some(_) => None,
        None => {
            let key = generate_blocking(alg).await?;
            let sealed = seal_for_insert(db, kek, &key).await?;
            Some((key, sealed))
        }
    };
    let now = clock.now();
    let mut tx = db.begin().await?;
    sqlx::query(
        "update signing_keys set state = 'retired', retired_at = $1, retire_after = $2 \
         where alg = $3 and state = 'active'",
    )
    .bind(now)
    .bind(now + verify_window(config))
    .bind(alg.as_str())
    .execute(&mut *tx)
    .await?;
    let kid = match (next, generated) {
        (Some((kid, _)), _) => {
            sqlx::query("update signing_keys set state = 'active', activated_at = $1 where kid = $2 and state = 'next'")
                .bind(now)
                .bind(&kid)
                .execute(&mut *tx)
                .await?;
            kid
        }
        (None, Some((key, sealed))) => {
            insert(&mut *tx, &key, &sealed, "active", now).await?;
            key.kid
        }
        (None, None) => return Err(AppError::Internal(anyhow::anyhow!("no key to activate"))),
    };
    let event = AuditEvent {
        org_id: None,
        actor: &Actor::cli(),
        action: action::SIGNING_KEY_ROTATED,
        target_type: Some("signing_key"),
        target_id: Some(&kid),
        details: serde_json::json!({"alg": alg.as_str(), "trigger": trigger}),
    };
    audit::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    let sql = format!("select {KEY_COLUMNS} from signing_keys where kid = $1");
    let row = sqlx::query(&sql).bind(&kid).fetch_one(&db.pool).await?;
    Ok(info_from_row(&row)?)
}

async fn generate_blocking(alg: SigningAlg) -> Result<GeneratedKey> {
    tokio::task::spawn_blocking(move || generate(alg))
        .await
        .map_err(|e| AppError::Internal(e.into()))?
}

/// The oldest `next` key of `alg`: its kid and creation time.
async fn next_key<'c>(
    ex: impl Exec<'c>,
    alg: SigningAlg,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let row = sqlx::query("select kid, created_at from signing_keys where alg = $1 and state = 'next' order by created_at limit 1")
        .bind(alg.as_str())
        .fetch_optional(ex)
        .await?;
    row.map(|r| Ok((r.try_get("kid")?, r.try_get("created_at")?)))
        .transpose()
}

/// How long before it signs a `next` key is published: one access-token lifetime plus the JWKS cache
/// lifetime, so every resource server has seen it before the first token it signs arrives.
pub fn publish_lead(config: &Config) -> i64 {
    clock::secs(config.access_token_ttl) + JWKS_MAX_AGE_SECS + SKEW_ALLOWANCE_SECS
}

/// What a scheduled rotation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// Keys created in state `next`.
    pub published: Vec<String>,
    /// Keys that became active.
    pub activated: Vec<String>,
    /// Retired keys deleted because nothing they signed can still be valid.
    pub deleted: Vec<String>,
}

/// The scheduled rotation (run by a job under a lease): every `LATCHKEY_KEY_ROTATION`, per algorithm,
/// a `next` key is published [`publish_lead`] ahead, then promoted while the old one retires; retired
/// keys are deleted once past `retire_after`.
pub async fn rotate_due(
    db: &Database,
    config: &Config,
    clock: &Clock,
    kek: &KeyEncryptionKey,
) -> Result<RotationReport> {
    let mut report = RotationReport::default();
    let period = clock::secs(config.key_rotation);
    let lead = publish_lead(config);
    for alg in algs_in_use(db, config).await? {
        ensure_active_key(db, clock, kek, alg).await?;
        let activated_at: Option<i64> = sqlx::query_scalar(
            "select activated_at from signing_keys where alg = $1 and state = 'active'",
        )
        .bind(alg.as_str())
        .fetch_optional(&db.pool)
        .await?
        .flatten();
        let Some(activated_at) = activated_at else {
            continue;
        };
        let now = clock.now();
        let due = activated_at + period;
        match next_key(&db.pool, alg).await? {
            None if now >= due - lead => {
                let key = generate_blocking(alg).await?;
                let sealed = seal_for_insert(db, kek, &key).await?;
                insert(&db.pool, &key, &sealed, "next", now).await?;
                tracing::info!(kid = %key.kid, alg = alg.as_str(), "published next signing key");
                report.published.push(key.kid);
            }
            Some((_, published_at)) if now >= due && now >= published_at + lead => {
                let key = rotate_now(db, config, clock, kek, alg, ROTATED_BY_SCHEDULE).await?;
                tracing::info!(kid = %key.kid, alg = alg.as_str(), "rotated signing key");
                report.activated.push(key.kid);
            }
            _ => {}
        }
    }
    let now = clock.now();
    let expired: Vec<String> = sqlx::query_scalar(
        "select kid from signing_keys where state = 'retired' and retire_after <= $1",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    for kid in expired {
        sqlx::query("delete from signing_keys where kid = $1 and state = 'retired'")
            .bind(&kid)
            .execute(&db.pool)
            .await?;
        tracing::info!(kid = %kid, "deleted retired signing key");
        report.deleted.push(kid);
    }
    Ok(report)
}
