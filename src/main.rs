//! The `latchkey` binary: logging, configuration, then the command. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use latchkey::cli::{self, Cli};
use latchkey::config::Config;
use latchkey::crypto::kek_file::KekError;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            // docs/cli.md: bad input gets one line on stderr, not clap's usage block.
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            eprintln!("latchkey: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("latchkey: {err}");
            return ExitCode::from(2);
        }
    };
    latchkey::telemetry::init(config.log_format);
    match cli::run(cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<KekError>().is_some() => {
            // A missing or wrong key-encryption key is a configuration error: same exit status.
            eprintln!("latchkey: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            // One line for the operator; internal details only as far as the error chain goes.
            eprintln!("latchkey: {err}");
            ExitCode::FAILURE
        }
    }
}
