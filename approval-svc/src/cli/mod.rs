//! The `airlock` command line: `serve`, reviewer commands against a running service,
//! audit tools, key helpers and policy authoring (`policy test|eval|check`,
//! `bundle build|sign|verify|inspect`). Every option can come from the environment.

mod approvals;
mod audit;
mod bundle;
mod init;
mod keys;
pub mod output;
mod policy;
mod teams;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Airlock approval service and operator CLI.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a runnable first setup: airlock.toml, keys, a starter policy, the filter's
    /// configuration and envoy.yaml (docs/first-hour.md).
    Init(init::Args),
    /// Run the approval service.
    Serve {
        /// Configuration file (docs/approval-service.md).
        #[arg(long, env = "AIRLOCK_CONFIG", default_value = "airlock.toml")]
        config: PathBuf,
        /// Log format on stderr: `json` (one object a line, for collectors) or `text`
        /// (for people at a terminal).
        #[arg(long, env = "AIRLOCK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
        log_format: LogFormat,
    },
    /// Review approvals on a running service.
    Approvals(approvals::Args),
    /// Verify or export the audit trail.
    Audit(audit::Args),
    /// Generate keys, hash API keys.
    Keys(keys::Args),
    /// Test, check and explain Rego policies.
    #[command(
        after_help = "Formatting: use `opa fmt` (regorus, the engine Airlock runs, has no Rego formatter): https://www.openpolicyagent.org/docs/cli/#opa-fmt"
    )]
    Policy(policy::Args),
    /// Build, sign, verify and inspect signed policy bundles.
    Bundle(bundle::Args),
    /// Microsoft Teams: write the app package a tenant admin uploads.
    Teams(teams::Args),
}

/// Entry point: parses arguments, runs, returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Init(args) => report(init::run(args)),
        Command::Serve { config, log_format } => serve(config, log_format),
        Command::Approvals(args) => report(approvals::run(args)),
        Command::Audit(args) => audit::run(args),
        Command::Keys(args) => report(keys::run(args)),
        Command::Policy(args) => policy::run(args),
        Command::Bundle(args) => bundle::run(args),
        Command::Teams(args) => report(teams::run(args)),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `airlock serve --log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

fn serve(config: PathBuf, log_format: LogFormat) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match log_format {
        LogFormat::Json => logs.json().init(),
        // Colours only for a terminal: escape codes in a log file are noise.
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    let result = crate::config::Config::load(&config).and_then(|config| {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(crate::serve::run(config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "airlock serve failed");
            eprintln!("airlock: {e:#}");
            ExitCode::from(2)
        }
    }
}
