#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::type_complexity)]
//! The request flow end to end in native code: the same scenarios the wasm and
//! Envoy suites run, minus the host.

use super::*;
use crate::config::{Config, SigningKey};
use crate::metrics::MemoryMetrics;
use crate::signing::sign_answer;
use crate::source::fake::FakeRequest;
use std::cell::RefCell;
use std::rc::Rc;

const KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const POLICY: &str = r#"package airlock
default decision := {"effect": "deny", "reason": "no rule matched", "rule": "default"}
decision := {"effect": "allow", "rule": "reads"} if input.request.method == "GET"
decision := {"effect": "approve", "rule": "exports", "reason": "data export", "risk": "high",
             "redact": ["request.body.ssn"]} if {
    input.request.method == "POST"
    input.request.path == "/v1/exports"
}
"#;

pub(super) struct Harness {
    pub(super) w: Worker,
    pub(super) metrics: Rc<RefCell<MemoryMetrics>>,
}

struct SharedMetrics(Rc<RefCell<MemoryMetrics>>);
impl crate::metrics::Metrics for SharedMetrics {
    fn count(&mut self, c: Counter) {
        self.0.borrow_mut().count(c)
    }
    fn eval_time_us(&mut self, us: u64) {
        self.0.borrow_mut().eval_time_us(us)
    }
}

pub(super) fn harness_with(extra: impl FnOnce(&mut serde_json::Value)) -> Harness {
    let mut cfg = serde_json::json!({
        "policy": {"modules": {"p.rego": POLICY}},
        "identity": {"source": "header", "header": "x-airlock-agent",
                     "agents": {"bot": {"owner": "alice@corp.example"}}},
        "approval_service": {"cluster": "svc", "signing": {"key_id": "k1", "key_base64": KEY_B64}},
        "request": {"max_body_bytes": 64}
    });
    extra(&mut cfg);
    let config = Config::parse(cfg.to_string().as_bytes()).unwrap();
    let metrics = Rc::new(RefCell::new(MemoryMetrics::default()));
    let w = Worker::new(config, Box::new(SharedMetrics(metrics.clone())), Box::new(|_| {})).unwrap();
    Harness { w, metrics }
}

pub(super) fn harness() -> Harness {
    harness_with(|_| {})
}

pub(super) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn key() -> SigningKey {
    SigningKey { id: "k1".into(), secret: b"0123456789abcdef0123456789abcdef".to_vec() }
}

pub(super) fn answer(call: &Call, status: u32, body: serde_json::Value) -> Answer {
    let body = body.to_string().into_bytes();
    let ts = 1_800_000_000;
    Answer {
        status: Some(status),
        key_id: Some("k1".into()),
        timestamp: Some(ts.to_string()),
        signature: sign_answer(&key(), ts, status, &call.signature, &body),
        body,
    }
}

pub(super) fn export() -> FakeRequest {
    FakeRequest::new("POST", "api.example.com", "/v1/exports")
        .with("x-airlock-agent", "bot")
        .with("content-type", "application/json")
        .with("authorization", "Bearer agent-own")
}

/// Run a request with `body` to its first non-body step.
pub(super) fn start(h: &mut Harness, req: &FakeRequest, body: &[u8]) -> (Flow, Step) {
    let mut f = Flow::new();
    let step = f.on_headers(&mut h.w, req, body.is_empty(), now());
    if step != Step::NeedBody {
        return (f, step);
    }
    let bytes = body.to_vec();
    let step = f.on_body(&mut h.w, body.len(), true, move || Some(bytes), now());
    (f, step)
}

pub(super) fn reply_json(step: &Step) -> (u32, serde_json::Value) {
    match step {
        Step::Reply(r) => (r.status, serde_json::from_slice(&r.body).unwrap()),
        other => panic!("expected a reply, got {other:?}"),
    }
}

pub(super) fn call_of(step: Step) -> Call {
    match step {
        Step::Call(c) => c,
        other => panic!("expected a call, got {other:?}"),
    }
}

#[test]
fn allow_continues_and_is_logged() {
    let mut h = harness();
    let (_, step) =
        start(&mut h, &FakeRequest::new("GET", "api.example.com", "/x").with("x-airlock-agent", "bot"), b"");
    // Airlock's own headers (here the identity header) never go upstream.
    assert_eq!(step, Step::ContinueWith(HeaderEdits { remove: vec!["x-airlock-agent".into()], set: vec![] }));
    assert_eq!(h.w.log.len(), 1);
    assert_eq!(h.metrics.borrow().get(Counter::Allow), 1);
}

#[test]
fn deny_replies_with_problem() {
    let mut h = harness();
    let (_, step) =
        start(&mut h, &FakeRequest::new("DELETE", "api.example.com", "/x").with("x-airlock-agent", "bot"), b"");
    let (status, v) = reply_json(&step);
    assert_eq!(status, 403);
    assert_eq!(v["type"], "urn:airlock:problem:denied");
    assert_eq!(v["rule"], "default");
    assert_eq!(h.w.log.len(), 1);
}

#[test]
fn no_identity_is_denied_before_policy() {
    let mut h = harness();
    let (_, step) = start(&mut h, &FakeRequest::new("GET", "api.example.com", "/x"), b"");
    let (status, v) = reply_json(&step);
    assert_eq!(status, 403);
    assert_eq!(v["rule"], "airlock.no-identity");
    // The refusal is recorded with the target the request asked for.
    let batch: serde_json::Value = serde_json::from_slice(&h.w.log.next_batch().unwrap()).unwrap();
    assert_eq!(batch["records"][0]["path"], "/x");
    assert_eq!(batch["records"][0]["method"], "GET");
}

#[test]
fn approve_pending_then_approved_redeems_and_injects() {
    let mut h = harness();
    let body = br#"{"ssn": "123-45-6789", "table": "users"}"#;
    let (mut f, step) = start(&mut h, &export(), body);
    let call = call_of(step);
    assert_eq!(call.path, "/v1/gateway/approvals");
    let sent: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent["agent"]["owner"], "alice@corp.example");
    assert_eq!(sent["request"]["body"]["ssn"], crate::redact::MASK);
    assert!(!String::from_utf8_lossy(&call.body).contains("agent-own"), "credentials never leave the gateway");
    let digest = sent["digest"].as_str().unwrap().to_string();

    // Pending: the agent is told to retry, nothing goes upstream.
    let pending = f.on_answer(
        &mut h.w,
        &answer(&call, 200, serde_json::json!({"approval_id": "apr_1", "status": "pending"})),
        now(),
    );
    let (status, v) = reply_json(&pending);
    assert_eq!((status, v["type"].as_str()), (403, Some("urn:airlock:problem:approval-pending")));
    assert_eq!(v["approval_id"], "apr_1");
    assert_eq!(v["retry_after"], 10);

    // The identical retry carries the same digest; approved → redeem → inject.
    let (mut f, step) = start(&mut h, &export(), body);
    let call = call_of(step);
    let again: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(again["digest"], digest.as_str());
    let step = f.on_answer(
        &mut h.w,
        &answer(&call, 200, serde_json::json!({"approval_id": "apr_1", "status": "approved"})),
        now(),
    );
    let redeem = call_of(step);
    assert_eq!(redeem.path, "/v1/gateway/approvals/apr_1/redeem");
    let r: serde_json::Value = serde_json::from_slice(&redeem.body).unwrap();
    assert_eq!((r["agent"].as_str(), r["digest"].as_str()), (Some("bot"), Some(digest.as_str())));
    let step = f.on_answer(
        &mut h.w,
        &answer(&redeem, 200, serde_json::json!({"status": "redeemed", "headers": {"authorization": "Bearer minted"}})),
        now(),
    );
    match step {
        Step::ContinueWith(edits) => {
            assert!(edits.remove.contains(&"authorization".to_string()));
            assert_eq!(edits.set, vec![("authorization".to_string(), "Bearer minted".to_string())]);
        }
        other => panic!("expected injection, got {other:?}"),
    }
    assert_eq!(h.metrics.borrow().get(Counter::CredentialInjected), 1);
}

/// HTTP/2 trailers end a request whose body frames all said "more to come". They must
/// decide it like the end of the body does — never let it through undecided.
#[test]
fn trailers_end_the_body_and_decide_the_request() {
    let mut h = harness();
    let req = export().with("x-request-id", "r-trailers");
    let body = br#"{"rows": 10}"#.to_vec();
    let mut f = Flow::new();
    assert_eq!(f.on_headers(&mut h.w, &req, false, now()), Step::NeedBody);
    assert_eq!(f.on_body(&mut h.w, body.len(), false, || panic!("read before the end"), now()), Step::NeedBody);
    assert_eq!(f.buffered(), body.len());
    let expected = body.clone();
    let step = f.on_trailers(&mut h.w, move || Some(expected), now());
    let call = call_of(step);
    let sent: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent["request"]["body"]["rows"], 10, "the buffered body was read at the trailers");
    assert_eq!(sent["request"]["body_size"], body.len());
    // The call is in flight: a second trailers event (or more body) keeps it paused.
    assert_eq!(f.on_trailers(&mut h.w, || None, now()), Step::Hold);
    assert_eq!(f.on_body(&mut h.w, 99, true, || None, now()), Step::Hold);

    // Headers, then trailers with no data at all: an empty body, decided.
    let mut f = Flow::new();
    assert_eq!(f.on_headers(&mut h.w, &req, false, now()), Step::NeedBody);
    assert!(matches!(f.on_trailers(&mut h.w, || None, now()), Step::Call(_)));

    // A denied request stays answered; an allowed one flows on with its trailers.
    let mut f = Flow::new();
    let denied = FakeRequest::new("DELETE", "api.example.com", "/v1/x").with("x-airlock-agent", "bot");
    assert_eq!(f.on_headers(&mut h.w, &denied, false, now()), Step::NeedBody);
    assert!(matches!(f.on_trailers(&mut h.w, || None, now()), Step::Reply(_)));
    assert_eq!(f.on_trailers(&mut h.w, || None, now()), Step::Hold);
    let mut f = Flow::new();
    let get = FakeRequest::new("GET", "api.example.com", "/v1/x").with("x-airlock-agent", "bot");
    assert_eq!(f.on_headers(&mut h.w, &get, false, now()), Step::NeedBody);
    assert!(allowed(&f.on_trailers(&mut h.w, || None, now())));
    assert_eq!(f.on_trailers(&mut h.w, || None, now()), Step::Continue);
}

#[test]
fn a_different_body_has_a_different_digest() {
    let mut h = harness();
    let (_, a) = start(&mut h, &export(), br#"{"table": "users"}"#);
    let (_, b) = start(&mut h, &export(), br#"{"table": "payroll"}"#);
    let da: serde_json::Value = serde_json::from_slice(&call_of(a).body).unwrap();
    let db: serde_json::Value = serde_json::from_slice(&call_of(b).body).unwrap();
    assert_ne!(da["digest"], db["digest"]);
}

#[test]
fn every_callout_failure_is_unavailable() {
    let mut h = harness();
    let ok = serde_json::json!({"approval_id": "apr_1", "status": "approved"});
    let cases: Vec<Box<dyn Fn(&Call) -> Answer>> = vec![
        Box::new(|_| Answer::default()),          // unreachable / timeout
        Box::new(|c| answer(c, 500, ok.clone())), // server error
        Box::new(|c| Answer { signature: None, ..answer(c, 200, ok.clone()) }), // unsigned
        Box::new(|c| Answer {
            body: b"{\"approval_id\":\"apr_1\",\"status\":\"approved\",\"x\":1}".to_vec(),
            ..answer(c, 200, ok.clone())
        }), // tampered
        Box::new(|c| Answer { timestamp: Some("1799999000".into()), ..answer(c, 200, ok.clone()) }), // stale
        Box::new(|c| answer(c, 200, serde_json::json!({"status": "approved"}))), // malformed
    ];
    for make in cases {
        let (mut f, step) = start(&mut h, &export(), b"{}");
        let call = call_of(step);
        let (status, v) = reply_json(&f.on_answer(&mut h.w, &make(&call), now()));
        assert_eq!((status, v["type"].as_str()), (503, Some("urn:airlock:problem:unavailable")));
    }
}

#[test]
fn a_full_pending_queue_is_unavailable_with_its_reason() {
    let mut h = harness();
    let (mut f, step) = start(&mut h, &export(), br#"{"rows": 1}"#);
    let call = call_of(step);
    let too_many = serde_json::json!({"type": "urn:airlock:problem:too-many-pending", "status": 429});
    let step = f.on_answer(&mut h.w, &answer(&call, 429, too_many), now());
    let (status, body) = reply_json(&step);
    assert_eq!(status, 503);
    assert_eq!(body["type"], "urn:airlock:problem:unavailable");
    assert!(body["detail"].as_str().unwrap().contains("waiting for review"), "{body}");
    assert!(body["retry_after"].as_u64().is_some(), "{body}");
    assert_eq!(h.metrics.borrow().get(Counter::CalloutFailure), 0, "the service worked");
}

#[test]
fn redeem_refusals_never_continue() {
    let mut h = harness();
    for (status, body, kind) in [
        (409, serde_json::json!({"status": "consumed"}), "urn:airlock:problem:denied"),
        (410, serde_json::json!({"status": "expired"}), "urn:airlock:problem:approval-expired"),
        (
            200,
            serde_json::json!({"status": "redeemed", "headers": {":authority": "evil"}}),
            "urn:airlock:problem:unavailable",
        ),
    ] {
        let (mut f, step) = start(&mut h, &export(), b"{}");
        let call = call_of(step);
        let redeem = call_of(f.on_answer(
            &mut h.w,
            &answer(&call, 200, serde_json::json!({"approval_id": "a", "status": "approved"})),
            now(),
        ));
        let (_, v) = reply_json(&f.on_answer(&mut h.w, &answer(&redeem, status, body), now()));
        assert_eq!(v["type"], kind);
    }
}

#[test]
fn approval_states_map_to_problems() {
    let mut h = harness();
    for (state, kind) in [
        ("denied", "urn:airlock:problem:approval-denied"),
        ("cancelled", "urn:airlock:problem:approval-denied"),
        ("expired", "urn:airlock:problem:approval-expired"),
        ("mismatch", "urn:airlock:problem:denied"),
    ] {
        let (mut f, step) = start(&mut h, &export(), b"{}");
        let call = call_of(step);
        let (_, v) = reply_json(&f.on_answer(
            &mut h.w,
            &answer(&call, 200, serde_json::json!({"approval_id": "a", "status": state})),
            now(),
        ));
        assert_eq!(v["type"], kind, "{state}");
    }
}

#[test]
fn every_problem_carries_the_policys_reason_and_a_next_step() {
    let mut h = harness();
    let ask = |h: &mut Harness, answer_body: serde_json::Value| {
        let (mut f, step) = start(h, &export(), b"{}");
        let call = call_of(step);
        reply_json(&f.on_answer(&mut h.w, &answer(&call, 200, answer_body), now())).1
    };
    let pending = ask(
        &mut h,
        serde_json::json!({"approval_id": "apr_p", "status": "pending",
                                                 "detail": "Waiting for reviewers."}),
    );
    assert_eq!(pending["reason"], "data export", "{pending}");
    let detail = pending["detail"].as_str().unwrap();
    assert!(detail.contains("Reason: data export.") && detail.contains("apr_p"), "{detail}");
    assert!(detail.contains("Retry the identical request in about 10 seconds"), "{detail}");
    assert!(!detail.contains("Waiting for reviewers"), "{detail}");

    let denied = ask(
        &mut h,
        serde_json::json!({"approval_id": "apr_d", "status": "denied",
        "detail": "Denied by a reviewer.", "comment": "no exports on Fridays",
        "denied_until": "2026-11-21T19:30:00Z"}),
    );
    assert_eq!(denied["type"], "urn:airlock:problem:approval-denied");
    assert_eq!(
        denied["detail"],
        "A reviewer denied this action (approval id apr_d). The reviewer's comment: \"no exports on Fridays\". \
         Reason: data export. Do not retry it unless the user asks: until 2026-11-21T19:30:00Z the identical request \
         gets this same answer, and after that a retry asks the reviewers again."
    );
    assert_eq!(denied["reason"], "data export");
    assert_eq!(denied["reviewer_comment"], "no exports on Fridays");
    assert_eq!(denied["denied_until"], "2026-11-21T19:30:00Z");

    let expired = ask(&mut h, serde_json::json!({"approval_id": "apr_e", "status": "expired"}));
    assert_eq!(expired["reason"], "data export");
    assert!(expired["detail"].as_str().unwrap().ends_with("Retry the identical request to ask the reviewers again."));

    // A policy deny: its reason, and not to retry.
    let (_, step) =
        start(&mut h, &FakeRequest::new("DELETE", "api.example.com", "/x").with("x-airlock-agent", "bot"), b"");
    let (_, deny) = reply_json(&step);
    assert_eq!(deny["reason"], "no rule matched");
    assert_eq!(deny["detail"], "no rule matched. Do not retry the same request; it will be refused again.");
}

#[test]
fn oversized_body_on_approve_route_is_denied_unevaluated() {
    let mut h = harness();
    let big = [b'x'; 65];
    let mut f = Flow::new();
    assert_eq!(f.on_headers(&mut h.w, &export(), false, now()), Step::NeedBody);
    let step = f.on_body(&mut h.w, big.len(), false, || panic!("must not read an over-cap body"), now());
    let (status, v) = reply_json(&step);
    assert_eq!((status, v["type"].as_str()), (413, Some("urn:airlock:problem:denied")));
    // Declared length over the cap: decided in the headers phase.
    let req = export().with("content-length", "100000");
    let (status, _) = reply_json(&Flow::new().on_headers(&mut h.w, &req, false, now()));
    assert_eq!(status, 413);
}

#[test]
fn shadow_mode_allows_but_records_the_real_decision() {
    let mut h = harness_with(|c| c["policy"]["mode"] = "shadow".into());
    let (_, step) =
        start(&mut h, &FakeRequest::new("DELETE", "api.example.com", "/x").with("x-airlock-agent", "bot"), b"");
    assert!(matches!(step, Step::ContinueWith(_)), "{step:?}");
    assert_eq!(h.metrics.borrow().get(Counter::ShadowAllow), 1);
    let batch: serde_json::Value = serde_json::from_slice(&h.w.log.next_batch().unwrap()).unwrap();
    assert_eq!(batch["records"][0]["effect"], "deny");
    assert_eq!(batch["records"][0]["enforced"], "allow");
    assert_eq!(batch["records"][0]["mode"], "shadow");
}

#[test]
fn policy_errors_deny() {
    let mut h = harness_with(|c| {
        c["policy"]["modules"] =
            serde_json::json!({"p.rego": "package airlock\ndecision := {\"effect\": \"allow\", \"bogus\": true}"})
    });
    let (_, step) = start(&mut h, &FakeRequest::new("GET", "h", "/").with("x-airlock-agent", "bot"), b"");
    let (_, v) = reply_json(&step);
    assert_eq!(v["rule"], "airlock.policy-error");
    assert_eq!(h.metrics.borrow().get(Counter::PolicyError), 1);
}

#[test]
fn ambiguous_paths_and_spoofed_identity_are_denied() {
    let mut h = harness();
    for path in ["/v1/exports%2F..", "/v1//exports", "/v1/./exports", "/v1/exports;x=1", "/v1/%2e%2e/admin"] {
        let req = FakeRequest::new("GET", "api.example.com", path).with("x-airlock-agent", "bot");
        let (status, _) = reply_json(&start(&mut h, &req, b"").1);
        assert_eq!(status, 403, "{path}");
    }
    let dup = FakeRequest::new("GET", "api.example.com", "/x")
        .with("x-airlock-agent", "bot")
        .with("x-airlock-agent", "admin");
    assert_eq!(reply_json(&start(&mut h, &dup, b"").1).0, 403);
}

// ----- decision cache -----

/// Allows only what one specific request looks like, so any field the cache wrongly
/// ignored would show up as a stale allow.
const CACHE_POLICY: &str = r#"package airlock
default decision := {"effect": "deny", "rule": "default"}
decision := {"effect": "allow", "rule": "exact"} if {
    input.request.method == "POST"
    input.request.path == "/v1/items"
    input.request.query.page == ["2"]
    input.request.headers["x-tenant"] == "blue"
    input.agent.id == "bot"
    input.request.body.ok == true
}
decision := {"effect": "allow", "rule": "get"} if input.request.method == "GET"
"#;

fn cache_harness(policy: &str) -> Harness {
    harness_with(|c| {
        c["policy"]["modules"]["p.rego"] = serde_json::json!(policy);
        c["request"]["input_headers"] = serde_json::json!(["x-tenant", "content-type"]);
        c["request"]["max_body_bytes"] = serde_json::json!(1024);
        c["identity"]["agents"]["other"] = serde_json::json!({});
    })
}

fn item(agent: &str, path: &str, tenant: &str) -> FakeRequest {
    FakeRequest::new("POST", "api.example.com", path)
        .with("x-airlock-agent", agent)
        .with("x-tenant", tenant)
        .with("content-type", "application/json")
}

fn allowed(step: &Step) -> bool {
    matches!(step, Step::Continue | Step::ContinueWith(_))
}

fn evaluations(h: &Harness) -> usize {
    h.metrics.borrow().eval_times_us.len()
}

#[test]
fn a_repeated_allow_comes_from_the_cache_and_is_still_recorded() {
    let mut h = cache_harness(CACHE_POLICY);
    let ok = item("bot", "/v1/items?page=2", "blue");
    for _ in 0..3 {
        let (_, step) = start(&mut h, &ok, br#"{"ok": true}"#);
        assert!(allowed(&step), "{step:?}");
    }
    assert_eq!(evaluations(&h), 1, "evaluated once, then served from the cache");
    let m = h.metrics.borrow();
    assert_eq!((m.get(Counter::CacheHit), m.get(Counter::Allow)), (2, 3));
    drop(m);
    // Every request still leaves its own decision record, with its own digest.
    assert_eq!(h.w.log.len(), 3);
    let batch: serde_json::Value = serde_json::from_slice(&h.w.log.next_batch().unwrap()).unwrap();
    for r in batch["records"].as_array().unwrap() {
        assert_eq!((r["effect"].as_str(), r["rule"].as_str()), (Some("allow"), Some("exact")));
        assert!(r["digest"].as_str().is_some_and(|d| d.len() == 64));
    }
}

#[test]
fn a_repeated_approval_comes_from_the_cache_and_still_asks_the_service() {
    let mut h = harness();
    let body = br#"{"table": "users"}"#;
    let (mut f, step) = start(&mut h, &export(), body);
    let first = call_of(step);
    let pending = |call: &Call| answer(call, 200, serde_json::json!({"approval_id": "apr_1", "status": "pending"}));
    reply_json(&f.on_answer(&mut h.w, &pending(&first), now()));
    assert_eq!(evaluations(&h), 1);
    for _ in 0..2 {
        // The agent retries while reviewers decide: the same approval, not re-evaluated,
        // and the service is still asked every time (it alone says pending or approved).
        let (mut f, step) = start(&mut h, &export(), body);
        let call = call_of(step);
        let (status, v) = reply_json(&f.on_answer(&mut h.w, &pending(&call), now()));
        assert_eq!((status, v["approval_id"].as_str()), (403, Some("apr_1")));
        assert_eq!(v["rule"], "exports");
    }
    assert_eq!(evaluations(&h), 1, "evaluated once, then served from the cache");
    assert_eq!(h.metrics.borrow().get(Counter::CacheHit), 2);
    // Another body is another input: evaluated.
    let (_, step) = start(&mut h, &export(), br#"{"table": "orders"}"#);
    call_of(step);
    assert_eq!(evaluations(&h), 2);
}

#[test]
fn a_changed_field_never_meets_a_stale_allow() {
    let mut h = cache_harness(CACHE_POLICY);
    let ok = item("bot", "/v1/items?page=2", "blue");
    let (_, step) = start(&mut h, &ok, br#"{"ok": true}"#);
    assert!(allowed(&step));
    // Each differs from the cached request in one thing the policy reads.
    let changed: Vec<(&str, FakeRequest, &[u8])> = vec![
        ("body", ok.clone(), br#"{"ok": false}"#),
        ("body whitespace", ok.clone(), br#"{"ok":  1}"#),
        ("path", item("bot", "/v1/items/x?page=2", "blue"), br#"{"ok": true}"#),
        ("query", item("bot", "/v1/items?page=3", "blue"), br#"{"ok": true}"#),
        ("header", item("bot", "/v1/items?page=2", "red"), br#"{"ok": true}"#),
        ("agent", item("other", "/v1/items?page=2", "blue"), br#"{"ok": true}"#),
        (
            "method",
            FakeRequest::new("PUT", "api.example.com", "/v1/items?page=2")
                .with("x-airlock-agent", "bot")
                .with("x-tenant", "blue")
                .with("content-type", "application/json"),
            br#"{"ok": true}"#,
        ),
    ];
    for (what, req, body) in changed {
        let (_, step) = start(&mut h, &req, body);
        assert!(!allowed(&step), "{what}: {step:?}");
    }
    assert_eq!(h.metrics.borrow().get(Counter::CacheHit), 0);
    // Denies are never cached: the same denied request is evaluated again.
    let before = evaluations(&h);
    let (_, step) = start(&mut h, &item("bot", "/v1/items?page=2", "red"), br#"{"ok": true}"#);
    assert!(!allowed(&step));
    assert_eq!(evaluations(&h), before + 1);
}

#[test]
fn a_policy_swap_drops_cached_allows() {
    let mut h = cache_harness(CACHE_POLICY);
    let get = FakeRequest::new("GET", "api.example.com", "/r").with("x-airlock-agent", "bot");
    for _ in 0..2 {
        assert!(allowed(&start(&mut h, &get, b"").1));
    }
    assert_eq!(h.metrics.borrow().get(Counter::CacheHit), 1);
    let mut cfg = h.w.config.policy.clone();
    cfg.modules.insert(
        "p.rego".into(),
        CACHE_POLICY.replace(r#""effect": "allow", "rule": "get""#, r#""effect": "deny", "rule": "get""#),
    );
    h.w.set_policy(crate::policy::ActivePolicy::inline(&cfg).unwrap());
    let (_, step) = start(&mut h, &get, b"");
    assert_eq!(reply_json(&step).1["rule"], "get");
    assert_eq!(h.metrics.borrow().get(Counter::CacheHit), 1);
}

#[test]
fn request_ids_are_keyed_only_when_the_policy_can_read_them() {
    let get = |id: &str| {
        FakeRequest::new("GET", "api.example.com", "/r").with("x-airlock-agent", "bot").with("x-request-id", id)
    };
    let mut h = cache_harness(CACHE_POLICY);
    for id in ["a", "b", "c"] {
        assert!(allowed(&start(&mut h, &get(id), b"").1));
    }
    assert_eq!(evaluations(&h), 1, "the policy never reads input.request.id");

    let mut h = cache_harness(
        "package airlock\ndecision := {\"effect\": \"allow\"} if startswith(input.request.id, \"a\")\n\
         default decision := {\"effect\": \"deny\"}",
    );
    assert!(allowed(&start(&mut h, &get("a1"), b"").1));
    assert!(!allowed(&start(&mut h, &get("b1"), b"").1), "a cached allow for id a1 must not serve b1");
    assert!(allowed(&start(&mut h, &get("a1"), b"").1));
    assert_eq!(h.metrics.borrow().get(Counter::CacheHit), 1);
}

#[test]
fn non_deterministic_policies_are_never_cached() {
    let mut h = cache_harness("package airlock\ndecision := {\"effect\": \"allow\"} if rand.intn(\"x\", 2) >= 0");
    let get = FakeRequest::new("GET", "api.example.com", "/r").with("x-airlock-agent", "bot");
    for _ in 0..3 {
        assert!(allowed(&start(&mut h, &get, b"").1));
    }
    assert_eq!(evaluations(&h), 3);
    assert_eq!(h.metrics.borrow().get(Counter::CacheHit), 0);
}

#[test]
fn the_cache_can_be_turned_off() {
    let mut h = harness_with(|c| c["decision_cache"] = serde_json::json!({"max_entries": 0}));
    let get = FakeRequest::new("GET", "api.example.com", "/x").with("x-airlock-agent", "bot");
    for _ in 0..2 {
        assert!(allowed(&start(&mut h, &get, b"").1));
    }
    assert_eq!(evaluations(&h), 2);
}

/// A body that claims JSON but does not read as strict JSON is refused before the
/// policy runs: evaluating it as absent let a padded firewall change (`1e400`) or a
/// duplicate key the upstream reads differently slip past the rules that read the body.
#[test]
fn a_json_body_that_does_not_parse_is_refused_never_evaluated_as_absent() {
    let bodies: [(&[u8], &str); 6] = [
        (br#"{"rows": 1e400}"#, "policy engine"),
        (br#"{"note": "\ud800"}"#, "surrogate"),
        (b"{\"note\": \"\xff\"}", "UTF-8"),
        (br#"{"table": "orders", "table": "users"}"#, "duplicate object key"),
        (br#"{"rows": 1} trailing"#, "after the JSON value"),
        (b"not json", "at byte 0"),
    ];
    for (body, why) in bodies {
        for req in [
            export(),
            FakeRequest::new("GET", "api.example.com", "/x")
                .with("x-airlock-agent", "bot")
                .with("content-type", "application/json"),
        ] {
            let mut h = harness();
            let (_, step) = start(&mut h, &req, body);
            let (status, v) = reply_json(&step);
            assert_eq!(status, 403, "{}", String::from_utf8_lossy(body));
            assert_eq!(v["type"], "urn:airlock:problem:denied");
            assert_eq!(v["rule"], "airlock.body-unparseable");
            let detail = v["detail"].as_str().unwrap();
            assert!(detail.contains("not valid JSON") && detail.contains(why), "{detail}");
            let batch: serde_json::Value = serde_json::from_slice(&h.w.log.next_batch().unwrap()).unwrap();
            assert_eq!(batch["records"][0]["rule"], "airlock.body-unparseable");
        }
    }
    // The same bytes under a content type that is not JSON are not parsed at all.
    let mut h = harness();
    let req = FakeRequest::new("GET", "api.example.com", "/x")
        .with("x-airlock-agent", "bot")
        .with("content-type", "text/plain");
    assert!(matches!(start(&mut h, &req, br#"{"rows": 1e400}"#).1, Step::ContinueWith(_)));
}
