//! `airlock bundle build|sign|verify|inspect`: make and check signed policy bundles
//! (`docs/bundles.md`). `verify` runs the filter's own acceptance path — signature,
//! every hash, parse, compile, entrypoint — so a bundle that verifies here loads in
//! the gateway. Exit codes: 0 ok, 1 refused, 2 usage or I/O.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_bundle::{BundleError, Limits};
use base64::Engine as _;
use clap::Subcommand;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// Where the HS256 key comes from: base64 text (as `airlock keys generate` prints
/// and as the filter's `policy.bundle_keys[].key_base64` takes it).
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct KeySource {
    /// Environment variable holding the key, base64.
    #[arg(long)]
    key_env: Option<String>,
    /// File holding the key, base64 (surrounding whitespace ignored).
    #[arg(long)]
    key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an unsigned bundle from a policy directory (`.manifest`, `*.rego`, `data.json`/`data.yaml`).
    Build {
        dir: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Set the manifest's revision (creates a manifest if the directory has none).
        #[arg(long)]
        revision: Option<String>,
    },
    /// Sign a bundle: writes `.signatures.json` (HS256, key id) listing every file's SHA-256.
    Sign {
        bundle: PathBuf,
        #[arg(long)]
        key_id: String,
        #[command(flatten)]
        key: KeySource,
        /// Write here instead of replacing the bundle.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check signature, hashes, parse and compile exactly as the gateway filter does.
    Verify {
        bundle: PathBuf,
        #[arg(long)]
        key_id: String,
        #[command(flatten)]
        key: KeySource,
        #[arg(long, default_value = "data.airlock.decision")]
        entrypoint: String,
    },
    /// Show revision, roots, files (size, SHA-256) and the signature's key id, unverified.
    Inspect { bundle: PathBuf },
}

/// Exit 2: the command could not run (usage, missing file, unreadable key).
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("airlock: {msg}");
    ExitCode::from(2)
}

/// Exit 1: the bundle was looked at and refused.
fn refused(bundle: &Path, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("airlock: {}: refused: {e}", bundle.display());
    ExitCode::from(1)
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        Command::Build { dir, output, revision } => build(&dir, &output, revision.as_deref()),
        Command::Sign { bundle, key_id, key, output } => sign(&bundle, &key_id, &key, output.as_deref()),
        Command::Verify { bundle, key_id, key, entrypoint } => verify(&bundle, &key_id, &key, &entrypoint),
        Command::Inspect { bundle } => inspect(&bundle),
    }
}

fn read_key(src: &KeySource) -> Result<Vec<u8>, String> {
    let text = match (&src.key_env, &src.key_file) {
        (Some(var), _) => std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set"))?,
        (None, Some(file)) => std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?,
        (None, None) => return Err("give --key-env or --key-file".into()),
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the key is not base64: {e}"))?;
    if key.len() < 32 {
        return Err(format!("the key is {} bytes; at least 32 are required", key.len()));
    }
    Ok(key)
}

fn read_bundle(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    // Write then rename, so an interrupted run never leaves half a bundle behind.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn build(dir: &Path, output: &Path, revision: Option<&str>) -> ExitCode {
    if !dir.is_dir() {
        return usage(format!("{}: not a directory", dir.display()));
    }
    let bytes = match airlock_bundle::build_dir(dir, revision) {
        Ok(b) => b,
        Err(e) => return refused(dir, e),
    };
    match write(output, &bytes) {
        Ok(()) => {
            crate::outln!("wrote {} ({} bytes, unsigned)", output.display(), bytes.len());
            ExitCode::SUCCESS
        }
        Err(e) => usage(e),
    }
}

fn sign(bundle: &Path, key_id: &str, key: &KeySource, output: Option<&Path>) -> ExitCode {
    let (key, bytes) = match read_key(key).and_then(|k| Ok((k, read_bundle(bundle)?))) {
        Ok(both) => both,
        Err(e) => return usage(e),
    };
    let signed = match airlock_bundle::sign(&bytes, key_id, &key, &Limits::default()) {
        Ok(s) => s,
        Err(e) => return refused(bundle, e),
    };
    let out = output.unwrap_or(bundle);
    match write(out, &signed) {
        Ok(()) => {
            crate::outln!("signed {} with key `{key_id}` ({} bytes)", out.display(), signed.len());
            ExitCode::SUCCESS
        }
        Err(e) => usage(e),
    }
}

fn verify(bundle: &Path, key_id: &str, key: &KeySource, entrypoint: &str) -> ExitCode {
    let (key, bytes) = match read_key(key).and_then(|k| Ok((k, read_bundle(bundle)?))) {
        Ok(both) => both,
        Err(e) => return usage(e),
    };
    let policy = airlock_filter::config::PolicyConfig {
        modules: Default::default(),
        data: None,
        bundle: Some(airlock_filter::bundle::config::BundleConfig {
            inline: None,
            poll: None,
            keys: airlock_bundle::Keys::one(key_id, &key),
        }),
        entrypoint: entrypoint.to_string(),
        revision: String::new(),
        mode: Default::default(),
        max_instructions: 100_000,
        rule_index: true,
    };
    let started = std::time::Instant::now();
    match airlock_filter::bundle::activate(&bytes, &policy) {
        Ok(a) => {
            crate::outln!(
                "ok: revision `{}`, {} modules, {} files signed with key `{}`; compiled `{entrypoint}` in {} ms",
                a.active.revision,
                a.modules,
                a.verified.files,
                a.verified.key_id,
                started.elapsed().as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(e) => refused(bundle, e),
    }
}

fn inspect(bundle: &Path) -> ExitCode {
    let bytes = match read_bundle(bundle) {
        Ok(b) => b,
        Err(e) => return usage(e),
    };
    let entries = match airlock_bundle::read_archive(&bytes, &Limits::default()) {
        Ok(e) => e,
        Err(e) => return refused(bundle, e),
    };
    let signature = airlock_bundle::describe(&entries);
    let parsed = match airlock_bundle::Bundle::parse(entries) {
        Ok(b) => b,
        Err(e) => return refused(bundle, e),
    };
    let m = &parsed.manifest;
    let mut out = format!("bundle:   {} ({} bytes compressed)\n", bundle.display(), bytes.len());
    let revision = if m.revision.is_empty() { "(none)" } else { &m.revision };
    out += &format!("revision: {revision}\n");
    match &m.roots {
        Some(r) => out += &format!("roots:    {}\n", r.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")),
        None => out += "roots:    (all)\n",
    }
    if m.shadow() {
        out += "shadow:   whole bundle\n";
    }
    if !m.shadow_rules().is_empty() {
        out += &format!("shadow rules: {}\n", m.shadow_rules().join(", "));
    }
    out += &match &signature {
        Ok((alg, kid, payload)) => format!(
            "signature: {alg}, key id `{}`, {} files listed (not verified; use `verify`)\n",
            kid.as_deref().unwrap_or("?"),
            payload.files.len()
        ),
        Err(BundleError::Unsigned(_)) => "signature: none (unsigned)\n".to_string(),
        Err(e) => format!("signature: unreadable: {e}\n"),
    };
    out += "files (size, SHA-256 as signed: JSON documents over their canonical form, as OPA):\n";
    for e in &parsed.entries {
        let hash = airlock_bundle::file_hash(&e.name, &e.bytes).unwrap_or_else(|_| "(invalid JSON)".into());
        out += &format!("  {:>9}  {hash}  {}\n", e.bytes.len(), e.name);
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    ExitCode::SUCCESS
}
