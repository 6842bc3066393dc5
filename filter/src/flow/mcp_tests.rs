#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! JSON-RPC (MCP) calls through the flow: the action is the call, not its bytes.

use super::tests::{answer, call_of, harness_with, now, start};
use super::*;
use crate::source::fake::FakeRequest;
use serde_json::{json, Value as Json};

const MCP_POLICY: &str = r#"package airlock
default decision := {"effect": "deny", "reason": "no rule matched", "rule": "default"}
decision := {"effect": "approve", "rule": "mcp-tool-approval", "reason": "MCP tool k8s.scale needs a human's approval",
             "approvers": {"groups": ["sre"], "quorum": 1}} if {
    input.request.jsonrpc.tool == "k8s.scale"
}
decision := {"effect": "allow", "rule": "mcp-protocol"} if input.request.jsonrpc.method == "ping"
decision := {"effect": "deny", "rule": "mcp-tool-denied", "reason": "MCP tool shell.exec may not be called"} if {
    input.request.jsonrpc.tool == "shell.exec"
}
"#;

pub(super) fn mcp_harness() -> super::tests::Harness {
    harness_with(|cfg| {
        cfg["policy"]["modules"] = json!({"p.rego": MCP_POLICY});
        cfg["request"]["max_body_bytes"] = json!(4096);
    })
}

pub(super) fn mcp_request() -> FakeRequest {
    FakeRequest::new("POST", "mcp.example.com", "/mcp")
        .with("x-airlock-agent", "bot")
        .with("content-type", "application/json")
        .with("accept", "application/json, text/event-stream")
}

pub(super) fn tool_call(id: Json, tool: &str, args: Json) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
        .to_string()
        .into_bytes()
}

fn sent(step: Step) -> (Call, Json) {
    let call = call_of(step);
    let v: Json = serde_json::from_slice(&call.body).unwrap();
    (call, v)
}

#[test]
fn a_retry_with_a_new_id_redeems_the_approval_of_the_first_call() {
    let mut h = mcp_harness();
    let (_, first) = sent(start(&mut h, &mcp_request(), &tool_call(json!(1), "k8s.scale", json!({"replicas": 3}))).1);
    // The SDK numbers its requests and may add per-message metadata.
    let retry = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"_meta": {"progressToken": 2}, "arguments": {"replicas": 3}, "name": "k8s.scale"}});
    let (mut f, step) = start(&mut h, &mcp_request(), retry.to_string().as_bytes());
    let (call, again) = sent(step);
    assert_eq!(again["digest"], first["digest"]);
    // The reviewer still sees what the agent sent; the raw body hash is informational.
    assert_ne!(again["request"]["body_sha256"], first["request"]["body_sha256"]);
    let step = f.on_answer(&mut h.w, &answer(&call, 200, json!({"approval_id": "apr_1", "status": "approved"})), now());
    let (_, redeem) = sent(step);
    assert_eq!(redeem["digest"], first["digest"]);

    // Different arguments or another tool: another action.
    for (tool, args) in [("k8s.scale", json!({"replicas": 4})), ("k8s.scale", json!({"replicas": "3"}))] {
        let (_, other) = sent(start(&mut h, &mcp_request(), &tool_call(json!(1), tool, args)).1);
        assert_ne!(other["digest"], first["digest"]);
    }
}

fn reply_of(step: &Step) -> &crate::problem::Reply {
    match step {
        Step::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn header<'a>(r: &'a crate::problem::Reply, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
}

/// The JSON-RPC response in a reply, checked to be HTTP 200 JSON.
fn rpc_reply(step: &Step) -> Json {
    let r = reply_of(step);
    assert_eq!(r.status, 200);
    assert_eq!(header(r, "content-type"), Some("application/json"));
    let v: Json = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["jsonrpc"], "2.0");
    v
}

fn text_of(v: &Json) -> &str {
    assert_eq!(v["result"]["isError"], true, "{v}");
    v["result"]["content"][0]["text"].as_str().unwrap()
}

#[test]
fn a_repeated_tool_call_from_the_cache_is_still_answered_as_json_rpc() {
    let mut h = mcp_harness();
    let body = tool_call(json!("req-8"), "k8s.scale", json!({"replicas": 3}));
    for _ in 0..2 {
        let (mut f, step) = start(&mut h, &mcp_request(), &body);
        let call = call_of(step);
        let step =
            f.on_answer(&mut h.w, &answer(&call, 200, json!({"approval_id": "apr_1", "status": "pending"})), now());
        let v = rpc_reply(&step);
        assert_eq!((v["jsonrpc"].as_str(), v["id"].as_str()), (Some("2.0"), Some("req-8")), "{v}");
        assert!(text_of(&v).contains("`k8s.scale`"));
    }
    // The second was a cache hit: its body was not parsed, and the call it held came
    // back with the decision.
    assert_eq!(h.metrics.borrow().get(Counter::CacheHit), 1);
    assert_eq!(h.metrics.borrow().eval_times_us.len(), 1);
}

#[test]
fn a_pending_tool_call_gets_a_tool_result_that_tells_the_model_what_to_do() {
    let mut h = mcp_harness();
    let (mut f, step) = start(&mut h, &mcp_request(), &tool_call(json!("req-7"), "k8s.scale", json!({"replicas": 3})));
    let call = call_of(step);
    let step = f.on_answer(&mut h.w, &answer(&call, 200, json!({"approval_id": "apr_1", "status": "pending"})), now());
    assert_eq!(header(reply_of(&step), "retry-after"), Some("10"));
    let v = rpc_reply(&step);
    assert_eq!(v["id"], "req-7");
    let text = text_of(&v);
    for needle in [
        "`k8s.scale`",
        "NOT performed",
        "approval",
        "sre",
        "needs a human's approval",
        "apr_1",
        "10 seconds",
        "same arguments",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from {text:?}");
    }
    let problem = &v["result"]["_meta"]["airlock/problem"];
    assert_eq!(problem["type"], "urn:airlock:problem:approval-pending");
    assert_eq!(problem["approval_id"], "apr_1");
    assert_eq!(problem["approvers"]["groups"], json!(["sre"]));
    assert_eq!(problem["retry_after"], 10);
    // Not `structuredContent`: clients check that against the tool's output schema.
    assert!(v["result"].get("structuredContent").is_none());
}

#[test]
fn every_refusal_of_a_tool_call_is_a_tool_result_with_its_own_words() {
    let mut h = mcp_harness();
    // Denied by policy; the id (a big number) comes back exactly as sent.
    let body = br#"{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"shell.exec","arguments":{}}}"#;
    let (_, step) = start(&mut h, &mcp_request(), body);
    let r = reply_of(&step);
    assert!(String::from_utf8_lossy(&r.body).contains(r#""id":12345678901234567890,"#));
    let v = rpc_reply(&step);
    let text = text_of(&v);
    assert!(text.contains("refused by policy") && text.contains("shell.exec may not be called"), "{text}");
    assert!(text.contains("Do not retry"), "{text}");
    assert_eq!(v["result"]["_meta"]["airlock/problem"]["rule"], "mcp-tool-denied");

    // A reviewer denied it; the approval expired; the service is unreachable.
    let cases = [
        (json!({"approval_id": "apr_2", "status": "denied"}), 200, "reviewer denied", "approval-denied"),
        (json!({"approval_id": "apr_3", "status": "expired"}), 200, "expired", "approval-expired"),
        (json!({"error": "boom"}), 500, "Retry the same call later", "unavailable"),
    ];
    for (answer_body, status, needle, kind) in cases {
        let (mut f, step) = start(&mut h, &mcp_request(), &tool_call(json!(5), "k8s.scale", json!({"replicas": 3})));
        let call = call_of(step);
        let step = f.on_answer(&mut h.w, &answer(&call, status, answer_body), now());
        let v = rpc_reply(&step);
        assert_eq!(v["id"], 5);
        let text = text_of(&v);
        assert!(text.contains(needle) && text.contains("NOT performed"), "{text}");
        assert_eq!(v["result"]["_meta"]["airlock/problem"]["type"], format!("urn:airlock:problem:{kind}"));
    }
}

#[test]
fn other_methods_get_a_json_rpc_error_with_the_problem_in_data() {
    let mut h = mcp_harness();
    let body = br#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}"#;
    let (_, step) = start(&mut h, &mcp_request(), body);
    let v = rpc_reply(&step);
    assert_eq!(v["id"], 3);
    assert_eq!(v["error"]["code"], -32010);
    assert!(v["error"]["message"].as_str().unwrap().contains("`resources/read` request was NOT performed"));
    assert_eq!(v["error"]["data"]["type"], "urn:airlock:problem:denied");
    assert_eq!(v["error"]["data"]["rule"], "default");
}

#[test]
fn notifications_unreadable_bodies_and_plain_http_keep_problem_json() {
    let problem = |step: &Step| {
        let r = reply_of(step);
        assert_eq!(header(r, "content-type"), Some("application/problem+json"));
        r.status
    };
    let mut h = mcp_harness();
    // A notification has no response in JSON-RPC: MCP answers it with an HTTP error.
    let body = br#"{"jsonrpc":"2.0","method":"notifications/unknown"}"#;
    assert_eq!(problem(&start(&mut h, &mcp_request(), body).1), 403);
    // No id can be read from a body that does not parse.
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","id":2}"#;
    assert_eq!(problem(&start(&mut h, &mcp_request(), body).1), 403);
    // Turned off in the configuration.
    let mut h = harness_with(|cfg| {
        cfg["policy"]["modules"] = json!({"p.rego": MCP_POLICY});
        cfg["request"]["max_body_bytes"] = json!(4096);
        cfg["request"]["jsonrpc_answers"] = json!(false);
    });
    let (_, step) = start(&mut h, &mcp_request(), &tool_call(json!(1), "shell.exec", json!({})));
    assert_eq!(problem(&step), 403);
}

#[test]
fn a_client_that_accepts_only_an_event_stream_gets_one_sse_message() {
    let mut h = mcp_harness();
    let req = FakeRequest::new("POST", "mcp.example.com", "/mcp")
        .with("x-airlock-agent", "bot")
        .with("content-type", "application/json")
        .with("accept", "text/event-stream");
    let (_, step) = start(&mut h, &req, &tool_call(json!(9), "shell.exec", json!({})));
    let r = reply_of(&step);
    assert_eq!((r.status, header(r, "content-type")), (200, Some("text/event-stream")));
    let text = String::from_utf8(r.body.clone()).unwrap();
    let data = text.strip_prefix("event: message\ndata: ").unwrap().strip_suffix("\n\n").unwrap();
    let v: Json = serde_json::from_str(data).unwrap();
    assert_eq!((v["id"].as_i64(), v["result"]["isError"].as_bool()), (Some(9), Some(true)));
    // Both accepted (what SDK clients send): plain JSON.
    let (_, step) = start(&mut h, &mcp_request(), &tool_call(json!(9), "shell.exec", json!({})));
    rpc_reply(&step);
}

#[test]
fn a_reviewers_denial_tells_the_model_who_said_no_why_and_what_to_do() {
    let mut h = mcp_harness();
    let (mut f, step) = start(&mut h, &mcp_request(), &tool_call(json!(4), "k8s.scale", json!({"replicas": 50})));
    let call = call_of(step);
    let denied = json!({"approval_id": "apr_9", "status": "denied", "detail": "Denied by a reviewer.",
                        "comment": "not during the freeze", "denied_until": "2026-11-21T19:30:00Z"});
    let v = rpc_reply(&f.on_answer(&mut h.w, &answer(&call, 200, denied), now()));
    let text = text_of(&v);
    let dec = f.decision_id().to_string();
    assert_eq!(
        text,
        format!(
            "The call to tool `k8s.scale` was NOT performed: a human reviewer denied it. The reviewer's comment: \
             \"not during the freeze\". The policy asked for approval because: MCP tool k8s.scale needs a human's \
             approval (approval id apr_9, decision id {dec}). Tell the user it was denied. Do not retry it unless \
             the user asks you to: until 2026-11-21T19:30:00Z the same call gets this same answer, and after that a \
             retry asks the reviewers again."
        )
    );
    assert!(!text.contains("Denied by a reviewer"), "the service's own words are not spliced in: {text}");
    let problem = &v["result"]["_meta"]["airlock/problem"];
    assert_eq!(problem["reviewer_comment"], "not during the freeze", "{problem}");
    assert_eq!(problem["denied_until"], "2026-11-21T19:30:00Z", "{problem}");
    assert_eq!(problem["reason"], "MCP tool k8s.scale needs a human's approval", "{problem}");

    // Without a comment or a window (named by id after the window, or turned off).
    let (mut f, step) = start(&mut h, &mcp_request(), &tool_call(json!(5), "k8s.scale", json!({"replicas": 50})));
    let call = call_of(step);
    let v = rpc_reply(&f.on_answer(
        &mut h.w,
        &answer(&call, 200, json!({"approval_id": "apr_9", "status": "denied"})),
        now(),
    ));
    let text = text_of(&v);
    assert!(text.contains("a human reviewer denied it. The policy asked"), "{text}");
    assert!(
        text.ends_with(". Tell the user it was denied. Do not retry it unless the user asks you to; a retry asks the reviewers again."),
        "{text}"
    );
}

#[test]
fn a_policy_denial_ends_its_sentence_after_the_decision_id() {
    let mut h = mcp_harness();
    let (f, step) = start(&mut h, &mcp_request(), &tool_call(json!(1), "shell.exec", json!({})));
    let text = text_of(&rpc_reply(&step)).to_string();
    assert_eq!(
        text,
        format!(
            "The call to tool `shell.exec` was NOT performed: it was refused by policy. MCP tool shell.exec may not \
             be called (decision id {}). Do not retry the same call; it will be refused again.",
            f.decision_id()
        )
    );
}
