//! Logging: `tracing` to stderr, as text or JSON (`LATCHKEY_LOG_FORMAT`), filtered by `RUST_LOG`.
//!
//! Stdout stays free for the JSON that CLI commands print.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Log filter when `RUST_LOG` is unset: our events at info, per-request traces off, sqlx quiet.
const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global subscriber (once; later calls are ignored, which suits tests).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A closed log pipe must not take the server down: tracing's own report of a failed write would
        // go to the same closed stderr and panic.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
