//! Native cost of the approve route with a body, stage by stage (issue 12): the
//! library policy (`policies/library`, as a signed bundle) and `POST
//! api.example.com/v1/exports` with a 1 KB and a 64 KB JSON body, repeated so the
//! service answers with the existing (pending) approval.
//!
//! Stages, each timed on its own over the same body: hashing the body, reading it as
//! JSON (the strict tree and regorus's reader, which the filter used to run both; the
//! one-pass `read_json`, all of it and only what the library can read), building the
//! input and evaluating, redacting it for the reviewers and building and signing the
//! full create call (only a first request still does), verifying and reading the
//! answer, and the 403 problem. `whole` runs the real `Flow` from headers to the
//! pending answer of a repeated request (a find, after the first), which is what the
//! stages add up to.
//!
//! Run: `cargo bench -p airlock-filter --bench body`. Natively SHA-256 runs on the
//! CPU's SHA extensions where present; in the Wasm VM it is software, several times
//! slower per byte: the wasmtime counterpart is `tests/benches/wasm_body.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_bundle::{build, sign, Entry, Limits};
use airlock_filter::action::Action;
use airlock_filter::body;
use airlock_filter::callout::{self, Answer};
use airlock_filter::config::Config;
use airlock_filter::decision::{self, Effect};
use airlock_filter::digest::{action_digest, sha256_hex};
use airlock_filter::flow::{Flow, Step};
use airlock_filter::identity;
use airlock_filter::input::{self, BodyFacts};
use airlock_filter::metrics::MemoryMetrics;
use airlock_filter::problem::{Answering, Problem, ProblemKind};
use airlock_filter::redact::redacted_json_body;
use airlock_filter::signing;
use airlock_filter::source::{Headers, RequestSource};
use airlock_filter::worker::Worker;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

const BUNDLE_KEY: &[u8] = b"bundle-signing-key-0123456789abc";
const KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const AGENT: &str = "spiffe://corp/agent/report-bot";
const PENDING: &[u8] = br#"{"approval_id":"apr_bench","status":"pending","retry_after":10}"#;

struct Req(Headers);
impl RequestSource for Req {
    fn headers(&self) -> &Headers {
        &self.0
    }
    fn property(&self, _: &[&str]) -> Option<Vec<u8>> {
        None
    }
}

fn library_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/library")
}

/// `.manifest`, `*.rego` and `data.json` under `dir`, as `airlock bundle build` picks them.
fn files(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "examples") {
                files(root, &p, out);
            }
            continue;
        }
        let name = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
        if name.ends_with(".rego") || name.ends_with("data.json") || name.ends_with(".manifest") {
            out.push(Entry { name, bytes: std::fs::read(&p).unwrap() });
        }
    }
}

fn worker() -> Worker {
    let root = library_dir();
    let mut entries = Vec::new();
    files(&root, &root, &mut entries);
    let bundle = sign(&build(entries, Some("body-bench")).unwrap(), "b1", BUNDLE_KEY, &Limits::default()).unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let cfg = serde_json::json!({
        "policy": {"bundle": {"base64": b64(&bundle)}, "bundle_keys": [{"key_id": "b1", "key_base64": b64(BUNDLE_KEY)}]},
        "identity": {"source": "header", "header": "x-airlock-agent",
                     "agents": {AGENT: {"owner": "alice@corp.example"}}},
        "approval_service": {"cluster": "svc", "signing": {"key_id": "k1", "key_base64": KEY_B64}},
        "request": {"input_headers": ["content-type", "x-amz-target"], "significant_headers": ["content-type"],
                    "upstream_scheme": "https"},
        "decision_log": {"max_queue": 1000000}
    });
    let config = Config::parse(cfg.to_string().as_bytes()).unwrap();
    Worker::new(config, Box::new(MemoryMetrics::default()), Box::new(|_| {})).unwrap()
}

/// An export request body of about `size` bytes: an external destination (so the
/// `exports` module asks for approval, redacting `destination.credentials`) and rows.
pub fn export_body(size: usize) -> Vec<u8> {
    let head = r#"{"format":"csv","destination":{"uri":"s3://partner","credentials":"AKIAEXAMPLEKEY"},"rows":["#;
    let mut out = String::from(head);
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

fn request(len: usize) -> Req {
    let len = len.to_string();
    Req(Headers::from_iter([
        (":method", "POST"),
        (":path", "/v1/exports?format=csv"),
        (":authority", "api.example.com"),
        (":scheme", "http"),
        ("x-airlock-agent", AGENT),
        ("content-type", "application/json"),
        ("content-length", len.as_str()),
    ]))
}

fn stages(c: &mut Criterion) {
    let mut w = worker();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let now_s = 1_800_000_000;
    for (label, size) in [("1k", 1024), ("64k", 64 * 1024)] {
        let bytes = export_body(size);
        let req = request(bytes.len());
        let text = std::str::from_utf8(&bytes).unwrap();
        let action = Action::read(&w.config.request, &req).unwrap();
        let agent = identity::resolve(&w.config.identity, &req).unwrap();
        let sha = sha256_hex(&bytes);
        let digest = action_digest(&action, &sha);
        let parsed = body::read_json(&bytes).unwrap().value;
        let facts = BodyFacts { size: bytes.len(), sha256: Some(sha.clone()), parsed: Some(parsed.clone()) };
        let policy = &mut w.policy.as_mut().unwrap().policy;
        let d = decision::from_policy_output(policy.evaluate(input::build(&action, &agent, &facts, Some(&digest))));
        assert_eq!(d.effect, Effect::Approve, "{d:?}");
        let redacted = redacted_json_body(&bytes, &d.redact);
        let approval_call = |body| {
            airlock_filter::wire::approval_request(
                "dec_1",
                &action,
                &agent,
                &digest,
                &d,
                "rev",
                0,
                body,
                bytes.len(),
                &sha,
            )
        };
        let create = approval_call(redacted.clone());
        // What a repeated request sends instead (no body): the size `scripts/bench-envoy.sh`'s
        // callout floor sends.
        let find = approval_call(None);
        let call =
            callout::signed_post(&w.config.service, now_s, callout::APPROVALS_PATH, create.clone(), 1000).unwrap();
        let answer = Answer {
            status: Some(200),
            key_id: Some("k1".into()),
            timestamp: Some(now_s.to_string()),
            signature: signing::sign_answer(&w.config.service.signing.current, now_s, 200, &call.signature, PENDING),
            body: PENDING.to_vec(),
        };
        println!("{label}: body {} B, create call {} B, find call {} B", bytes.len(), create.len(), find.len());

        let mut g = c.benchmark_group(format!("approve_body_{label}"));
        g.bench_function("hash body (sha256_hex)", |b| b.iter(|| sha256_hex(black_box(&bytes))));
        g.bench_function("strict tree (body::parse)", |b| b.iter(|| body::parse(black_box(text)).map(|_| ())));
        g.bench_function("regorus reader (Value::from_json_str)", |b| {
            b.iter(|| regorus::Value::from_json_str(black_box(text)))
        });
        g.bench_function("read_json (all of it)", |b| b.iter(|| body::read_json(black_box(&bytes)).map(|_| ())));
        let view = w.policy.as_ref().unwrap().policy.body_view().clone();
        g.bench_function("read_json_seen (what the policy reads)", |b| {
            b.iter(|| body::read_json_seen(black_box(&bytes), &view).map(|_| ()))
        });
        g.bench_function("action digest", |b| b.iter(|| action_digest(black_box(&action), &sha)));
        g.bench_function("build input + evaluate", |b| {
            let policy = &mut w.policy.as_mut().unwrap().policy;
            b.iter(|| policy.evaluate(input::build(&action, &agent, &facts, Some(&digest))))
        });
        g.bench_function("redact (redacted_json_body)", |b| {
            b.iter(|| redacted_json_body(black_box(&bytes), &d.redact))
        });
        g.bench_function("create body (wire::approval_request)", |b| b.iter(|| approval_call(redacted.clone())));
        g.bench_function("sign call (signed_post)", |b| {
            b.iter(|| callout::signed_post(&w.config.service, now_s, callout::APPROVALS_PATH, create.clone(), 1000))
        });
        g.bench_function("verify + read answer", |b| {
            b.iter(|| {
                let s = callout::verified(&w.config.service, now_s, &call.signature, black_box(&answer)).unwrap();
                callout::parse_approval(s, &answer.body).unwrap()
            })
        });
        g.bench_function("403 problem", |b| {
            b.iter(|| {
                let mut p = Problem::new(ProblemKind::ApprovalPending, "dec_1", "A reviewer must approve");
                p.approval_id = Some("apr_bench".into());
                p.retry_after = Some(10);
                p.approvers = d.approvers.clone();
                p.to_reply(&Answering::Http)
            })
        });
        g.bench_function("whole (Flow: headers, body, answer)", |b| {
            b.iter(|| {
                let mut f = Flow::new();
                assert_eq!(f.on_headers(&mut w, &req, false, now), Step::NeedBody);
                let step = f.on_body(&mut w, bytes.len(), true, || Some(bytes.clone()), now);
                let Step::Call(call) = step else { panic!("{step:?}") };
                let answer = Answer {
                    status: Some(200),
                    key_id: Some("k1".into()),
                    timestamp: Some(now_s.to_string()),
                    signature: signing::sign_answer(
                        &w.config.service.signing.current,
                        now_s,
                        200,
                        &call.signature,
                        PENDING,
                    ),
                    body: PENDING.to_vec(),
                };
                let step = f.on_answer(&mut w, &answer, now);
                assert!(matches!(step, Step::Reply(ref r) if r.status == 403), "{step:?}");
                if w.log.len() > 100_000 {
                    while w.log.next_batch().is_some() {
                        w.log.delivered();
                    }
                }
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
    targets = stages
}
criterion_main!(benches);
