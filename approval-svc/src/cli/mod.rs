//! The `airlock` command line: `serve`, reviewer commands against a running service,
//! audit tools, key helpers and policy authoring (`policy test|eval|check`,
//! `bundle build|sign|verify|inspect`). Every option can come from the environment.

mod approvals;
mod audit;
mod bundle;
mod keys;
mod policy;

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
    /// Run the approval service.
    Serve {
        /// Configuration file (docs/approval-service.md).
        #[arg(long, env = "AIRLOCK_CONFIG", default_value = "airlock.toml")]
        config: PathBuf,
    },
    /// Review approvals on a running service.
    Approvals(approvals::Args),
    /// Verify or export the audit trail.
    Audit(audit::Args),
    /// Generate keys, hash API keys.
    Keys(keys::Args),
    /// Test, check and explain Rego policies.
    #[command(after_help = "Formatting: use `opa fmt` (regorus, the engine Airlock runs, has no Rego formatter).")]
    Policy(policy::Args),
    /// Build, sign, verify and inspect signed policy bundles.
    Bundle(bundle::Args),
}

/// Entry point: parses arguments, runs, returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Approvals(args) => report(approvals::run(args)),
        Command::Audit(args) => audit::run(args),
        Command::Keys(args) => report(keys::run(args)),
        Command::Policy(args) => policy::run(args),
        Command::Bundle(args) => bundle::run(args),
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

fn serve(config: PathBuf) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
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
