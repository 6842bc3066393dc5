//! The official MCP SDKs as child processes, for `tests/tests/e2e/mcp_sdk.rs`:
//! - [`McpServer`]: `tests/mcp/server.py`, a FastMCP server (PyPI `mcp` 1.x) on 127.0.0.1
//!   that counts its tools' executions (`GET /counts`, asked directly, not through Envoy);
//! - [`McpClient`]: `tests/mcp/client.py` (Python SDK) or `tests/mcp/client.mjs`
//!   (TypeScript SDK), one MCP session each, driven by one JSON command a line on stdin
//!   and answering one JSON line on stdout (the protocol is in the scripts' headers).
//!
//! Both SDKs are installed by [`SETUP_COMMAND`]; when one is missing the error names it.
//! Every wait is bounded; logs go to `target/e2e-logs/` and are printed on failure.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::e2e::client::Request;
use crate::e2e::envoy::log_dir;
use crate::e2e::ports::{free_port, localhost};
use crate::wasm::workspace_root;

/// Installs both SDKs (pinned): the Python one into `.venv`, the TypeScript one into
/// `tests/mcp/node_modules`. `scripts/setup.sh` runs it too.
pub const SETUP_COMMAND: &str = "bash scripts/setup-mcp.sh";
/// How long the server may take to answer `/counts`.
pub const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one client step may take (the scripts give up on their own after 60 s).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(75);
/// Log lines printed on failure.
const LOG_TAIL_LINES: usize = 80;

/// Which official SDK a client runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// PyPI `mcp` 1.x: `streamablehttp_client` + `ClientSession`.
    Python,
    /// npm `@modelcontextprotocol/sdk`: `Client` + `StreamableHTTPClientTransport`.
    TypeScript,
}

impl Sdk {
    /// A short name for agent ids, logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            Sdk::Python => "python",
            Sdk::TypeScript => "typescript",
        }
    }
}

fn mcp_dir() -> PathBuf {
    workspace_root().join("tests").join("mcp")
}

/// The project virtualenv's Python with the `mcp` package, or an error naming the setup.
pub fn python() -> anyhow::Result<PathBuf> {
    let python = workspace_root().join(".venv").join("bin").join("python");
    let probe = Command::new(&python)
        .args(["-c", "import importlib.metadata as m; print(m.version('mcp'))"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Ok(out) if out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("1.") => Ok(python),
        Ok(out) => bail!(
            "the MCP Python SDK 1.x is not in {} ({}{}); install it with:\n    {SETUP_COMMAND}",
            python.display(),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => bail!("cannot run {} ({e}); install it with:\n    {SETUP_COMMAND}", python.display()),
    }
}

/// `node`, with the TypeScript SDK installed under `tests/mcp/`, or an error naming the
/// setup.
pub fn node() -> anyhow::Result<PathBuf> {
    let sdk = mcp_dir().join("node_modules").join("@modelcontextprotocol").join("sdk").join("package.json");
    if !sdk.is_file() {
        bail!("the MCP TypeScript SDK is not at {}; install it with:\n    {SETUP_COMMAND}", sdk.display());
    }
    match Command::new("node").arg("--version").stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(PathBuf::from("node")),
        _ => bail!("no `node` (20 or newer) on PATH; install Node.js, then:\n    {SETUP_COMMAND}"),
    }
}

fn log_file(stem: &str) -> anyhow::Result<(PathBuf, File)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = log_dir()?.join(format!("mcp-{stem}-{}-{n}.log", std::process::id()));
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok((path, file))
}

fn print_tail(what: &str, path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    eprintln!("===== {what} ({}; last {} lines) =====", path.display(), lines.len() - start);
    for line in &lines[start..] {
        eprintln!("{line}");
    }
    eprintln!("===== end of {what} =====");
}

fn kill(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The FastMCP upstream (`tests/mcp/server.py`).
pub struct McpServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl McpServer {
    /// Starts it on a free 127.0.0.1 port and waits for `/counts` (bounded).
    pub fn start() -> anyhow::Result<McpServer> {
        let python = python()?;
        let port = free_port()?;
        let (log, file) = log_file("server")?;
        let child = Command::new(python)
            .arg(mcp_dir().join("server.py"))
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()
            .context("starting tests/mcp/server.py")?;
        let mut server = McpServer { child, port, log };
        let deadline = Instant::now() + SERVER_READY_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait()? {
                server.print_log();
                bail!("tests/mcp/server.py exited with {status} before it answered");
            }
            if server.counts().is_ok() {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                server.print_log();
                bail!("tests/mcp/server.py did not answer /counts within {SERVER_READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `{"runs": {tool: n}, "arguments": {tool: [arguments of each run]}}`.
    pub fn counts(&self) -> anyhow::Result<Value> {
        let resp = Request::get("/counts").timeout(Duration::from_secs(5)).send(localhost(self.port))?;
        if resp.status != 200 {
            bail!("/counts answered {}", resp.status);
        }
        resp.json()
    }

    /// How many times `tool` ran with exactly `arguments`.
    pub fn runs_of(&self, tool: &str, arguments: &Value) -> anyhow::Result<usize> {
        let counts = self.counts().context("asking the MCP server for its counts")?;
        Ok(counts["arguments"][tool].as_array().map_or(0, |runs| runs.iter().filter(|a| *a == arguments).count()))
    }

    /// How many times `tool` ran at all.
    pub fn runs_of_tool(&self, tool: &str) -> anyhow::Result<usize> {
        let counts = self.counts().context("asking the MCP server for its counts")?;
        Ok(counts["runs"][tool].as_u64().unwrap_or(0) as usize)
    }

    /// Prints the tail of its log.
    pub fn print_log(&self) {
        print_tail("MCP server log", &self.log);
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log();
        }
        kill(&mut self.child);
    }
}

/// One MCP client session on an official SDK, driven line by line.
pub struct McpClient {
    sdk: Sdk,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: PathBuf,
    /// The first line: `{"ok": true, "event": "initialized", "session_id", "protocol", "server"}`.
    pub initialized: Value,
}

impl McpClient {
    /// Starts a client of `sdk` against `url` (the gateway), naming `host` and sending
    /// the identity header `agent`; returns once the session is initialized.
    pub fn start(sdk: Sdk, url: &str, host: &str, agent: &str) -> anyhow::Result<McpClient> {
        let mut cmd = match sdk {
            Sdk::Python => {
                let mut c = Command::new(python()?);
                c.arg(mcp_dir().join("client.py"));
                c
            }
            Sdk::TypeScript => {
                let mut c = Command::new(node()?);
                c.arg(mcp_dir().join("client.mjs"));
                c
            }
        };
        cmd.args(["--url", url, "--host", host, "--agent", agent]).current_dir(mcp_dir());
        let (log, file) = log_file(&format!("client-{}", sdk.name()))?;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("starting the {} MCP client", sdk.name()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut client = McpClient { sdk, child, stdin, lines, log, initialized: Value::Null };
        let first = client.next_line(STEP_TIMEOUT).context("waiting for the session to initialize")?;
        if first["event"] != "initialized" || first["ok"] != true {
            client.print_log();
            bail!("the {} client did not initialize: {first}", sdk.name());
        }
        client.initialized = first;
        Ok(client)
    }

    /// Which SDK it runs.
    pub fn sdk(&self) -> Sdk {
        self.sdk
    }

    /// The session id the server gave at initialization.
    pub fn session_id(&self) -> Option<&str> {
        self.initialized["session_id"].as_str()
    }

    fn next_line(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => serde_json::from_str(&line).with_context(|| format!("client line {line:?}")),
            Err(RecvTimeoutError::Timeout) => {
                self.print_log();
                bail!("the {} client said nothing within {timeout:?}", self.sdk.name())
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                self.print_log();
                bail!("the {} client exited ({status})", self.sdk.name())
            }
        }
    }

    /// Sends one command without waiting for its answer (see [`McpClient::answer`]).
    pub fn send(&mut self, cmd: &Value) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("client stdin closed"))?;
        writeln!(stdin, "{cmd}")?;
        stdin.flush()?;
        Ok(())
    }

    /// The answer to the command sent last (bounded by [`STEP_TIMEOUT`]).
    pub fn answer(&mut self) -> anyhow::Result<Value> {
        self.next_line(STEP_TIMEOUT)
    }

    /// Sends `cmd` and returns its answer.
    pub fn ask(&mut self, cmd: &Value) -> anyhow::Result<Value> {
        self.send(cmd)?;
        self.answer()
    }

    /// `tools/call` of `name` with `arguments`: the whole answer line.
    pub fn call(&mut self, name: &str, arguments: &Value) -> anyhow::Result<Value> {
        self.ask(&json!({"op": "call", "name": name, "arguments": arguments}))
    }

    /// Ends the session the SDK's way (DELETE) and waits for the process; returns the
    /// last line (`{"event": "closed"}`).
    pub fn close(mut self) -> anyhow::Result<Value> {
        self.send(&json!({"op": "close"}))?;
        let last = self.next_line(STEP_TIMEOUT)?;
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                self.print_log();
                bail!("the {} client did not exit after closing", self.sdk.name());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(last)
    }

    /// Prints the tail of its stderr.
    pub fn print_log(&self) {
        print_tail(&format!("{} MCP client log", self.sdk.name()), &self.log);
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log();
        }
        self.stdin = None;
        kill(&mut self.child);
    }
}
