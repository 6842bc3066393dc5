//! Native cost of the filter's per-request stages, with the demo policy.
//!
//! Run: `cargo bench -p airlock-filter --bench evaluate`. Results and method are
//! recorded in `docs/benchmarks.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_filter::action::Action;
use airlock_filter::config::Config;
use airlock_filter::digest::{action_digest, sha256_hex};
use airlock_filter::flow::{Flow, Step};
use airlock_filter::identity::{self, Agent};
use airlock_filter::input::{self, BodyFacts};
use airlock_filter::metrics::MemoryMetrics;
use airlock_filter::source::{Headers, RequestSource};
use airlock_filter::worker::Worker;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

struct Req(Headers);
impl RequestSource for Req {
    fn headers(&self) -> &Headers {
        &self.0
    }
    fn property(&self, _: &[&str]) -> Option<Vec<u8>> {
        None
    }
}

fn worker() -> Worker {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/demo");
    let rego = std::fs::read_to_string(dir.join("airlock.rego")).unwrap();
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data.json")).unwrap()).unwrap();
    let cfg = serde_json::json!({
        "policy": {"modules": {"airlock.rego": rego}, "data": data},
        "identity": {"source": "header", "header": "x-airlock-agent"},
        "approval_service": {"cluster": "svc", "signing": {"key_id": "k1", "key_base64": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}},
        "request": {"input_headers": ["content-type", "user-agent"], "significant_headers": ["content-type"],
                    "upstream_scheme": "https"},
        "decision_log": {"max_queue": 1000000}
    });
    let config = Config::parse(cfg.to_string().as_bytes()).unwrap();
    Worker::new(config, Box::new(MemoryMetrics::default()), Box::new(|_| {})).unwrap()
}

fn get_request() -> Req {
    Req(Headers::from_iter([
        (":method", "GET"),
        (":path", "/v1/reports?page=2"),
        (":authority", "api.example.com"),
        (":scheme", "http"),
        ("x-request-id", "7f1c"),
        ("x-airlock-agent", "spiffe://corp/agent/report-bot"),
        ("user-agent", "agent/1.0"),
    ]))
}

fn stages(c: &mut Criterion) {
    let mut w = worker();
    let req = get_request();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let action = Action::read(&w.config.request, &req).unwrap();
    let agent: Agent = identity::resolve(&w.config.identity, &req).unwrap();
    let body_sha = sha256_hex(b"");
    let digest = action_digest(&action, &body_sha);
    let facts = BodyFacts { size: 0, sha256: Some(body_sha.clone()), parsed: None };

    c.bench_function("read action (headers → Action)", |b| {
        b.iter(|| Action::read(&w.config.request, black_box(&req)))
    });
    c.bench_function("action digest", |b| b.iter(|| action_digest(black_box(&action), &body_sha)));
    c.bench_function("build input", |b| b.iter(|| input::build(black_box(&action), &agent, &facts, Some(&digest))));
    c.bench_function("evaluate demo policy (RVM)", |b| {
        let policy = &mut w.policy.as_mut().unwrap().policy;
        b.iter(|| policy.evaluate(input::build(&action, &agent, &facts, Some(&digest))))
    });
    c.bench_function("whole allow path (on_headers)", |b| {
        b.iter(|| {
            let mut f = Flow::new();
            let step = f.on_headers(&mut w, black_box(&req), true, now);
            assert!(matches!(step, Step::Continue | Step::ContinueWith(_)), "{step:?}");
            // Keep the decision queue from filling up during the run.
            if w.log.len() > 100_000 {
                while w.log.next_batch().is_some() {
                    w.log.delivered();
                }
            }
        })
    });
}

criterion_group!(benches, stages);
criterion_main!(benches);
