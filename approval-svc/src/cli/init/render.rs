//! The text of what `airlock init` writes: the service configuration, the filter's
//! plugin configuration and the Envoy configuration, from one set of names so they
//! cannot disagree.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// Where everything goes under the directory (absolute, so that the service and Envoy
/// find it from any working directory).
pub struct Layout {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub database: PathBuf,
    pub gateway_key: PathBuf,
    pub audit_key: PathBuf,
    pub credential_key: PathBuf,
    pub policy_dir: PathBuf,
    pub plugin: PathBuf,
    pub envoy: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        let keys = dir.join("keys");
        Layout {
            dir: dir.to_path_buf(),
            config: dir.join("airlock.toml"),
            database: dir.join("airlock.db"),
            gateway_key: keys.join("gateway.key"),
            audit_key: keys.join("audit.key"),
            credential_key: keys.join("credential.key"),
            policy_dir: dir.join("policy"),
            plugin: dir.join("plugin.json"),
            envoy: dir.join("envoy.yaml"),
        }
    }
}

/// What the Envoy configuration connects.
pub struct EnvoySide {
    pub listen: SocketAddr,
    pub admin_port: u16,
    pub upstream_host: String,
    pub upstream_port: u16,
    /// The approval service's listen address.
    pub service: SocketAddr,
    pub wasm: PathBuf,
    pub key_id: String,
}

/// The Rego modules (and data) the filter is given inline.
pub struct Policy {
    modules: BTreeMap<String, String>,
    data: Option<Value>,
}

impl Policy {
    /// The policy `airlock init` writes into `policy/`.
    pub fn starter() -> Policy {
        let modules = BTreeMap::from([("airlock.rego".to_string(), include_str!("airlock.rego").to_string())]);
        Policy { modules, data: None }
    }

    /// Every `*.rego` of `dir` except tests (`*_test.rego`), and `data.json` if present:
    /// the filter cannot read files, so they travel inside its configuration.
    pub fn read(dir: &Path) -> anyhow::Result<Policy> {
        let mut modules = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if name.ends_with(".rego") && !name.ends_with("_test.rego") {
                let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                modules.insert(name, text);
            }
        }
        if modules.is_empty() {
            anyhow::bail!("{}: no .rego module (besides tests)", dir.display());
        }
        let data_path = dir.join("data.json");
        let data = match std::fs::read_to_string(&data_path) {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", data_path.display()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => anyhow::bail!("{}: {e}", data_path.display()),
        };
        Ok(Policy { modules, data })
    }

    /// `sha256:` and the first 12 hex digits over names and texts: the revision the
    /// decision log records, so a log line says which policy decided.
    fn revision(&self) -> String {
        let mut h = Sha256::new();
        for (name, text) in &self.modules {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(text.as_bytes());
            h.update([0]);
        }
        if let Some(data) = &self.data {
            h.update(data.to_string().as_bytes());
        }
        format!("sha256:{}", &hex::encode(h.finalize())[..12])
    }
}

/// A TOML basic string (quoted, escaped).
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn path_string(path: &Path) -> String {
    toml_string(&path.display().to_string())
}

/// `airlock.toml`: SQLite, the gateway key, a sealing key, one reviewer, the credential
/// profile the starter policy names.
pub fn service_config(
    layout: &Layout,
    listen: &SocketAddr,
    key_id: &str,
    reviewer: &str,
    api_key_sha256: &str,
) -> String {
    format!(
        r#"# The approval service, written by `airlock init` (docs/first-hour.md; every field is
# in docs/approval-service.md). Start it with:
#   airlock serve --config {config}
listen = {listen}
database = {database}

[gateway]
# Shared with the Envoy filter: plugin.json names key_id "{key_id}" and reads the same key
# from $AIRLOCK_GATEWAY_KEY. The first key signs the service's answers.
keys = [{{ id = "{key_id}", secret_file = {gateway_key} }}]

[audit]
# Seals a checkpoint of the hash-chained audit trail every 100 records; check it with
#   airlock audit verify --database {database_plain} --key-file {audit_key_plain}
checkpoint_key_file = {audit_key}

[[reviewers]]
id = {reviewer}
groups = ["reviewers"]
# SHA-256 of the API key `airlock init` printed once. Another reviewer: a key from
# `airlock keys generate`, its hash from `airlock keys hash-api-key` (key on stdin).
api_key_sha256 = "{api_key_sha256}"

# Minted for an approved call, injected by the gateway as `authorization: Bearer <jwt>`;
# the starter policy names it (`credential: "upstream"`). Your API verifies it with the
# same key (HS256): sub = agent, aud = host, act = approvers, jti, exp.
[credentials.upstream]
kind = "jwt-hs256"
secret_file = {credential_key}
ttl = "5m"
header = "authorization"
"#,
        config = layout.config.display(),
        listen = toml_string(&listen.to_string()),
        database = path_string(&layout.database),
        database_plain = layout.database.display(),
        gateway_key = path_string(&layout.gateway_key),
        audit_key = path_string(&layout.audit_key),
        audit_key_plain = layout.audit_key.display(),
        reviewer = toml_string(reviewer),
        credential_key = path_string(&layout.credential_key),
    )
}

/// The filter's plugin configuration (docs/configuration.md). The key is not in it:
/// Envoy passes it in the VM's environment.
pub fn plugin_config(policy: &Policy, key_id: &str) -> Value {
    let mut p = json!({"modules": policy.modules, "revision": policy.revision()});
    if let Some(data) = &policy.data {
        p["data"] = data.clone();
    }
    json!({
        "policy": p,
        "identity": {"source": "header", "header": "x-airlock-agent"},
        "approval_service": {
            "cluster": "airlock_approval",
            "timeout_ms": 2000,
            "signing": {"key_id": key_id, "key_env": super::GATEWAY_KEY_ENV}
        }
    })
}

/// The service address Envoy connects to: a wildcard listen address is reached on loopback.
fn reachable(addr: &SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        if addr.is_ipv4() { "127.0.0.1" } else { "::1" }.to_string()
    } else {
        addr.ip().to_string()
    }
}

/// The complete `envoy.yaml`; the plugin configuration goes in as a YAML literal block
/// (its JSON text, verbatim).
pub fn envoy_yaml(layout: &Layout, envoy: &EnvoySide, plugin_json: &str) -> String {
    let indent = " ".repeat(20);
    let block: Vec<String> = plugin_json.lines().map(|l| format!("{indent}{l}")).collect();
    let keys_dir = layout.gateway_key.parent().unwrap_or(&layout.dir);
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    include_str!("envoy.yaml")
        .replace("@LISTEN_ADDRESS@", &envoy.listen.ip().to_string())
        .replace("@LISTEN_PORT@", &envoy.listen.port().to_string())
        .replace("@ADMIN_PORT@", &envoy.admin_port.to_string())
        .replace("@UPSTREAM_HOST@", &quoted(&envoy.upstream_host))
        .replace("@UPSTREAM_PORT@", &envoy.upstream_port.to_string())
        .replace("@UPSTREAM@", &format!("{}:{}", envoy.upstream_host, envoy.upstream_port))
        .replace("@SERVICE_HOST@", &quoted(&reachable(&envoy.service)))
        .replace("@SERVICE_PORT@", &envoy.service.port().to_string())
        .replace("@SERVICE@", &envoy.service.to_string())
        .replace("\"@WASM@\"", &quoted(&envoy.wasm.display().to_string()))
        .replace("@KEYS_DIR@", &keys_dir.display().to_string())
        .replace("@ENVOY_YAML@", &layout.envoy.display().to_string())
        .replace("@PLUGIN_JSON@", &layout.plugin.display().to_string())
        .replace("@PLUGIN_CONFIG@", &block.join("\n"))
}
