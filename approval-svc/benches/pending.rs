//! The pending answer, end to end at the service: how long the REAL `airlock serve`
//! (release build, SQLite, `synchronous = FULL`) takes to answer a signed
//! `POST /v1/gateway/approvals` that creates a new approval (hold 0), measured by the
//! client from the request's first byte to the answer's last, over keep-alive
//! connections as Envoy's cluster keeps them. Each answer is checked: 200, `pending`,
//! signed by the service.
//!
//! Scenarios (each create a new action of a distinct agent):
//! - sequential: 100 agents, one request at a time, back to back;
//! - concurrent: 50 agents, each on its own connection, all at once (closed loop: this
//!   measures throughput as much as latency);
//! - paced: the 100 agents in turn at 20 creates a second (the Envoy bench's rate), and
//!   the 50 agents each one create every 100 ms (500 a second offered);
//! - each again with decision-log batches arriving alongside (100 records every 100 ms,
//!   deferred commits on the same writer), as a busy gateway ships them.
//!
//! The service's own access log (`elapsed_ms` per route) is summarised next to the
//! client's figures.
//!
//! Run: `cargo bench -p airlock-approval-svc --bench pending`
//! (`PENDING_REQUESTS=N` per scenario, default 2000; `PENDING_KEEP=1` keeps the state
//! directory and prints it; `AIRLOCK_BIN` runs another binary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_protocol::signing::{
    request_string, response_string, sign, KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const KEY_ID: &str = "bench";
const KEY: &[u8; 32] = b"airlock-bench-gateway-key-32byte";
const AUDIT_KEY: &[u8; 32] = b"airlock-bench-audit-seal-key-32b";
const SEQUENTIAL_AGENTS: usize = 100;
const CONCURRENT_AGENTS: usize = 50;

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// One keep-alive HTTP/1.1 connection to the service.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    addr: SocketAddr,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream, addr }
    }

    /// A signed POST; answers the status, headers and body.
    fn post_signed(&mut self, path: &str, body: &[u8]) -> (Answer, String) {
        let ts = unix_secs().to_string();
        let sig = sign(KEY, &request_string(&ts, "POST", path, body));
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             {KEY_ID_HEADER}: {KEY_ID}\r\n{TIMESTAMP_HEADER}: {ts}\r\n{SIGNATURE_HEADER}: {sig}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        self.writer.write_all(&req).unwrap();
        (self.read_answer(), sig)
    }

    fn read_answer(&mut self) -> Answer {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':').unwrap();
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            if name == "content-length" {
                length = value.parse().unwrap();
            }
            headers.push((name, value));
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        Answer { status, headers, body }
    }
}

/// A create body as the filter sends it for a new action of `agent`.
fn create_body(agent: &str, n: u64) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(format!("{agent}/{n}/{}", unix_ms())));
    json!({
        "decision_id": format!("dec_{n}_{}", unix_ms()),
        "agent": {"id": agent, "source": "header", "owner": "alice@corp.example", "acts_for": []},
        "digest": digest,
        "hold_ms": 0,
        "policy": {"revision": "bench", "rule": "pii-export", "reason": "exports need a data owner",
                   "risk": "high", "approvers": {"groups": ["data-owners"], "quorum": 1}, "expires_in": "15m",
                   "credential": "export-token", "reuse": "once"},
        "request": {"id": format!("req_{n}"), "method": "POST", "scheme": "https", "host": "api.example.com",
                    "port": 443, "path": "/v1/exports?format=csv", "query": {"format": ["csv"]},
                    "headers": {"content-type": "application/json"},
                    "body": {"customer": {"name": "bench", "ssn": "[REDACTED]"}, "rows": n}, "body_size": 64,
                    "body_sha256": digest},
    })
    .to_string()
    .into_bytes()
}

/// One create that must answer a signed 200 `pending`; answers its latency.
fn create(conn: &mut Conn, agent: &str, n: u64) -> Duration {
    let body = create_body(agent, n);
    let started = Instant::now();
    let (answer, sig) = conn.post_signed("/v1/gateway/approvals", &body);
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let doc: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(doc["status"], "pending", "{doc}");
    let ts = answer.header(TIMESTAMP_HEADER).unwrap();
    let expected = sign(KEY, &response_string(ts, 200, &sig, &answer.body));
    assert_eq!(answer.header(SIGNATURE_HEADER), Some(expected.as_str()), "answer signature");
    took
}

/// Posts a decision batch of `records` allow records every `every` until `stop`.
fn decision_batches(addr: SocketAddr, records: usize, every: Duration, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let mut conn = Conn::open(addr);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let recs: Vec<Value> = (0..records)
            .map(|i| {
                n += 1;
                json!({"decision_id": format!("d{n}-{i}"), "time_ms": unix_ms(), "effect": "allow",
                       "enforced": "allow", "mode": "enforce", "rule": "reads", "reason": "read-only",
                       "policy_revision": "bench", "agent": format!("spiffe://bench/agent/{}", i % 50),
                       "method": "GET", "host": "api.example.com", "path": "/v1/items"})
            })
            .collect();
        let body = json!({"dropped": 0, "records": recs}).to_string().into_bytes();
        let (answer, _) = conn.post_signed("/v1/gateway/decisions", &body);
        assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
        sent.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(every);
    }
}

fn sequential(addr: SocketAddr, requests: usize, round: u64) -> Vec<Duration> {
    sequential_every(addr, requests, round, Duration::ZERO)
}

/// Sequential creates, one starting every `every` (back to back when zero).
fn sequential_every(addr: SocketAddr, requests: usize, round: u64, every: Duration) -> Vec<Duration> {
    let mut conn = Conn::open(addr);
    let start = Instant::now();
    (0..requests)
        .map(|i| {
            let due = start + every * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let agent = format!("spiffe://bench/seq{round}/agent/{}", i % SEQUENTIAL_AGENTS);
            create(&mut conn, &agent, i as u64)
        })
        .collect()
}

/// 100 agents in turn, 20 creates a second (the Envoy bench's rate).
fn sequential_paced(addr: SocketAddr, requests: usize, round: u64) -> Vec<Duration> {
    sequential_every(addr, requests.min(400), round, Duration::from_millis(50))
}

/// 50 agents at once, each one create every 100 ms (500 a second offered), phases spread.
fn concurrent_paced(addr: SocketAddr, requests: usize, round: u64) -> Vec<Duration> {
    let per_agent = requests.div_ceil(CONCURRENT_AGENTS);
    let every = Duration::from_millis(100);
    let handles: Vec<_> = (0..CONCURRENT_AGENTS)
        .map(|a| {
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr);
                let agent = format!("spiffe://bench/pcon{round}/agent/{a}");
                let start = Instant::now() + every * a as u32 / CONCURRENT_AGENTS as u32;
                (0..per_agent)
                    .map(|i| {
                        let due = start + every * i as u32;
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        create(&mut conn, &agent, i as u64)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
}

fn concurrent(addr: SocketAddr, requests: usize, round: u64) -> Vec<Duration> {
    let per_agent = requests.div_ceil(CONCURRENT_AGENTS);
    let start = Arc::new(Barrier::new(CONCURRENT_AGENTS));
    let handles: Vec<_> = (0..CONCURRENT_AGENTS)
        .map(|a| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr);
                let agent = format!("spiffe://bench/con{round}/agent/{a}");
                start.wait();
                (0..per_agent).map(|i| create(&mut conn, &agent, i as u64)).collect::<Vec<_>>()
            })
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// `| p50 | p90 | p99 | max |` in ms.
fn row(mut lat: Vec<f64>) -> String {
    lat.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[i.min(lat.len() - 1)]
    };
    format!("{:.2} | {:.2} | {:.2} | {:.2}", at(0.5), at(0.9), at(0.99), at(1.0))
}

/// The service's access-log `elapsed_ms` of `route` from log line `from` on.
fn server_side(log: &Path, from: usize, route: &str) -> (Vec<f64>, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for line in &lines[from.min(lines.len())..] {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        if v["target"] != "airlock::access" {
            continue;
        }
        let matches = v.pointer("/span/route").or_else(|| v.pointer("/spans/0/route")).and_then(Value::as_str)
            == Some(route)
            || line.contains(&format!("\"route\":\"{route}\""));
        if matches {
            if let Some(ms) = v.pointer("/fields/elapsed_ms").and_then(Value::as_f64) {
                out.push(ms);
            }
        }
    }
    (out, lines.len())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_service(dir: &Path) -> (Child, SocketAddr, PathBuf) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
    let config = format!(
        "listen = \"{addr}\"\ndatabase = \"{}\"\n\n[gateway]\nkeys = [{{ id = \"{KEY_ID}\", secret_env = \"BENCH_GATEWAY_KEY\" }}]\n\n\
         [approvals]\nmax_pending_per_agent = 1000000\n\n[audit]\ncheckpoint_key_env = \"BENCH_AUDIT_KEY\"\ncheckpoint_every = 100\n\n\
         [[reviewers]]\nid = \"bob@corp.example\"\ngroups = [\"data-owners\"]\napi_key_sha256 = \"{}\"\n\n\
         [credentials.export-token]\nkind = \"jwt-hs256\"\nsecret_env = \"BENCH_CRED_SECRET\"\nttl = \"5m\"\nheader = \"authorization\"\n",
        dir.join("airlock.db").display(),
        hex::encode(Sha256::digest(b"bench-reviewer-key")),
    );
    let config_path = dir.join("airlock.toml");
    std::fs::write(&config_path, config).unwrap();
    let binary =
        std::env::var_os("AIRLOCK_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_airlock")), PathBuf::from);
    let log = dir.join("airlock.err.log");
    let child = Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .env("BENCH_GATEWAY_KEY", b64(KEY))
        .env("BENCH_AUDIT_KEY", b64(AUDIT_KEY))
        .env("BENCH_CRED_SECRET", b64(&[9u8; 32]))
        .env("AIRLOCK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let ready_by = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.write_all(format!("GET /readyz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes())
                .unwrap();
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            if text.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(Instant::now() < ready_by, "service not ready; see {}", log.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr, log)
}

fn main() {
    let requests: usize = std::env::var("PENDING_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let dir = tempfile::Builder::new().prefix("airlock-pending-bench-").tempdir().unwrap();
    let (mut child, addr, log) = start_service(dir.path());
    // Warm up: connections, blocking threads, page cache, statement cache.
    sequential(addr, 200, 0);
    println!("pending answer of the real service, {requests} creates per scenario (ms; client: request sent → answer read; service: its access log)");
    println!(
        "| scenario | client p50 | p90 | p99 | max | service create p50 | p90 | p99 | max | decision batch p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut round = 0;
    for with_batches in [false, true] {
        for (name, run) in [
            (
                format!("{SEQUENTIAL_AGENTS} agents, sequential"),
                sequential as fn(SocketAddr, usize, u64) -> Vec<Duration>,
            ),
            (format!("{CONCURRENT_AGENTS} agents, concurrent"), concurrent),
            (format!("{SEQUENTIAL_AGENTS} agents, sequential, 20/s"), sequential_paced),
            (format!("{CONCURRENT_AGENTS} agents, concurrent, each 10/s"), concurrent_paced),
        ] {
            round += 1;
            let (_, from) = server_side(&log, usize::MAX, "");
            let stop = Arc::new(AtomicBool::new(false));
            let sent = Arc::new(AtomicU64::new(0));
            let shipper = with_batches.then(|| {
                let (stop, sent) = (stop.clone(), sent.clone());
                std::thread::spawn(move || decision_batches(addr, 100, Duration::from_millis(100), stop, sent))
            });
            let lat = run(addr, requests, round);
            stop.store(true, Ordering::Relaxed);
            if let Some(s) = shipper {
                s.join().unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
            let (svc, _) = server_side(&log, from, "/v1/gateway/approvals");
            let (batches, _) = server_side(&log, from, "/v1/gateway/decisions");
            let ms: Vec<f64> = lat.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
            let batch_cols = if batches.is_empty() {
                "– | –".to_string()
            } else {
                let r = row(batches);
                let parts: Vec<&str> = r.split(" | ").collect();
                format!("{} | {}", parts[0], parts[2])
            };
            let label = if with_batches { format!("{name} + decision batches") } else { name };
            println!(
                "| {label} | {} | {} | {batch_cols} |",
                row(ms),
                if svc.is_empty() { "–|–|–|–".into() } else { row(svc) }
            );
        }
    }
    let _ = pct;
    let _ = child.kill();
    let _ = child.wait();
    if std::env::var_os("PENDING_KEEP").is_some() {
        println!("state kept in {}", dir.keep().display());
    }
}
