//! AWS played by moto in server mode (PyPI `moto[server]`, `bash scripts/setup-aws.sh`)
//! on 127.0.0.1, driven by `tests/aws/moto_tool.py` (boto3, botocore's signer), and a
//! TCP tee in front of it that records the bytes the gateway forwarded, so a test can
//! replay them as someone who captured them on the wire would.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use super::client::Request;
use super::ports::{free_port, localhost};
use crate::wasm::workspace_root;

const SETUP: &str = "bash scripts/setup-aws.sh";

/// A running moto server, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

fn venv_bin(name: &str) -> PathBuf {
    workspace_root().join(".venv").join("bin").join(name)
}

impl Moto {
    /// Starts moto on a free port and waits (bounded) until it answers.
    pub fn start() -> anyhow::Result<Moto> {
        let bin = venv_bin("moto_server");
        anyhow::ensure!(bin.exists(), "no moto at {}; install it with:\n    {SETUP}", bin.display());
        let port = free_port()?;
        let log = super::envoy::log_dir()?.join(format!("moto-{}-{port}.log", std::process::id()));
        let file = std::fs::File::create(&log)?;
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let moto = Moto { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let probe = Request::get("/moto-api/data.json").timeout(Duration::from_secs(2)).send(localhost(port));
            if probe.is_ok_and(|r| r.status == 200) {
                return Ok(moto);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "moto did not answer on {port} within 30 s; log {}",
                moto.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs `moto_tool.py <command> <url> <args…>` (bounded) and returns its stdout.
    pub fn tool(&self, command: &str, args: &[&str]) -> anyhow::Result<String> {
        let script = workspace_root().join("tests").join("aws").join("moto_tool.py");
        let mut cmd = Command::new(venv_bin("python"));
        cmd.arg(&script).arg(command).arg(self.url()).args(args);
        let out = super::service::run_bounded(cmd, format!("moto_tool.py {command}"), Duration::from_secs(60))?;
        anyhow::ensure!(out.success(), "moto_tool.py {command} failed: {}", out.text());
        Ok(out.stdout.trim().to_string())
    }

    /// Like [`Moto::tool`], parsed as JSON.
    pub fn tool_json(&self, command: &str, args: &[&str]) -> anyhow::Result<Value> {
        let text = self.tool(command, args)?;
        serde_json::from_str(&text).with_context(|| format!("moto_tool.py {command} printed {text}"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP forwarder to `target` that keeps a copy of every byte sent to it.
pub struct Tee {
    port: u16,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Tee {
    /// Listens on a free 127.0.0.1 port, forwarding each connection to `target_port`.
    pub fn start(target_port: u16) -> anyhow::Result<Tee> {
        let listener = TcpListener::bind(localhost(0))?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let copy = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(localhost(target_port)) else { continue };
                let seen = copy.clone();
                let (Ok(mut c_in), Ok(mut s_out)) = (client.try_clone(), server.try_clone()) else { continue };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        seen.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&buf[..n]);
                    }
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(Shutdown::Write);
                });
            }
        });
        Ok(Tee { port, seen })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything forwarded so far, as text (lossy).
    pub fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// The headers (lower-case names) of the last forwarded request whose request line
    /// starts with `line_prefix`.
    pub fn last_request_headers(&self, line_prefix: &str) -> Option<Vec<(String, String)>> {
        let text = self.seen();
        let start = text.rfind(line_prefix)?;
        let head = text[start..].split("\r\n\r\n").next()?;
        Some(
            head.lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect(),
        )
    }
}
