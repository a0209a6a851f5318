//! The database: one sqlx code base for SQLite and PostgreSQL.
//!
//! Everything goes through sqlx's `Any` driver with portable SQL (`$1` placeholders, text ids, integer
//! unix-second times, 0/1 integer booleans), so a store function is written once and runs on both
//! backends. Only DDL differs, hence one migrations folder per backend with the same numbering.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor};

use crate::config::DatabaseUrl;
use crate::crypto::kek_file::{PRIVATE_FILE_MODE, tighten};

/// The connection pool every store function runs on.
pub type Pool = AnyPool;

/// A transaction: pass `&mut *tx` to store functions so multi-step writes are atomic.
///
/// On SQLite it also holds this process's write gate (see [`Database::begin`]).
pub struct Tx {
    tx: sqlx::Transaction<'static, Any>,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls back (dropping a `Tx` does too).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for Tx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Anything a store function can run a query on: the pool, a connection or a transaction.
pub trait Exec<'c>: Executor<'c, Database = Any> {}
impl<'c, T: Executor<'c, Database = Any>> Exec<'c> for T {}

/// Migrations for SQLite, embedded in the binary.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
/// Migrations for PostgreSQL, embedded in the binary.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a request waits for a pooled connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite waits this long on a locked database before reporting `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
/// Pool sizes: SQLite serialises writers anyway; PostgreSQL is shared by several processes.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// Which database engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server, possibly shared by several `latchkey serve` processes.
    Postgres,
}

/// The pool together with the backend it talks to.
#[derive(Debug, Clone)]
pub struct Database {
    /// The shared pool.
    pub pool: Pool,
    /// The engine behind the pool.
    pub backend: Backend,
    /// SQLite has one writer at a time and makes the others wait in a sleeping busy handler
    /// (milliseconds per retry); queueing this process's transactions here instead keeps the
    /// refresh grant from stalling under concurrency. `None` on PostgreSQL.
    write_gate: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

/// Opens a pool for `url` (a SQLite file is created when missing) without migrating.
///
/// SQLite connections run in WAL mode with foreign keys on and a busy timeout, so that readers never
/// block the writer and concurrent writers wait instead of failing.
pub async fn connect(url: &DatabaseUrl) -> Result<Database, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let backend = if url.is_sqlite() {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    let sqlite_file = url.sqlite_path();
    if let Some(path) = &sqlite_file {
        create_private(path).map_err(sqlx::Error::Io)?;
    }
    let raw = url.expose();
    let options = match backend {
        // `mode=rwc` creates the file on first use.
        Backend::Sqlite if !raw.contains('?') && !raw.contains(":memory:") => {
            AnyConnectOptions::from_str(&format!("{raw}?mode=rwc"))?
        }
        _ => AnyConnectOptions::from_str(raw)?,
    };
    let pool = match backend {
        Backend::Sqlite => {
            AnyPoolOptions::new()
                .max_connections(SQLITE_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(sqlite_pragmas().as_str()).await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await?
        }
        Backend::Postgres => {
            AnyPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?
        }
    };
    if let Some(path) = &sqlite_file {
        // The pool's first connection switched the file to WAL, creating the side files.
        for suffix in SQLITE_SIDE_FILES {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            tighten(std::path::Path::new(&side));
        }
    }
    let write_gate = (backend == Backend::Sqlite).then(Default::default);
    Ok(Database {
        pool,
        backend,
        write_gate,
    })
}

/// Files SQLite keeps beside the database in WAL mode; they hold recent pages, so the same secrets.
const SQLITE_SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// Creates the SQLite file with mode 0600 before sqlx opens it, whatever the umask (SQLite gives its
/// `-wal` and `-shm` files the mode of the database file), or narrows an existing file that others
/// can read: the database holds password hashes, sessions and audit data (OWASP ASVS V8.1 / V14).
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            tighten(path);
            Ok(())
        }
        // A missing directory and the like: let SQLite report it as it always did.
        Err(_) => Ok(()),
    }
}

/// Per-connection SQLite settings (WAL itself is persistent in the file, setting it again is a no-op).
/// `secure_delete = fast` zeroes deleted and shrunk row content in the pages SQLite writes anyway, so
/// an emptied mail body or a deleted token does not linger in the file's free space at no extra I/O
/// (sqlite.org/pragma.html#pragma_secure_delete).
fn sqlite_pragmas() -> String {
    format!(
        "pragma journal_mode = wal; pragma foreign_keys = on; \
         pragma busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; pragma synchronous = normal; \
         pragma secure_delete = fast;"
    )
}

impl Database {
    /// Opens the database and applies pending migrations (idempotent).
    pub async fn open(url: &DatabaseUrl) -> Result<Database, DbOpenError> {
        let db = connect(url).await.map_err(DbOpenError::Connect)?;
        db.migrate().await?;
        Ok(db)
    }

    /// Applies the migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> Result<(), DbOpenError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(DbOpenError::Migrate)
    }

    /// Starts a transaction (on SQLite after taking this process's write gate).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let gate = self.write_gate().await;
        // SQLite: BEGIN IMMEDIATE takes the write lock at once. A deferred transaction that reads and
        // then writes fails with SQLITE_BUSY_SNAPSHOT (517, no busy wait helps) when another
        // connection (an autocommit write: the mail loop, the session store) committed in between.
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { tx, _gate: gate })
    }

    /// Takes this process's SQLite write gate for a short run of autocommit writes that need no
    /// transaction (each statement is atomic on its own); `None` on PostgreSQL.
    pub async fn write_gate(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        }
    }

    /// Checks that the database answers (readiness probe).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbOpenError {
    /// The server or file could not be reached.
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    /// A migration failed.
    #[error("cannot apply database migrations: {0}")]
    Migrate(sqlx::migrate::MigrateError),
}

/// True when `err` is a unique-constraint violation (duplicate email, slug, membership, ...).
///
/// The one place that maps a constraint error to a user error, on both backends.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// True when PostgreSQL refused a text parameter as invalid in its encoding (SQLSTATE 22021). Rust
/// strings are valid UTF-8, so this is a NUL character (`%00` in a path or query), which PostgreSQL
/// text cannot hold: the request is malformed, not the server broken.
pub fn is_invalid_text(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "22021")
}

/// The outcome of an insert that a unique constraint may refuse: `Ok(false)` when it did (the slug,
/// membership or key exists already), the error otherwise.
pub fn inserted(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
) -> Result<bool, sqlx::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Stores a boolean in a portable 0/1 integer column.
pub fn flag(value: bool) -> i64 {
    i64::from(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn sqlite_files_are_private_whatever_the_umask_or_earlier_mode() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.db");
        let old = dir.path().join("old.db");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        for path in [&fresh, &old] {
            let url = crate::config::Config::from_lookup(|k| {
                (k == "LATCHKEY_DATABASE_URL").then(|| format!("sqlite://{}", path.display()))
            })
            .unwrap()
            .database_url;
            let db = Database::open(&url).await.unwrap();
            assert_eq!(mode(path), 0o600, "{}", path.display());
            for suffix in SQLITE_SIDE_FILES {
                let mut side = path.clone().into_os_string();
                side.push(suffix);
                assert_eq!(mode(std::path::Path::new(&side)), 0o600, "{suffix}");
            }
            db.pool.close().await;
        }
    }
}
