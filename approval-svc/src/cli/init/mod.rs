//! `airlock init`: one directory holding everything a first setup needs, consistent by
//! construction — the service's `airlock.toml`, its keys, a starter policy, the filter's
//! plugin configuration and a complete `envoy.yaml` naming the same gateway key id — so
//! that `airlock serve` starts on the first try and Envoy runs the printed command as is
//! (docs/first-hour.md).

mod files;
mod render;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::auth::reviewer::hash_api_key;
use files::Plan;
use render::{EnvoySide, Layout};

/// The environment variable Envoy passes the gateway key in (`host_env_keys`).
pub const GATEWAY_KEY_ENV: &str = "AIRLOCK_GATEWAY_KEY";
/// The gateway key's id, on both sides.
const KEY_ID: &str = "k1";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write into (created if missing).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Replace files that exist. New keys are generated: Envoy and reviewers must use the new ones.
    #[arg(long)]
    force: bool,
    /// Rewrite only plugin.json and envoy.yaml, from DIR/airlock.toml and DIR/policy/
    /// (after editing the policy). Keys and airlock.toml are left as they are.
    #[arg(long, conflicts_with = "force")]
    envoy_only: bool,
    /// The reviewer's id (e-mail or user name): member of the group `reviewers` the starter
    /// policy asks.
    #[arg(long, default_value = "reviewer@example.com")]
    reviewer: String,
    /// Address the approval service listens on.
    #[arg(long, default_value = "127.0.0.1:8700")]
    listen: SocketAddr,
    /// Address Envoy takes the agents' requests on.
    #[arg(long, default_value = "127.0.0.1:10000")]
    envoy_listen: SocketAddr,
    /// Port of Envoy's admin interface (on 127.0.0.1).
    #[arg(long, default_value_t = 9901)]
    envoy_admin_port: u16,
    /// Your API, where allowed and approved calls go: HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8080")]
    upstream: String,
    /// The filter module (`bash scripts/build-wasm.sh --no-fault` builds it).
    #[arg(long, default_value = "target/wasm32-wasip1/release/airlock_filter.opt.wasm")]
    wasm: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (upstream_host, upstream_port) = host_port(&args.upstream)?;
    std::fs::create_dir_all(&args.dir).map_err(|e| anyhow::anyhow!("{}: {e}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir).map_err(|e| anyhow::anyhow!("{}: {e}", args.dir.display()))?;
    let layout = Layout::new(&dir);
    let wasm = absolute(&args.wasm)?;
    let mut envoy = EnvoySide {
        listen: args.envoy_listen,
        admin_port: args.envoy_admin_port,
        upstream_host,
        upstream_port,
        service: args.listen,
        wasm: wasm.clone(),
        key_id: KEY_ID.to_string(),
    };
    let mut plan = Plan::default();
    let api_key = if args.envoy_only {
        // The service side stays: take the key id and address from what it runs with.
        let config = crate::config::Config::load(&layout.config)?;
        let first = config.gateway.keys.first().ok_or_else(|| anyhow::anyhow!("gateway.keys is empty"))?;
        envoy.key_id = first.id.clone();
        envoy.service = config
            .listen
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: listen {:?}: {e}", layout.config.display(), config.listen))?;
        None
    } else {
        let api_key = random_key()?;
        plan.secret(&layout.gateway_key, format!("{}\n", random_key()?));
        plan.secret(&layout.audit_key, format!("{}\n", random_key()?));
        plan.secret(&layout.credential_key, format!("{}\n", random_key()?));
        plan.public(
            &layout.config,
            render::service_config(&layout, &args.listen, KEY_ID, &args.reviewer, &hash_api_key(&api_key)),
        );
        plan.public(&layout.policy_dir.join("airlock.rego"), include_str!("airlock.rego").to_string());
        plan.public(&layout.policy_dir.join("airlock_test.rego"), include_str!("airlock_test.rego").to_string());
        Some(api_key)
    };
    // The policy the filter gets is the one on disk after this run: the starter one, or
    // the operator's edited one with --envoy-only.
    let policy = match &api_key {
        Some(_) => render::Policy::starter(),
        None => render::Policy::read(&layout.policy_dir)?,
    };
    if api_key.is_none() {
        check_policy(&layout.policy_dir)?;
    }
    let plugin = render::plugin_config(&policy, &envoy.key_id);
    let plugin_text = serde_json::to_string_pretty(&plugin)?;
    check_plugin(&plugin_text)?;
    plan.public(&layout.plugin, format!("{plugin_text}\n"));
    plan.public(&layout.envoy, render::envoy_yaml(&layout, &envoy, &plugin_text));
    plan.write(args.force || args.envoy_only)?;
    print_summary(&layout, &args, &envoy, api_key.as_deref());
    Ok(())
}

/// 32 random bytes, base64: every key `airlock init` writes, and the reviewer's API key.
fn random_key() -> anyhow::Result<String> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

fn host_port(text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("--upstream {text:?}: give HOST:PORT, e.g. 127.0.0.1:8080"))?;
    let port = port.parse().map_err(|_| anyhow::anyhow!("--upstream {text:?}: `{port}` is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        anyhow::bail!("--upstream {text:?}: the host is empty");
    }
    Ok((host.to_string(), port))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()?.join(path))
}

/// The policy must compile as the filter compiles it before Envoy is given it: a
/// configuration Envoy refuses would be found only when it starts.
fn check_policy(dir: &Path) -> anyhow::Result<()> {
    let report = crate::policy::check(&[dir.to_path_buf()], Some("data.airlock.decision"));
    if let Some(first) = report.problems.first() {
        let all: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        anyhow::bail!("{}: the policy does not compile ({first}); nothing written:\n{}", dir.display(), all.join("\n"));
    }
    Ok(())
}

/// The plugin configuration must pass the filter's own strict parser (with a stand-in
/// for the key, which Envoy supplies at run time).
fn check_plugin(text: &str) -> anyhow::Result<()> {
    let stand_in = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
    airlock_filter::config::Config::parse_with_env(text.as_bytes(), &|_| Some(stand_in.clone()))
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("the generated plugin configuration is refused by the filter: {e}"))
}

fn print_summary(layout: &Layout, args: &Args, envoy: &EnvoySide, api_key: Option<&str>) {
    let show = |p: &Path| p.display().to_string();
    if !envoy.wasm.is_file() {
        eprintln!(
            "airlock init: note: {} does not exist yet; build it with `bash scripts/build-wasm.sh --no-fault` (or give --wasm)",
            envoy.wasm.display()
        );
    }
    crate::outln!("airlock init: wrote {}", show(&layout.dir));
    if let Some(key) = api_key {
        crate::outln!(
            "  airlock.toml          the approval service: listens on {}, SQLite {}",
            args.listen,
            show(&layout.database)
        );
        crate::outln!("  keys/gateway.key      HMAC key `{}` shared with the Envoy filter (mode 0600)", envoy.key_id);
        crate::outln!("  keys/audit.key        seals the audit trail's checkpoints (mode 0600)");
        crate::outln!("  keys/credential.key   signs the JWT an approved call carries upstream (mode 0600)");
        crate::outln!("  policy/               starter policy: reads pass, writes wait for group `reviewers`");
        crate::outln!(
            "  plugin.json           the filter's configuration: key id `{}`, key from ${GATEWAY_KEY_ENV}",
            envoy.key_id
        );
        crate::outln!(
            "  envoy.yaml            Envoy: agents on {} -> your API {}:{}",
            envoy.listen,
            envoy.upstream_host,
            envoy.upstream_port
        );
        crate::outln!();
        crate::outln!("Reviewer {}'s API key, shown this once (airlock.toml keeps only its SHA-256):", args.reviewer);
        crate::outln!("  AIRLOCK_API_KEY={key}");
    } else {
        crate::outln!("  plugin.json, envoy.yaml  rewritten from airlock.toml and policy/ (key id `{}`)", envoy.key_id);
    }
    crate::outln!();
    crate::outln!("Next (docs/first-hour.md):");
    crate::outln!("  airlock serve --config {}", show(&layout.config));
    crate::outln!(
        "  {GATEWAY_KEY_ENV}=\"$(cat {})\" envoy -c {} --disable-hot-restart",
        show(&layout.gateway_key),
        show(&layout.envoy)
    );
}

#[cfg(test)]
mod tests;
