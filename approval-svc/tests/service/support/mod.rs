//! In-process service and protocol helpers for the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_approval_svc::api::{app, AppState, GatewayGuards, State};
use airlock_approval_svc::approvals::Approvals;
use airlock_approval_svc::auth::gateway::GatewayKeys;
use airlock_approval_svc::auth::oidc::Oidc;
use airlock_approval_svc::auth::reviewer::{hash_api_key, ReviewerDirectory};
use airlock_approval_svc::config::{Config, ReviewerConfig};
use airlock_approval_svc::credentials::{Credentials, JwtHs256, Profile, StaticSecret};
use airlock_approval_svc::lifecycle::ExpiryLimits;
use airlock_approval_svc::store::SqliteStore;
use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

pub const GATEWAY_KEY: [u8; 32] = [0x11; 32];
pub const OLD_GATEWAY_KEY: [u8; 32] = [0x22; 32];
pub const AUDIT_KEY: [u8; 32] = [0x33; 32];
pub const JWT_KEY: [u8; 32] = [0x44; 32];
pub const AGENT: &str = "spiffe://corp/agent/report-bot";

pub struct Service {
    pub state: AppState,
    pub router: Router,
    pub db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub fn service() -> Service {
    service_with(None, None)
}

/// The test service with an OIDC verifier and/or other credential profiles (`None`: the
/// API-key-only directory and the default `export-api` / `legacy` profiles).
pub fn service_with(oidc: Option<Oidc>, credentials: Option<Credentials>) -> Service {
    service_full(oidc, credentials, GatewayGuards::default())
}

/// The test service with the given gateway guards (long-poll bound, replay cache).
pub fn service_with_guards(guards: GatewayGuards) -> Service {
    service_full(None, None, guards)
}

fn service_full(oidc: Option<Oidc>, credentials: Option<Credentials>, guards: GatewayGuards) -> Service {
    service_in(tempfile::tempdir().unwrap(), oidc, credentials, guards)
}

pub const SLACK_SIGNING_SECRET: &str = "slack-signing-secret-for-tests";

/// The test service with a Slack app configured (its Web API unreachable: nothing is
/// posted), for interactivity callbacks.
pub fn service_with_slack() -> Service {
    let base = service();
    let secret = base._dir.path().join("slack-signing");
    let token = base._dir.path().join("slack-token");
    std::fs::write(&secret, SLACK_SIGNING_SECRET).unwrap();
    std::fs::write(&token, "xoxb-test").unwrap();
    let config = parse_config(&format!(
        "[slack]\nbot_token_file = {token:?}\nsigning_secret_file = {secret:?}\napp_id = \"A1\"\nteam_id = \"T1\"\n\
         api_base_url = \"http://127.0.0.1:9/api/\"\nchannels = []\n"
    ));
    let channels = airlock_approval_svc::channels::Channels::load(
        config.teams.as_ref(),
        config.slack.as_ref(),
        &config.webhooks,
        base.state.store().clone(),
    )
    .unwrap();
    let state: AppState = Arc::new(State {
        approvals: Arc::new(Approvals::new(base.state.store().clone())),
        gateway_keys: base.state.gateway_keys.clone(),
        reviewers: base.state.reviewers.clone(),
        credentials: Credentials::default(),
        limits: base.state.limits,
        max_quorum: base.state.max_quorum,
        max_hold: base.state.max_hold,
        guards: GatewayGuards::default(),
        channels,
        bundles_dir: None,
    });
    Service { router: app(state.clone()), state, db: base.db, _dir: base._dir }
}

/// The service stopped and started again on the same database: nothing held in memory
/// survives (replay caches, long-polls), only what the store keeps.
pub fn restart(old: Service) -> Service {
    let Service { state, router, _dir, .. } = old;
    drop(router);
    drop(state);
    service_in(_dir, None, None, GatewayGuards::default())
}

/// The test service whose denials answer identical retries for `window`
/// (`approvals.denied_retry_window`).
pub fn service_with_denied_retry_window(window: Duration) -> Service {
    service_in_with(tempfile::tempdir().unwrap(), None, None, GatewayGuards::default(), window)
}

fn service_in(
    dir: tempfile::TempDir,
    oidc: Option<Oidc>,
    credentials: Option<Credentials>,
    guards: GatewayGuards,
) -> Service {
    let window = airlock_approval_svc::store::DEFAULT_DENIED_RETRY_WINDOW;
    service_in_with(dir, oidc, credentials, guards, window)
}

fn service_in_with(
    dir: tempfile::TempDir,
    oidc: Option<Oidc>,
    credentials: Option<Credentials>,
    guards: GatewayGuards,
    denied_retry_window: Duration,
) -> Service {
    let db = dir.path().join("airlock.db");
    let store =
        SqliteStore::open(&db, Some(AUDIT_KEY.to_vec()), 5).unwrap().with_denied_retry_window(denied_retry_window);
    let reviewers = ["bob", "carol", "alice", "dave"]
        .iter()
        .map(|name| ReviewerConfig {
            id: format!("{name}@corp.example"),
            groups: if *name == "dave" { vec!["sre".into()] } else { vec!["data-owners".into()] },
            aliases: vec![format!("U-{name}")],
            api_key_sha256: Some(hash_api_key(&format!("{name}-key"))),
        })
        .collect::<Vec<_>>();
    let mut profiles = BTreeMap::new();
    profiles.insert(
        "export-api".to_string(),
        Profile::JwtHs256(JwtHs256::new(
            JWT_KEY.to_vec(),
            Duration::from_secs(300),
            "authorization".into(),
            "airlock".into(),
        )),
    );
    profiles
        .insert("legacy".to_string(), Profile::Static(StaticSecret::new("s3cr3t-static".into(), "x-api-key".into())));
    let state: AppState = Arc::new(State {
        approvals: Arc::new(Approvals::new(Arc::new(store))),
        gateway_keys: GatewayKeys::new(vec![
            ("k2".into(), GATEWAY_KEY.to_vec()),
            ("k1".into(), OLD_GATEWAY_KEY.to_vec()),
        ]),
        reviewers: ReviewerDirectory::new(&reviewers, oidc),
        credentials: credentials.unwrap_or_else(|| Credentials::from_profiles(profiles)),
        limits: ExpiryLimits {
            default_expires_in: Duration::from_secs(900),
            max_expires_in: Duration::from_secs(3600),
            max_reuse_window: Duration::from_secs(3600),
        },
        max_quorum: 10,
        max_hold: Duration::from_secs(10),
        guards,
        channels: Default::default(),
        bundles_dir: None,
    });
    Service { router: app(state.clone()), state, db, _dir: dir }
}

/// The test service serving policy bundles from `bundles` (`GET /v1/bundles/{name}`).
pub fn service_with_bundles(bundles: std::path::PathBuf) -> Service {
    let base = service();
    let state: AppState = Arc::new(State {
        approvals: Arc::new(Approvals::new(base.state.store().clone())),
        gateway_keys: base.state.gateway_keys.clone(),
        reviewers: base.state.reviewers.clone(),
        credentials: Credentials::default(),
        limits: base.state.limits,
        max_quorum: base.state.max_quorum,
        max_hold: base.state.max_hold,
        guards: GatewayGuards::default(),
        channels: Default::default(),
        bundles_dir: Some(bundles),
    });
    Service { router: app(state.clone()), state, db: base.db, _dir: base._dir }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn hmac_hex(key: &[u8], msg: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg.as_bytes());
    format!("v1={}", hex::encode(m.finalize().into_bytes()))
}

/// A request signed exactly as docs/protocol.md says.
pub fn signed_request(key_id: &str, key: &[u8], ts: i64, path: &str, body: &str) -> Request<Body> {
    let msg = format!("airlock-v1-request\n{ts}\nPOST\n{path}\n{}", hex::encode(Sha256::digest(body.as_bytes())));
    Request::post(path)
        .header("content-type", "application/json")
        .header("x-airlock-key-id", key_id)
        .header("x-airlock-timestamp", ts.to_string())
        .header("x-airlock-signature", hmac_hex(key, &msg))
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub struct Answer {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

pub async fn send(router: &Router, req: Request<Body>) -> Answer {
    let resp: Response<Body> = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

/// Sends a signed gateway call and checks the answer's signature binds to it.
pub async fn gateway(router: &Router, path: &str, body: &Value) -> Answer {
    let text = body.to_string();
    let req = signed_request("k2", &GATEWAY_KEY, now_secs(), path, &text);
    let request_sig = req.headers()["x-airlock-signature"].to_str().unwrap().to_string();
    let answer = send(router, req).await;
    let ts = answer.headers["x-airlock-timestamp"].to_str().unwrap();
    assert!((ts.parse::<i64>().unwrap() - now_secs()).abs() <= 60);
    assert_eq!(answer.headers["x-airlock-key-id"], "k2");
    let msg = format!(
        "airlock-v1-response\n{ts}\n{}\n{request_sig}\n{}",
        answer.status,
        hex::encode(Sha256::digest(&answer.body))
    );
    assert_eq!(
        answer.headers["x-airlock-signature"].to_str().unwrap(),
        hmac_hex(&GATEWAY_KEY, &msg),
        "answer signature"
    );
    answer
}

pub fn digest(tag: &str) -> String {
    hex::encode(Sha256::digest(tag.as_bytes()))
}

pub fn create_body(digest: &str, hold_ms: u64, credential: Option<&str>, quorum: u32) -> Value {
    json!({
        "decision_id": "dec_1",
        "agent": {"id": AGENT, "source": "header", "owner": "alice@corp.example", "acts_for": ["U-carol"]},
        "digest": digest,
        "hold_ms": hold_ms,
        "policy": {"revision": "r1", "rule": "pii-export", "reason": "exports customer PII", "risk": "high",
                   "approvers": {"groups": ["data-owners"], "quorum": quorum},
                   "expires_in": "15m", "credential": credential, "reuse": "once"},
        "request": {"id": "req-1", "method": "POST", "scheme": "https", "host": "api.example.com", "port": 443,
                    "path": "/v1/exports", "query": {"format": ["csv"]}, "headers": {"content-type": "application/json"},
                    "body": {"customer": {"ssn": "[REDACTED]"}}, "body_size": 42, "body_sha256": digest}
    })
}

pub async fn reviewer(router: &Router, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Answer {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    let req = match body {
        Some(v) => b.header("content-type", "application/json").body(Body::from(v.to_string())).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    send(router, req).await
}

/// Parses `sections` (TOML: `[oidc]`, `[credentials.x]`, ...) as the service would, after
/// a minimal `[gateway]` (its secret is never read here).
pub fn parse_config(sections: &str) -> Config {
    let text = format!("[gateway]\nkeys = [{{ id = \"k2\", secret_env = \"AIRLOCK_TEST_UNUSED\" }}]\n\n{sections}");
    Config::from_toml(&text, |_| None).unwrap()
}

/// One request a [`FakeServer`] received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What a [`FakeServer`] does with a request.
pub enum Reply {
    /// Answer with this status and JSON text.
    Json(u16, String),
    /// Say nothing for this long, then close (a hung dependency).
    Hang(Duration),
    /// Answer like `Json`, after this long (a slow dependency).
    JsonAfter(Duration, u16, String),
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A tiny HTTP/1.1 server on 127.0.0.1 standing in for a dependency (JWKS endpoint,
/// credential minter): one thread per connection, `connection: close`, every request
/// recorded. It stops when dropped, and on its own after two minutes at the latest.
pub struct FakeServer {
    pub url: String,
    pub requests: Arc<std::sync::Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    pub fn start(path: &str, handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (rec, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            let give_up = Instant::now() + Duration::from_secs(120);
            while !halt.load(Ordering::SeqCst) && Instant::now() < give_up {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (rec, halt, handler) = (rec.clone(), halt.clone(), handler.clone());
                        std::thread::spawn(move || serve_one(stream, &rec, &halt, &*handler));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
        });
        FakeServer { url, requests, stop }
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_one(mut stream: TcpStream, rec: &std::sync::Mutex<Vec<Recorded>>, halt: &AtomicBool, handler: &Handler) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let mut body = buf[head_end..].to_vec();
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    loop {
        let complete = if chunked { body.ends_with(b"0\r\n\r\n") } else { body.len() >= length };
        if complete {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    if chunked {
        body = dechunk(&body);
    }
    let mut words = head.split_whitespace();
    let recorded = Recorded {
        method: words.next().unwrap_or_default().to_string(),
        path: words.next().unwrap_or_default().to_string(),
        content_type: header("content-type"),
        body,
    };
    rec.lock().unwrap().push(recorded.clone());
    let mut reply = handler(&recorded);
    if let Reply::JsonAfter(after, status, text) = reply {
        let until = Instant::now() + after;
        while Instant::now() < until && !halt.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        reply = Reply::Json(status, text);
    }
    match reply {
        Reply::JsonAfter(..) => {}
        Reply::Json(status, text) => {
            let answer = format!(
                "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.flush();
        }
        Reply::Hang(how_long) => {
            let until = Instant::now() + how_long;
            while Instant::now() < until && !halt.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..p]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = p + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    out
}

/// The JSON `event` text of every audit record of `kind`, in order.
pub fn audit_events(db: &std::path::Path, kind: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT event FROM audit_records WHERE kind = ?1 ORDER BY seq").unwrap();
    stmt.query_map([kind], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}
