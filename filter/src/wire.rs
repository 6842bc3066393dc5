//! JSON bodies the filter sends to the approval service (`docs/protocol.md`).

use crate::action::Action;
use crate::decision::Decision;
use crate::identity::Agent;
use serde_json::{json, Map, Value};

/// Body of `POST /v1/gateway/approvals`.
#[allow(clippy::too_many_arguments)]
pub fn approval_request(
    decision_id: &str,
    action: &Action,
    agent: &Agent,
    digest: &str,
    decision: &Decision,
    revision: &str,
    hold_ms: u64,
    body: Option<Value>,
    body_size: usize,
    body_sha256: &str,
) -> Vec<u8> {
    let mut query = Map::new();
    for (k, v) in &action.query {
        if let Value::Array(values) = query.entry(k.clone()).or_insert_with(|| Value::Array(Vec::new())) {
            values.push(Value::String(v.clone()));
        }
    }
    let headers: Map<String, Value> =
        action.headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let mut request = json!({
        "id": action.request_id,
        "method": action.method,
        "scheme": action.scheme,
        "host": action.host,
        "port": action.port,
        "path": action.path,
        "query": query,
        "headers": headers,
        "body_size": body_size,
        "body_sha256": body_sha256,
    });
    if let (Some(b), Some(obj)) = (body, request.as_object_mut()) {
        obj.insert("body".into(), b);
    }
    let policy = json!({
        "revision": revision,
        "rule": decision.rule,
        "reason": decision.reason,
        "risk": decision.risk,
        "approvers": decision.approvers,
        "expires_in": decision.expires_in,
        "credential": decision.credential,
        "reuse": decision.reuse,
    });
    let mut out = json!({
        "decision_id": decision_id,
        "agent": {"id": agent.id, "source": agent.source.as_str(), "owner": agent.owner, "acts_for": agent.acts_for},
        "digest": digest,
        "hold_ms": hold_ms,
        "policy": policy,
        "request": request,
    });
    if let (Some(id), Some(obj)) = (&action.approval_hint, out.as_object_mut()) {
        obj.insert("approval_id".into(), Value::String(id.clone()));
    }
    serde_json::to_vec(&out).unwrap_or_default()
}

/// Body of `POST /v1/gateway/approvals/{id}/redeem`.
pub fn redeem_request(decision_id: &str, agent: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"decision_id": decision_id, "agent": agent, "digest": digest})).unwrap_or_default()
}
