//! A real headless Chromium (Debian's `chromium`) driven through W3C WebDriver by
//! Debian's `chromedriver`, both installed by `scripts/setup-console.sh`. The protocol is
//! plain JSON over HTTP (<https://www.w3.org/TR/webdriver2/>), spoken with the suite's
//! own HTTP client: a handful of commands is all the console's test needs.
//!
//! [`Chromedriver::start`] runs chromedriver on a free 127.0.0.1 port; each
//! [`Browser`] is a fresh session with its own profile directory (no cookies shared),
//! started with the flags from the platform notes, and ends with its value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::e2e::client::Request;
use crate::e2e::envoy::log_dir;
use crate::e2e::ports::{free_port, localhost};

/// The command that installs Chromium, chromedriver and the test IdP.
pub const SETUP_COMMAND: &str = "bash scripts/setup-console.sh";
/// How long chromedriver may take to answer `/status`.
const DRIVER_READY: Duration = Duration::from_secs(20);
/// How long one WebDriver command may take (a page load included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How often [`Browser::wait_for`] looks again.
const POLL: Duration = Duration::from_millis(100);
/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Chromium binary: the real one behind Debian's `/usr/bin/chromium` wrapper script.
fn chromium_binary() -> anyhow::Result<PathBuf> {
    for candidate in ["/usr/lib/chromium/chromium", "/usr/bin/chromium"] {
        if Path::new(candidate).is_file() {
            return Ok(PathBuf::from(candidate));
        }
    }
    bail!("no Chromium found (/usr/lib/chromium/chromium); install it with:\n    {SETUP_COMMAND}")
}

/// One WebDriver command to the driver at `addr`; answers its `value` or the WebDriver error.
fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let mut req = Request::new(method, path)
        .header("host", &addr.to_string())
        .header("accept", "application/json")
        .timeout(COMMAND_TIMEOUT);
    if let Some(b) = body {
        req = req.header("content-type", "application/json; charset=utf-8").body(b.to_string().into_bytes());
    }
    let resp = req.send(addr).with_context(|| format!("WebDriver {method} {path}"))?;
    let doc = resp.json().with_context(|| format!("WebDriver {method} {path}"))?;
    let value = doc.get("value").cloned().unwrap_or(Value::Null);
    if resp.status != 200 {
        bail!(
            "WebDriver {method} {path}: {} {}",
            value.get("error").and_then(Value::as_str).unwrap_or("error"),
            value.get("message").and_then(Value::as_str).unwrap_or_default().lines().next().unwrap_or_default()
        );
    }
    Ok(value)
}

/// Whether a WebDriver command failed because its element left the page (W3C error
/// code "stale element reference").
fn is_stale(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.to_string().contains("stale element reference"))
}

/// A running chromedriver.
pub struct Chromedriver {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Chromedriver {
    /// Starts chromedriver on a free port and waits until it is ready.
    pub fn start() -> anyhow::Result<Chromedriver> {
        let port = free_port()?;
        let log = log_dir()?.join(format!("chromedriver-{}-{port}.log", std::process::id()));
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting chromedriver; install it with:\n    {SETUP_COMMAND}"))?;
        let driver = Chromedriver { child, addr: localhost(port), log };
        let deadline = Instant::now() + DRIVER_READY;
        loop {
            if let Ok(v) = driver.call("GET", "/status", None) {
                if v.get("ready").and_then(Value::as_bool) == Some(true) {
                    return Ok(driver);
                }
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready within {DRIVER_READY:?} (log: {})", driver.log.display());
            }
            std::thread::sleep(POLL);
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        call(self.addr, method, path, body)
    }

    /// A new browser session with a fresh profile, its window `width` × `height`.
    pub fn browser(&self, width: u32, height: u32) -> anyhow::Result<Browser> {
        let profile = tempfile::Builder::new().prefix("airlock-chromium-").tempdir()?;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display()), format!("--window-size={width},{height}")])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 30000, "script": 30000, "implicit": 0},
            "goog:chromeOptions": {"binary": chromium_binary()?.display().to_string(), "args": args},
        }}});
        let session = self.call("POST", "/session", Some(&caps))?;
        let id = session
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("no sessionId in {session}"))?
            .to_string();
        Ok(Browser { driver: self.addr, id, _profile: profile })
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Browser {
    driver: SocketAddr,
    id: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        call(self.driver, method, &format!("/session/{}{path}", self.id), body.as_ref())
    }

    /// Navigates to `url` (waits for the load).
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", Some(json!({"url": url}))).map(drop)
    }

    /// The current URL.
    pub fn url(&self) -> anyhow::Result<String> {
        Ok(self.cmd("GET", "/url", None)?.as_str().unwrap_or_default().to_string())
    }

    /// The first element matching `css`, if any.
    pub fn find(&self, css: &str) -> anyhow::Result<Option<String>> {
        let found = self.cmd("POST", "/elements", Some(json!({"using": "css selector", "value": css})))?;
        Ok(found
            .as_array()
            .and_then(|a| a.first())
            .and_then(|e| e.get(ELEMENT))
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// Waits (bounded by `timeout`) for an element matching `css`.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(css)? {
                return Ok(e);
            }
            if Instant::now() > deadline {
                bail!("no element {css:?} within {timeout:?} at {}", self.url().unwrap_or_default());
            }
            std::thread::sleep(POLL);
        }
    }

    /// The rendered text of the first element matching `css` (waits up to 10 s for it).
    pub fn text(&self, css: &str) -> anyhow::Result<String> {
        self.on_element(css, |e| {
            Ok(self.cmd("GET", &format!("/element/{e}/text"), None)?.as_str().unwrap_or_default().to_string())
        })
    }

    /// Waits (bounded by `timeout`) until the first element matching `css` reads `want`;
    /// answers what it last read. After a click that submits a form, the page being left
    /// may still be the one WebDriver sees, with an element of the same id: waiting for the
    /// element alone would read the old page.
    pub fn wait_text(&self, css: &str, want: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = match self.text(css) {
                Err(err) if is_stale(&err) => String::new(),
                seen => seen?,
            };
            if seen == want || Instant::now() > deadline {
                return Ok(seen);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Clicks the first element matching `css` (waits up to 10 s for it).
    pub fn click(&self, css: &str) -> anyhow::Result<()> {
        self.on_element(css, |e| self.cmd("POST", &format!("/element/{e}/click"), Some(json!({}))).map(drop))
    }

    /// Types `text` into the first element matching `css`, after clearing it.
    pub fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.on_element(css, |e| {
            self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})))?;
            self.cmd("POST", &format!("/element/{e}/value"), Some(json!({"text": text}))).map(drop)
        })
    }

    /// Runs `act` on the first element matching `css`, waiting up to 10 s for one. The
    /// console's inbox re-renders its rows whenever the service announces a change, so an
    /// element found a moment ago may have been replaced by an identical one: WebDriver
    /// then answers "stale element reference", and the element is looked up again.
    fn on_element<T>(&self, css: &str, act: impl Fn(&str) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let timeout = Duration::from_secs(10);
        let deadline = Instant::now() + timeout;
        loop {
            let e = self.wait_for(css, deadline.saturating_duration_since(Instant::now()))?;
            match act(&e) {
                Err(err) if is_stale(&err) && Instant::now() < deadline => std::thread::sleep(POLL),
                done => return done,
            }
        }
    }

    /// Runs `script` in the page (WebDriver's own channel, not subject to the page's
    /// Content-Security-Policy); answers its return value.
    pub fn execute(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    /// The page's cookies as WebDriver reports them (name, httpOnly, secure, sameSite...).
    pub fn cookies(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self.cmd("GET", "/cookie", None)?.as_array().cloned().unwrap_or_default())
    }

    /// Resizes the window.
    pub fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.cmd("POST", "/window/rect", Some(json!({"width": width, "height": height}))).map(drop)
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let b64 = self.cmd("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .context("screenshot is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = call(self.driver, "DELETE", &format!("/session/{}", self.id), None);
    }
}
