//! `airlock keys generate | hash-api-key`.

use std::io::Read;

use base64::Engine as _;
use clap::Subcommand;

use crate::auth::reviewer::hash_api_key;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print 32 random bytes, base64 (gateway, audit, credential keys; API keys).
    Generate,
    /// Read an API key on stdin, print its SHA-256 hex (for `api_key_sha256`).
    HashApiKey,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Generate => {
            let mut key = [0u8; 32];
            getrandom::getrandom(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            crate::outln!("{}", base64::engine::general_purpose::STANDARD.encode(key));
        }
        Command::HashApiKey => {
            let mut key = String::new();
            std::io::stdin().read_to_string(&mut key)?;
            if key.trim().is_empty() {
                anyhow::bail!("no API key on stdin");
            }
            crate::outln!("{}", hash_api_key(&key));
        }
    }
    Ok(())
}
