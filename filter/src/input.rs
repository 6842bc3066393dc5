//! The policy input (`input` in Rego), built directly as a regorus value.
//!
//! Building regorus values directly skips a serde_json round trip on every request.
//! The shape is the contract in SPEC §1; `docs/policy-input.md` documents every field.

use crate::action::Action;
use crate::cache::InputView;
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
    jsonrpc_batch: Value,
    index: Value,
    calls: Value,
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
            jsonrpc_batch: Value::from("jsonrpc_batch"),
            index: Value::from("index"),
            calls: Value::from("calls"),
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
    // The same test as `crate::body::RpcCall::of`: a string method.
    let method = body[&k.method].clone();
    if !matches!(method, Value::String(_)) {
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

/// The JSON-RPC views of a batch's messages, in order (`input.request.jsonrpc_batch.calls`);
/// `None` unless every message is a JSON-RPC 2.0 call.
pub fn jsonrpc_views(messages: &[Value]) -> Option<Value> {
    KEYS.with(|k| messages.iter().map(|m| jsonrpc_view(k, m)).collect::<Option<Vec<Value>>>().map(Value::from))
}

/// Build `input` for one request.
pub fn build(action: &Action, agent: &Agent, body: &BodyFacts, digest: Option<&str>) -> Value {
    KEYS.with(|k| build_with(k, action, agent, body, digest, None))
}

/// Build `input` for call `index` of a JSON-RPC batch: `body.parsed` is that call's
/// message, so `request.body` and `request.jsonrpc` describe it as if it came alone,
/// and `request.jsonrpc_batch` is `{"index": index, "calls": views}` (`views` from
/// [`jsonrpc_views`]). `body.size`, `body.sha256` and `digest` are the whole request's.
pub fn build_batch_call(
    action: &Action,
    agent: &Agent,
    body: &BodyFacts,
    digest: Option<&str>,
    views: &Value,
    index: usize,
) -> Value {
    KEYS.with(|k| build_with(k, action, agent, body, digest, Some((views, index))))
}

fn build_with(
    k: &Keys,
    action: &Action,
    agent: &Agent,
    body: &BodyFacts,
    digest: Option<&str>,
    batch: Option<(&Value, usize)>,
) -> Value {
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
    if let Some((views, index)) = batch {
        let mut b = Map::new();
        b.insert(k.index.clone(), Value::from(index as u64));
        b.insert(k.calls.clone(), views.clone());
        request.insert(k.jsonrpc_batch.clone(), Value::from(b));
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

/// What [`cache_key`] keys of a body: its size, hash and whether it is parsed.
pub fn body_key(body: &BodyFacts) -> (usize, Option<&str>, bool) {
    let BodyFacts { size, sha256, parsed } = body;
    (*size, sha256.as_deref(), parsed.is_some())
}

/// The decision-cache key for `build(action, agent, body, digest)`, appended to `out`:
/// an unambiguous encoding (length-prefixed fields, tagged options, counted lists) of
/// every value `build` reads, so two requests with equal keys get equal inputs.
///
/// The structs are destructured in full: a field added to [`Action`], [`Agent`] or
/// [`BodyFacts`] (see [`body_key`]) does not compile here until it is either keyed or
/// argued out, so the key cannot silently fall behind the input. The body is given as
/// its size, hash and whether it is (to be) parsed, so the flow can look a request up
/// before parsing its body. Two values are deliberately not keyed:
/// - the parsed body (`request.body`, `request.jsonrpc`): it is a function of the body
///   bytes, which `sha256` (SHA-256, the same trust the action digest puts in it)
///   identifies; whether it is present is keyed;
/// - `request.id` and headers that `view` says the policy cannot read
///   (`crate::cache::plan` establishes it from the modules).
///
/// Returns false when the key cannot stand for the input (a parsed body without a
/// body hash); the caller then does not use the cache. A JSON-RPC batch, evaluated
/// once per call (`build_batch_call`), is never cached: the flow does not ask.
pub fn cache_key(
    out: &mut Vec<u8>,
    action: &Action,
    agent: &Agent,
    size: usize,
    sha256: Option<&str>,
    parsed: bool,
    view: &InputView,
) -> bool {
    let Action {
        request_id,
        method,
        scheme,
        host,
        port,
        path,
        query,
        headers,
        significant,
        content_type,
        content_length,
        approval_hint,
        airlock_headers,
    } = action;
    let Agent { id, source, owner, acts_for, claims } = agent;
    if parsed && sha256.is_none() {
        return false;
    }
    let s = |out: &mut Vec<u8>, v: &str| {
        // Lengths beyond u32 cannot occur (headers and bodies are capped far lower);
        // saturating keeps the encoding total rather than panicking.
        out.extend_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    };
    let opt = |out: &mut Vec<u8>, v: Option<&str>| match v {
        Some(v) => {
            out.push(1);
            s(out, v);
        }
        None => out.push(0),
    };
    let n = |out: &mut Vec<u8>, v: usize| out.extend_from_slice(&(v as u64).to_le_bytes());
    opt(out, if view.request_id { request_id.as_deref() } else { None });
    out.push(u8::from(view.request_id));
    s(out, method);
    s(out, scheme);
    s(out, host);
    out.extend_from_slice(&port.to_le_bytes());
    s(out, path);
    n(out, query.len());
    for (k, v) in query {
        s(out, k);
        s(out, v);
    }
    // Each keyed header is tagged 1, the list ends with 0: unambiguous without a count.
    for (k, v) in headers.iter().filter(|(k, _)| view.header(k)) {
        out.push(1);
        s(out, k);
        s(out, v);
    }
    out.push(0);
    // Not read by `build` (the digest, which is, covers `significant`); keyed anyway:
    // more specific only costs hits.
    n(out, significant.len());
    for (k, v) in significant {
        s(out, k);
        opt(out, v.as_deref());
    }
    opt(out, content_type.as_deref());
    match content_length {
        Some(l) => {
            out.push(1);
            n(out, *l);
        }
        None => out.push(0),
    }
    opt(out, approval_hint.as_deref());
    n(out, airlock_headers.len());
    for h in airlock_headers {
        s(out, h);
    }
    s(out, id);
    s(out, source.as_str());
    opt(out, owner.as_deref());
    n(out, acts_for.len());
    for a in acts_for {
        s(out, a);
    }
    n(out, claims.len());
    for (k, v) in claims {
        s(out, k);
        s(out, v);
    }
    n(out, size);
    opt(out, sha256);
    out.push(u8::from(parsed));
    // The digest (in `input`) is not encoded: it is a function of method, scheme, host,
    // port, path, query, significant headers and body hash, all encoded above.
    true
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

    #[test]
    fn a_batch_call_is_seen_alone_with_the_whole_batch_beside_it() {
        let batch = Value::from_json_str(
            r#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"},
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "db.dump", "arguments": {"table": "users"}}}]"#,
        )
        .unwrap();
        let messages: Vec<Value> = batch.as_array().unwrap().iter().cloned().collect();
        let views = jsonrpc_views(&messages).unwrap();
        let facts = BodyFacts { size: 150, sha256: Some("ab".into()), parsed: Some(messages[1].clone()) };
        let v = build_batch_call(&action(), &agent(), &facts, Some("d1"), &views, 1);
        let json: serde_json::Value = serde_json::to_value(&v).unwrap();
        let r = &json["request"];
        assert_eq!(
            r["jsonrpc"],
            serde_json::json!({"method": "tools/call", "tool": "db.dump", "arguments": {"table": "users"}})
        );
        assert_eq!(r["body"]["id"], 2);
        assert_eq!(r["jsonrpc_batch"]["index"], 1);
        assert_eq!(r["jsonrpc_batch"]["calls"][0], serde_json::json!({"method": "ping"}));
        assert_eq!(r["jsonrpc_batch"]["calls"][1]["tool"], "db.dump");
        assert_eq!((r["body_size"].as_u64(), r["digest"].as_str()), (Some(150), Some("d1")));
        // A single call has no batch member.
        let single = build(&action(), &agent(), &facts, Some("d1"));
        assert!(serde_json::to_value(&single).unwrap()["request"].get("jsonrpc_batch").is_none());
        // Views only for calls.
        let mixed = Value::from_json_str(r#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"}, 1]"#).unwrap();
        assert!(jsonrpc_views(&mixed.as_array().unwrap().iter().cloned().collect::<Vec<_>>()).is_none());
    }

    fn key(a: &Action, ag: &Agent, b: &BodyFacts, with_id: bool) -> Vec<u8> {
        let view = InputView { request_id: with_id, ..InputView::ALL };
        let mut out = Vec::new();
        let (size, sha, parsed) = body_key(b);
        assert!(cache_key(&mut out, a, ag, size, sha, parsed, &view));
        out
    }

    /// The digest as the flow computes it: from the action and the body hash.
    fn digest_of(a: &Action, b: &BodyFacts) -> Option<String> {
        b.sha256.as_deref().map(|sha| crate::digest::action_digest(a, sha))
    }

    fn facts(body: &str) -> BodyFacts {
        BodyFacts {
            size: body.len(),
            sha256: Some(crate::digest::sha256_hex(body.as_bytes())),
            parsed: Value::from_json_str(body).ok(),
        }
    }

    /// Every variant of the request, its key and its input.
    fn variants() -> Vec<(String, Vec<u8>, Value)> {
        type Change = Box<dyn Fn(&mut Action, &mut Agent, &mut BodyFacts)>;
        let changes: Vec<(&str, Change)> = vec![
            ("base", Box::new(|_, _, _| {})),
            ("method", Box::new(|a, _, _| a.method = "PUT".into())),
            ("scheme", Box::new(|a, _, _| a.scheme = "http".into())),
            ("host", Box::new(|a, _, _| a.host = "mcp.example.org".into())),
            ("port", Box::new(|a, _, _| a.port = 8443)),
            ("path", Box::new(|a, _, _| a.path = "/mcp/".into())),
            ("query value", Box::new(|a, _, _| a.query[1].1 = "3".into())),
            ("query split", Box::new(|a, _, _| a.query = vec![("a".into(), "12".into())])),
            ("header", Box::new(|a, _, _| a.headers[0].1 = "text/plain".into())),
            ("approval", Box::new(|a, _, _| a.approval_hint = Some("apr_1".into()))),
            ("agent", Box::new(|_, g, _| g.id = "bot2".into())),
            ("owner", Box::new(|_, g, _| g.owner = None)),
            ("acts_for", Box::new(|_, g, _| g.acts_for = vec!["bob".into()])),
            ("claims", Box::new(|_, g, _| _ = g.claims.insert("scope".into(), "x".into()))),
            ("source", Box::new(|_, g, _| g.source = IdentitySourceKind::Mtls)),
            ("body", Box::new(|_, _, b| *b = facts(r#"{"a": 2}"#))),
            ("body size", Box::new(|_, _, b| b.size += 1)),
            ("body unparsed", Box::new(|_, _, b| b.parsed = None)),
            ("body over cap", Box::new(|_, _, b| *b = BodyFacts { size: 5, sha256: None, parsed: None })),
            ("significant header", Box::new(|a, _, _| a.significant = vec![("x-tenant".into(), Some("t".into()))])),
        ];
        changes
            .into_iter()
            .map(|(name, change)| {
                let (mut a, mut g, mut b) = (action(), agent(), facts(r#"{"a": 1}"#));
                change(&mut a, &mut g, &mut b);
                let d = digest_of(&a, &b);
                (name.to_string(), key(&a, &g, &b, true), build(&a, &g, &b, d.as_deref()))
            })
            .collect()
    }

    #[test]
    fn equal_keys_mean_equal_inputs_and_every_field_is_keyed() {
        let v = variants();
        for (i, (n1, k1, in1)) in v.iter().enumerate() {
            for (n2, k2, in2) in &v[i + 1..] {
                assert_ne!(k1, k2, "{n1} and {n2} share a key");
                // The converse: a different input always has a different key. Compared
                // as JSON text so 1 and 1.0 would count as different, as Rego can tell.
                let (j1, j2) = (serde_json::to_string(in1).unwrap(), serde_json::to_string(in2).unwrap());
                if j1 != j2 {
                    assert_ne!(k1, k2, "{n1} / {n2}");
                }
            }
        }
    }

    #[test]
    fn the_request_id_is_keyed_only_when_asked() {
        let (a, g, b) = (action(), agent(), facts("{}"));
        let mut other = action();
        other.request_id = Some("r2".into());
        assert_ne!(key(&a, &g, &b, true), key(&other, &g, &b, true));
        assert_eq!(key(&a, &g, &b, false), key(&other, &g, &b, false));
        assert_ne!(key(&a, &g, &b, false), key(&a, &g, &b, true));
    }

    #[test]
    fn only_visible_headers_are_keyed() {
        let (g, b) = (agent(), facts("{}"));
        let mut a = action();
        a.headers.push(("x-request-id".into(), "1".into()));
        let mut other = a.clone();
        other.headers[1].1 = "2".into();
        let view =
            InputView { request_id: false, headers: crate::cache::HeaderView::Named(vec!["content-type".into()]) };
        let k = |a: &Action| {
            let mut out = Vec::new();
            let (size, sha, parsed) = body_key(&b);
            assert!(cache_key(&mut out, a, &g, size, sha, parsed, &view));
            out
        };
        assert_eq!(k(&a), k(&other));
        // A policy that can see every header is keyed on every header.
        assert_ne!(key(&a, &g, &b, false), key(&other, &g, &b, false));
        other.headers[0].1 = "text/plain".into();
        assert_ne!(k(&a), k(&other));
    }

    #[test]
    fn a_parsed_body_without_its_hash_is_not_keyed() {
        let b = BodyFacts { size: 2, sha256: None, parsed: Some(Value::new_object()) };
        let (size, sha, parsed) = body_key(&b);
        assert!(!cache_key(&mut Vec::new(), &action(), &agent(), size, sha, parsed, &InputView::ALL));
    }
}
