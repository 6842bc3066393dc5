//! MCP (JSON-RPC) calls through the real filter module: the model-facing answers, and
//! an approval redeemed by the client's retry under a new JSON-RPC id.
//!
//! Needs the release build: `bash scripts/build-wasm.sh --no-fault`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::wasm_support;

use airlock_tests::host::{Host, Stream};
use serde_json::{json, Value};
use wasm_support::*;

const MCP_HOST: &str = "mcp.example.com";

const MCP_POLICY: &str = r#"package airlock
import rego.v1
default decision := {"effect": "deny", "rule": "default", "reason": "no rule matched"}
decision := {"effect": "approve", "rule": "mcp-tool-approval", "risk": "high",
             "reason": "MCP tool k8s.scale needs a human's approval",
             "approvers": {"groups": ["sre"], "quorum": 1}} if {
    input.request.jsonrpc.tool == "k8s.scale"
}
"#;

fn mcp_host() -> Host {
    let mut cfg = config();
    cfg["policy"]["modules"] = json!({"airlock.rego": MCP_POLICY});
    host_with(&cfg)
}

fn send_call(host: &mut Host, body: &Value) -> Stream {
    host.request()
        .method("POST")
        .scheme("https")
        .authority(MCP_HOST)
        .path("/mcp")
        .header(IDENTITY_HEADER, AGENT)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "s-1")
        .json(body)
        .send()
        .unwrap()
}

fn scale(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "k8s.scale", "arguments": {"deployment": "web", "replicas": 3}}})
}

#[test]
fn mcp_pending_is_a_tool_result_and_the_retry_with_a_new_id_redeems_the_approval() {
    let mut host = mcp_host();
    let first = send_call(&mut host, &scale(json!(1)));
    let create = create_call_for(&host, &first);
    let digest = create.json().unwrap()["digest"].as_str().unwrap().to_string();
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_mcp1", "status": "pending", "retry_after": 7}));

    // The MCP client gets HTTP 200 with the JSON-RPC result for its own id.
    assert!(!first.reached_upstream() && !first.upstream_saw_headers());
    let reply = local_reply(&host, &first);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(reply.header("retry-after").as_deref(), Some("7"));
    let v = reply.json().unwrap();
    assert_eq!((v["jsonrpc"].as_str(), v["id"].as_i64()), (Some("2.0"), Some(1)));
    assert_eq!(v["result"]["isError"], true);
    let text = v["result"]["content"][0]["text"].as_str().unwrap();
    for needle in ["k8s.scale", "NOT performed", "sre", "apr_mcp1", "7 seconds"] {
        assert!(text.contains(needle), "{needle:?} missing from {text:?}");
    }
    assert_eq!(v["result"]["_meta"]["airlock/problem"]["type"], "urn:airlock:problem:approval-pending");

    // The SDK's retry: a new id and a progress token; the same action.
    let mut retry = scale(json!(2));
    retry["params"]["_meta"] = json!({"progressToken": 2});
    let second = send_call(&mut host, &retry);
    let create = create_call_for(&host, &second);
    assert_eq!(create.json().unwrap()["digest"], digest.as_str());
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_mcp1", "status": "approved"}));
    let redeem = the_pending(&host, &redeem_path("apr_mcp1"));
    assert_eq!(redeem.json().unwrap()["digest"], digest.as_str());
    respond(
        &mut host,
        &redeem,
        200,
        &json!({"approval_id": "apr_mcp1", "status": "redeemed", "headers": {"authorization": "Bearer minted"}}),
    );
    assert_reached_upstream(&host, &second);
    assert_eq!(second.header("authorization").as_deref(), Some("Bearer minted"));
    // The upstream gets the retry as the client sent it, id 2.
    let sent: Value = serde_json::from_slice(&second.upstream_body()).unwrap();
    assert_eq!(sent["id"], 2);
}

#[test]
fn mcp_denied_methods_get_a_json_rpc_error_and_unparseable_bodies_a_problem() {
    let mut host = mcp_host();
    let stream = send_call(&mut host, &json!({"jsonrpc": "2.0", "id": "a", "method": "resources/read"}));
    assert!(!stream.reached_upstream() && !stream.upstream_saw_headers());
    let reply = local_reply(&host, &stream);
    assert_eq!(reply.status, 200);
    let v = reply.json().unwrap();
    assert_eq!(v["id"], "a");
    assert_eq!(v["error"]["code"], -32010);
    assert_eq!(v["error"]["data"]["rule"], "default");

    let stream = host
        .request()
        .method("POST")
        .scheme("https")
        .authority(MCP_HOST)
        .path("/mcp")
        .header(IDENTITY_HEADER, AGENT)
        .header("content-type", "application/json")
        .body(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":1e400}}}"#)
        .send()
        .unwrap();
    let body = assert_problem(&host, &stream, 403, "denied");
    assert_eq!(body["rule"], "airlock.body-unparseable");
}

#[test]
fn mcp_batches_are_decided_call_by_call_and_approved_as_a_whole() {
    let mut host = mcp_host();
    // A denied call in the batch: nothing goes upstream; one answer per request.
    let batch = json!([scale(json!(1)), {"jsonrpc": "2.0", "id": "r", "method": "resources/read"}]);
    let stream = send_call(&mut host, &batch);
    assert!(!stream.reached_upstream() && !stream.upstream_saw_headers());
    let reply = local_reply(&host, &stream);
    assert_eq!(reply.status, 200, "{reply:?}");
    let v = reply.json().unwrap();
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!((answers[0]["id"].as_i64(), answers[1]["id"].as_str()), (Some(1), Some("r")));
    assert_eq!(answers[1]["error"]["data"]["rule"], "default");
    let text = answers[0]["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("call 2 of 2") && text.contains("not refused"), "{text}");

    // Two calls that need the same approval: one approval for the batch.
    let mut second = scale(json!(2));
    second["params"]["arguments"]["replicas"] = json!(4);
    let first = send_call(&mut host, &json!([scale(json!(1)), second.clone()]));
    let create = create_call_for(&host, &first);
    let sent = create.json().unwrap();
    let digest = sent["digest"].as_str().unwrap().to_string();
    assert_eq!(sent["request"]["body"].as_array().map(Vec::len), Some(2));
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_batch", "status": "pending"}));
    let v = local_reply(&host, &first).json().unwrap();
    for a in v.as_array().unwrap() {
        assert_eq!(a["result"]["_meta"]["airlock/problem"]["approval_id"], "apr_batch");
    }

    // The retry with new ids is the same batch: approved, redeemed, sent as retried.
    second["id"] = json!(4);
    let retry = send_call(&mut host, &json!([scale(json!(3)), second]));
    let create = create_call_for(&host, &retry);
    assert_eq!(create.json().unwrap()["digest"], digest.as_str());
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_batch", "status": "approved"}));
    let redeem = the_pending(&host, &redeem_path("apr_batch"));
    respond(
        &mut host,
        &redeem,
        200,
        &json!({"approval_id": "apr_batch", "status": "redeemed", "headers": {"authorization": "Bearer minted"}}),
    );
    assert_reached_upstream(&host, &retry);
    let sent: Value = serde_json::from_slice(&retry.upstream_body()).unwrap();
    assert_eq!((sent[0]["id"].as_i64(), sent[1]["id"].as_i64()), (Some(3), Some(4)));
}
