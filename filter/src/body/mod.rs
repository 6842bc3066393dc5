//! Reading a JSON request body strictly, and the JSON-RPC call it may carry.
//!
//! A body whose content type says JSON is read once, by a strict parser
//! ([`parser`]) that refuses what parsers disagree on (duplicate object keys, lone
//! surrogates, invalid UTF-8, trailing bytes, nesting deeper than [`MAX_DEPTH`]) while
//! it builds the value the policy reads ([`engine`]: exactly regorus's own reading,
//! refusing numbers it cannot represent, such as `1e400`, or would hold as another
//! value). Any refusal refuses the request: a body is never evaluated as if it were
//! absent (`docs/policy-input.md`).
//!
//! A body that may be JSON-RPC is also read into the strict tree ([`Json`]), which keeps
//! every number as written: it yields the canonical form of a call, which the action
//! digest covers instead of the body bytes (`docs/digest.md`).

use crate::cache::BodyView;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt::Write as _;

mod engine;
mod parser;

pub use parser::MAX_DEPTH;

/// A parsed JSON document. Numbers keep their text; object members are sorted by key
/// (Unicode code point order, which is UTF-8 byte order) and unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(String),
    Array(Vec<Json<'a>>),
    Object(BTreeMap<String, Json<'a>>),
}

/// Why a body that claims to be JSON is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A JSON body, read strictly.
#[derive(Debug, Clone)]
pub struct JsonBody {
    /// The value the policy reads (`input.request.body`).
    pub value: regorus::Value,
    /// The JSON-RPC call the body carries, if it is one (not a batch).
    pub call: Option<RpcCall>,
    /// The calls of a JSON-RPC batch (see [`RpcCall::batch_of`]).
    pub batch: Option<Result<Vec<RpcCall>, BodyError>>,
}

/// A single JSON-RPC 2.0 request or notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcCall {
    /// The `id` as canonical JSON text, to echo in the answer; `None` for a notification.
    pub id: Option<String>,
    pub method: String,
    /// `params.name` of a `tools/call`.
    pub tool: Option<String>,
    /// Lower-case hex SHA-256 of [`RpcCall::canonical`]'s text.
    pub canonical_sha256: String,
}

/// Read `bytes` as a JSON body: one strict pass builds the value the policy reads. The
/// strict tree is built as well only when the body may be JSON-RPC (a call, or an
/// array holding one), whose canonical form keeps numbers as written.
pub fn read_json(bytes: &[u8]) -> Result<JsonBody, BodyError> {
    read_json_seen(bytes, &BodyView::All)
}

/// [`read_json`] for a policy that can read `view` of the body: members of the
/// top-level object it cannot read are validated as strictly, never built.
pub fn read_json_seen(bytes: &[u8], view: &BodyView) -> Result<JsonBody, BodyError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| BodyError(format!("it is not valid UTF-8 (at byte {})", e.valid_up_to())))?;
    let value = parser::parse_with(text, &mut engine::EngineValue::new(view))?;
    let (call, batch) = if may_carry_calls(&value) {
        let tree = parse(text)?;
        (RpcCall::of(&tree), RpcCall::batch_of(&tree))
    } else {
        (None, None)
    };
    Ok(JsonBody { value, call, batch })
}

/// Whether `v` is a JSON-RPC call or an array holding one: the test of [`RpcCall::of`]
/// (`"jsonrpc": "2.0"` and a string `method`), on the engine's value. When it fails,
/// `RpcCall::of` and `RpcCall::batch_of` would both find nothing.
fn may_carry_calls(v: &regorus::Value) -> bool {
    let is_call = |v: &regorus::Value| {
        matches!(v, regorus::Value::Object(_))
            && v["jsonrpc"] == regorus::Value::from("2.0")
            && matches!(v["method"], regorus::Value::String(_))
    };
    match v {
        regorus::Value::Array(items) => items.iter().any(is_call),
        other => is_call(other),
    }
}

/// Parse `text` strictly (RFC 8259, no duplicate keys, no lone surrogates) into the
/// tree that keeps numbers as written.
pub fn parse(text: &str) -> Result<Json<'_>, BodyError> {
    parser::parse_with(text, &mut Tree)
}

/// Builds the strict tree ([`Json`]).
struct Tree;

impl<'a> parser::Build<'a> for Tree {
    type Value = Json<'a>;
    type Object = BTreeMap<String, Json<'a>>;

    fn null(&mut self) -> Json<'a> {
        Json::Null
    }

    fn bool(&mut self, b: bool) -> Json<'a> {
        Json::Bool(b)
    }

    fn number(&mut self, text: &'a str) -> Result<Json<'a>, BodyError> {
        Ok(Json::Number(text))
    }

    fn string(&mut self, s: Cow<'a, str>) -> Json<'a> {
        Json::String(s.into_owned())
    }

    fn array(&mut self, items: Vec<Json<'a>>) -> Json<'a> {
        Json::Array(items)
    }

    fn object(&mut self) -> Self::Object {
        BTreeMap::new()
    }

    fn member(&mut self, object: &mut Self::Object, key: Cow<'a, str>, value: Json<'a>) -> Result<(), String> {
        match object.entry(key.into_owned()) {
            Entry::Occupied(e) => Err(e.key().clone()),
            Entry::Vacant(e) => {
                e.insert(value);
                Ok(())
            }
        }
    }

    fn close(&mut self, object: Self::Object) -> Json<'a> {
        Json::Object(object)
    }
}

/// Canonical JSON text of `v` (`docs/digest.md`): no whitespace, members sorted by key,
/// strings with the minimal escapes, numbers exactly as written.
pub fn canonical(v: &Json<'_>, out: &mut String) {
    canonical_skipping(v, out, &|_| false);
}

fn canonical_skipping(v: &Json<'_>, out: &mut String, skip: &dyn Fn(&str) -> bool) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(n) => out.push_str(n),
        Json::String(s) => canonical_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            let mut first = true;
            for (k, v) in members.iter().filter(|(k, _)| !skip(k)) {
                if !first {
                    out.push(',');
                }
                first = false;
                canonical_string(k, out);
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
    }
}

fn canonical_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl RpcCall {
    /// The call `tree` carries: an object with `"jsonrpc": "2.0"` and a string `method`.
    pub fn of(tree: &Json<'_>) -> Option<RpcCall> {
        let Json::Object(m) = tree else { return None };
        if m.get("jsonrpc") != Some(&Json::String("2.0".into())) {
            return None;
        }
        let Some(Json::String(method)) = m.get("method") else { return None };
        let tool = match (method.as_str(), m.get("params")) {
            ("tools/call", Some(Json::Object(p))) => match p.get("name") {
                Some(Json::String(name)) => Some(name.clone()),
                _ => None,
            },
            _ => None,
        };
        let id = m.get("id").map(|id| {
            let mut s = String::new();
            canonical(id, &mut s);
            s
        });
        let text = RpcCall::canonical(tree);
        Some(RpcCall {
            id,
            method: method.clone(),
            tool,
            canonical_sha256: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// The calls of a JSON-RPC batch: a JSON array holding at least one call.
    ///
    /// `None` when `tree` is not an array or holds no call (`[]`, an array of
    /// responses): it is no batch, and the policy sees it only as a body. `Some(Err)`
    /// when the array mixes calls with anything else (a response, a malformed message):
    /// such a batch is refused, never partly decided — the upstream would act on the
    /// calls whatever the other elements are.
    pub fn batch_of(tree: &Json<'_>) -> Option<Result<Vec<RpcCall>, BodyError>> {
        let Json::Array(items) = tree else { return None };
        let calls: Vec<Option<RpcCall>> = items.iter().map(RpcCall::of).collect();
        if calls.iter().all(Option::is_none) {
            return None;
        }
        if let Some(i) = calls.iter().position(Option::is_none) {
            return Some(Err(BodyError(format!(
                "element {} of the JSON-RPC batch is not a JSON-RPC 2.0 request or notification (an object with \
                 \"jsonrpc\": \"2.0\" and a string \"method\")",
                i + 1
            ))));
        }
        Some(Ok(calls.into_iter().flatten().collect()))
    }

    /// The call without what differs between two sendings of it: the canonical JSON of
    /// the message without its `id` member and without `params._meta` (progress tokens
    /// and other per-message metadata). Everything else — `jsonrpc`, `method`, every
    /// other `params` member, unknown members — is kept, so two calls that could mean
    /// different things never share a canonical form.
    pub fn canonical(tree: &Json<'_>) -> String {
        let mut out = String::new();
        let Json::Object(m) = tree else {
            canonical(tree, &mut out);
            return out;
        };
        out.push('{');
        let mut first = true;
        for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "id") {
            if !first {
                out.push(',');
            }
            first = false;
            canonical_string(k, &mut out);
            out.push(':');
            if k == "params" {
                canonical_skipping(v, &mut out, &|k| k == "_meta");
            } else {
                canonical(v, &mut out);
            }
        }
        out.push('}');
        out
    }

    /// A notification (no `id`): JSON-RPC gives it no answer.
    pub fn is_notification(&self) -> bool {
        self.id.is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn canon(s: &str) -> String {
        let mut out = String::new();
        canonical(&parse(s).unwrap(), &mut out);
        out
    }

    #[test]
    fn canonical_form_sorts_keys_strips_space_and_keeps_numbers_as_written() {
        assert_eq!(
            canon(r#" { "b" : [1, 2.0, 1e2, -0], "a" : {"y": null, "x": true}, "\u00e9": "\u0041\/" } "#),
            r#"{"a":{"x":true,"y":null},"b":[1,2.0,1e2,-0],"é":"A/"}"#
        );
        assert_eq!(canon(r#""\u0001\n\"\\\u2028""#), "\"\\u0001\\n\\\"\\\\\u{2028}\"");
        assert_eq!(canon(r#""\ud83d\ude00""#), "\"😀\"");
    }

    #[test]
    fn what_parsers_disagree_on_is_refused() {
        for bad in [
            r#"{"a": 1, "a": 2}"#,
            r#"{"params": {"name": "docs.read", "name": "shell.exec"}}"#,
            r#""\ud800""#,
            r#""\udc00\ud800""#,
            r#"{"a": 1} x"#,
            r#"{"a": 01}"#,
            r#"{"a": 1.}"#,
            r#"{"a": .5}"#,
            r#"[1,]"#,
            "\"a\tb\"",
            r#"{'a': 1}"#,
            "",
            "\u{feff}{}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn read_json_refuses_what_the_policy_engine_cannot_represent() {
        assert!(read_json(br#"{"a": 1e400}"#).unwrap_err().0.contains("policy engine"));
        assert!(read_json(b"{\"a\": \"\xff\"}").unwrap_err().0.contains("UTF-8"));
        assert!(read_json(br#"{"a": "\ud800"}"#).unwrap_err().0.contains("surrogate"));
        assert!(read_json(br#"{"a": 0.1, "b": 12345678901234567890, "c": -0, "d": 1.50}"#).is_ok());
    }

    /// The body's value as it was read before the one-pass reader: the strict tree for
    /// validity, regorus's own reader for the value, every number checked exact.
    fn two_pass(text: &str) -> Option<regorus::Value> {
        fn numbers<'a>(v: &Json<'a>, out: &mut Vec<&'a str>) {
            match v {
                Json::Number(n) => out.push(n),
                Json::Array(items) => items.iter().for_each(|i| numbers(i, out)),
                Json::Object(m) => m.values().for_each(|i| numbers(i, out)),
                _ => {}
            }
        }
        let tree = parse(text).ok()?;
        let value = regorus::Value::from_json_str(text).ok()?;
        let mut all = Vec::new();
        numbers(&tree, &mut all);
        all.iter().all(|n| crate::number::exact_in_engine(n)).then_some(value)
    }

    #[test]
    fn one_pass_reads_what_two_passes_read() {
        let numbers = [
            "0",
            "-0",
            "-0.0",
            "1",
            "-1",
            "17",
            "-17",
            "100",
            "1.5",
            "1.50",
            "0.1",
            "1e2",
            "1E+3",
            "2.5e-3",
            "-2.5E-3",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "-1234567890123456789",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "1e308",
            "1e400",
            "-1e400",
            "1e-400",
            "1000.0000000000001",
            "0.30000000000000001",
            "123456789012345678901234567890",
            "4.35",
            "1e0",
            "10e-1",
        ];
        let mut bodies: Vec<String> = numbers.iter().map(|n| format!(r#"{{"n": {n}, "in": [{n}]}}"#)).collect();
        bodies.extend(
            [
                r#"{"format":"csv","destination":{"uri":"s3://partner","credentials":"AKIA"},"rows":[{"id":1,"a":true},{"id":2,"a":null}]}"#,
                r#"[{"k": "v"}, {"k": "w"}, "\u00e9\ud83d\ude00\n\"", [], {}]"#,
                r#"{"\u006b": 1, "k2": "a\/b", "": ""}"#,
                r#"{"k": 1, "\u006b": 2}"#,
                r#"{"a": 1, "a": 1}"#,
                r#""plain""#,
                "true",
                "null",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1.5}}}"#,
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, 1]"#,
            ]
            .map(String::from),
        );
        for body in &bodies {
            let one = read_json(body.as_bytes()).ok().map(|b| b.value);
            let two = two_pass(body);
            assert_eq!(one, two, "{body}");
            if let (Some(one), Some(two)) = (one, two) {
                // Same numbers as the engine prints them (an integer is not a float).
                assert_eq!(serde_json::to_string(&one).unwrap(), serde_json::to_string(&two).unwrap(), "{body}");
            }
        }
    }

    #[test]
    fn only_the_members_the_policy_reads_are_built_and_the_rest_is_as_strict() {
        let view = BodyView::Members(vec!["destination".into()]);
        let body = br#"{"destination": {"uri": "s3://x"}, "rows": [{"a": 1.5}], "jsonrpc": "1.0", "n": 2}"#;
        let v = read_json_seen(body, &view).unwrap().value;
        let json = serde_json::to_value(&v).unwrap();
        // What the filter itself reads (`jsonrpc`, `method`, `params`) is always built.
        assert_eq!(json, serde_json::json!({"destination": {"uri": "s3://x"}, "jsonrpc": "1.0"}));
        assert_eq!(read_json_seen(body, &BodyView::All).unwrap().value, read_json(body).unwrap().value);
        // Refused whatever the policy reads: the same bodies as when all is built.
        for bad in [
            r#"{"rows": [{"a": 1, "a": 2}]}"#,
            r#"{"rows": 1, "rows": 2}"#,
            r#"{"destination": 1, "rows": 2, "destination": 3}"#,
            r#"{"rows": 2, "destination": 1, "rows": 3}"#,
            r#"{"rows": [1000.0000000000001]}"#,
            r#"{"rows": [1e400]}"#,
            r#"{"rows": "\ud800"}"#,
            r#"{"rows": [1,]}"#,
        ] {
            let seen = read_json_seen(bad.as_bytes(), &view).map(|_| ()).unwrap_err();
            let all = read_json(bad.as_bytes()).map(|_| ()).unwrap_err();
            assert_eq!(seen, all, "{bad}");
        }
        // Duplicates in big skipped objects too (past the short list of keys).
        let keys: Vec<String> = (0..40).map(|i| format!(r#""k{i}": {i}"#)).collect();
        for dup in [0, 10, 15, 16, 17, 39] {
            let big = format!(r#"{{"rows": {{{}, "k{dup}": 1}}}}"#, keys.join(", "));
            assert!(read_json_seen(big.as_bytes(), &view).is_err(), "k{dup}");
        }
        let big = format!(r#"{{"rows": {{{}}}}}"#, keys.join(", "));
        assert!(read_json_seen(big.as_bytes(), &view).is_ok());
        // Each skipped object's keys are its own: a key repeated in a nested or a sibling
        // object is no duplicate, one repeated after a nested object is.
        let fine = r#"{"rows": [{"a": 1, "b": {"a": 2, "b": [{"a": 3}]}, "c": 4}, {"a": 1, "c": {"d": 1}}]}"#;
        assert!(read_json_seen(fine.as_bytes(), &view).is_ok());
        let nested_big = format!(r#"{{"rows": {{{}, "in": {{"k3": 1}}, "z": 1}}}}"#, keys.join(", "));
        assert!(read_json_seen(nested_big.as_bytes(), &view).is_ok());
        for bad in
            [r#"{"rows": [{"a": 1, "b": {"a": 2}, "a": 3}]}"#, r#"{"rows": [{"a": 1}, {"b": {"c": 1}, "b": 2}]}"#]
        {
            assert!(read_json_seen(bad.as_bytes(), &view).is_err(), "{bad}");
        }
        // A JSON-RPC call is recognised as before.
        let call = br#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t"}, "rows": [1]}"#;
        assert_eq!(read_json_seen(call, &view).unwrap().call, read_json(call).unwrap().call);
    }

    #[test]
    fn only_a_body_that_may_be_json_rpc_is_read_twice() {
        assert!(!may_carry_calls(&read_json(br#"{"jsonrpc": "1.0", "method": "x"}"#).unwrap().value));
        assert!(!may_carry_calls(&read_json(br#"[{"jsonrpc": "2.0", "method": 1}]"#).unwrap().value));
        assert!(may_carry_calls(&read_json(br#"[1, {"jsonrpc": "2.0", "method": "x"}]"#).unwrap().value));
        assert!(may_carry_calls(&read_json(br#"{"jsonrpc": "2.0", "method": "x"}"#).unwrap().value));
    }

    #[test]
    fn inexact_numbers_are_refused() {
        for body in [
            r#"{"limit": 1000.0000000000001}"#,
            r#"{"limit": 1000.00000000000001}"#,
            r#"[1, {"a": 1e-400}]"#,
            r#"{"n": 123456789012345678901234567890}"#,
        ] {
            let e = read_json(body.as_bytes()).unwrap_err().0;
            assert!(e.contains("cannot be held exactly"), "{body}: {e}");
        }
    }

    fn call(s: &str) -> RpcCall {
        RpcCall::of(&parse(s).unwrap()).unwrap()
    }

    #[test]
    fn a_call_is_the_same_whatever_its_id_meta_spacing_or_key_order() {
        let a = call(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3,"deployment":"web"}}}"#,
        );
        let b = call(
            r#"{"method": "tools/call", "params": {"_meta": {"progressToken": 7}, "arguments": {"deployment": "web", "replicas": 3}, "name": "k8s.scale"}, "id": "x-42", "jsonrpc": "2.0"}"#,
        );
        assert_eq!(a.canonical_sha256, b.canonical_sha256);
        assert_eq!((a.id.as_deref(), b.id.as_deref()), (Some("1"), Some("\"x-42\"")));
        assert_eq!(a.tool.as_deref(), Some("k8s.scale"));
    }

    #[test]
    fn a_different_call_is_a_different_action() {
        let base = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3}}}"#;
        let others = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":4}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3.0}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":"3"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.drain","arguments":{"replicas":3}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3,"force":true}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3},"task":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/other","params":{"name":"k8s.scale","arguments":{"replicas":3}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3}},"x":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3,"_meta":{}}}}"#,
        ];
        let b = call(base).canonical_sha256;
        for o in others {
            assert_ne!(call(o).canonical_sha256, b, "{o}");
        }
    }

    #[test]
    fn only_json_rpc_2_objects_with_a_string_method_are_calls() {
        for not in [
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        ] {
            assert!(RpcCall::of(&parse(not).unwrap()).is_none(), "{not}");
        }
        assert!(call(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_notification());
        assert!(read_json(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap().batch.is_none());
        assert_eq!(call(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).id.as_deref(), Some("null"));
    }

    #[test]
    fn a_batch_is_an_array_of_calls_and_nothing_else() {
        let b = read_json(
            br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{}}},
                 {"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        )
        .unwrap();
        assert!(b.call.is_none());
        let calls = b.batch.unwrap().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].id.as_deref(), calls[0].tool.as_deref()), (Some("1"), Some("a")));
        assert!(calls[1].is_notification());
        // Not a batch: no call in it. The policy sees the body only.
        for not in ["[]", "[1, 2]", r#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#, r#"{"a": []}"#, "[[]]"] {
            assert!(read_json(not.as_bytes()).unwrap().batch.is_none(), "{not}");
        }
        // A call mixed with anything else is refused: never partly decided.
        for mixed in [
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, {"jsonrpc":"2.0","id":2,"result":{}}]"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, 1]"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, {"id":2,"method":"tools/call"}]"#,
            r#"[{"jsonrpc":"1.0","id":1,"method":"ping"}, {"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
        ] {
            let e = read_json(mixed.as_bytes()).unwrap().batch.unwrap().unwrap_err();
            assert!(e.0.contains("of the JSON-RPC batch is not"), "{mixed}: {e}");
        }
    }
}
