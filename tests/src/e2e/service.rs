//! The REAL approval service (`airlock serve`, crate `approval-svc/`) as a child process,
//! configured as `docs/approval-service.md` describes, for end-to-end tests and the demo.
//!
//! [`AirlockService::start`] writes a TOML config into a state directory (a temp dir unless
//! [`ServiceOptions::state_dir`] names one): listen on 127.0.0.1 with a free port, SQLite in
//! that directory, the filter's gateway keys ([`crate::e2e::plugin::KEY_ID`] /
//! [`crate::e2e::plugin::KEY`] through `secret_env`, the previous key through
//! `secret_file`), an audit checkpoint key, reviewers with hashed API keys (the plaintext
//! stays with the test), `jwt-hs256` credential profiles and a default expiry. It polls
//! `GET /readyz` (bounded), captures stdout/stderr in `target/e2e-logs/`, prints them when
//! a start fails or the test panics, and kills the process on drop.
//!
//! The binary: `AIRLOCK_BIN`, else `<workspace>/target/debug/airlock`; when it is missing
//! the error names [`BUILD_COMMAND`].

use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::e2e::client::{Request, Response};
use crate::e2e::envoy::log_dir;
use crate::e2e::plugin::{KEY, KEY_ID, PREVIOUS_KEY, PREVIOUS_KEY_ID};
use crate::e2e::ports::free_port;
use crate::wasm::workspace_root;

/// The command that builds the service binary.
pub const BUILD_COMMAND: &str = "cargo build -p airlock-approval-svc";
/// How long the service may take to answer `/readyz` 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one CLI invocation may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// Env var that carries the current gateway key (base64) to the service.
pub const GATEWAY_KEY_ENV: &str = "AIRLOCK_E2E_GATEWAY_KEY";
/// Env var that carries the audit checkpoint key (base64) to the service and CLI.
pub const AUDIT_KEY_ENV: &str = "AIRLOCK_AUDIT_KEY";
/// The audit checkpoint key (32 bytes).
pub const AUDIT_KEY: &[u8; 32] = b"airlock-e2e-audit-seal-key-32byt";
/// Env var that carries the credential profiles' signing secret to the service.
pub const CREDENTIAL_SECRET_ENV: &str = "AIRLOCK_E2E_CRED_SECRET";
/// The `jwt-hs256` profiles' secret: a base64 text of 32 bytes, so it is a valid secret
/// whether the service uses the text as is or decodes it ([`credential_keys`]).
pub const CREDENTIAL_SECRET: &str = "YWlybG9jay1lMmUtY3JlZGVudGlhbC1zZWNyZXQtMzI=";
/// Log lines printed on failure (the whole files stay in `target/e2e-logs/`).
const LOG_TAIL_LINES: usize = 200;

/// The service binary: `AIRLOCK_BIN`, else `<workspace>/target/debug/airlock`.
pub fn airlock_binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("AIRLOCK_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target").join("debug").join("airlock"),
    };
    if !path.is_file() {
        bail!(
            "no approval service binary at {}; build it with:\n    {BUILD_COMMAND}\n\
             or point AIRLOCK_BIN at an `airlock` binary",
            path.display()
        );
    }
    Ok(path)
}

/// The keys a `jwt-hs256` token minted with [`CREDENTIAL_SECRET`] may be signed with:
/// the text's bytes, and the bytes it decodes to.
pub fn credential_keys() -> Vec<Vec<u8>> {
    let mut keys = vec![CREDENTIAL_SECRET.as_bytes().to_vec()];
    if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(CREDENTIAL_SECRET) {
        keys.push(raw);
    }
    keys
}

/// A human reviewer: identity, groups, aliases and the plaintext API key.
#[derive(Debug, Clone)]
pub struct Reviewer {
    /// The identity used for separation of duties.
    pub id: String,
    /// Reviewer groups.
    pub groups: Vec<String>,
    /// Other identities of the same human.
    pub aliases: Vec<String>,
    /// Plaintext API key (the config holds its SHA-256).
    pub api_key: String,
}

impl Reviewer {
    /// A reviewer with a deterministic API key derived from the id.
    pub fn new(id: &str, groups: &[&str]) -> Reviewer {
        let slug: String = id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        Reviewer {
            id: id.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            aliases: Vec::new(),
            api_key: format!("e2e-api-key-{slug}-0123456789abcdef"),
        }
    }

    /// Adds an alias.
    pub fn alias(mut self, alias: &str) -> Reviewer {
        self.aliases.push(alias.to_string());
        self
    }
}

/// How the service is configured.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Reviewers.
    pub reviewers: Vec<Reviewer>,
    /// Names of `jwt-hs256` credential profiles (secret [`CREDENTIAL_SECRET`], ttl 5m,
    /// header `authorization`).
    pub credentials: Vec<String>,
    /// `[approvals] default_expires_in`.
    pub default_expires_in: String,
    /// `[gateway] max_hold`.
    pub max_hold: String,
    /// `[audit] checkpoint_every`.
    pub checkpoint_every: u32,
    /// `[approvals] max_pending_per_agent` (the service's default, 20, when `None`).
    pub max_pending_per_agent: Option<u32>,
    /// Keep config, database and evidence here (created; an old database is removed)
    /// instead of a temp dir that goes away with the service.
    pub state_dir: Option<PathBuf>,
    /// Appended to the generated airlock.toml verbatim (channel sections: `[teams]`,
    /// `[slack]`, `[[webhooks]]`).
    pub extra_toml: String,
    /// Extra environment for `airlock serve` (channel secrets named by `extra_toml`).
    pub extra_env: Vec<(String, String)>,
    /// Serve HTTPS (`[http] tls_*`, `client_ca_file`) instead of plain HTTP.
    pub tls: Option<ServiceTls>,
    /// `[store] url`: run on this PostgreSQL instead of the SQLite file.
    pub store_url: Option<String>,
}

/// The service's TLS files, and how the harness itself connects (readiness, [`AirlockService::send`]).
#[derive(Debug, Clone)]
pub struct ServiceTls {
    /// `[http] tls_cert_file`.
    pub cert_file: PathBuf,
    /// `[http] tls_key_file`.
    pub key_file: PathBuf,
    /// `[http] client_ca_file`: client certificates required when set.
    pub client_ca_file: Option<PathBuf>,
    /// The name the certificate carries (SNI and verification).
    pub server_name: String,
    /// The harness's client: trusts the service's CA and, when the service requires it,
    /// presents a client certificate.
    pub client: std::sync::Arc<rustls::ClientConfig>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            reviewers: Vec::new(),
            credentials: vec!["export-token".into()],
            default_expires_in: "15m".into(),
            max_hold: "30s".into(),
            checkpoint_every: 100,
            max_pending_per_agent: None,
            state_dir: None,
            extra_toml: String::new(),
            extra_env: Vec::new(),
            tls: None,
            store_url: None,
        }
    }
}

/// What a CLI run said.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// The command line, for messages (secrets are passed in env, not shown).
    pub command: String,
    /// Exit code (`None`: killed by a signal or by the timeout).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Both streams.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The output as an error when the command failed.
    pub fn ok(self) -> anyhow::Result<CliOutput> {
        if !self.success() {
            bail!("{self}");
        }
        Ok(self)
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// A running (or stopped, between [`AirlockService::stop`] and
/// [`AirlockService::restart`]) approval service.
pub struct AirlockService {
    name: String,
    binary: PathBuf,
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    database: PathBuf,
    state: PathBuf,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    extra_env: Vec<(String, String)>,
    reviewers: Vec<Reviewer>,
    tls: Option<ServiceTls>,
    store_url: Option<String>,
    _temp: Option<tempfile::TempDir>,
}

impl AirlockService {
    /// Writes the config and starts `airlock serve`; returns once `/readyz` is 200.
    pub fn start(name: &str, opts: &ServiceOptions) -> anyhow::Result<AirlockService> {
        let binary = airlock_binary()?;
        let (temp, state) = match &opts.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                for file in ["airlock.db", "airlock.db-wal", "airlock.db-shm"] {
                    let _ = std::fs::remove_file(dir.join(file));
                }
                (None, dir.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix(&format!("airlock-svc-{name}-"))
                    .tempdir()
                    .context("creating a temp dir")?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let port = free_port()?;
        let database = state.join("airlock.db");
        let previous_key_file = state.join("gateway-previous.key");
        std::fs::write(&previous_key_file, base64::engine::general_purpose::STANDARD.encode(PREVIOUS_KEY))
            .with_context(|| format!("writing {}", previous_key_file.display()))?;
        let config = state.join("airlock.toml");
        let text = config_toml(opts, port, &database, &previous_key_file);
        std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
        let unique = format!("airlock-{name}-{}-{}", std::process::id(), unique_suffix());
        let logs = log_dir()?;
        let mut svc = AirlockService {
            name: name.to_string(),
            binary,
            child: None,
            port,
            config,
            database,
            state,
            stdout_path: logs.join(format!("{unique}.out.log")),
            stderr_path: logs.join(format!("{unique}.err.log")),
            extra_env: opts.extra_env.clone(),
            reviewers: opts.reviewers.clone(),
            tls: opts.tls.clone(),
            store_url: opts.store_url.clone(),
            _temp: temp,
        };
        svc.spawn_and_wait()?;
        Ok(svc)
    }

    fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        // Rebinding the same port right after a kill can briefly fail: a few tries.
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_err = anyhow!("not started");
        for _ in 0..5 {
            self.spawn()?;
            match self.wait_ready(deadline) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last_err = e;
                    let exited = self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
                    if !exited || Instant::now() >= deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        self.print_logs();
        self.kill_child();
        Err(last_err.context(format!("approval service {} did not become ready", self.name)))
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let open = |p: &Path| -> anyhow::Result<File> {
            OpenOptions::new().create(true).append(true).open(p).with_context(|| format!("opening {}", p.display()))
        };
        let out = open(&self.stdout_path)?;
        let err = open(&self.stderr_path)?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("serve").arg("--config").arg(&self.config);
        self.env(&mut cmd);
        let child = cmd
            .current_dir(&self.state)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            // Same process group as the test/demo: a Ctrl-C in the terminal reaches the
            // service too, which then shuts down cleanly (final checkpoint).
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// The environment every `airlock` process gets: secrets, and nothing inherited that
    /// would override the config.
    fn env(&self, cmd: &mut Command) {
        let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
        for var in ["AIRLOCK_LISTEN", "AIRLOCK_DATABASE", "AIRLOCK_API_KEY", "AIRLOCK_URL"] {
            cmd.env_remove(var);
        }
        cmd.env(GATEWAY_KEY_ENV, b64(KEY))
            .env(AUDIT_KEY_ENV, b64(AUDIT_KEY))
            .env(CREDENTIAL_SECRET_ENV, CREDENTIAL_SECRET)
            .env("AIRLOCK_URL", self.url())
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()));
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
    }

    fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<()> {
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("airlock serve exited with {status} before it was ready");
                }
            }
            if let Ok(resp) = self.send(&Request::get("/readyz").timeout(Duration::from_secs(2))) {
                if resp.status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!("/readyz not 200 within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `req` to the service: over TLS with the harness's client when it serves
    /// HTTPS, else plain.
    pub fn send(&self, req: &Request) -> anyhow::Result<Response> {
        match &self.tls {
            None => req.send(self.addr()),
            Some(t) => {
                crate::e2e::tls::send_tls(self.addr(), &t.server_name, t.client.clone(), req, Duration::from_secs(15))
            }
        }
    }

    /// Asks for an approval as the filter does (`POST /v1/gateway/approvals`, signed with
    /// the harness's gateway key); answers the service's reply, checking nothing.
    pub fn gateway_create(&self, body: &Value) -> anyhow::Result<Response> {
        let path = "/v1/gateway/approvals";
        let bytes = body.to_string().into_bytes();
        let ts = crate::e2e::signing::now_secs().to_string();
        let sig = crate::e2e::signing::sign(KEY, &crate::e2e::signing::request_string(&ts, "POST", path, &bytes))?;
        let req = Request::new("POST", path)
            .header("host", &format!("127.0.0.1:{}", self.port))
            .header("content-type", "application/json")
            .header(crate::e2e::signing::KEY_ID_HEADER, KEY_ID)
            .header(crate::e2e::signing::TIMESTAMP_HEADER, &ts)
            .header(crate::e2e::signing::SIGNATURE_HEADER, &sig)
            .body(bytes)
            .timeout(Duration::from_secs(15));
        self.send(&req)
    }

    /// [`AirlockService::gateway_create`] that must answer 200; answers the approval's id.
    pub fn create_pending(&self, body: &Value) -> anyhow::Result<String> {
        let resp = self.gateway_create(body)?;
        if resp.status != 200 {
            bail!("create answered {}: {}", resp.status, resp.text());
        }
        let doc = resp.json()?;
        doc["approval_id"].as_str().map(str::to_string).ok_or_else(|| anyhow!("no approval_id in {doc}"))
    }

    /// Its port on 127.0.0.1 (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The SQLite file.
    pub fn database(&self) -> &Path {
        &self.database
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The state directory (config, database).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The binary it runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The configured reviewers.
    pub fn reviewers(&self) -> &[Reviewer] {
        &self.reviewers
    }

    /// The reviewer with `id`.
    pub fn reviewer(&self, id: &str) -> anyhow::Result<&Reviewer> {
        self.reviewers.iter().find(|r| r.id == id).ok_or_else(|| anyhow!("no reviewer {id} configured"))
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `kill -9`: no shutdown, no final checkpoint.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("SIGKILL to airlock serve")?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait (bounded) for a clean shutdown; SIGKILL if it does not stop.
    /// Returns whether it stopped on SIGTERM.
    pub fn stop(&mut self) -> anyhow::Result<bool> {
        let Some(mut child) = self.child.take() else {
            return Ok(true);
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(false)
    }

    /// Starts it again on the same config, port and database (after [`Self::kill9`] or
    /// [`Self::stop`]; a running one is killed first).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            self.kill9()?;
        }
        self.spawn_and_wait()
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    // ----- reviewer HTTP API -----

    /// A cheap, `Send` handle on the reviewer API (for threads racing each other).
    pub fn client(&self) -> ApiClient {
        ApiClient { port: self.port }
    }

    /// See [`ApiClient::api`].
    pub fn api(
        &self,
        method: &str,
        path: &str,
        api_key: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Response> {
        self.client().api(method, path, api_key, body)
    }

    /// See [`ApiClient::approve`].
    pub fn approve(&self, id: &str, api_key: &str) -> anyhow::Result<Response> {
        self.client().approve(id, api_key)
    }

    /// See [`ApiClient::deny`].
    pub fn deny(&self, id: &str, api_key: &str) -> anyhow::Result<Response> {
        self.client().deny(id, api_key)
    }

    /// See [`ApiClient::list`].
    pub fn list(&self, status: Option<&str>, api_key: &str) -> anyhow::Result<Vec<Value>> {
        self.client().list(status, api_key)
    }

    /// See [`ApiClient::show`].
    pub fn show(&self, id: &str, api_key: &str) -> anyhow::Result<Value> {
        self.client().show(id, api_key)
    }

    // ----- the CLI -----

    /// Runs `airlock <args>` with `AIRLOCK_URL` pointing here and the audit key set;
    /// `api_key` goes in `AIRLOCK_API_KEY`. Bounded by [`CLI_TIMEOUT`].
    pub fn cli(&self, args: &[&str], api_key: Option<&str>) -> anyhow::Result<CliOutput> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args);
        self.env(&mut cmd);
        if let Some(key) = api_key {
            cmd.env("AIRLOCK_API_KEY", key);
        }
        let command = format!("airlock {}", args.join(" "));
        run_bounded(cmd, command, CLI_TIMEOUT)
    }

    /// `airlock audit verify --database <db>`.
    pub fn audit_verify(&self) -> anyhow::Result<CliOutput> {
        match &self.store_url {
            Some(url) => self.cli(&["audit", "verify", "--store-url", url], None),
            None => {
                let db = self.database.display().to_string();
                self.cli(&["audit", "verify", "--database", &db], None)
            }
        }
    }

    /// `airlock audit export --database <db> --out <fresh dir>`; every JSON object on
    /// every line of every exported `*.jsonl` / `*.ndjson` file, in file order.
    pub fn audit_export(&self) -> anyhow::Result<Vec<Value>> {
        let out = self.state.join(format!("evidence-{}-{}", std::process::id(), unique_suffix()));
        let db = self.database.display().to_string();
        let out_s = out.display().to_string();
        self.cli(&["audit", "export", "--database", &db, "--out", &out_s], None)?.ok()?;
        let mut files = Vec::new();
        collect_files(&out, &mut files)?;
        files.sort();
        let mut records = Vec::new();
        for f in files {
            let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "jsonl" | "ndjson") {
                continue;
            }
            let text = std::fs::read_to_string(&f)?;
            for line in text.lines() {
                if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(line) {
                    records.push(v);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&out);
        Ok(records)
    }

    /// Prints the tails of the captured stdout and stderr.
    pub fn print_logs(&self) {
        for (what, path) in [("stdout", &self.stdout_path), ("stderr", &self.stderr_path)] {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            eprintln!(
                "===== airlock {} {what} ({}; last {} of {} lines) =====",
                self.name,
                path.display(),
                lines.len() - start,
                lines.len()
            );
            for line in &lines[start..] {
                eprintln!("{line}");
            }
        }
        eprintln!("===== end of airlock {} logs =====", self.name);
    }

    /// Paths of the captured stdout and stderr.
    pub fn log_paths(&self) -> (&Path, &Path) {
        (&self.stdout_path, &self.stderr_path)
    }
}

impl Drop for AirlockService {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        self.kill_child();
    }
}

/// The reviewer HTTP API of a service on 127.0.0.1 (survives restarts: same port).
#[derive(Debug, Clone, Copy)]
pub struct ApiClient {
    port: u16,
}

impl ApiClient {
    /// A reviewer API call authenticated with `api_key` (`None`: no credentials).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        api_key: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Response> {
        let mut req = Request::new(method, path)
            .header("host", &format!("127.0.0.1:{}", self.port))
            .header("accept", "application/json")
            .timeout(Duration::from_secs(15));
        if let Some(key) = api_key {
            req = req.header("authorization", &format!("Bearer {key}"));
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string().into_bytes());
        }
        req.send(SocketAddr::from(([127, 0, 0, 1], self.port)))
            .with_context(|| format!("{method} {path} to the approval service"))
    }

    /// `POST /v1/approvals/{id}/approve`.
    pub fn approve(&self, id: &str, api_key: &str) -> anyhow::Result<Response> {
        self.api(
            "POST",
            &format!("/v1/approvals/{id}/approve"),
            Some(api_key),
            Some(&json!({"comment": "approved by the e2e suite"})),
        )
    }

    /// `POST /v1/approvals/{id}/deny`.
    pub fn deny(&self, id: &str, api_key: &str) -> anyhow::Result<Response> {
        self.api(
            "POST",
            &format!("/v1/approvals/{id}/deny"),
            Some(api_key),
            Some(&json!({"comment": "denied by the e2e suite"})),
        )
    }

    /// `GET /v1/approvals[?status=...]`: the summaries (whatever array the answer holds).
    pub fn list(&self, status: Option<&str>, api_key: &str) -> anyhow::Result<Vec<Value>> {
        let path = match status {
            Some(s) => format!("/v1/approvals?status={s}"),
            None => "/v1/approvals".to_string(),
        };
        let resp = self.api("GET", &path, Some(api_key), None)?;
        if resp.status != 200 {
            bail!("GET {path} answered {}: {}", resp.status, resp.text());
        }
        let doc = resp.json()?;
        Ok(array_in(&doc).cloned().unwrap_or_default())
    }

    /// `GET /v1/approvals/{id}`.
    pub fn show(&self, id: &str, api_key: &str) -> anyhow::Result<Value> {
        let resp = self.api("GET", &format!("/v1/approvals/{id}"), Some(api_key), None)?;
        if resp.status != 200 {
            bail!("GET /v1/approvals/{id} answered {}: {}", resp.status, resp.text());
        }
        resp.json()
    }
}

fn config_toml(opts: &ServiceOptions, port: u16, database: &Path, previous_key: &Path) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"));
    let list = |items: &[String]| {
        let parts: Vec<String> = items.iter().map(|s| q(s)).collect();
        format!("[{}]", parts.join(", "))
    };
    let mut t = String::new();
    t.push_str("# Written by tests/src/e2e/service.rs\n");
    t.push_str(&format!("listen = {}\n", q(&format!("127.0.0.1:{port}"))));
    t.push_str(&format!("database = {}\n\n", q(&database.display().to_string())));
    if let Some(url) = &opts.store_url {
        t.push_str(&format!("[store]\nurl = {}\n\n", q(url)));
    }
    t.push_str("[gateway]\nkeys = [\n");
    t.push_str(&format!("  {{ id = {}, secret_env = {} }},\n", q(KEY_ID), q(GATEWAY_KEY_ENV)));
    t.push_str(&format!(
        "  {{ id = {}, secret_file = {} }},\n]\n",
        q(PREVIOUS_KEY_ID),
        q(&previous_key.display().to_string())
    ));
    t.push_str(&format!("max_hold = {}\n\n", q(&opts.max_hold)));
    t.push_str(&format!(
        "[approvals]\ndefault_expires_in = {}\nmax_expires_in = \"24h\"\n",
        q(&opts.default_expires_in)
    ));
    if let Some(n) = opts.max_pending_per_agent {
        t.push_str(&format!("max_pending_per_agent = {n}\n"));
    }
    t.push('\n');
    t.push_str(&format!(
        "[audit]\ncheckpoint_key_env = {}\ncheckpoint_every = {}\n\n",
        q(AUDIT_KEY_ENV),
        opts.checkpoint_every
    ));
    for r in &opts.reviewers {
        t.push_str("[[reviewers]]\n");
        t.push_str(&format!("id = {}\n", q(&r.id)));
        t.push_str(&format!("groups = {}\n", list(&r.groups)));
        t.push_str(&format!("aliases = {}\n", list(&r.aliases)));
        t.push_str(&format!("api_key_sha256 = {}\n\n", q(&hex::encode(Sha256::digest(r.api_key.as_bytes())))));
    }
    for name in &opts.credentials {
        t.push_str(&format!("[credentials.{}]\n", q(name)));
        t.push_str("kind = \"jwt-hs256\"\n");
        t.push_str(&format!("secret_env = {}\n", q(CREDENTIAL_SECRET_ENV)));
        t.push_str("ttl = \"5m\"\nheader = \"authorization\"\n\n");
    }
    if let Some(tls) = &opts.tls {
        t.push_str("[http]\n");
        t.push_str(&format!("tls_cert_file = {}\n", q(&tls.cert_file.display().to_string())));
        t.push_str(&format!("tls_key_file = {}\n", q(&tls.key_file.display().to_string())));
        if let Some(ca) = &tls.client_ca_file {
            t.push_str(&format!("client_ca_file = {}\n", q(&ca.display().to_string())));
        }
        t.push('\n');
    }
    // `${PORT}`: the service's own port (a console's public URL names it).
    t.push_str(&opts.extra_toml.replace("${PORT}", &port.to_string()));
    t
}

/// Runs `cmd` to completion, bounded by `timeout` (killed after it).
pub fn run_bounded(mut cmd: Command, command: String, timeout: Duration) -> anyhow::Result<CliOutput> {
    let dir = tempfile::tempdir()?;
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(File::create(&out_path)?))
        .stderr(Stdio::from(File::create(&err_path)?))
        .spawn()
        .with_context(|| format!("starting {command}"))?;
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{command}` did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(CliOutput {
        command,
        code,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The array an answer holds: itself, or the first array-valued field of an object
/// (`approvals`, `items`, `data`, ...).
pub fn array_in(doc: &Value) -> Option<&Vec<Value>> {
    match doc {
        Value::Array(a) => Some(a),
        Value::Object(o) => ["approvals", "items", "data", "results"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array))
            .or_else(|| o.values().find_map(Value::as_array)),
        _ => None,
    }
}

/// An approval's id field (`id` or `approval_id`).
pub fn approval_id_of(doc: &Value) -> Option<&str> {
    doc.get("id").or_else(|| doc.get("approval_id")).and_then(Value::as_str)
}

/// An approval's status word (`status` or `state`).
pub fn status_of(doc: &Value) -> Option<&str> {
    doc.get("status").or_else(|| doc.get("state")).and_then(Value::as_str)
}

/// An audit record's kind.
pub fn kind_of(record: &Value) -> Option<&str> {
    record.get("kind").or_else(|| record.get("type")).and_then(Value::as_str)
}

/// Audit records of `kind` whose text mentions `needle` (an approval id, an agent id).
pub fn records_mentioning<'a>(records: &'a [Value], kind: &str, needle: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| kind_of(r) == Some(kind) && r.to_string().contains(needle)).collect()
}

/// Verifies an HS256 JWT against any of `keys`; returns its claims.
pub fn verify_jwt_hs256(token: &str, keys: &[Vec<u8>]) -> anyhow::Result<Value> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        bail!("not a three-part JWS: {token}");
    };
    let header: Value = serde_json::from_slice(&b64.decode(h).context("JWT header base64")?)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        bail!("JWT alg is not HS256: {header}");
    }
    let sig = b64.decode(s).context("JWT signature base64")?;
    let signed = format!("{h}.{p}");
    let ok = keys.iter().any(|k| {
        Hmac::<Sha256>::new_from_slice(k)
            .map(|mut m| {
                m.update(signed.as_bytes());
                m.verify_slice(&sig).is_ok()
            })
            .unwrap_or(false)
    });
    if !ok {
        bail!("JWT signature does not verify with the credential profile's secret");
    }
    serde_json::from_slice(&b64.decode(p).context("JWT payload base64")?).context("JWT payload JSON")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Tampers with the audit trail the way an attacker with the file would: stops nothing
/// (the caller stops the service first), drops the audit table's triggers, and changes one
/// byte of the event text of the record with sequence number `seq`. Uses the `sqlite3` CLI
/// (Debian package sqlite3, installed by `scripts/setup.sh`). Returns a description.
pub fn tamper_audit_byte(database: &Path, seq: i64) -> anyhow::Result<String> {
    let sql = |q: &str| -> anyhow::Result<String> {
        let out = Command::new("sqlite3")
            .arg(database)
            .arg(q)
            .output()
            .context("running sqlite3 (apt package sqlite3; bash scripts/setup.sh)")?;
        if !out.status.success() {
            bail!("sqlite3 {q:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let tables = sql("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name;")?;
    let table = tables
        .lines()
        .map(str::to_ascii_lowercase)
        .filter(|t| t.contains("audit") && !t.contains("checkpoint"))
        .min_by_key(|t| !t.contains("record"))
        .ok_or_else(|| anyhow!("no audit table among {tables:?}"))?;
    let cols_text = sql(&format!("SELECT name, type FROM pragma_table_info('{table}');"))?;
    let cols: Vec<(String, String)> = cols_text
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(n, t)| (n.to_string(), t.to_ascii_uppercase()))
        .collect();
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    let seq_col = ["seq", "sequence", "id"]
        .into_iter()
        .find(|c| names.contains(c))
        .ok_or_else(|| anyhow!("no seq column in {table}: {names:?}"))?;
    let event_col = ["event", "event_json", "data", "payload", "body", "record"]
        .into_iter()
        .find(|c| names.contains(c))
        .ok_or_else(|| anyhow!("no event column in {table}: {names:?}"))?;
    let triggers = sql(&format!("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='{table}';"))?;
    for trig in triggers.lines().filter(|l| !l.is_empty()) {
        sql(&format!("DROP TRIGGER \"{trig}\";"))?;
    }
    let hex_text = sql(&format!(
        "SELECT hex(CAST({event_col} AS BLOB)), typeof({event_col}) FROM {table} WHERE {seq_col} = {seq};"
    ))?;
    let (hex_val, typ) = hex_text.trim().split_once('|').ok_or_else(|| anyhow!("no audit record {seq_col} = {seq}"))?;
    let mut bytes = hex::decode(hex_val.trim())?;
    // Flip one letter or digit (stays valid UTF-8 and valid JSON).
    let pos = bytes
        .iter()
        .position(|b| b.is_ascii_lowercase())
        .ok_or_else(|| anyhow!("record {seq} has no letter to change"))?;
    let before = bytes[pos];
    bytes[pos] = if before == b'z' { b'y' } else { before + 1 };
    let literal = format!("X'{}'", hex::encode_upper(&bytes));
    let value = if typ.trim() == "blob" { literal } else { format!("CAST({literal} AS TEXT)") };
    sql(&format!("UPDATE {table} SET {event_col} = {value} WHERE {seq_col} = {seq};"))?;
    Ok(format!(
        "{table}.{event_col} of {seq_col} {seq}: byte {pos} {:?} -> {:?} ({} trigger(s) dropped)",
        char::from(before),
        char::from(bytes[pos]),
        triggers.lines().filter(|l| !l.is_empty()).count()
    ))
}
