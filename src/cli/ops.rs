//! Operations commands: `healthcheck`, `backup PATH`, `config check`.

use std::path::Path;

use clap::Subcommand;

use crate::config::Config;
use crate::db::Database;
use crate::error::{AppError, Result};

/// `latchkey config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as JSON (secrets redacted); a bad value exits 2 with one
    /// line naming the variable.
    Check,
}

/// `latchkey healthcheck [--ready]`.
pub async fn healthcheck(_config: &Config, _ready: bool) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}

/// `latchkey config check`.
pub fn config(_cmd: &ConfigCommand, _config: &Config) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}

/// `latchkey backup PATH`.
pub async fn backup(_db: &Database, _config: &Config, _path: &Path) -> Result<()> {
    Err(AppError::invalid("not built yet"))
}
