//! A short-lived in-memory cache of clients, so the token endpoint does not read the database on every
//! request. Entries live [`CACHE_TTL`]: a change made with the CLI is seen within that time
//! (docs/cli.md promises 2 seconds).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Client, store};
use crate::db::Database;

/// How long a cached client may be served without re-reading the database.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// Bound on cached entries; the cache is cleared when it is reached (clients are few).
const MAX_ENTRIES: usize = 10_000;

/// Cached clients by id, with the time each was read.
type Cache = HashMap<String, (Instant, Arc<Client>)>;

/// Finds clients, through the cache.
#[derive(Clone, Debug)]
pub struct ClientRegistry {
    db: Database,
    cache: Arc<Mutex<Cache>>,
}

impl ClientRegistry {
    /// A registry over `db`.
    pub fn new(db: Database) -> ClientRegistry {
        ClientRegistry {
            db,
            cache: Arc::default(),
        }
    }

    /// The client with `id`, if registered.
    pub async fn find(&self, id: &str) -> Result<Option<Arc<Client>>, sqlx::Error> {
        if let Some(client) = self.cached(id) {
            return Ok(Some(client));
        }
        let Some(client) = store::find(&self.db.pool, id).await? else {
            return Ok(None);
        };
        let client = Arc::new(client);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(id.to_owned(), (Instant::now(), client.clone()));
        Ok(Some(client))
    }

    /// True while a client `id` is registered (through the cache): a deleted client's access
    /// tokens are refused from then on, within [`CACHE_TTL`] in every process.
    pub async fn exists(&self, id: &str) -> Result<bool, sqlx::Error> {
        Ok(self.find(id).await?.is_some())
    }

    /// Drops `id` from this process's cache after a change made here (update, rotation,
    /// deletion), so this process sees it at once; other processes see it within [`CACHE_TTL`].
    pub fn forget(&self, id: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.remove(id);
    }

    fn cached(&self, id: &str) -> Option<Arc<Client>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(id)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, client)| client.clone())
    }
}
