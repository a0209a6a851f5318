//! Where the key-encryption key comes from, decided once at start by [`resolve`]:
//!
//! 1. `LATCHKEY_KEY_ENCRYPTION_KEY` or `LATCHKEY_KEY_ENCRYPTION_KEY_FILE` (parsed by `config`);
//! 2. otherwise, on a SQLite file, `latchkey.kek` beside the database: created on first start (mode
//!    0600, base64 of 32 random bytes) with a warning, since it must be backed up *separately* from
//!    the database (a backup holding both protects nothing; OWASP Cryptographic Storage Cheat Sheet,
//!    "Key Storage": keys apart from the data they protect);
//! 3. an in-memory SQLite database lives as long as the process, so a per-process key does too;
//! 4. on PostgreSQL, several processes share the database and must share the key, which no process
//!    can invent for the others: the server refuses to start ([`KekError::Missing`]).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::kek::KeyEncryptionKey;
use crate::config::{Config, KEK_FILE_VAR, KEK_VAR};

/// Name of the key file created beside a SQLite database when no key is configured.
pub const KEY_FILE_NAME: &str = "latchkey.kek";
/// Mode of the key file (and of the SQLite files): owner read/write only.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Why there is no usable key-encryption key. Every message is one line, names what to set, and
/// never contains the key. The binary exits with status 2 on these, like a configuration error.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// PostgreSQL without a configured key.
    #[error(
        "{KEK_VAR} (or {KEK_FILE_VAR}) must be set on PostgreSQL: every process sharing the database \
         needs the same key-encryption key (generate one with `openssl rand -base64 32`)"
    )]
    Missing,
    /// The key file beside the SQLite database cannot be read, created or parsed.
    #[error("key-encryption key file {path}: {reason}; or set {KEK_VAR}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong (never the key).
        reason: String,
    },
    /// The key does not open the sealed signing keys in the database.
    #[error(
        "the key-encryption key does not decrypt the signing keys in the database; set {KEK_VAR} \
         to the key used before (or restore {KEY_FILE_NAME})"
    )]
    WrongKey,
}

/// Where the key in use came from (`keys rewrap` replaces a key file it created itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    /// `LATCHKEY_KEY_ENCRYPTION_KEY` or `LATCHKEY_KEY_ENCRYPTION_KEY_FILE`.
    Configured,
    /// The `latchkey.kek` file beside the SQLite database.
    DefaultFile(PathBuf),
    /// A per-process key (in-memory SQLite).
    Ephemeral,
}

/// The key for this process and where it came from.
#[derive(Debug, Clone)]
pub struct ResolvedKek {
    /// The key.
    pub key: KeyEncryptionKey,
    /// Its origin.
    pub source: KekSource,
}

/// Decides the key-encryption key of this process (see the module doc for the order).
pub fn resolve(config: &Config) -> Result<ResolvedKek, KekError> {
    if let Some(key) = &config.key_encryption_key {
        return Ok(ResolvedKek {
            key: key.clone(),
            source: KekSource::Configured,
        });
    }
    if !config.database_url.is_sqlite() {
        return Err(KekError::Missing);
    }
    let Some(db_path) = config.database_url.sqlite_path() else {
        return Ok(ResolvedKek {
            key: KeyEncryptionKey::ephemeral(),
            source: KekSource::Ephemeral,
        });
    };
    let path = key_file_beside(&db_path);
    let key = load_or_create(&path)?;
    Ok(ResolvedKek {
        key,
        source: KekSource::DefaultFile(path),
    })
}

/// `latchkey.kek` in the directory of the database file.
pub fn key_file_beside(db_path: &Path) -> PathBuf {
    match db_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(KEY_FILE_NAME),
        _ => PathBuf::from(KEY_FILE_NAME),
    }
}

fn file_error(path: &Path, reason: impl Into<String>) -> KekError {
    KekError::KeyFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Reads the key file, creating it first when missing. Two processes starting at once agree: the
/// file appears complete or not at all ([`write_new`]), and the loser of the race reads the winner's.
fn load_or_create(path: &Path) -> Result<KeyEncryptionKey, KekError> {
    if !path.exists() {
        let key = KeyEncryptionKey::ephemeral();
        match write_new(path, &key) {
            Ok(()) => {
                tracing::warn!(
                    path = %path.display(),
                    "created the key-encryption key file {KEY_FILE_NAME}: back it up separately from \
                     the database (without it the signing keys cannot be decrypted), or set {KEK_VAR}"
                );
                return Ok(key);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(file_error(path, format!("cannot create it: {e}"))),
        }
    }
    tighten(path);
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(path, format!("cannot read it: {e}")))?;
    KeyEncryptionKey::from_base64(&text).map_err(|reason| file_error(path, reason))
}

/// Creates `path` holding `key` with mode 0600 whatever the umask, atomically: the text goes to a
/// private temporary file in the same directory, which is then hard-linked to `path` (a link never
/// replaces an existing file, so a concurrent creator's key is never overwritten).
pub fn write_new(path: &Path, key: &KeyEncryptionKey) -> std::io::Result<()> {
    let tmp = write_temp(path, key)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// Replaces `path` with a file holding `key` (mode 0600), atomically by rename (`keys rewrap`).
pub fn replace(path: &Path, key: &KeyEncryptionKey) -> std::io::Result<()> {
    let tmp = write_temp(path, key)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Writes `key` to a fresh private file beside `path` and syncs it; returns the file.
fn write_temp(path: &Path, key: &KeyEncryptionKey) -> std::io::Result<PathBuf> {
    let mut suffix = [0u8; 8];
    rand::Rng::fill(&mut rand::thread_rng(), &mut suffix[..]);
    let name = format!(
        ".{KEY_FILE_NAME}.{}.tmp",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let tmp = path.with_file_name(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&tmp)?;
    let written = file
        .write_all(format!("{}\n", key.to_base64()).as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Narrows an existing file readable by others to mode 0600 (when we own it; otherwise warns).
pub fn tighten(path: &Path) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.permissions().mode() & 0o077 == 0 {
        return;
    }
    let narrowed = std::fs::Permissions::from_mode(PRIVATE_FILE_MODE);
    match std::fs::set_permissions(path, narrowed) {
        Ok(()) => tracing::info!(path = %path.display(), "file mode narrowed to 0600"),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "file is readable by others and its mode cannot be narrowed to 0600")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap()
    }

    #[test]
    fn sqlite_file_gets_a_private_key_file_that_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("l.db").display());
        let c = config(&[("LATCHKEY_DATABASE_URL", &url)]);
        let first = resolve(&c).unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        assert_eq!(first.source, KekSource::DefaultFile(path.clone()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = resolve(&c).unwrap();
        assert_eq!(first.key.bytes(), second.key.bytes());
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        resolve(&c).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an existing file is narrowed");

        std::fs::write(&path, "junk").unwrap();
        let e = resolve(&c).unwrap_err().to_string();
        assert!(e.contains(KEY_FILE_NAME) && !e.contains('\n'), "{e}");
    }

    #[test]
    fn postgres_needs_a_configured_key_and_memory_gets_its_own() {
        let e = resolve(&config(&[("LATCHKEY_DATABASE_URL", "postgres://u:p@h/db")])).unwrap_err();
        assert!(e.to_string().contains(KEK_VAR), "{e}");
        let memory = resolve(&config(&[("LATCHKEY_DATABASE_URL", "sqlite::memory:")])).unwrap();
        assert_eq!(memory.source, KekSource::Ephemeral);
        let key = KeyEncryptionKey::ephemeral().to_base64();
        let c = config(&[
            ("LATCHKEY_DATABASE_URL", "postgres://u:p@h/db"),
            (KEK_VAR, &key),
        ]);
        let configured = resolve(&c).unwrap();
        assert_eq!(configured.source, KekSource::Configured);
        assert_eq!(configured.key.to_base64(), key);
    }

    #[test]
    fn relative_database_puts_the_key_file_in_the_working_directory() {
        assert_eq!(
            key_file_beside(Path::new("l.db")),
            PathBuf::from(KEY_FILE_NAME)
        );
        assert_eq!(
            key_file_beside(Path::new("/var/lib/x/l.db")),
            PathBuf::from("/var/lib/x/latchkey.kek")
        );
    }
}
