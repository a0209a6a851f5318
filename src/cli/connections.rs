//! `latchkey connection …`: the instance-wide connections to upstream providers (enterprise SSO),
//! the same as the operator API `/api/v1/connections`.

use clap::Subcommand;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::kek::KeyEncryptionKey;
use crate::db::Database;
use crate::error::{AppError, Result};

/// `latchkey connection ...`
#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// List the instance-wide connections.
    List,
}

/// Runs a `connection` command.
pub async fn run(
    cmd: ConnectionCommand,
    _db: &Database,
    _clock: &Clock,
    _config: &Config,
    _kek: &KeyEncryptionKey,
) -> Result<()> {
    match cmd {
        ConnectionCommand::List => Err(AppError::invalid("not built yet")),
    }
}
