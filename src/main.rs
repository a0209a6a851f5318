//! The `latchkey` binary: logging, configuration, then the command. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use latchkey::cli::{self, Cli};
use latchkey::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
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
        Err(err) => {
            // One line for the operator; internal details only as far as the error chain goes.
            eprintln!("latchkey: {err}");
            ExitCode::FAILURE
        }
    }
}
