//! Cost of one request through the real filter module in wasmtime, with the demo policy
//! (`policies/demo`): an allowed GET (`on_request_headers` → `Continue`, then
//! `on_log`/`on_done`/`on_delete`), a denied DELETE (local 403 problem+json), and an
//! approval answered `pending` (create-or-find callout, signed answer, local 403).
//!
//! Run: `cargo bench -p airlock-tests --bench wasm_request` (needs the release filter:
//! `cargo build -p airlock-filter-wasm --target wasm32-wasip1 --release`).
//!
//! Only the request itself is timed (`iter_custom`): shipping the decision log that the
//! requests fill (a tick and its signed 202 answer, once per 1024 requests) happens
//! outside the measurement. The numbers include this test host's own bookkeeping
//! (header maps, stream state), so they are an upper bound on the filter's share of an
//! Envoy worker's time, not Envoy's total per-request cost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant, UNIX_EPOCH};

use airlock_tests::host::{Callout, Host, Outcome};
use airlock_tests::wasm::workspace_root;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const KEY: [u8; 32] = [7; 32];
const AGENT: &str = "spiffe://corp/agent/report-bot";
/// Ship the decision log (outside the timing) after this many requests.
const SHIP_EVERY: u64 = 1024;

fn demo_host() -> Host {
    let dir = workspace_root().join("policies").join("demo");
    let rego = std::fs::read_to_string(dir.join("airlock.rego")).unwrap();
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data.json")).unwrap()).unwrap();
    let config = serde_json::json!({
        "policy": {"modules": {"airlock.rego": rego}, "data": data, "revision": "demo-bench"},
        "identity": {"source": "header", "header": "x-airlock-agent",
                     "agents": {AGENT: {"owner": "alice@corp.example"}}},
        "approval_service": {
            "cluster": "airlock_approval",
            "signing": {"key_id": "k1",
                        "key_base64": base64::engine::general_purpose::STANDARD.encode(KEY)}
        },
        "request": {
            "input_headers": ["content-type", "user-agent"],
            "significant_headers": ["content-type"],
            "upstream_scheme": "https"
        },
        "decision_log": {"max_queue": 4096, "max_batch": 1024}
    });
    Host::new(config.to_string()).unwrap_or_else(|e| panic!("{e:#}"))
}

fn sign_answer(host: &Host, call: &Callout, status: u16, body: &[u8]) -> Vec<(String, String)> {
    let ts = host.now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
    let request_sig = call.header("x-airlock-signature").unwrap();
    let message = format!("airlock-v1-response\n{ts}\n{status}\n{request_sig}\n{}", hex::encode(Sha256::digest(body)));
    let mut mac = Hmac::<Sha256>::new_from_slice(&KEY).unwrap();
    mac.update(message.as_bytes());
    vec![
        ("x-airlock-key-id".into(), "k1".into()),
        ("x-airlock-timestamp".into(), ts),
        ("x-airlock-signature".into(), format!("v1={}", hex::encode(mac.finalize().into_bytes()))),
    ]
}

fn respond(host: &mut Host, call: &Callout, status: u16, body: &[u8]) {
    let headers = sign_answer(host, call, status, body);
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    host.respond_callout(call.token, status, &pairs, body).unwrap();
}

/// Ships whatever the requests queued, as the root timer would, and accepts it.
fn ship_decision_log(host: &mut Host) {
    host.tick().unwrap();
    for call in host.pending_callouts() {
        if call.path().as_deref() == Some("/v1/gateway/decisions") {
            respond(host, &call, 202, b"{}");
        }
    }
}

fn allowed(host: &mut Host) -> airlock_tests::host::Stream {
    host.request()
        .method("GET")
        .scheme("https")
        .authority("api.example.com")
        .path("/v1/reports?year=2026&limit=50")
        .header("x-airlock-agent", AGENT)
        .header("user-agent", "report-bot/1.0")
        .header("accept", "application/json")
        .header("authorization", "Bearer agent-token")
        .send()
        .unwrap()
}

fn denied(host: &mut Host) -> airlock_tests::host::Stream {
    host.request()
        .method("DELETE")
        .scheme("https")
        .authority("api.example.com")
        .path("/v1/reports/42")
        .header("x-airlock-agent", AGENT)
        .header("user-agent", "report-bot/1.0")
        .header("authorization", "Bearer agent-token")
        .send()
        .unwrap()
}

const EXPORT_BODY: &str =
    r#"{"format":"csv","destination":{"bucket":"s3://exports","credentials":"AKIA..."},"rows":10000}"#;

fn approval_pending(host: &mut Host) -> airlock_tests::host::Stream {
    let stream = host
        .request()
        .method("POST")
        .scheme("https")
        .authority("api.example.com")
        .path("/v1/exports?format=csv")
        .header("x-airlock-agent", AGENT)
        .header("user-agent", "report-bot/1.0")
        .header("content-type", "application/json")
        .body(EXPORT_BODY)
        .send()
        .unwrap();
    let call = host
        .pending_callouts()
        .into_iter()
        .find(|c| c.context_id == stream.id())
        .unwrap_or_else(|| panic!("no create call: {:?}", stream.outcome()));
    respond(host, &call, 200, br#"{"approval_id":"apr_bench","status":"pending","retry_after":10}"#);
    stream
}

/// Runs `request` `iters` times and returns the time spent in the requests only.
fn timed(host: &mut Host, iters: u64, request: fn(&mut Host) -> airlock_tests::host::Stream) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let started = Instant::now();
        let stream = request(host);
        host.finish(&stream).unwrap();
        total += started.elapsed();
        std::hint::black_box(&stream);
        if (i + 1) % SHIP_EVERY == 0 {
            ship_decision_log(host);
        }
    }
    ship_decision_log(host);
    total
}

fn check(host: &mut Host) {
    let s = allowed(host);
    assert!(s.reached_upstream(), "{:?}\n{}", s.outcome(), host.logs_text());
    let s = denied(host);
    assert_eq!(s.response_status(), Some(403), "{:?}", s.outcome());
    let s = approval_pending(host);
    match s.outcome() {
        Outcome::LocalReply(r) if r.body_text().contains("approval-pending") => {}
        other => panic!("expected approval-pending: {other:?}\n{}", host.logs_text()),
    }
    ship_decision_log(host);
}

fn bench(c: &mut Criterion) {
    let mut host = demo_host();
    check(&mut host);
    let mut group = c.benchmark_group("wasm_request");
    group.bench_function("allow_get_demo_policy", |b| b.iter_custom(|iters| timed(&mut host, iters, allowed)));
    group.bench_function("deny_delete_demo_policy", |b| b.iter_custom(|iters| timed(&mut host, iters, denied)));
    group.bench_function("approve_pending_demo_policy", |b| {
        b.iter_custom(|iters| timed(&mut host, iters, approval_pending))
    });
    group.finish();
    assert!(!host.is_failed(), "{:?}", host.failure());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
