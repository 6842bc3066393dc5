//! The policy the Airlock listeners load, the way a gateway loads it: a directory built
//! and signed as a bundle with the `airlock` CLI (`airlock bundle build` + `airlock bundle
//! sign`, the binary that also runs the approval service), passed inline
//! (`policy.bundle.base64` + `policy.bundle_keys`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::bench::AGENT;
use crate::e2e::plugin::{plugin_config, PluginOptions};
use crate::e2e::service::run_bounded;

/// The key the bench signs its bundles with (`policy.bundle_keys`).
pub const BUNDLE_KEY_ID: &str = "bench-bundles";
pub const BUNDLE_KEY: &[u8; 32] = b"airlock-bench-bundle-key-32bytes";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `policy_dir` built into `<dir>/<name>.tar.gz` and signed; returns the file.
pub fn build_signed_bundle(
    airlock: &Path,
    policy_dir: &Path,
    dir: &Path,
    name: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let key_file = dir.join("bundle.key");
    std::fs::write(&key_file, b64(BUNDLE_KEY))?;
    let bundle = dir.join(format!("{name}.tar.gz"));
    let limit = Duration::from_secs(60);
    let mut build = Command::new(airlock);
    build
        .args(["bundle", "build"])
        .arg(policy_dir)
        .arg("-o")
        .arg(&bundle)
        .args(["--revision", &format!("bench-{name}")]);
    run_bounded(build, format!("airlock bundle build {}", policy_dir.display()), limit)?.ok()?;
    let mut sign = Command::new(airlock);
    sign.args(["bundle", "sign"]).arg(&bundle).args(["--key-id", BUNDLE_KEY_ID, "--key-file"]).arg(&key_file);
    run_bounded(sign, format!("airlock bundle sign {name}.tar.gz"), limit)?.ok()?;
    Ok(bundle)
}

/// A signed bundle file as base64 for `policy.bundle.base64`.
pub fn bundle_base64(bundle: &Path) -> anyhow::Result<String> {
    Ok(b64(&std::fs::read(bundle)?))
}

/// The Airlock listeners' configuration: the signed bundle inline, identity from
/// `x-airlock-agent` (the bench's agent and the concurrent-pending run's agents listed
/// with an owner, as a gateway lists its agents), the decision log batched to the
/// service every second.
pub fn library_plugin(bundle_base64: &str, extra_agents: &[String]) -> serde_json::Value {
    let mut cfg = plugin_config(&PluginOptions::default());
    cfg["policy"] = json!({
        "bundle": {"base64": bundle_base64},
        "bundle_keys": [{"key_id": BUNDLE_KEY_ID, "key_base64": b64(BUNDLE_KEY)}],
        "mode": "enforce",
    });
    let mut agents = serde_json::Map::new();
    for agent in std::iter::once(AGENT.to_string()).chain(extra_agents.iter().cloned()) {
        agents.insert(agent, json!({"owner": "alice@corp.example", "acts_for": []}));
    }
    cfg["identity"]["agents"] = serde_json::Value::Object(agents);
    cfg["request"]["input_headers"] = json!(["content-type", "user-agent"]);
    cfg["decision_log"] = json!({"flush_ms": 1000, "max_queue": 4096, "max_batch": 256});
    cfg
}

/// `cfg` with the decision cache off: every request evaluates the policy.
pub fn without_cache(mut cfg: serde_json::Value) -> serde_json::Value {
    cfg["decision_cache"] = json!({"max_entries": 0});
    cfg
}
