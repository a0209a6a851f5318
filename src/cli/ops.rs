//! Operations commands: `healthcheck` (the container image's HEALTHCHECK, which has no curl),
//! `backup PATH` (a consistent online copy of a SQLite database) and `config check` (the effective
//! configuration, secrets redacted).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::print;
use crate::config::{Config, KEK_FILE_VAR, KEK_VAR};
use crate::crypto::kek_file::{self, KekError};
use crate::db::{Backend, Database};
use crate::error::{AppError, Result};
use crate::routes;

/// How long `healthcheck` waits for the whole answer (Docker's default HEALTHCHECK timeout is 30 s;
/// a server that needs more than this to answer a constant is not healthy).
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of the answer `healthcheck` reads: the status line is all it needs.
const HEALTHCHECK_MAX_READ: usize = 4096;

/// `latchkey config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as JSON (secrets redacted); a bad value exits 2 with one
    /// line naming the variable.
    Check,
}

/// `latchkey healthcheck [--ready]`: `GET /healthz` (or `/readyz`) from the server on
/// `LATCHKEY_BIND`; an error (exit 1) unless it answers 200 within [`HEALTHCHECK_TIMEOUT`]. Plain
/// HTTP/1.1 on a TCP socket: no proxy settings, no TLS, nothing to install in the image.
pub async fn healthcheck(config: &Config, ready: bool) -> anyhow::Result<()> {
    let path = if ready {
        routes::READYZ
    } else {
        routes::HEALTHZ
    };
    let addr = reachable(config.bind);
    let status = tokio::time::timeout(HEALTHCHECK_TIMEOUT, get_status(addr, path))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "healthcheck: no answer from http://{addr}{path} within {}s",
                HEALTHCHECK_TIMEOUT.as_secs()
            )
        })??;
    if status != 200 {
        anyhow::bail!("healthcheck: http://{addr}{path} answered {status}");
    }
    Ok(())
}

/// The address to reach a server listening on `bind`: an unspecified address (`0.0.0.0`, `[::]`)
/// listens on loopback too.
fn reachable(bind: SocketAddr) -> SocketAddr {
    match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bind.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), bind.port())
        }
        _ => bind,
    }
}

/// Sends `GET path` to `addr` and returns the status code of the answer.
async fn get_status(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("healthcheck: cannot connect to {addr}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: latchkey-healthcheck\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .with_context(|| format!("healthcheck: cannot send to {addr}"))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    while !answer.windows(2).any(|w| w == b"\r\n") && answer.len() < HEALTHCHECK_MAX_READ {
        let read = stream
            .read(&mut chunk)
            .await
            .with_context(|| format!("healthcheck: cannot read from {addr}"))?;
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..read]);
    }
    status_code(&answer)
        .ok_or_else(|| anyhow::anyhow!("healthcheck: {addr} did not answer with HTTP"))
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn status_code(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// `latchkey config check`: the configuration was read and validated before any command runs (a bad
/// value already exited 2); this prints it, and refuses what only the key-encryption key's
/// resolution would refuse at start (PostgreSQL without a key).
pub fn config(cmd: &ConfigCommand, config: &Config) -> anyhow::Result<()> {
    let ConfigCommand::Check = cmd;
    let mut effective = config.effective();
    if config.key_encryption_key.is_none() {
        let fallback = if !config.database_url.is_sqlite() {
            return Err(KekError::Missing.into());
        } else {
            match config.database_url.sqlite_path() {
                Some(db) => format!(
                    "(unset: {} beside the database)",
                    kek_file::key_file_beside(&db).display()
                ),
                None => "(unset: a key for this process only, the database is in memory)".into(),
            }
        };
        effective.insert(KEK_VAR.to_owned(), Value::String(fallback));
    }
    // The file's path is no secret, and says where the key comes from.
    if let Some(path) = std::env::var_os(KEK_FILE_VAR).filter(|v| !v.is_empty()) {
        effective.insert(
            KEK_FILE_VAR.to_owned(),
            Value::String(path.to_string_lossy().into_owned()),
        );
    }
    print(Value::Object(effective));
    Ok(())
}

/// `latchkey backup PATH`: a consistent copy of the SQLite database while servers keep running.
/// `VACUUM INTO` reads one snapshot in a read transaction, so writers go on (WAL) and the copy is
/// a complete database, compacted (SQLite documentation, "VACUUM INTO"). The copy holds sealed
/// secrets only; the key-encryption key is not in it and must be kept apart.
pub async fn backup(db: &Database, config: &Config, path: &Path) -> Result<()> {
    if db.backend != Backend::Sqlite || config.database_url.sqlite_path().is_none() {
        return Err(AppError::invalid(
            "latchkey backup copies a SQLite database file; back up PostgreSQL with pg_dump \
             (docs/operations.md, \"Backups and restore\")",
        ));
    }
    let target = path
        .to_str()
        .ok_or_else(|| AppError::invalid("the backup path must be valid UTF-8"))?;
    // Created empty and private first (VACUUM INTO accepts an empty file): the copy holds password
    // hashes and sealed keys, so it is never readable by others, not even while it is written.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AppError::invalid(format!("cannot create {}: {e}", path.display())))?;
    drop(file);
    let copied = sqlx::query("vacuum into $1")
        .bind(target)
        .execute(&db.pool)
        .await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(path);
        return Err(AppError::Internal(anyhow::anyhow!(
            "the backup to {} failed: {e}",
            path.display()
        )));
    }
    // VACUUM INTO does not sync the new file; a backup that a crash can tear is no backup.
    let written = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| {
            f.flush()?;
            f.sync_all()?;
            f.metadata()
        })
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{}: {e}", path.display())))?;
    tracing::info!(
        "backup written; the key-encryption key is not in it: keep a copy of the key apart"
    );
    print(json!({"backup": target, "bytes": written.len()}));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line() {
        assert_eq!(
            status_code(b"HTTP/1.1 200 OK\r\ncontent-length: 2"),
            Some(200)
        );
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn unspecified_bind_is_reached_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(reachable(v4).to_string(), "127.0.0.1:8080");
        let v6: SocketAddr = "[::]:9000".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(reachable(v6).to_string(), "[::1]:9000");
        let fixed: SocketAddr = "10.1.2.3:80".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(reachable(fixed), fixed);
    }
}
