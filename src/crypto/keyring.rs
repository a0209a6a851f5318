//! The process's in-memory view of the signing keys.
//!
//! The database (`signing_keys`, see [`key_store`]) decides which key is active; every process keeps an
//! immutable [`Snapshot`] of it so the hot paths never touch the database: signing tokens looks up
//! the active key per algorithm, verifying looks a key up by the `kid` of the JWS header
//! ([RFC 7515 §4.1.4]), and the JWK Set ([RFC 7517 §5]) is serialized once per change, with its
//! `ETag` ([RFC 9110 §8.8.3]).
//!
//! * Every key in the table verifies and is published, whatever its state: `next` keys so relying
//!   parties have cached them before they sign ([OIDC Core §10.1.1]), `active` ones, and `retired` ones
//!   until every token they signed has expired. The JWKS lists active keys first, then next, then
//!   retired; within a state RS256 before ES256 before EdDSA, then newest first.
//! * Only the public members of a key are published ([RFC 7517 §4–6]): an allowlist, never the PEM.
//! * [`Keyring::refresh`] costs one small query when nothing changed (a `(kid, state)` fingerprint);
//!   [`Keyring::spawn_refresher`] runs it periodically so a `latchkey keys rotate` from the CLI, or
//!   another process sharing the database, is seen within two seconds.
//! * A snapshot swap holds a `std::sync::RwLock` only long enough to clone or replace an `Arc`, never
//!   across an `.await`; a poisoned lock is recovered, since the `Arc` inside is always consistent.
//!
//! [RFC 7515 §4.1.4]: https://www.rfc-editor.org/rfc/rfc7515#section-4.1.4
//! [RFC 7517 §5]: https://www.rfc-editor.org/rfc/rfc7517#section-5
//! [RFC 7517 §4–6]: https://www.rfc-editor.org/rfc/rfc7517#section-4
//! [RFC 9110 §8.8.3]: https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3
//! [OIDC Core §10.1.1]: https://openid.net/specs/openid-connect-core-1_0.html#RotateSigKeys
//! [`key_store`]: super::key_store

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderValue;
use serde_json::{Map, Value, json};
use sqlx::Row;

use super::CryptoError;
use super::kek::KeyEncryptionKey;
use super::key_store::{self, StoredKey};
use super::keys::{self, LoadedKey};
use super::tokens::sha256_b64url;
use crate::config::SigningAlg;
use crate::db::{Database, Exec};
use crate::error::AppError;

/// Members a published JWK may carry: the public key members of `RSA`, `EC` and `OKP` keys
/// (RFC 7518 §6.2.1, §6.3.1, RFC 8037 §2) and `kid`, `alg`, `use` (RFC 7517 §4).
const PUBLIC_JWK_MEMBERS: [&str; 9] = ["kty", "n", "e", "crv", "x", "y", "kid", "alg", "use"];

/// Refresher periods below this are raised to it (and `tokio::time::interval` rejects zero).
const MIN_REFRESH_PERIOD: Duration = Duration::from_millis(10);

/// Where a key is in its life (`signing_keys.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Next,
    /// Signs new tokens; at most one per algorithm.
    Active,
    /// No longer signs; verifies until what it signed has expired.
    Retired,
}

impl KeyState {
    /// Parses the database value (`next`, `active`, `retired`).
    pub fn parse(s: &str) -> Option<KeyState> {
        match s {
            "next" => Some(KeyState::Next),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }

    /// The database value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    /// Position in the JWKS: active, then next, then retired.
    fn rank(self) -> u8 {
        match self {
            KeyState::Active => 0,
            KeyState::Next => 1,
            KeyState::Retired => 2,
        }
    }
}

/// Position of an algorithm: RS256 (the OIDC default) first, then ES256, then EdDSA.
fn alg_rank(alg: SigningAlg) -> usize {
    match alg {
        SigningAlg::RS256 => 0,
        SigningAlg::ES256 => 1,
        SigningAlg::EdDSA => 2,
    }
}

/// The JWK Set as served: body and entity tag, from the same snapshot.
#[derive(Debug, Clone)]
pub struct JwksDocument {
    /// `{"keys":[…]}`, public members only.
    pub json: Bytes,
    /// Strong entity tag of `json`, quoted (RFC 9110 §8.8.3).
    pub etag: HeaderValue,
}

/// `(kid, state)` of every row, sorted: equal fingerprints mean nothing to reload.
type Fingerprint = Vec<(String, String)>;

/// One immutable view of the keys.
struct Snapshot {
    version: u64,
    active: [Option<Arc<LoadedKey>>; 3],
    by_kid: HashMap<String, Arc<LoadedKey>>,
    jwks: JwksDocument,
    fingerprint: Fingerprint,
}

struct Inner {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Opens the sealed private keys on every (re)load.
    kek: Arc<KeyEncryptionKey>,
    /// Serializes refreshes so an older read never replaces a newer one.
    refresh: tokio::sync::Mutex<()>,
}

/// The signing keys of this process: cheap to clone, shared by every handler.
#[derive(Clone)]
pub struct Keyring(Arc<Inner>);

impl Keyring {
    /// Reads every key from the database, opening the private halves with `kek`. A key that cannot
    /// be loaded (not sealed, sealed under another KEK, damaged) is logged and skipped; it is an error
    /// only when no key at all can be used.
    pub async fn load(db: &Database, kek: Arc<KeyEncryptionKey>) -> Result<Keyring, AppError> {
        let snapshot = snapshot_from_db(db, &kek).await?;
        Ok(Keyring::with_snapshot(snapshot, 1, kek))
    }

    /// A keyring over in-memory keys, built like [`Keyring::load`] builds one (for tests).
    pub fn from_keys(keys: Vec<(KeyState, LoadedKey)>) -> Keyring {
        let mut fingerprint: Fingerprint = keys
            .iter()
            .map(|(state, key)| (key.kid.clone(), state.as_str().to_owned()))
            .collect();
        fingerprint.sort();
        let kek = Arc::new(KeyEncryptionKey::ephemeral());
        Keyring::with_snapshot(build(keys, fingerprint), 1, kek)
    }

    fn with_snapshot(snapshot: Snapshot, version: u64, kek: Arc<KeyEncryptionKey>) -> Keyring {
        Keyring(Arc::new(Inner {
            snapshot: RwLock::new(Arc::new(Snapshot {
                version,
                ..snapshot
            })),
            kek,
            refresh: tokio::sync::Mutex::new(()),
        }))
    }

    /// The current snapshot; the read lock is held only to clone the `Arc`.
    fn current(&self) -> Arc<Snapshot> {
        let guard = self
            .0
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&guard)
    }

    /// The key that signs new tokens with `alg`, if there is one.
    pub fn active(&self, alg: SigningAlg) -> Option<Arc<LoadedKey>> {
        self.current().active[alg_rank(alg)].clone()
    }

    /// The key with this `kid` (any state: next, active or retired), for verifying.
    pub fn by_kid(&self, kid: &str) -> Option<Arc<LoadedKey>> {
        self.current().by_kid.get(kid).cloned()
    }

    /// Verifies a compact JWS with the key named by its `kid` header and returns its claims. Only
    /// the header and signature are checked; `iss`, `aud`, `exp`, … are the caller's job.
    pub fn verify(&self, jwt: &str) -> Result<Map<String, Value>, CryptoError> {
        self.verify_typed(jwt).map(|(claims, _)| claims)
    }

    /// [`Keyring::verify`], also returning the protected header's `typ` (RFC 7515 §4.1.9), so
    /// callers can refuse one kind of token presented as another (RFC 9068 §4, RFC 8725 §3.11).
    pub fn verify_typed(
        &self,
        jwt: &str,
    ) -> Result<(Map<String, Value>, Option<String>), CryptoError> {
        let kid = keys::peek_kid(jwt)
            .ok_or_else(|| CryptoError::InvalidJwt("no \"kid\" in the JWS header".to_owned()))?;
        let key = self
            .by_kid(&kid)
            .ok_or_else(|| CryptoError::InvalidJwt("unknown \"kid\"".to_owned()))?;
        key.verify_jwt_typed(jwt)
    }

    /// The JWK Set and its entity tag, consistent with each other.
    pub fn jwks_document(&self) -> JwksDocument {
        self.current().jwks.clone()
    }

    /// The serialized JWK Set `{"keys":[…]}`.
    pub fn jwks_json(&self) -> Bytes {
        self.current().jwks.json.clone()
    }

    /// The quoted entity tag of [`Keyring::jwks_json`], for `ETag` / `If-None-Match`.
    pub fn jwks_etag(&self) -> String {
        String::from_utf8_lossy(self.current().jwks.etag.as_bytes()).into_owned()
    }

    /// Increases by one on every change of the keys (1 after loading; 0 for an empty keyring).
    pub fn version(&self) -> u64 {
        self.current().version
    }

    /// Re-reads the keys if the database changed: one small fingerprint query, and a full reload
    /// only when it differs. Returns whether the keys changed. On error the old keys stay in use.
    pub async fn refresh(&self, db: &Database) -> Result<bool, AppError> {
        let _serial = self.0.refresh.lock().await;
        let fingerprint = read_fingerprint(&db.pool).await?;
        if fingerprint == self.current().fingerprint {
            return Ok(false);
        }
        let snapshot = snapshot_from_db(db, &self.0.kek).await?;
        let mut guard = self
            .0
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let version = guard.version + 1;
        *guard = Arc::new(Snapshot {
            version,
            ..snapshot
        });
        drop(guard);
        tracing::info!(version, "signing keys reloaded");
        Ok(true)
    }

    /// Calls [`Keyring::refresh`] every `every` until the handle is aborted. Failures are logged (at
    /// warn when they start, at debug while they last) and the current keys stay in use.
    pub fn spawn_refresher(&self, db: Database, every: Duration) -> tokio::task::JoinHandle<()> {
        let keyring = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(MIN_REFRESH_PERIOD));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick completes at once; we are fresh
            let mut failing = false;
            loop {
                tick.tick().await;
                match keyring.refresh(&db).await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("signing keys refresh recovered");
                    }
                    Ok(_) => {}
                    Err(err) if failing => {
                        tracing::debug!(error = %err, "signing keys refresh still failing");
                    }
                    Err(err) => {
                        failing = true;
                        tracing::warn!(error = %err, "signing keys refresh failed; keeping current keys");
                    }
                }
            }
        })
    }
}

impl Default for Keyring {
    /// An empty keyring (version 0, `{"keys":[]}`): signs and verifies nothing until replaced.
    fn default() -> Keyring {
        let kek = Arc::new(KeyEncryptionKey::ephemeral());
        Keyring::with_snapshot(build(Vec::new(), Vec::new()), 0, kek)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.current();
        let mut kids: Vec<&String> = snapshot.by_kid.keys().collect();
        kids.sort();
        f.debug_struct("Keyring")
            .field("version", &snapshot.version)
            .field("kids", &kids)
            .finish()
    }
}

/// `(kid, state)` of every row, sorted in Rust so both backends agree whatever their collation.
async fn read_fingerprint<'c>(ex: impl Exec<'c>) -> Result<Fingerprint, sqlx::Error> {
    let rows = sqlx::query("select kid, state from signing_keys")
        .fetch_all(ex)
        .await?;
    let mut fingerprint = rows
        .iter()
        .map(|row| Ok((row.try_get("kid")?, row.try_get("state")?)))
        .collect::<Result<Fingerprint, sqlx::Error>>()?;
    fingerprint.sort();
    Ok(fingerprint)
}

/// Loads every stored key, skipping (and logging) those that cannot be used.
async fn snapshot_from_db(db: &Database, kek: &KeyEncryptionKey) -> Result<Snapshot, AppError> {
    let stored = key_store::load_all(&db.pool).await?;
    let mut fingerprint: Fingerprint = stored
        .iter()
        .map(|k| (k.info.kid.clone(), k.info.state.clone()))
        .collect();
    fingerprint.sort();
    let total = stored.len();
    let loaded: Vec<(KeyState, LoadedKey)> = stored
        .into_iter()
        .filter_map(|key| load_one(key, kek))
        .collect();
    if loaded.is_empty() {
        return Err(AppError::Internal(anyhow::anyhow!(
            "no usable signing key ({total} stored)"
        )));
    }
    Ok(build(loaded, fingerprint))
}

fn load_one(stored: StoredKey, kek: &KeyEncryptionKey) -> Option<(KeyState, LoadedKey)> {
    let info = &stored.info;
    let Some(state) = KeyState::parse(&info.state) else {
        tracing::error!(kid = %info.kid, state = %info.state, "signing key has an unknown state; skipped");
        return None;
    };
    let loaded = serde_json::from_str(&info.public_jwk)
        .map_err(|e| CryptoError::InvalidKey(format!("public JWK is not JSON: {e}")))
        .and_then(|jwk| {
            let pem = stored.private_pem(kek)?;
            keys::load(&info.kid, info.alg, &pem, jwk)
        });
    match loaded {
        Ok(key) => Some((state, key)),
        Err(err) => {
            tracing::error!(kid = %info.kid, alg = info.alg.as_str(), error = %err, "signing key cannot be loaded; skipped");
            None
        }
    }
}

/// Builds a snapshot (version 0; the caller numbers it). Within a state, keys keep their given order
/// (the store lists newest first) after sorting by algorithm.
fn build(mut keys: Vec<(KeyState, LoadedKey)>, fingerprint: Fingerprint) -> Snapshot {
    keys.sort_by_key(|(state, key)| (state.rank(), alg_rank(key.alg)));
    let mut active: [Option<Arc<LoadedKey>>; 3] = [None, None, None];
    let mut by_kid = HashMap::with_capacity(keys.len());
    let mut published = Vec::with_capacity(keys.len());
    for (state, key) in keys {
        if by_kid.contains_key(&key.kid) {
            continue;
        }
        let key = Arc::new(key);
        published.push(public_jwk(&key));
        let slot = &mut active[alg_rank(key.alg)];
        if state == KeyState::Active && slot.is_none() {
            *slot = Some(Arc::clone(&key));
        }
        by_kid.insert(key.kid.clone(), key);
    }
    let json = json!({ "keys": published }).to_string();
    // base64url characters are always valid in a header value; the fallback is unreachable.
    let etag = HeaderValue::try_from(format!("\"{}\"", sha256_b64url(json.as_bytes())))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    Snapshot {
        version: 0,
        active,
        by_kid,
        jwks: JwksDocument {
            json: Bytes::from(json),
            etag,
        },
        fingerprint,
    }
}

/// The published form of a key: allowlisted public members, with `kid`, `alg` and `use: "sig"`.
fn public_jwk(key: &LoadedKey) -> Value {
    let mut jwk: Map<String, Value> = key
        .public_jwk
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| PUBLIC_JWK_MEMBERS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    jwk.insert("kid".to_owned(), Value::String(key.kid.clone()));
    jwk.insert("alg".to_owned(), Value::String(key.alg.as_str().to_owned()));
    jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
    Value::Object(jwk)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn key(alg: SigningAlg) -> LoadedKey {
        let g = keys::generate(alg).unwrap();
        keys::load(&g.kid, g.alg, &g.private_pem, g.public_jwk).unwrap()
    }

    #[test]
    fn jwks_lists_active_then_next_then_retired_with_public_members_only() {
        let (es_old, es, rs, rs_next) = (
            key(SigningAlg::ES256),
            key(SigningAlg::ES256),
            key(SigningAlg::RS256),
            key(SigningAlg::RS256),
        );
        let kids = [&rs.kid, &es.kid, &rs_next.kid, &es_old.kid].map(|k| k.clone());
        let ring = Keyring::from_keys(vec![
            (KeyState::Retired, es_old),
            (KeyState::Active, es),
            (KeyState::Next, rs_next),
            (KeyState::Active, rs),
        ]);

        let jwks: Value = serde_json::from_slice(&ring.jwks_json()).unwrap();
        let listed: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(listed, kids.iter().map(String::as_str).collect::<Vec<_>>());
        for jwk in jwks["keys"].as_array().unwrap() {
            assert_eq!(jwk["use"], "sig");
            assert!(jwk["alg"].is_string());
            for private in keys::PRIVATE_JWK_MEMBERS {
                assert!(jwk.get(private).is_none(), "{private} published");
            }
        }
        assert_eq!(ring.active(SigningAlg::RS256).unwrap().kid, kids[0]);
        assert_eq!(ring.active(SigningAlg::ES256).unwrap().kid, kids[1]);
        assert!(ring.active(SigningAlg::EdDSA).is_none());
        assert!(ring.by_kid(&kids[3]).is_some(), "retired keys still verify");
        assert_eq!(ring.version(), 1);

        let etag = ring.jwks_etag();
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 20);
        assert_eq!(ring.jwks_document().etag, etag.as_str());
    }

    #[test]
    fn serialization_is_deterministic_and_verify_finds_the_key() {
        let g = keys::generate(SigningAlg::ES256).unwrap();
        let load = || keys::load(&g.kid, g.alg, &g.private_pem, g.public_jwk.clone()).unwrap();
        let a = Keyring::from_keys(vec![(KeyState::Active, load())]);
        let b = Keyring::from_keys(vec![(KeyState::Active, load())]);
        assert_eq!(a.jwks_json(), b.jwks_json());
        assert_eq!(a.jwks_etag(), b.jwks_etag());

        let claims = json!({"sub": "u1"}).as_object().unwrap().clone();
        let jwt = a
            .active(SigningAlg::ES256)
            .unwrap()
            .sign_jwt(None, &claims)
            .unwrap();
        assert_eq!(a.verify(&jwt).unwrap()["sub"], "u1");
        assert!(Keyring::default().verify(&jwt).is_err());
        assert_eq!(&Keyring::default().jwks_json()[..], br#"{"keys":[]}"#);
        assert_eq!(Keyring::default().version(), 0);
    }
}
