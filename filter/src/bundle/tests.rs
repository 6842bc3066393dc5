#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bundles in the worker: inline at configure time, swaps, refusals that keep the
//! serving policy, and per-rule shadow — natively, through the same `Flow` the glue runs.

use crate::config::Config;
use crate::flow::{Flow, Step};
use crate::metrics::{Counter, MemoryMetrics, Metrics};
use crate::source::fake::FakeRequest;
use crate::worker::Worker;
use airlock_bundle::{build, sign, Entry, Limits};
use base64::Engine as _;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KEY: &[u8] = b"bundle-signing-key-0123456789abc";
const SVC_KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

pub fn policy(effect: &str, rule: &str) -> String {
    format!(
        "package airlock\n\ndecision := {{\"effect\": \"{effect}\", \"rule\": \"{rule}\", \"reason\": \"r\"}} if {{\n\tdata.hosts[input.request.host]\n}}\n"
    )
}

pub fn bundle_with(revision: &str, rego: &str, manifest_extra: serde_json::Value) -> Vec<u8> {
    let mut manifest = serde_json::json!({"revision": revision, "roots": [""]});
    if let (Some(m), Some(extra)) = (manifest.as_object_mut(), manifest_extra.as_object()) {
        m.extend(extra.clone());
    }
    let files = vec![
        Entry { name: ".manifest".into(), bytes: manifest.to_string().into_bytes() },
        Entry { name: "airlock/policy.rego".into(), bytes: rego.as_bytes().to_vec() },
        Entry { name: "hosts/data.json".into(), bytes: br#"{"api.example.com": true}"#.to_vec() },
    ];
    sign(&build(files, None).unwrap(), "b1", KEY, &Limits::default()).unwrap()
}

pub fn bundle(revision: &str, effect: &str) -> Vec<u8> {
    bundle_with(revision, &policy(effect, "r"), serde_json::json!({}))
}

struct Shared(Rc<RefCell<MemoryMetrics>>);
impl Metrics for Shared {
    fn count(&mut self, c: Counter) {
        self.0.borrow_mut().count(c)
    }
    fn eval_time_us(&mut self, us: u64) {
        self.0.borrow_mut().eval_time_us(us)
    }
}

fn config(bundle_cfg: serde_json::Value) -> Config {
    let cfg = serde_json::json!({
        "policy": {"bundle": bundle_cfg,
                   "bundle_keys": [{"key_id": "b1", "key_base64": base64::engine::general_purpose::STANDARD.encode(KEY)}]},
        "identity": {"source": "header", "header": "x-airlock-agent"},
        "approval_service": {"cluster": "svc", "signing": {"key_id": "k1", "key_base64": SVC_KEY_B64}}
    });
    Config::parse(cfg.to_string().as_bytes()).unwrap()
}

fn worker(bundle_cfg: serde_json::Value) -> (Result<Worker, String>, Rc<RefCell<MemoryMetrics>>) {
    let metrics = Rc::new(RefCell::new(MemoryMetrics::default()));
    let w = Worker::new(config(bundle_cfg), Box::new(Shared(metrics.clone())), Box::new(|_| {}));
    (w, metrics)
}

fn inline(bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({"base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// One GET through the flow; the step and the last decision record.
fn get(w: &mut Worker) -> (Step, serde_json::Value) {
    let req = FakeRequest::new("GET", "api.example.com", "/v1/x").with("x-airlock-agent", "bot");
    let step = Flow::new().on_headers(w, &req, true, now());
    let batch: serde_json::Value = serde_json::from_slice(&w.log.next_batch().unwrap()).unwrap();
    w.log.delivered();
    (step, batch["records"][0].clone())
}

fn allowed(step: &Step) -> bool {
    matches!(step, Step::Continue | Step::ContinueWith(_))
}

fn denied(step: &Step) -> bool {
    matches!(step, Step::Reply(r) if r.status == 403)
}

#[test]
fn inline_bundle_loads_and_decides() {
    let (w, metrics) = worker(inline(&bundle("rev-1", "allow")));
    let mut w = w.unwrap();
    let (step, record) = get(&mut w);
    assert!(allowed(&step), "{step:?}");
    assert_eq!(record["policy_revision"], "rev-1");
    assert_eq!(metrics.borrow().get(Counter::BundleLoaded), 1);
}

#[test]
fn tampered_inline_bundle_refuses_the_configuration() {
    let mut bytes = bundle("rev-1", "allow");
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    let e = worker(inline(&bytes)).0.err().unwrap();
    assert!(e.starts_with("policy.bundle.base64:"), "{e}");
    let unsigned =
        build(vec![Entry { name: "p.rego".into(), bytes: policy("allow", "r").into_bytes() }], None).unwrap();
    let e = worker(inline(&unsigned)).0.err().unwrap();
    assert!(e.contains("not signed"), "{e}");
}

#[test]
fn polled_only_denies_until_a_bundle_arrives_then_swaps_and_keeps_on_refusal() {
    let (w, metrics) = worker(serde_json::json!({"cluster": "bundles", "path": "/b.tar.gz"}));
    let mut w = w.unwrap();
    let (step, record) = get(&mut w);
    assert!(denied(&step), "{step:?}");
    assert_eq!(record["rule"], "airlock.policy-error");
    assert_eq!(record["policy_revision"], "none");

    w.install_bundle(&bundle("rev-1", "allow")).unwrap();
    let (step, record) = get(&mut w);
    assert!(allowed(&step), "{step:?}");
    assert_eq!(record["policy_revision"], "rev-1");

    w.install_bundle(&bundle("rev-2", "deny")).unwrap();
    let (step, record) = get(&mut w);
    assert!(denied(&step));
    assert_eq!(record["policy_revision"], "rev-2");

    // Each kind of bad bundle is refused and rev-2 keeps serving.
    let mut tampered = bundle("rev-3", "allow");
    let n = tampered.len();
    tampered[n - 20] ^= 1;
    let other_key =
        sign(&build(vec![], Some("rev-3")).unwrap(), "b1", b"some-other-key-0123456789abcdef!", &Limits::default())
            .unwrap();
    let no_compile = bundle_with("rev-3", "package airlock\ndecision := {", serde_json::json!({}));
    let no_entry = bundle_with("rev-3", "package airlock\nother := 1", serde_json::json!({}));
    for (bad, why) in [
        (tampered, ""),
        (other_key, "does not verify"),
        (no_compile, "airlock/policy.rego"),
        (no_entry, "data.airlock.decision"),
    ] {
        let e = w.install_bundle(&bad).unwrap_err();
        assert!(e.contains("keeping revision `rev-2`") && e.contains(why), "{e}");
        let (step, record) = get(&mut w);
        assert!(denied(&step));
        assert_eq!(record["policy_revision"], "rev-2");
    }
    assert_eq!(metrics.borrow().get(Counter::BundleLoaded), 2);
    assert_eq!(metrics.borrow().get(Counter::BundleRejected), 4);
}

#[test]
fn per_rule_shadow_from_the_manifest() {
    let shadowed = bundle_with(
        "rev-s",
        &policy("deny", "new-rule"),
        serde_json::json!({"airlock": {"shadow_rules": ["new-rule"]}}),
    );
    let (w, metrics) = worker(inline(&shadowed));
    let mut w = w.unwrap();
    let (step, record) = get(&mut w);
    assert!(allowed(&step), "a shadowed rule's deny lets the call through: {step:?}");
    assert_eq!((record["effect"].as_str(), record["enforced"].as_str()), (Some("deny"), Some("allow")));
    assert_eq!(record["mode"], "shadow");
    assert_eq!(metrics.borrow().get(Counter::ShadowAllow), 1);

    // Another rule of the same bundle is enforced.
    w.install_bundle(&bundle_with(
        "rev-e",
        &policy("deny", "old-rule"),
        serde_json::json!({"airlock": {"shadow_rules": ["new-rule"]}}),
    ))
    .unwrap();
    let (step, record) = get(&mut w);
    assert!(denied(&step));
    assert_eq!(record["mode"], "enforce");

    // The decision itself can ask for shadow.
    let rego = "package airlock\ndecision := {\"effect\": \"approve\", \"rule\": \"trial\", \"shadow\": true}";
    w.install_bundle(&bundle_with("rev-d", rego, serde_json::json!({}))).unwrap();
    let (step, record) = get(&mut w);
    assert!(allowed(&step), "{step:?}");
    assert_eq!((record["effect"].as_str(), record["mode"].as_str()), (Some("approve"), Some("shadow")));

    // The whole bundle in shadow mode.
    w.install_bundle(&bundle_with("rev-b", &policy("deny", "x"), serde_json::json!({"airlock": {"mode": "shadow"}})))
        .unwrap();
    assert!(allowed(&get(&mut w).0));

    // The filter's own refusals cannot be shadowed.
    let bad = bundle_with(
        "rev-x",
        &policy("deny", "x"),
        serde_json::json!({"airlock": {"shadow_rules": ["airlock.policy-error"]}}),
    );
    assert!(w.install_bundle(&bad).unwrap_err().contains("cannot be shadowed"));
}

#[test]
fn bundle_config_is_strict() {
    let parse = |policy: serde_json::Value| {
        let cfg = serde_json::json!({
            "policy": policy,
            "identity": {"source": "header", "header": "x-airlock-agent"},
            "approval_service": {"cluster": "svc", "signing": {"key_id": "k1", "key_base64": SVC_KEY_B64}}
        });
        Config::parse(cfg.to_string().as_bytes()).map(|_| ()).map_err(|e| e.to_string())
    };
    let key = serde_json::json!([{"key_id": "b1", "key_base64": SVC_KEY_B64}]);
    let ok = serde_json::json!({"bundle": {"cluster": "b", "path": "/x"}, "bundle_keys": key});
    assert_eq!(parse(ok), Ok(()));
    for (policy, needle) in [
        (serde_json::json!({"bundle": {"cluster": "b", "path": "/x"}}), "bundle_keys"),
        (
            serde_json::json!({"bundle": {"cluster": "b", "path": "/x"}, "modules": {"a.rego": "package a"}, "bundle_keys": key}),
            "alternatives",
        ),
        (serde_json::json!({"bundle": {"cluster": "b"}, "bundle_keys": key}), "policy.bundle.path"),
        (serde_json::json!({"bundle": {"cluster": "b", "path": "/x", "poll_ms": 10}, "bundle_keys": key}), "poll_ms"),
        (serde_json::json!({"bundle": {}, "bundle_keys": key}), "base64"),
        (serde_json::json!({"bundle": {"base64": "!!"}, "bundle_keys": key}), "not valid base64"),
        (
            serde_json::json!({"bundle": {"cluster": "b", "path": "/x", "url": "x"}, "bundle_keys": key}),
            "unknown field `url`",
        ),
        (
            serde_json::json!({"bundle": {"cluster": "b", "path": "/x"}, "bundle_keys": [{"key_id": "b1", "key_base64": "c2hvcnQ="}]}),
            "at least 32",
        ),
        (
            serde_json::json!({"bundle": {"cluster": "b", "path": "/x"}, "bundle_keys": key, "revision": "r"}),
            "come from the bundle",
        ),
        (serde_json::json!({}), "modules"),
    ] {
        let e = parse(policy.clone()).unwrap_err();
        assert!(e.contains(needle), "{policy}: {e}");
    }
}
