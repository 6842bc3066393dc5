//! Reading a JSON request body strictly, and the JSON-RPC call it may carry.
//!
//! A body whose content type says JSON is read twice: by a strict scanner here, which
//! refuses what parsers disagree on (duplicate object keys, lone surrogates, invalid
//! UTF-8, trailing bytes, nesting deeper than [`MAX_DEPTH`]) and keeps every number as
//! written, and by regorus, which builds the value the policy reads (and refuses numbers
//! it cannot represent, such as `1e400`). Either refusal refuses the request: a body is
//! never evaluated as if it were absent (`docs/policy-input.md`).
//!
//! The scanner's tree also yields the canonical form of a JSON-RPC call, which the
//! action digest covers instead of the body bytes (`docs/digest.md`).

use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Deepest nesting of arrays and objects accepted (serde_json's own limit).
pub const MAX_DEPTH: usize = 128;

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

/// Read `bytes` as a JSON body.
pub fn read_json(bytes: &[u8]) -> Result<JsonBody, BodyError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| BodyError(format!("it is not valid UTF-8 (at byte {})", e.valid_up_to())))?;
    let tree = parse(text)?;
    let value = regorus::Value::from_json_str(text)
        .map_err(|e| BodyError(format!("the policy engine cannot represent it ({e})")))?;
    if let Some(n) = first_inexact_number(&tree) {
        return Err(BodyError(format!(
            "the number {n} cannot be held exactly by the policy engine, which would compare it as a different value"
        )));
    }
    let call = RpcCall::of(&tree);
    let batch = RpcCall::batch_of(&tree);
    Ok(JsonBody { value, call, batch })
}

/// The first number the policy engine would read as another value (`crate::number`).
fn first_inexact_number<'a>(v: &Json<'a>) -> Option<&'a str> {
    match v {
        Json::Number(n) => (!crate::number::exact_in_engine(n)).then_some(*n),
        Json::Array(items) => items.iter().find_map(first_inexact_number),
        Json::Object(members) => members.values().find_map(first_inexact_number),
        Json::Null | Json::Bool(_) | Json::String(_) => None,
    }
}

/// Parse `text` strictly (RFC 8259, no duplicate keys, no lone surrogates).
pub fn parse(text: &str) -> Result<Json<'_>, BodyError> {
    let mut p = Parser { s: text, b: text.as_bytes(), i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("unexpected data after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, what: &str) -> BodyError {
        BodyError(format!("{what} at byte {}", self.i))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str, v: Json<'a>) -> Result<Json<'a>, BodyError> {
        if self.b.get(self.i..).is_some_and(|rest| rest.starts_with(word.as_bytes())) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json<'a>, BodyError> {
        match self.b.get(self.i) {
            None => Err(self.err("unexpected end of JSON")),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("expected `,` or `]`"));
                    }
                }
            }
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                self.i += 1;
                let mut members = BTreeMap::new();
                self.ws();
                if self.eat(b'}') {
                    return Ok(Json::Object(members));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected an object key"));
                    }
                    let at = self.i;
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(b':') {
                        return Err(self.err("expected `:`"));
                    }
                    self.ws();
                    let v = self.value(depth + 1)?;
                    if members.contains_key(&key) {
                        // Parsers disagree on which duplicate wins: the policy could read one
                        // value and the upstream act on the other.
                        return Err(BodyError(format!("duplicate object key {key:?} at byte {at}")));
                    }
                    members.insert(key, v);
                    self.ws();
                    if self.eat(b'}') {
                        return Ok(Json::Object(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("expected `,` or `}`"));
                    }
                }
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Json<'a>, BodyError> {
        let start = self.i;
        self.eat(b'-');
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.err("invalid number"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        self.s.get(start..self.i).map(Json::Number).ok_or_else(|| self.err("invalid number"))
    }

    fn hex4(&mut self) -> Result<u32, BodyError> {
        let h = self.b.get(self.i..self.i + 4).ok_or_else(|| self.err("truncated \\u escape"))?;
        let h = std::str::from_utf8(h).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
        match h {
            Some(v) => {
                self.i += 4;
                Ok(v)
            }
            None => Err(self.err("invalid \\u escape")),
        }
    }

    fn string(&mut self) -> Result<String, BodyError> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(&c) = self.b.get(self.i) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // `start..i` ends before an ASCII byte or at the end: a char boundary.
            out.push_str(self.s.get(start..self.i).ok_or_else(|| self.err("invalid string"))?);
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(&e) = self.b.get(self.i) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            match char::from_u32(code) {
                                Some(c) => out.push(c),
                                None => return Err(self.err("lone surrogate in \\u escape")),
                            }
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
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
