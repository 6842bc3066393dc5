//! Signed bundles in real Envoy: the filter polls a bundle from an Envoy cluster (a local
//! static server with ETags), and new revisions swap in under a bounded load — no
//! request fails or is wrongly allowed during the swap, a tampered bundle is refused and
//! the old one keeps serving, and decision records carry the revision that decided.
//!
//! Needs `bash scripts/setup.sh` (Envoy) and `bash scripts/build-wasm.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_bundle::{build, sign, Entry, Limits};
use airlock_tests::e2e::client::Request;
use airlock_tests::e2e::fake_service::FakeService;
use airlock_tests::e2e::gateway::{self, Gateway};
use airlock_tests::e2e::plugin::{plugin_config, service_keys, PluginOptions};
use airlock_tests::e2e::server::{Handler, Received, Reply, Server};
use e2e_support::*;
use serde_json::json;

const KEY_ID: &str = "e2e-bundles";
const KEY: &[u8; 32] = b"airlock-e2e-bundle-key-32-bytes!";
const BUNDLE_PATH: &str = "/bundles/airlock.tar.gz";
/// The demo config's upstream cluster; the test server answers both agent traffic and
/// bundle polls, so the shipped config needs no extra cluster.
const BUNDLE_CLUSTER: &str = "sample_upstream";
const POLL_MS: u64 = 1_000;
const LOAD_THREADS: usize = 4;

const POLICY: &str = r#"package airlock

import rego.v1

default decision := {"effect": "deny", "rule": "default-deny", "reason": "no rule matched"}

decision := {"effect": "allow", "rule": "always", "reason": "allowed by every revision"} if {
	input.request.path == "/v1/always"
}

decision := {"effect": "allow", "rule": "flip", "reason": "allowed while data.flip.allowed"} if {
	input.request.path == "/v1/flip"
	data.flip.allowed
}
"#;

fn bundle(revision: &str, flip_allowed: bool) -> Vec<u8> {
    let files = vec![
        Entry { name: ".manifest".into(), bytes: json!({"revision": revision}).to_string().into_bytes() },
        Entry { name: "airlock/policy.rego".into(), bytes: POLICY.as_bytes().to_vec() },
        Entry { name: "flip/data.json".into(), bytes: json!({"allowed": flip_allowed}).to_string().into_bytes() },
    ];
    sign(&build(files, None).unwrap(), KEY_ID, KEY, &Limits::default()).unwrap()
}

/// A signed bundle whose policy was then edited to allow `/v1/never`: must be refused.
fn tampered(revision: &str) -> Vec<u8> {
    let mut entries = airlock_bundle::read_archive(&bundle(revision, true), &Limits::default()).unwrap();
    let rego = entries.iter_mut().find(|e| e.name == "airlock/policy.rego").unwrap();
    rego.bytes = POLICY.replace("/v1/always", "/v1/never").into_bytes();
    airlock_bundle::write_archive(&entries).unwrap()
}

/// The bundle being served: (ETag, bytes).
type Published = Arc<Mutex<(String, Vec<u8>)>>;

struct Served {
    server: Server,
    published: Published,
    upstream: Arc<Mutex<Vec<Received>>>,
    polls: Arc<AtomicU64>,
    not_modified: Arc<AtomicU64>,
}

/// One local server: `GET /bundles/…` is a static file server with ETags (what nginx
/// does); every other request is the recording upstream.
fn serve(first: (&str, Vec<u8>)) -> Served {
    let published: Published = Arc::new(Mutex::new((format!("\"{}\"", first.0), first.1)));
    let upstream = Arc::new(Mutex::new(Vec::new()));
    let polls = Arc::new(AtomicU64::new(0));
    let not_modified = Arc::new(AtomicU64::new(0));
    let (p, u, n, nm) = (published.clone(), upstream.clone(), polls.clone(), not_modified.clone());
    let handler: Handler = Arc::new(move |req: Received| {
        let reply = if req.path == BUNDLE_PATH {
            n.fetch_add(1, Ordering::SeqCst);
            let (etag, bytes) = p.lock().unwrap().clone();
            if req.header("if-none-match") == Some(etag.as_str()) {
                nm.fetch_add(1, Ordering::SeqCst);
                Reply { status: 304, headers: vec![("etag".into(), etag)], body: vec![] }
            } else {
                let headers = vec![("etag".into(), etag), ("content-type".into(), "application/gzip".into())];
                Reply { status: 200, headers, body: bytes }
            }
        } else {
            u.lock().unwrap().push(req);
            Reply::json(200, &json!({"upstream": true}))
        };
        Box::pin(async move { reply })
    });
    let server = Server::start("bundles", None, handler).unwrap();
    Served { server, published, upstream, polls, not_modified }
}

fn publish(s: &Served, revision: &str, bytes: Vec<u8>) {
    *s.published.lock().unwrap() = (format!("\"{revision}\""), bytes);
}

fn get(gw: &Gateway, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let resp = send(gw, &as_agent(Request::get(path), "bundle-swap").timeout(Duration::from_secs(5)));
    (resp.status, started.elapsed())
}

/// Polls `path` until it answers `status` (bounded); returns how long that took.
fn until(gw: &Gateway, path: &str, status: u16, timeout: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if get(gw, path).0 == status {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    gw.envoy.print_log();
    panic!("{path} never answered {status} within {timeout:?}");
}

#[derive(Debug)]
struct Sample {
    path: &'static str,
    status: u16,
    at: Instant,
    latency: Duration,
}

#[test]
fn bundle_swap() {
    let wasm = filter_module();
    let served = serve(("rev-a", bundle("rev-a", true)));
    let service = FakeService::start(service_keys().unwrap()).unwrap();
    let mut plugin = plugin_config(&PluginOptions::default());
    plugin["policy"] = json!({
        "bundle": {"cluster": BUNDLE_CLUSTER, "path": BUNDLE_PATH, "authority": "bundles.test", "poll_ms": POLL_MS},
        "bundle_keys": [{"key_id": KEY_ID, "key_base64": b64(KEY)}]
    });
    let mut vars = gateway::test_vars(&wasm, &plugin);
    vars.insert("AIRLOCK_UPSTREAM_PORT".into(), served.server.port().to_string());
    vars.insert("AIRLOCK_APPROVAL_PORT".into(), service.port().to_string());
    let gw = start_gateways(vec![("bundle-swap", "demo.yaml", vars)]).pop().unwrap();

    // The first poll goes out at configure time; rev-a serves within moments.
    let first_load = until(&gw, "/v1/always", 200, Duration::from_secs(10));
    assert_eq!(get(&gw, "/v1/flip").0, 200, "rev-a allows /v1/flip");

    // Bounded load: LOAD_THREADS clients in a loop over three paths.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let workers: Vec<_> = (0..LOAD_THREADS)
        .map(|_| {
            let (stop, samples, addr) = (stop.clone(), samples.clone(), gw.addr);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    for path in ["/v1/always", "/v1/never", "/v1/flip"] {
                        let at = Instant::now();
                        let req = as_agent(Request::get(path), "bundle-swap").timeout(Duration::from_secs(5));
                        let status = req.send(addr).map(|r| r.status).unwrap_or(0);
                        samples.lock().unwrap().push(Sample { path, status, at, latency: at.elapsed() });
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));

    // rev-b denies /v1/flip: time until the gateway enforces it.
    let published_b = Instant::now();
    publish(&served, "rev-b", bundle("rev-b", false));
    let swap = until(&gw, "/v1/flip", 403, Duration::from_secs(10));
    let swapped_at = Instant::now();
    std::thread::sleep(Duration::from_millis(3 * POLL_MS));

    // A tampered bundle (it would allow /v1/never) is refused; rev-b keeps serving.
    publish(&served, "rev-c", tampered("rev-c"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let rejected = loop {
        let n = gw.envoy.stat("wasmcustom.airlock.bundle.rejected").unwrap().unwrap_or(0);
        if n > 0 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(2 * POLL_MS));
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let samples = samples.lock().unwrap();

    assert!(rejected > 0, "the tampered bundle must be refused\n{}", gw.envoy.log());
    assert!(
        !gw.envoy.log_lines_with("policy bundle refused (keeping revision `rev-b`)").is_empty(),
        "{}",
        gw.envoy.log()
    );
    let failed: Vec<_> = samples.iter().filter(|s| s.path == "/v1/always" && s.status != 200).collect();
    assert!(failed.is_empty(), "requests allowed by every revision failed during the swap: {failed:?}");
    let wrongly: Vec<_> = samples.iter().filter(|s| s.path == "/v1/never" && s.status != 403).collect();
    assert!(wrongly.is_empty(), "a request no revision allows was not denied: {wrongly:?}");
    let upstream = served.upstream.lock().unwrap();
    assert!(upstream.iter().all(|r| r.path != "/v1/never"), "/v1/never reached the upstream");
    // /v1/flip: allowed before rev-b was published, denied once it was enforced.
    let flips: Vec<_> = samples.iter().filter(|s| s.path == "/v1/flip").collect();
    assert!(flips.iter().all(|s| s.status == 200 || s.status == 403), "{flips:?}");
    assert!(flips.iter().filter(|s| s.at < published_b).all(|s| s.status == 200), "{flips:?}");
    assert!(flips.iter().filter(|s| s.at > swapped_at).all(|s| s.status == 403), "{flips:?}");
    assert!(served.not_modified.load(Ordering::SeqCst) > 0, "polls use If-None-Match and get 304");

    // Records carry the revision that decided; nothing ran under the refused one.
    let flip_under_b = service
        .wait_for_decision(|r| r["path"] == "/v1/flip" && r["policy_revision"] == "rev-b", Duration::from_secs(5));
    assert!(flip_under_b.is_some_and(|r| r["effect"] == "deny"), "rev-b denies /v1/flip");
    let records = service.decision_records();
    let allowed_under_a =
        |r: &serde_json::Value| r["path"] == "/v1/flip" && r["policy_revision"] == "rev-a" && r["effect"] == "allow";
    assert!(records.iter().any(allowed_under_a));
    assert!(records.iter().all(|r| r["policy_revision"] != "rev-c"), "refused revision decided something");

    // Cost of a realistic swap: the example library (18 modules) through V8.
    let dir = airlock_tests::wasm::workspace_root().join("policies/library");
    let library = airlock_bundle::build_dir(&dir, Some("library-1")).unwrap();
    publish(&served, "library-1", sign(&library, KEY_ID, KEY, &Limits::default()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.envoy.log_lines_with("revision `library-1` loaded").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!gw.envoy.log_lines_with("revision `library-1` loaded").is_empty(), "{}", gw.envoy.log());
    for line in gw.envoy.log_lines_with("loaded (") {
        println!("bundle_swap: {}", line.trim());
    }
    let max_latency = samples.iter().map(|s| s.latency).max().unwrap_or_default();
    let mut latencies: Vec<_> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or_default();
    println!(
        "bundle_swap: first load {first_load:?}; rev-b enforced {swap:?} after publishing (poll {POLL_MS} ms ±10 %); \
         {} requests under load, p50 {p50:?}, max {max_latency:?}; {} polls, {} answered 304",
        samples.len(),
        served.polls.load(Ordering::SeqCst),
        served.not_modified.load(Ordering::SeqCst)
    );
}

fn b64(k: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(k)
}
