//! Cost of the approve route with a body through the real filter module in wasmtime
//! (issue 12): the library policy (`policies/library`, a signed bundle given inline)
//! and `POST api.example.com/v1/exports` with a 1 KB and a 64 KB JSON body, delivered
//! in 16 KB chunks as a proxy reads them, repeated so the service answers with the
//! existing (pending) approval.
//!
//! Three variants at each size take the cost apart:
//! - `approve_json`: the route under test (hash, JSON read, policy, redaction, the
//!   signed create-or-find call, the signed `pending` answer, the 403);
//! - `allow_json`: the same body to an internal destination, allowed: no call, no
//!   redaction — what reading and deciding the body costs;
//! - `approve_octets`: the same bytes as `application/octet-stream`, still approved by
//!   route: hashing and the call, no JSON read and no body shown to reviewers.
//!
//! Run: `cargo bench -p airlock-tests --bench wasm_body` (needs the release filter:
//! `bash scripts/build-wasm.sh`; `AIRLOCK_WASM` picks another module). The native
//! stage-by-stage counterpart is `filter/benches/body.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant, UNIX_EPOCH};

use airlock_bundle::{sign, Limits};
use airlock_tests::host::{Callout, Host, Outcome, Stream};
use airlock_tests::wasm::workspace_root;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

const KEY: [u8; 32] = [7; 32];
const BUNDLE_KEY: [u8; 32] = [42; 32];
const AGENT: &str = "spiffe://corp/agent/report-bot";
const APPROVALS: &str = "/v1/gateway/approvals";
const DECISIONS: &str = "/v1/gateway/decisions";
const PENDING: &[u8] = br#"{"approval_id":"apr_bench","status":"pending","retry_after":10}"#;
/// Ship the decision log (outside the timing) after this many requests.
const SHIP_EVERY: u64 = 1024;
/// How a proxy hands a body over: in reads of this size.
const CHUNK: usize = 16 * 1024;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn library_host() -> Host {
    let dir = workspace_root().join("policies/library");
    let bundle = airlock_bundle::build_dir(&dir, Some("body-bench")).unwrap();
    let bundle = sign(&bundle, "bundles-1", &BUNDLE_KEY, &Limits::default()).unwrap();
    let config = json!({
        "policy": {"bundle": {"base64": b64(&bundle)},
                   "bundle_keys": [{"key_id": "bundles-1", "key_base64": b64(&BUNDLE_KEY)}]},
        "identity": {"source": "header", "header": "x-airlock-agent",
                     "agents": {AGENT: {"owner": "alice@corp.example"}}},
        "approval_service": {"cluster": "airlock_approval",
                             "signing": {"key_id": "k1", "key_base64": b64(&KEY)}},
        "request": {
            "input_headers": ["content-type", "x-amz-target"],
            "significant_headers": ["content-type"],
            "upstream_scheme": "https"
        },
        "decision_log": {"max_queue": 4096, "max_batch": 1024}
    });
    Host::new(config.to_string()).unwrap_or_else(|e| panic!("{e:#}"))
}

/// An export request body of at most `size` bytes to `uri`, with rows of customer data
/// and the destination's credentials (which the `exports` module redacts).
fn export_body(size: usize, uri: &str) -> Vec<u8> {
    let mut out =
        format!(r#"{{"format":"csv","destination":{{"uri":"{uri}","credentials":"AKIAEXAMPLEKEY"}},"rows":["#);
    let mut i = 0;
    loop {
        let row = format!(
            r#"{}{{"id":{i},"customer":"customer-{i:05}","email":"customer-{i:05}@example.com","amount":{}.5,"active":{}}}"#,
            if i == 0 { "" } else { "," },
            i * 7 % 1000,
            i % 2 == 0
        );
        if out.len() + row.len() + 2 > size && i > 0 {
            break;
        }
        out.push_str(&row);
        i += 1;
    }
    out.push_str("]}");
    out.into_bytes()
}

fn respond(host: &mut Host, call: &Callout, status: u16, body: &[u8]) {
    let ts = host.now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
    let request_sig = call.header("x-airlock-signature").unwrap();
    let message = format!("airlock-v1-response\n{ts}\n{status}\n{request_sig}\n{}", hex::encode(Sha256::digest(body)));
    let mut mac = Hmac::<Sha256>::new_from_slice(&KEY).unwrap();
    mac.update(message.as_bytes());
    let sig = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    let headers = [("x-airlock-key-id", "k1"), ("x-airlock-timestamp", ts.as_str()), ("x-airlock-signature", &sig)];
    host.respond_callout(call.token, status, &headers, body).unwrap();
}

fn ship_decision_log(host: &mut Host) {
    host.tick().unwrap();
    for call in host.pending_callouts() {
        if call.path().as_deref() == Some(DECISIONS) {
            respond(host, &call, 202, b"{}");
        }
    }
}

struct Case {
    name: String,
    content_type: &'static str,
    body: Vec<u8>,
}

/// One whole request: sent in chunks, the approval call (if any) answered `pending`.
fn request(host: &mut Host, case: &Case) -> Stream {
    let stream = host
        .request()
        .method("POST")
        .scheme("https")
        .authority("api.example.com")
        .path("/v1/exports?format=csv")
        .header("x-airlock-agent", AGENT)
        .header("content-type", case.content_type)
        .header("content-length", &case.body.len().to_string())
        .body_chunks(case.body.chunks(CHUNK))
        .send()
        .unwrap();
    let call = host.pending_callouts().into_iter().find(|c| c.context_id == stream.id());
    if let Some(call) = call {
        assert!(call.path().as_deref().is_some_and(|p| p.starts_with(APPROVALS)), "{:?}", call.path());
        respond(host, &call, 200, PENDING);
    }
    host.finish(&stream).unwrap();
    stream
}

fn check(host: &mut Host, case: &Case) {
    let stream = request(host, case);
    let pending = matches!(stream.outcome(), Outcome::LocalReply(ref r) if r.body_text().contains("approval-pending"));
    let allowed = stream.reached_upstream();
    assert!(
        if case.name.starts_with("allow") { allowed } else { pending },
        "{}: {:?}\n{}",
        case.name,
        stream.outcome(),
        host.logs_text()
    );
    ship_decision_log(host);
}

fn timed(host: &mut Host, iters: u64, case: &Case) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let started = Instant::now();
        let stream = request(host, case);
        total += started.elapsed();
        std::hint::black_box(&stream);
        if (i + 1) % SHIP_EVERY == 0 {
            ship_decision_log(host);
        }
    }
    ship_decision_log(host);
    total
}

fn bench(c: &mut Criterion) {
    let mut host = library_host();
    let mut cases = Vec::new();
    for (label, size) in [("1k", 1024), ("64k", 64 * 1024)] {
        let external = export_body(size, "s3://partner");
        let internal = export_body(size, "s3://corp-analytics");
        cases.push(Case {
            name: format!("approve_json_{label}"),
            content_type: "application/json",
            body: external.clone(),
        });
        cases.push(Case { name: format!("allow_json_{label}"), content_type: "application/json", body: internal });
        cases.push(Case {
            name: format!("approve_octets_{label}"),
            content_type: "application/octet-stream",
            body: external,
        });
    }
    for case in &cases {
        check(&mut host, case);
    }
    let mut group = c.benchmark_group("wasm_body");
    for case in &cases {
        group.bench_function(&case.name, |b| b.iter_custom(|iters| timed(&mut host, iters, case)));
    }
    group.finish();
    assert!(!host.is_failed(), "{:?}", host.failure());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
