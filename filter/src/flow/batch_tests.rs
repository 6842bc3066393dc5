#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! JSON-RPC batches through the flow: every call decided, the strictest effect wins,
//! every request answered.

use super::mcp_tests::mcp_request;
use super::tests::{answer, call_of, harness_with, now, start, Harness};
use super::*;
use serde_json::{json, Value as Json};

/// Default allow on purpose: a batch must not smuggle a denied call past a policy that
/// gates calls by `input.request.jsonrpc` (before batches were decided, it did).
const POLICY: &str = r#"package airlock
default decision := {"effect": "allow", "rule": "default-allow"}
decision := {"effect": "deny", "rule": "mcp-tool-denied", "reason": "MCP tool shell.exec may not be called"} if {
    input.request.jsonrpc.tool == "shell.exec"
}
decision := {"effect": "approve", "rule": "mcp-tool-approval", "reason": "k8s.scale needs approval", "risk": "high",
             "approvers": {"groups": ["sre"], "quorum": 1},
             "redact": ["request.body.params.arguments.token"]} if {
    input.request.jsonrpc.tool == "k8s.scale"
}
decision := {"effect": "approve", "rule": "db-approval", "reason": "dropping a table", "risk": "critical",
             "approvers": {"groups": ["dba"], "quorum": 1}} if {
    input.request.jsonrpc.tool == "db.drop"
}
decision := {"effect": "approve", "rule": "second-scale", "reason": "another scale", "risk": "medium",
             "approvers": {"groups": ["sre"], "quorum": 1}} if {
    input.request.jsonrpc.tool == "k8s.scale2"
}
# The batch beside the call: a policy may look at it.
decision := {"effect": "deny", "rule": "no-ping-after-tools", "reason": "ping must come first"} if {
    input.request.jsonrpc.method == "ping"
    input.request.jsonrpc_batch.index > 0
}
"#;

fn harness() -> Harness {
    harness_with(|cfg| {
        cfg["policy"]["modules"] = json!({"p.rego": POLICY});
        cfg["request"]["max_body_bytes"] = json!(8192);
        cfg["request"]["max_jsonrpc_batch"] = json!(4);
    })
}

fn tool(id: Json, name: &str, args: Json) -> Json {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}})
}

fn ping(id: Json) -> Json {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

fn notification() -> Json {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

fn send(h: &mut Harness, batch: &[Json]) -> (Flow, Step) {
    start(h, &mcp_request(), Json::Array(batch.to_vec()).to_string().as_bytes())
}

fn reply_of(step: &Step) -> &crate::problem::Reply {
    match step {
        Step::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// The batch response: HTTP 200 JSON, an array.
fn batch_reply(step: &Step) -> Vec<Json> {
    let r = reply_of(step);
    assert_eq!(r.status, 200);
    assert!(r.headers.contains(&("content-type", "application/json".to_string())), "{r:?}");
    match serde_json::from_slice(&r.body).unwrap() {
        Json::Array(items) => items,
        other => panic!("expected a batch response, got {other}"),
    }
}

fn text(v: &Json) -> String {
    match v["result"]["content"][0]["text"].as_str() {
        Some(t) => t.to_string(),
        None => v["error"]["message"].as_str().unwrap().to_string(),
    }
}

fn records(h: &mut Harness) -> Vec<Json> {
    let batch: Json = serde_json::from_slice(&h.w.log.next_batch().unwrap()).unwrap();
    h.w.log.delivered();
    batch["records"].as_array().unwrap().clone()
}

#[test]
fn a_denied_call_cannot_ride_in_a_batch() {
    let mut h = harness();
    // Alone, each is decided as expected.
    assert!(matches!(send(&mut h, &[ping(json!(1))]).1, Step::Continue | Step::ContinueWith(_)));
    let batch = [ping(json!(1)), tool(json!("b"), "shell.exec", json!({"cmd": "id"})), notification()];
    let (_, step) = send(&mut h, &batch);
    let answers = batch_reply(&step);
    // One answer per request, in order; none for the notification.
    assert_eq!(answers.len(), 2);
    assert_eq!((answers[0]["id"].clone(), answers[1]["id"].clone()), (json!(1), json!("b")));
    // The refused call: its own refusal.
    assert_eq!(answers[1]["result"]["isError"], true);
    let own = text(&answers[1]);
    assert!(own.contains("shell.exec may not be called") && own.contains("Do not retry"), "{own}");
    assert_eq!(answers[1]["result"]["_meta"]["airlock/problem"]["rule"], "mcp-tool-denied");
    // The innocent one: why it did not run, and what to do.
    assert_eq!(answers[0]["error"]["code"], -32010);
    let other = text(&answers[0]);
    for needle in [
        "`ping` request was NOT performed",
        "call 2 of 3 (tool `shell.exec`)",
        "not refused",
        "without the refused call",
    ] {
        assert!(other.contains(needle), "{needle:?} missing from {other:?}");
    }
    assert!(!other.contains("Do not retry"), "{other}");
    assert_eq!(answers[0]["error"]["data"]["rule"], "mcp-tool-denied");
    // Audit: each call's own decision, and the batch's.
    h.w.log.next_batch();
    h.w.log.delivered();
    let _ = send(&mut h, &batch);
    let recs = records(&mut h);
    let summary: Vec<(String, String, String)> = recs
        .iter()
        .map(|r| (r["decision_id"].as_str().unwrap().to_string(), r["effect"].to_string(), r["enforced"].to_string()))
        .collect();
    let id = summary[3].0.clone();
    assert_eq!(
        summary,
        vec![
            (format!("{id}#1"), "\"allow\"".into(), "\"deny\"".into()),
            (format!("{id}#2"), "\"deny\"".into(), "\"deny\"".into()),
            (format!("{id}#3"), "\"allow\"".into(), "\"deny\"".into()),
            (id.clone(), "\"deny\"".into(), "\"deny\"".into()),
        ]
    );
    assert!(recs[3]["reason"].as_str().unwrap().contains("call 2 of 3"));
    assert_eq!(h.metrics.borrow().get(Counter::Deny), 2);
}

#[test]
fn an_allowed_batch_goes_upstream_unchanged_and_is_never_cached() {
    let mut h = harness();
    for _ in 0..2 {
        let (_, step) = send(&mut h, &[ping(json!(1)), tool(json!(2), "docs.read", json!({})), notification()]);
        assert!(matches!(step, Step::Continue | Step::ContinueWith(HeaderEdits { set: _, .. })), "{step:?}");
        if let Step::ContinueWith(e) = &step {
            assert!(e.set.is_empty());
        }
    }
    assert_eq!(h.w.cache.len(), 0);
    assert_eq!(h.metrics.borrow().get(Counter::CacheHit), 0);
    let recs = records(&mut h);
    assert_eq!(recs.len(), 6);
    assert!(recs.iter().all(|r| r["enforced"] == "allow" && r["decision_id"].as_str().unwrap().contains('#')));
    // The policy sees the batch beside each call: ping second is refused.
    let (_, step) = send(&mut h, &[tool(json!(1), "docs.read", json!({})), ping(json!(2))]);
    let answers = batch_reply(&step);
    assert_eq!(answers[1]["error"]["data"]["rule"], "no-ping-after-tools");
}

#[test]
fn one_approval_covers_the_whole_batch_and_its_retry_redeems_it() {
    let mut h = harness();
    let batch =
        [ping(json!(1)), tool(json!(2), "k8s.scale", json!({"replicas": 3, "token": "s3cr3t"})), notification()];
    let (mut f, step) = send(&mut h, &batch);
    let call = call_of(step);
    let sent: Json = serde_json::from_slice(&call.body).unwrap();
    let digest = sent["digest"].as_str().unwrap().to_string();
    // The reviewer sees every call, each redacted by its own decision.
    assert_eq!(sent["request"]["body"].as_array().unwrap().len(), 3);
    assert_eq!(sent["request"]["body"][1]["params"]["arguments"]["token"], crate::redact::MASK);
    assert!(!String::from_utf8_lossy(&call.body).contains("s3cr3t"));
    let reason = sent["policy"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("batch of 3 calls")
            && reason.contains("call 2 of 3 (tool `k8s.scale`): k8s.scale needs approval"),
        "{reason}"
    );
    assert_eq!(sent["policy"]["approvers"]["groups"], json!(["sre"]));
    assert_eq!(sent["policy"]["risk"], "high");

    // Pending: every request is told, with the approval id.
    let step = f.on_answer(&mut h.w, &answer(&call, 200, json!({"approval_id": "apr_b", "status": "pending"})), now());
    let answers = batch_reply(&step);
    assert_eq!(answers.len(), 2);
    for a in &answers {
        let t = text(a);
        assert!(t.contains("apr_b") && t.contains("Retry the identical batch") && t.contains("sre"), "{t}");
    }
    assert_eq!(answers[0]["error"]["code"], -32011);
    assert_eq!(answers[1]["result"]["_meta"]["airlock/problem"]["type"], "urn:airlock:problem:approval-pending");

    // The client's retry: new ids, a progress token; the same batch.
    let mut retry = batch.clone();
    retry[0]["id"] = json!(10);
    retry[1]["id"] = json!(11);
    retry[1]["params"]["_meta"] = json!({"progressToken": 11});
    let (mut f, step) = send(&mut h, &retry);
    let call = call_of(step);
    let again: Json = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(again["digest"], digest.as_str());
    let step = f.on_answer(&mut h.w, &answer(&call, 200, json!({"approval_id": "apr_b", "status": "approved"})), now());
    let redeem = call_of(step);
    let r: Json = serde_json::from_slice(&redeem.body).unwrap();
    assert_eq!(r["digest"], digest.as_str());
    let step = f.on_answer(
        &mut h.w,
        &answer(&redeem, 200, json!({"status": "redeemed", "headers": {"authorization": "Bearer minted"}})),
        now(),
    );
    assert!(matches!(step, Step::ContinueWith(HeaderEdits { ref set, .. }) if !set.is_empty()), "{step:?}");

    // Another order, or another argument: another action.
    for other in [
        vec![batch[0].clone(), batch[2].clone(), batch[1].clone()],
        vec![
            batch[0].clone(),
            tool(json!(2), "k8s.scale", json!({"replicas": 4, "token": "s3cr3t"})),
            batch[2].clone(),
        ],
    ] {
        let (_, step) = send(&mut h, &other);
        let sent: Json = serde_json::from_slice(&call_of(step).body).unwrap();
        assert_ne!(sent["digest"], digest.as_str());
    }
}

#[test]
fn deny_beats_approve_and_unlike_approvals_are_refused() {
    let mut h = harness();
    let (_, step) = send(&mut h, &[tool(json!(1), "k8s.scale", json!({})), tool(json!(2), "shell.exec", json!({}))]);
    let answers = batch_reply(&step);
    assert!(text(&answers[0]).contains("call 2 of 2 (tool `shell.exec`)"));
    assert!(text(&answers[1]).contains("shell.exec may not be called"));

    // Approvals from different groups: one approval cannot give both.
    let (_, step) = send(&mut h, &[tool(json!(1), "k8s.scale", json!({})), tool(json!(2), "db.drop", json!({}))]);
    let answers = batch_reply(&step);
    for a in &answers {
        assert_eq!(a["result"]["_meta"]["airlock/problem"]["rule"], BATCH_MIXED_APPROVALS_RULE);
        assert!(text(a).contains("different approvals"), "{}", text(a));
    }
    // The same approvers: one approval; the batch's risk is the highest.
    let (_, step) = send(&mut h, &[tool(json!(1), "k8s.scale2", json!({})), tool(json!(2), "k8s.scale", json!({}))]);
    let sent: Json = serde_json::from_slice(&call_of(step).body).unwrap();
    assert_eq!(sent["policy"]["risk"], "high");
}

#[test]
fn malformed_oversized_and_notification_only_batches_are_refused() {
    let mut h = harness();
    // Over request.max_jsonrpc_batch (4 here): refused before the policy runs.
    let big: Vec<Json> = (0..5).map(|i| ping(json!(i))).collect();
    let (_, step) = send(&mut h, &big);
    let answers = batch_reply(&step);
    assert_eq!(answers.len(), 5);
    assert_eq!(answers[0]["error"]["data"]["rule"], BATCH_TOO_LARGE_RULE);
    assert!(text(&answers[0]).contains("smaller batches"), "{}", text(&answers[0]));

    let problem = |step: &Step| {
        let r = reply_of(step);
        assert!(r.headers.contains(&("content-type", "application/problem+json".to_string())));
        let v: Json = serde_json::from_slice(&r.body).unwrap();
        (r.status, v["rule"].as_str().unwrap_or("").to_string())
    };
    // A call mixed with a response: never partly decided.
    let mixed = [ping(json!(1)), json!({"jsonrpc": "2.0", "id": 9, "result": {}})];
    assert_eq!(problem(&send(&mut h, &mixed).1), (403, BATCH_INVALID_RULE.to_string()));
    // Notifications only: no JSON-RPC answer exists, so problem+json.
    let shell = json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "shell.exec"}});
    assert_eq!(problem(&send(&mut h, &[notification(), shell.clone()]).1), (403, "mcp-tool-denied".to_string()));
    // JSON-RPC answers turned off: problem+json.
    let mut h = harness_with(|cfg| {
        cfg["policy"]["modules"] = json!({"p.rego": POLICY});
        cfg["request"]["max_body_bytes"] = json!(8192);
        cfg["request"]["jsonrpc_answers"] = json!(false);
    });
    assert_eq!(problem(&send(&mut h, &[ping(json!(1)), shell]).1), (403, "mcp-tool-denied".to_string()));
    // Cap 0: every batch is refused.
    let mut h = harness_with(|cfg| {
        cfg["policy"]["modules"] = json!({"p.rego": POLICY});
        cfg["request"]["max_jsonrpc_batch"] = json!(0);
    });
    let answers = batch_reply(&send(&mut h, &[ping(json!(1))]).1);
    assert_eq!(answers[0]["error"]["data"]["rule"], BATCH_TOO_LARGE_RULE);
}

#[test]
fn a_batch_answer_to_an_event_stream_client_is_one_sse_message() {
    let mut h = harness();
    let req = crate::source::fake::FakeRequest::new("POST", "mcp.example.com", "/mcp")
        .with("x-airlock-agent", "bot")
        .with("content-type", "application/json")
        .with("accept", "text/event-stream");
    let body = Json::Array(vec![tool(json!(1), "shell.exec", json!({})), ping(json!(2))]).to_string();
    let (_, step) = start(&mut h, &req, body.as_bytes());
    let r = reply_of(&step);
    assert!(r.headers.contains(&("content-type", "text/event-stream".to_string())));
    let text = String::from_utf8(r.body.clone()).unwrap();
    let data = text.strip_prefix("event: message\ndata: ").unwrap().strip_suffix("\n\n").unwrap();
    let v: Json = serde_json::from_str(data).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
}
