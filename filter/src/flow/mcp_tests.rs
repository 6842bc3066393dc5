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
