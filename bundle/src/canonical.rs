//! File hashes as OPA computes them, so bundles signed by `opa sign` verify here and
//! bundles signed here verify in OPA.
//!
//! Structured documents (`data.json`, `.manifest`) are hashed over a canonical form —
//! objects with keys sorted, no whitespace, primitives as Go's `encoding/json` writes
//! them (OPA's `bundle/hash.go`) — so reformatting a data file does not break its
//! signature; every other file is hashed byte for byte. One known difference: OPA keeps
//! a number's original spelling, serde_json re-prints it, so a number written with an
//! exponent (`1e3`) hashes differently; `airlock bundle sign` and the filter agree
//! with each other either way.

use crate::BundleError;
use sha2::{Digest, Sha256};

/// Whether OPA hashes this file as a parsed JSON document.
pub fn is_structured(name: &str) -> bool {
    matches!(name.rsplit('/').next(), Some("data.json" | ".manifest"))
}

/// Lower-case hex SHA-256 of `bytes` as OPA hashes the file `name`.
pub fn file_hash(name: &str, bytes: &[u8]) -> Result<String, BundleError> {
    if !is_structured(name) {
        return Ok(hex::encode(Sha256::digest(bytes)));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| BundleError::BadFile { name: name.to_string(), why: format!("invalid JSON: {e}") })?;
    let mut h = Sha256::new();
    walk(&value, &mut h);
    Ok(hex::encode(h.finalize()))
}

fn walk(v: &serde_json::Value, h: &mut Sha256) {
    match v {
        serde_json::Value::Object(map) => {
            h.update(b"{");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                string(k, h);
                h.update(b":");
                if let Some(v) = map.get(k) {
                    walk(v, h);
                }
            }
            h.update(b"}");
        }
        serde_json::Value::Array(items) => {
            h.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                walk(item, h);
            }
            h.update(b"]");
        }
        serde_json::Value::String(s) => string(s, h),
        serde_json::Value::Number(n) => h.update(n.to_string().as_bytes()),
        serde_json::Value::Bool(b) => h.update(if *b { b"true".as_slice() } else { b"false" }),
        serde_json::Value::Null => h.update(b"null"),
    }
}

/// A JSON string as Go's encoder writes it with HTML escaping off.
fn string(s: &str, h: &mut Sha256) {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    h.update(out.as_bytes());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn structured_files_hash_their_canonical_form() {
        let a = file_hash("x/data.json", br#"{"b": [1, "<&>"], "a": {"d": null, "c": true}}"#).unwrap();
        let b = file_hash("x/data.json", b"{\"a\":{\"c\":true,\"d\":null},\"b\":[1,\"<&>\"]}").unwrap();
        assert_eq!(a, b, "whitespace and key order do not matter");
        let canonical = br#"{"a":{"c":true,"d":null},"b":[1,"<&>"]}"#;
        assert_eq!(a, hex::encode(Sha256::digest(canonical)));
        // Other files: the bytes.
        assert_eq!(file_hash("p.rego", b"x").unwrap(), hex::encode(Sha256::digest(b"x")));
        assert!(matches!(file_hash(".manifest", b"{"), Err(BundleError::BadFile { .. })));
    }

    #[test]
    fn strings_escape_as_go_does() {
        let mut h = Sha256::new();
        string("a\"\\\n\u{1}\u{2028}é", &mut h);
        assert_eq!(h.finalize().as_slice(), Sha256::digest("\"a\\\"\\\\\\n\\u0001\\u2028é\"".as_bytes()).as_slice());
    }
}
