//! The policy input (`input` in Rego), built directly as a regorus value.
//!
//! Building regorus values directly skips a serde_json round trip on every request.
//! The shape is the contract in SPEC §1; `docs/configuration.md` documents it.

use crate::action::Action;
use crate::identity::Agent;
use regorus::Value;
use std::collections::BTreeMap;

/// What the filter knows about the request body when the policy runs.
#[derive(Debug, Clone, Default)]
pub struct BodyFacts {
    /// Bytes seen (the declared length when the body was not buffered).
    pub size: usize,
    /// SHA-256 hex; `None` when the body exceeded the buffer cap.
    pub sha256: Option<String>,
    /// Parsed JSON body, when the content type is JSON and it parsed.
    pub parsed: Option<Value>,
}

fn obj(entries: Vec<(&str, Value)>) -> Value {
    let map: BTreeMap<Value, Value> = entries.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
    Value::from(map)
}

fn string_map(pairs: &[(String, String)]) -> Value {
    let map: BTreeMap<Value, Value> =
        pairs.iter().map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str()))).collect();
    Value::from(map)
}

fn query_map(query: &[(String, String)]) -> Value {
    let mut grouped: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (k, v) in query {
        grouped.entry(k.as_str()).or_default().push(Value::from(v.as_str()));
    }
    let map: BTreeMap<Value, Value> = grouped.into_iter().map(|(k, vs)| (Value::from(k), Value::from(vs))).collect();
    Value::from(map)
}

/// MCP / JSON-RPC view of a parsed body: `{"method", "tool", "arguments"}` for a
/// JSON-RPC 2.0 request, so policies gate `tools/call` by tool name and arguments
/// without re-deriving it.
fn jsonrpc_view(body: &Value) -> Option<Value> {
    if body["jsonrpc"] != Value::from("2.0") {
        return None;
    }
    let method = body["method"].clone();
    if method == Value::Undefined {
        return None;
    }
    let params = &body["params"];
    let mut entries = vec![("method", method)];
    if params["name"] != Value::Undefined {
        entries.push(("tool", params["name"].clone()));
    }
    if params["arguments"] != Value::Undefined {
        entries.push(("arguments", params["arguments"].clone()));
    }
    Some(obj(entries))
}

/// Build `input` for one request.
pub fn build(action: &Action, agent: &Agent, body: &BodyFacts, digest: Option<&str>) -> Value {
    let mut request = vec![
        ("method", Value::from(action.method.as_str())),
        ("scheme", Value::from(action.scheme.as_str())),
        ("host", Value::from(action.host.as_str())),
        ("port", Value::from(u64::from(action.port))),
        ("path", Value::from(action.path.as_str())),
        ("query", query_map(&action.query)),
        ("headers", string_map(&action.headers)),
        ("body_size", Value::from(body.size as u64)),
    ];
    if let Some(id) = &action.request_id {
        request.push(("id", Value::from(id.as_str())));
    }
    if let Some(sha) = &body.sha256 {
        request.push(("body_sha256", Value::from(sha.as_str())));
    }
    if let Some(parsed) = &body.parsed {
        if let Some(view) = jsonrpc_view(parsed) {
            request.push(("jsonrpc", view));
        }
        request.push(("body", parsed.clone()));
    }
    if let Some(d) = digest {
        request.push(("digest", Value::from(d)));
    }
    let mut agent_entries = vec![
        ("id", Value::from(agent.id.as_str())),
        ("source", Value::from(agent.source.as_str())),
        ("claims", string_map(&agent.claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>())),
        ("acts_for", Value::from(agent.acts_for.iter().map(|s| Value::from(s.as_str())).collect::<Vec<_>>())),
    ];
    if let Some(owner) = &agent.owner {
        agent_entries.push(("owner", Value::from(owner.as_str())));
    }
    let mut top = vec![("request", obj(request)), ("agent", obj(agent_entries))];
    if let Some(id) = &action.approval_hint {
        top.push(("approval", obj(vec![("id", Value::from(id.as_str()))])));
    }
    obj(top)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::config::IdentitySourceKind;

    fn agent() -> Agent {
        Agent {
            id: "bot".into(),
            source: IdentitySourceKind::Header,
            owner: Some("alice@corp.example".into()),
            acts_for: vec![],
            claims: BTreeMap::new(),
        }
    }

    fn action() -> Action {
        Action {
            request_id: Some("r1".into()),
            method: "POST".into(),
            scheme: "https".into(),
            host: "mcp.example.com".into(),
            port: 443,
            path: "/mcp".into(),
            query: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            headers: vec![("content-type".into(), "application/json".into())],
            significant: vec![],
            content_type: Some("application/json".into()),
            content_length: None,
            approval_hint: None,
            airlock_headers: vec![],
        }
    }

    #[test]
    fn input_has_the_spec_shape() {
        let body = Value::from_json_str(
            r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "db.dump", "arguments": {"table": "users"}}}"#,
        )
        .unwrap();
        let facts = BodyFacts { size: 99, sha256: Some("ab".into()), parsed: Some(body) };
        let v = build(&action(), &agent(), &facts, Some("d1"));
        let json: serde_json::Value = serde_json::to_value(&v).unwrap();
        assert_eq!(json["request"]["query"]["a"], serde_json::json!(["1", "2"]));
        assert_eq!(json["request"]["port"], 443);
        assert_eq!(json["request"]["jsonrpc"]["tool"], "db.dump");
        assert_eq!(json["request"]["jsonrpc"]["arguments"]["table"], "users");
        assert_eq!(json["request"]["body"]["method"], "tools/call");
        assert_eq!(json["request"]["digest"], "d1");
        assert_eq!(json["agent"]["owner"], "alice@corp.example");
        assert_eq!(json["agent"]["source"], "header");
    }
}
