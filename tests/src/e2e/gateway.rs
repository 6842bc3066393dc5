//! A running gateway: one of the shipped `envoy/*.yaml` rendered with test values and
//! started, plus where its agent listener actually bound.
//!
//! The recording upstream and the fake approval service are owned by the test, not the
//! gateway, so several gateways (say, one trusting the identity hop and one not) can share
//! them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::e2e::client::{self, Request, Response};
use crate::e2e::envoy::Envoy;
use crate::e2e::template::{self, Vars};

/// The agent-facing listener's name in every shipped config.
pub const AGENT_LISTENER: &str = "agents";
/// Host name the test upstream certificate is for (egress and sidecar configs).
pub const UPSTREAM_HOST: &str = "api.airlock.test";
/// Host name the test approval-service certificate is for.
pub const APPROVAL_HOST: &str = "approval.airlock.test";
/// Agent identity the sidecar config stamps on every request.
pub const SIDECAR_AGENT: &str = "spiffe://e2e/agent/sidecar-bot";

/// Placeholder values for the shipped templates, with test defaults: everything on
/// 127.0.0.1, Envoy's own ports 0 (read back from the admin API), the identity hop
/// trusted from 127.0.0.1. Callers set the upstream/service ports, CA paths and the
/// gateway's client certificate for the approval service.
pub fn test_vars(wasm: &Path, plugin: &Value) -> Vars {
    let mut vars = Vars::new();
    let mut set = |k: &str, v: String| {
        vars.insert(k.to_string(), v);
    };
    set("AIRLOCK_ADMIN_PORT", "0".into());
    set("AIRLOCK_LISTEN_ADDRESS", "127.0.0.1".into());
    set("AIRLOCK_LISTEN_PORT", "0".into());
    set("AIRLOCK_WASM", wasm.display().to_string());
    set("AIRLOCK_PLUGIN_CONFIG", template::yaml_string(&plugin.to_string()));
    set("AIRLOCK_TRUSTED_HOP_ADDRESS", "127.0.0.1".into());
    set("AIRLOCK_TRUSTED_HOP_PREFIX_LEN", "32".into());
    set("AIRLOCK_UPSTREAM_HOST", UPSTREAM_HOST.into());
    set("AIRLOCK_UPSTREAM_ADDRESS", "127.0.0.1".into());
    set("AIRLOCK_UPSTREAM_PORT", "1".into());
    set("AIRLOCK_UPSTREAM_CA", "/nonexistent/upstream-ca.pem".into());
    set("AIRLOCK_APPROVAL_HOST", APPROVAL_HOST.into());
    set("AIRLOCK_APPROVAL_ADDRESS", "127.0.0.1".into());
    set("AIRLOCK_APPROVAL_PORT", "1".into());
    set("AIRLOCK_APPROVAL_CA", "/nonexistent/approval-ca.pem".into());
    set("AIRLOCK_APPROVAL_CLIENT_CERT", "/nonexistent/gateway-client.pem".into());
    set("AIRLOCK_APPROVAL_CLIENT_KEY", "/nonexistent/gateway-client.key".into());
    set("AIRLOCK_AGENT_ID", SIDECAR_AGENT.into());
    set("AIRLOCK_JWT_ISSUER", "https://idp.airlock.test".into());
    set("AIRLOCK_JWT_AUDIENCE", "airlock-gateway".into());
    set("AIRLOCK_JWKS", template::yaml_string(PLACEHOLDER_JWKS));
    vars
}

/// A well-formed JWKS whose one key (the P-256 base point, private key 1) signs nothing
/// real: enough for `envoy --mode validate`; tests that verify tokens set their own.
pub const PLACEHOLDER_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","kid":"e2e-placeholder","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY","y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}]}"#;

/// The command that builds both modules the e2e tests load.
pub const BUILD_WASM_COMMAND: &str = "bash scripts/build-wasm.sh";

/// The filter module (`crate::wasm::filter_wasm_path`); an error naming the build
/// command when it is missing.
pub fn filter_module() -> anyhow::Result<PathBuf> {
    let path = crate::wasm::filter_wasm_path();
    if !path.is_file() {
        anyhow::bail!("no filter module at {}; build it with:\n    {}", path.display(), crate::wasm::BUILD_COMMAND);
    }
    Ok(path)
}

/// The test-only fault-injection module (`AIRLOCK_FAULT_WASM`, else
/// `target/wasm32-wasip1/release/airlock_filter_fault.wasm`); an error naming the script
/// that builds it when it is missing.
pub fn fault_module() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("AIRLOCK_FAULT_WASM") {
        Some(p) => PathBuf::from(p),
        None => crate::wasm::workspace_root()
            .join("target")
            .join("wasm32-wasip1")
            .join("release")
            .join("airlock_filter_fault.wasm"),
    };
    if !path.is_file() {
        anyhow::bail!(
            "no fault-injection module at {}; build it (and the filter) with:\n    {BUILD_WASM_COMMAND}",
            path.display()
        );
    }
    Ok(path)
}

/// A started gateway.
pub struct Gateway {
    /// The Envoy process (admin, stats, log).
    pub envoy: Envoy,
    /// Where agents connect.
    pub addr: SocketAddr,
    /// The rendered config it runs.
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Renders `envoy/<template>` with `vars` and starts Envoy on it.
    pub fn start(name: &str, template_file: &str, vars: &Vars) -> anyhow::Result<Gateway> {
        Gateway::spawn(name, template_file, vars)?.ready()
    }

    /// Renders and spawns without waiting; [`Gateway::ready`] finishes the start. Spawn
    /// from the test's own thread (see [`Envoy::spawn`]).
    pub fn spawn(name: &str, template_file: &str, vars: &Vars) -> anyhow::Result<Gateway> {
        let text = template::read_shipped(template_file)?;
        Gateway::spawn_text(name, template_file, &text, vars)
    }

    /// As [`Gateway::spawn`], from template text the caller derived from a shipped file
    /// (say, with its timeouts scaled down so a test can wait them out).
    pub fn spawn_text(name: &str, template_file: &str, text: &str, vars: &Vars) -> anyhow::Result<Gateway> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("airlock-e2e-{name}-"))
            .tempdir()
            .context("creating a temp dir")?;
        let config = template::render_to(text, vars, dir.path(), template_file)
            .with_context(|| format!("rendering envoy/{template_file}"))?;
        let envoy = Envoy::spawn(name, &config, dir.path())?;
        Ok(Gateway { envoy, addr: SocketAddr::from(([127, 0, 0, 1], 0)), config, _dir: dir })
    }

    /// Waits until Envoy is ready and finds the agent listener.
    pub fn ready(mut self) -> anyhow::Result<Gateway> {
        self.envoy.wait_ready()?;
        self.addr = self.envoy.listener_addr(AGENT_LISTENER)?;
        Ok(self)
    }

    /// Spawns every gateway, then waits for all: their Wasm compiles in parallel.
    pub fn start_all(specs: &[(&str, &str, Vars)]) -> anyhow::Result<Vec<Gateway>> {
        let spawned = specs
            .iter()
            .map(|(name, template_file, vars)| Gateway::spawn(name, template_file, vars))
            .collect::<anyhow::Result<Vec<_>>>()?;
        spawned.into_iter().map(Gateway::ready).collect()
    }

    /// Sends `req` to the agent listener.
    pub fn send(&self, req: &Request) -> anyhow::Result<Response> {
        req.send(self.addr)
    }

    /// Sends raw bytes to the agent listener.
    pub fn send_raw(&self, bytes: &[u8]) -> anyhow::Result<Response> {
        client::send_raw(self.addr, bytes, client::DEFAULT_TIMEOUT)
    }
}
