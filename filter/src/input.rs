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

/// Object keys of the input, allocated once per worker thread: a key is then a
/// reference-count increment instead of a fresh string on every request.
struct Keys {
    request: Value,
    agent: Value,
    approval: Value,
    method: Value,
    scheme: Value,
    host: Value,
    port: Value,
    path: Value,
    query: Value,
    headers: Value,
    body_size: Value,
    id: Value,
    body_sha256: Value,
    body: Value,
    jsonrpc: Value,
    digest: Value,
    source: Value,
    claims: Value,
    acts_for: Value,
    owner: Value,
    tool: Value,
    arguments: Value,
    params: Value,
    name: Value,
    version: Value,
    v2: Value,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            request: Value::from("request"),
            agent: Value::from("agent"),
            approval: Value::from("approval"),
            method: Value::from("method"),
            scheme: Value::from("scheme"),
            host: Value::from("host"),
            port: Value::from("port"),
            path: Value::from("path"),
            query: Value::from("query"),
            headers: Value::from("headers"),
            body_size: Value::from("body_size"),
            id: Value::from("id"),
            body_sha256: Value::from("body_sha256"),
            body: Value::from("body"),
            jsonrpc: Value::from("jsonrpc"),
            digest: Value::from("digest"),
            source: Value::from("source"),
            claims: Value::from("claims"),
            acts_for: Value::from("acts_for"),
            owner: Value::from("owner"),
            tool: Value::from("tool"),
            arguments: Value::from("arguments"),
            params: Value::from("params"),
            name: Value::from("name"),
            version: Value::from("jsonrpc"),
            v2: Value::from("2.0"),
        }
    }
}

thread_local! {
    static KEYS: Keys = Keys::new();
}

type Map = BTreeMap<Value, Value>;

fn string_map(pairs: &[(String, String)]) -> Value {
    let map: Map = pairs.iter().map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str()))).collect();
    Value::from(map)
}

fn query_map(query: &[(String, String)]) -> Value {
    let mut grouped: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (k, v) in query {
        grouped.entry(k.as_str()).or_default().push(Value::from(v.as_str()));
    }
    let map: Map = grouped.into_iter().map(|(k, vs)| (Value::from(k), Value::from(vs))).collect();
    Value::from(map)
}

/// MCP / JSON-RPC view of a parsed body: `{"method", "tool", "arguments"}` for a
/// JSON-RPC 2.0 request, so policies gate `tools/call` by tool name and arguments
/// without re-deriving it.
fn jsonrpc_view(k: &Keys, body: &Value) -> Option<Value> {
    if body[&k.version] != k.v2 {
        return None;
    }
    let method = body[&k.method].clone();
    if method == Value::Undefined {
        return None;
    }
    let params = &body[&k.params];
    let mut view = Map::new();
    view.insert(k.method.clone(), method);
    if params[&k.name] != Value::Undefined {
        view.insert(k.tool.clone(), params[&k.name].clone());
    }
    if params[&k.arguments] != Value::Undefined {
        view.insert(k.arguments.clone(), params[&k.arguments].clone());
    }
    Some(Value::from(view))
}

/// Build `input` for one request.
pub fn build(action: &Action, agent: &Agent, body: &BodyFacts, digest: Option<&str>) -> Value {
    KEYS.with(|k| build_with(k, action, agent, body, digest))
}

fn build_with(k: &Keys, action: &Action, agent: &Agent, body: &BodyFacts, digest: Option<&str>) -> Value {
    let mut request = Map::new();
    request.insert(k.method.clone(), Value::from(action.method.as_str()));
    request.insert(k.scheme.clone(), Value::from(action.scheme.as_str()));
    request.insert(k.host.clone(), Value::from(action.host.as_str()));
    request.insert(k.port.clone(), Value::from(u64::from(action.port)));
    request.insert(k.path.clone(), Value::from(action.path.as_str()));
    request.insert(k.query.clone(), query_map(&action.query));
    request.insert(k.headers.clone(), string_map(&action.headers));
    request.insert(k.body_size.clone(), Value::from(body.size as u64));
    if let Some(id) = &action.request_id {
        request.insert(k.id.clone(), Value::from(id.as_str()));
    }
    if let Some(sha) = &body.sha256 {
        request.insert(k.body_sha256.clone(), Value::from(sha.as_str()));
    }
    if let Some(parsed) = &body.parsed {
        if let Some(view) = jsonrpc_view(k, parsed) {
            request.insert(k.jsonrpc.clone(), view);
        }
        request.insert(k.body.clone(), parsed.clone());
    }
    if let Some(d) = digest {
        request.insert(k.digest.clone(), Value::from(d));
    }

    let mut agent_map = Map::new();
    agent_map.insert(k.id.clone(), Value::from(agent.id.as_str()));
    agent_map.insert(k.source.clone(), Value::from(agent.source.as_str()));
    let claims: Map = agent.claims.iter().map(|(n, v)| (Value::from(n.as_str()), Value::from(v.as_str()))).collect();
    agent_map.insert(k.claims.clone(), Value::from(claims));
    agent_map.insert(
        k.acts_for.clone(),
        Value::from(agent.acts_for.iter().map(|s| Value::from(s.as_str())).collect::<Vec<_>>()),
    );
    if let Some(owner) = &agent.owner {
        agent_map.insert(k.owner.clone(), Value::from(owner.as_str()));
    }

    let mut top = Map::new();
    top.insert(k.request.clone(), Value::from(request));
    top.insert(k.agent.clone(), Value::from(agent_map));
    if let Some(id) = &action.approval_hint {
        let mut approval = Map::new();
        approval.insert(k.id.clone(), Value::from(id.as_str()));
        top.insert(k.approval.clone(), Value::from(approval));
    }
    Value::from(top)
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
