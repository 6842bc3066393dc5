//! In-process service and protocol helpers for the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use airlock_approval_svc::api::{app, AppState, State};
use airlock_approval_svc::auth::gateway::GatewayKeys;
use airlock_approval_svc::auth::reviewer::{hash_api_key, ReviewerDirectory};
use airlock_approval_svc::config::ReviewerConfig;
use airlock_approval_svc::credentials::{Credentials, JwtHs256, Profile, StaticSecret};
use airlock_approval_svc::lifecycle::ExpiryLimits;
use airlock_approval_svc::metrics::Metrics;
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
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("airlock.db");
    let store = SqliteStore::open(&db, Some(AUDIT_KEY.to_vec()), 5).unwrap();
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
        Profile::JwtHs256(JwtHs256::new(JWT_KEY.to_vec(), Duration::from_secs(300), "authorization".into(), "airlock".into())),
    );
    profiles.insert("legacy".to_string(), Profile::Static(StaticSecret::new("s3cr3t-static".into(), "x-api-key".into())));
    let (changes, _) = tokio::sync::watch::channel(0u64);
    let state: AppState = Arc::new(State {
        store: Arc::new(store),
        gateway_keys: GatewayKeys::new(vec![("k2".into(), GATEWAY_KEY.to_vec()), ("k1".into(), OLD_GATEWAY_KEY.to_vec())]),
        reviewers: ReviewerDirectory::new(&reviewers, None),
        credentials: Credentials::from_profiles(profiles),
        limits: ExpiryLimits { default_expires_in: Duration::from_secs(900), max_expires_in: Duration::from_secs(3600) },
        max_hold: Duration::from_secs(10),
        changes,
        metrics: Metrics::default(),
    });
    Service { router: app(state.clone()), state, db, _dir: dir }
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
    assert_eq!(answer.headers["x-airlock-signature"].to_str().unwrap(), hmac_hex(&GATEWAY_KEY, &msg), "answer signature");
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
