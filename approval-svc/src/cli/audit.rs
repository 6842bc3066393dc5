//! `airlock audit verify | export`: offline tools over the SQLite file (verify also over PostgreSQL).
//! Exit codes: 0 intact, 1 tampering found, 2 could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::audit::{export, verify};
use crate::secrets::{decode_key, read_key};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The service's SQLite file.
    #[arg(long, env = "AIRLOCK_DATABASE", default_value = "airlock.db")]
    database: PathBuf,
    /// The service's PostgreSQL (`[store] url`): read the trail there instead of the
    /// SQLite file (verify only).
    #[arg(long = "store-url", env = "AIRLOCK_STORE_URL", hide_env_values = true)]
    store_url: Option<String>,
    /// Audit key (base64) to check checkpoint seals; prefer --key-file or the environment.
    #[arg(long = "audit-key", env = "AIRLOCK_AUDIT_KEY", hide_env_values = true)]
    audit_key: Option<String>,
    /// File holding the audit key (base64), as the service reads it from
    /// `audit.checkpoint_key_file`.
    #[arg(long = "key-file", env = "AIRLOCK_AUDIT_KEY_FILE", conflicts_with = "audit_key")]
    key_file: Option<PathBuf>,
    /// The service's `audit.checkpoint_every`: with the audit key, a sealed checkpoint
    /// must exist at every multiple of it (0: do not require; use it if the cadence
    /// changed over the file's life or the service once ran without a key).
    #[arg(long = "checkpoint-every", env = "AIRLOCK_AUDIT_CHECKPOINT_EVERY", default_value_t = 100)]
    checkpoint_every: u32,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Recompute every hash and seal; exit 1 on any tampering.
    Verify {
        #[command(flatten)]
        common: Common,
    },
    /// Write an evidence bundle (records.jsonl, checkpoints.jsonl, summary.json).
    Export {
        #[command(flatten)]
        common: Common,
        /// Output directory.
        #[arg(long, env = "AIRLOCK_EXPORT_DIR")]
        out: PathBuf,
    },
}

pub fn run(args: Args) -> ExitCode {
    let result = match args.command {
        Command::Verify { common } => key(&common).and_then(|k| {
            let every = i64::from(common.checkpoint_every);
            match &common.store_url {
                Some(url) => crate::store::postgres::verify_audit(url, k.as_deref(), every).map_err(Into::into),
                None => verify::verify_database_expecting(&common.database, k.as_deref(), every),
            }
        }),
        Command::Export { common, out } => key(&common).and_then(|k| {
            let every = i64::from(common.checkpoint_every);
            match &common.store_url {
                Some(url) => crate::store::postgres::export_audit(url, &out, k.as_deref(), every),
                None => export::export(&common.database, &out, k.as_deref(), every),
            }
        }),
    };
    match result {
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::from(2)
        }
        Ok(report) => {
            crate::outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            if report.ok() {
                if !report.seals_checked {
                    eprintln!(
                        "airlock: warning: no audit key given (--key-file or AIRLOCK_AUDIT_KEY); checkpoint seals were not checked"
                    );
                } else if report.unsealed_records > 0 {
                    eprintln!(
                        "airlock: note: the last {} record(s) are after the last sealed checkpoint: their hash chain is intact, but anyone who can write the file could have appended or rewritten them",
                        report.unsealed_records
                    );
                }
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "airlock: audit trail tampered: first bad record {}: {}",
                    report.first_bad_seq.map_or("?".to_string(), |s| s.to_string()),
                    report.problems.first().cloned().unwrap_or_default()
                );
                ExitCode::from(1)
            }
        }
    }
}

fn key(common: &Common) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(file) = &common.key_file {
        return read_key("--key-file", None, Some(file)).map(Some);
    }
    common.audit_key.as_deref().map(|k| decode_key("AIRLOCK_AUDIT_KEY", k.trim())).transpose()
}
