//! Cost of one request through the real filter module in wasmtime with the example
//! policy library (`policies/library`), one benchmark per example input in
//! `policies/library/examples`. The library is loaded as the gateway loads it: built and
//! signed into a bundle, given inline in the plugin configuration.
//!
//! Each example's `input.request` becomes a real request (method, authority, path with
//! its query string, headers, JSON body) from the example's agent, so the whole
//! request is timed: headers (and body) → action, identity, digest, input, RVM
//! evaluation, decision, then `on_log`/`on_done`/`on_delete`. An `approve` decision also
//! includes the signed create call and its signed `pending` answer (the test side's
//! HMAC included), as `wasm_request`'s approval bench does.
//!
//! Run: `cargo bench -p airlock-tests --bench wasm_library` (needs the release filter:
//! `bash scripts/build-wasm.sh`; `AIRLOCK_WASM` picks another module).
//! `AIRLOCK_LIBRARY_DIR=DIR` loads another policy directory with the same examples (the
//! 9× library: `cargo run --release -p airlock-tests --bin airlock-bench --
//! --write-library9 DIR`), and `AIRLOCK_BENCH_NO_CACHE=1` turns the decision cache off,
//! so every request is evaluated. Results in
//! `policies/library/README.md` ("Evaluation cost"); the native counterpart is
//! `filter/benches/library.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

use airlock_bundle::{sign, Limits};
use airlock_tests::host::{Callout, Host, Outcome, Stream};
use airlock_tests::wasm::workspace_root;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const KEY: [u8; 32] = [7; 32];
const BUNDLE_KEY: [u8; 32] = [42; 32];
const IDENTITY_HEADER: &str = "x-airlock-agent";
const APPROVALS: &str = "/v1/gateway/approvals";
const DECISIONS: &str = "/v1/gateway/decisions";
/// Ship the decision log (outside the timing) after this many requests.
const SHIP_EVERY: u64 = 1024;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One example input, as the request that makes the filter build it.
struct Example {
    name: String,
    method: String,
    authority: String,
    /// Path with the query string.
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    agent: String,
    owner: Option<String>,
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so the filter's
/// query parser gives back exactly the example's values.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn example(name: String, input: &Value) -> Example {
    let r = &input["request"];
    let s = |v: &Value| v.as_str().unwrap().to_string();
    let mut query = Vec::new();
    for (k, values) in r["query"].as_object().unwrap() {
        for v in values.as_array().unwrap() {
            query.push(format!("{}={}", encode(k), encode(v.as_str().unwrap())));
        }
    }
    let mut path = s(&r["path"]);
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let headers = r["headers"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), s(v))).collect();
    Example {
        name,
        method: s(&r["method"]),
        authority: s(&r["host"]),
        path,
        headers,
        body: r.get("body").map(|b| b.to_string()),
        agent: s(&input["agent"]["id"]),
        owner: input["agent"]["owner"].as_str().map(String::from),
    }
}

fn examples() -> Vec<Example> {
    let dir = workspace_root().join("policies/library/examples");
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    assert!(!paths.is_empty(), "no example inputs");
    paths
        .iter()
        .map(|p| {
            let input: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            example(p.file_stem().unwrap().to_str().unwrap().to_string(), &input)
        })
        .collect()
}

fn library_host(examples: &[Example]) -> Host {
    let dir = std::env::var_os("AIRLOCK_LIBRARY_DIR")
        .map_or_else(|| workspace_root().join("policies/library"), std::path::PathBuf::from);
    let bundle = airlock_bundle::build_dir(&dir, Some("library-bench")).unwrap();
    let bundle = sign(&bundle, "bundles-1", &BUNDLE_KEY, &Limits::default()).unwrap();
    let agents: BTreeMap<&str, Value> =
        examples.iter().map(|e| (e.agent.as_str(), json!({"owner": e.owner}))).collect();
    let config = json!({
        "policy": {"bundle": {"base64": b64(&bundle)},
                   "bundle_keys": [{"key_id": "bundles-1", "key_base64": b64(&BUNDLE_KEY)}]},
        "identity": {"source": "header", "header": IDENTITY_HEADER, "agents": agents},
        "approval_service": {"cluster": "airlock_approval",
                             "signing": {"key_id": "k1", "key_base64": b64(&KEY)}},
        "request": {
            // The headers the library's modules read.
            "input_headers": ["content-type", "x-amz-target"],
            "significant_headers": ["content-type"],
            "upstream_scheme": "https"
        },
        "decision_log": {"max_queue": 4096, "max_batch": 1024}
    });
    let mut config = config;
    if std::env::var_os("AIRLOCK_BENCH_NO_CACHE").is_some() {
        config["decision_cache"] = json!({"max_entries": 0});
    }
    Host::new(config.to_string()).unwrap_or_else(|e| panic!("{e:#}"))
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

/// Ships whatever the requests queued, as the root timer would; returns the records.
fn ship_decision_log(host: &mut Host) -> Vec<Value> {
    host.tick().unwrap();
    accept_shipments(host)
}

/// Answers every pending decision-log shipment with 202; returns their records.
fn accept_shipments(host: &mut Host) -> Vec<Value> {
    let mut records = Vec::new();
    for call in host.pending_callouts() {
        if call.path().as_deref() == Some(DECISIONS) {
            records.extend(call.json().unwrap()["records"].as_array().cloned().unwrap_or_default());
            respond(host, &call, 202, b"{}");
        }
    }
    records
}

/// One whole request: sent, an approval create call answered `pending`, finished.
fn request(host: &mut Host, e: &Example) -> Stream {
    let mut b = host
        .request()
        .method(&e.method)
        .scheme("https")
        .authority(&e.authority)
        .path(&e.path)
        .header(IDENTITY_HEADER, &e.agent)
        .header("user-agent", "library-bench/1.0");
    for (k, v) in &e.headers {
        b = b.header(k, v);
    }
    if let Some(body) = &e.body {
        b = b.body(body);
    }
    let stream = b.send().unwrap();
    let create = host.pending_callouts().into_iter().find(|c| c.context_id == stream.id());
    if let Some(call) = create {
        assert_eq!(call.path().as_deref(), Some(APPROVALS));
        respond(host, &call, 200, br#"{"approval_id":"apr_bench","status":"pending","retry_after":10}"#);
    }
    host.finish(&stream).unwrap();
    stream
}

/// Runs one example once untimed and says what the filter decided: the effect and rule
/// from the approval create call (`policy.rule`) or, for allow and deny, from the
/// decision record (approvals are recorded by the approval service, not the filter).
fn check(host: &mut Host, e: &Example) -> String {
    // Past `decision_log.flush_ms`, so the timer ships a record as soon as it exists.
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    accept_shipments(host);
    let stream = request(host, e);
    let outcome = match stream.outcome() {
        _ if stream.reached_upstream() => "upstream".to_string(),
        Outcome::LocalReply(r) => format!("{} {}", r.status, r.json().map(|b| b["type"].clone()).unwrap_or_default()),
        other => panic!("{}: unexpected outcome {other:?}\n{}", e.name, host.logs_text()),
    };
    let create =
        host.callouts().into_iter().find(|c| c.context_id == stream.id() && c.path().as_deref() == Some(APPROVALS));
    let (effect, rule) = match create {
        Some(call) => {
            ("approve".to_string(), call.json().unwrap()["policy"]["rule"].as_str().unwrap_or_default().to_string())
        }
        None => {
            host.advance_time(Duration::from_millis(1_000)).unwrap();
            let records = accept_shipments(host);
            assert_eq!(records.len(), 1, "{}: {records:?}", e.name);
            let r = &records[0];
            (r["effect"].as_str().unwrap_or_default().to_string(), r["rule"].as_str().unwrap_or_default().to_string())
        }
    };
    assert!(!rule.starts_with("airlock."), "{}: the filter refused it: {rule}\n{}", e.name, host.logs_text());
    format!("{}: {effect} {rule} → {outcome}", e.name)
}

/// Runs `e` `iters` times and returns the time spent in the requests only.
fn timed(host: &mut Host, iters: u64, e: &Example) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let started = Instant::now();
        let stream = request(host, e);
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
    let examples = examples();
    let mut host = library_host(&examples);
    for e in &examples {
        println!("{}", check(&mut host, e));
    }
    let mut group = c.benchmark_group("wasm_library");
    for e in &examples {
        group.bench_function(&e.name, |b| b.iter_custom(|iters| timed(&mut host, iters, e)));
    }
    group.finish();
    assert!(!host.is_failed(), "{:?}", host.failure());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
