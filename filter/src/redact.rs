//! Masking body fields the policy names in `redact` before the body leaves the
//! gateway: reviewers see the shape of what the agent sends, never the secret.

use serde_json::Value;

pub const MASK: &str = "[REDACTED]";

/// The JSON body with every `redact` path (`request.body.a.b`, array indexes as
/// numbers) replaced by a mask. `None` when the body is not JSON.
pub fn redacted_json_body(raw: &[u8], paths: &[String]) -> Option<Value> {
    if raw.is_empty() {
        return None;
    }
    let body: Value = serde_json::from_slice(raw).ok()?;
    Some(redacted(body, paths))
}

/// A JSON-RPC batch body with each call's message redacted by that call's own `redact`
/// paths (`per_call[i]` for element `i`): the policy saw each call alone, as
/// `request.body`. `None` — the reviewer is shown no body rather than an unredacted
/// one — when the body is not an array of exactly `per_call.len()` elements.
pub fn redacted_batch_body(raw: &[u8], per_call: &[&[String]]) -> Option<Value> {
    let Value::Array(items) = serde_json::from_slice(raw).ok()? else { return None };
    if items.len() != per_call.len() {
        return None;
    }
    Some(Value::Array(items.into_iter().zip(per_call).map(|(item, paths)| redacted(item, paths)).collect()))
}

fn redacted(mut body: Value, paths: &[String]) -> Value {
    for path in paths {
        let Some(rest) = path.strip_prefix("request.body") else { continue };
        if rest.is_empty() {
            return Value::String(MASK.into());
        }
        let Some(rest) = rest.strip_prefix('.') else { continue };
        mask(&mut body, &rest.split('.').collect::<Vec<_>>());
    }
    body
}

fn mask(v: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else { return };
    let child = match v {
        Value::Object(m) => m.get_mut(*first),
        Value::Array(a) if *first == "*" => {
            for item in a.iter_mut() {
                if rest.is_empty() {
                    *item = Value::String(MASK.into());
                } else {
                    mask(item, rest);
                }
            }
            return;
        }
        Value::Array(a) => first.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    };
    if let Some(c) = child {
        if rest.is_empty() {
            *c = Value::String(MASK.into());
        } else {
            mask(c, rest);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn masks_nested_fields_and_arrays() {
        let raw = br#"{"customer": {"ssn": "123", "name": "A"}, "rows": [{"card": "4111"}, {"card": "5500"}]}"#;
        let paths = vec!["request.body.customer.ssn".to_string(), "request.body.rows.*.card".to_string()];
        let v = redacted_json_body(raw, &paths).unwrap();
        assert_eq!(v["customer"]["ssn"], MASK);
        assert_eq!(v["customer"]["name"], "A");
        assert_eq!(v["rows"][1]["card"], MASK);
        assert!(!v.to_string().contains("4111"));
    }

    #[test]
    fn whole_body_and_missing_paths() {
        assert_eq!(redacted_json_body(b"{\"a\":1}", &["request.body".into()]).unwrap(), Value::String(MASK.into()));
        assert_eq!(redacted_json_body(b"{\"a\":1}", &["request.body.b.c".into()]).unwrap()["a"], 1);
        assert!(redacted_json_body(b"not json", &[]).is_none());
    }

    #[test]
    fn each_call_of_a_batch_is_redacted_by_its_own_paths() {
        let raw =
            br#"[{"params": {"arguments": {"token": "s1"}}}, {"params": {"arguments": {"token": "s2", "x": 1}}}]"#;
        let first = vec!["request.body.params.arguments.token".to_string()];
        let second = vec!["request.body".to_string()];
        let v = redacted_batch_body(raw, &[&first, &second]).unwrap();
        assert_eq!(v[0]["params"]["arguments"]["token"], MASK);
        assert_eq!(v[1], MASK);
        assert!(!v.to_string().contains("s1") && !v.to_string().contains("s2"));
        let none: Vec<String> = vec![];
        assert_eq!(redacted_batch_body(raw, &[&none, &none]).unwrap()[1]["params"]["arguments"]["x"], 1);
        // Shown nothing rather than something unredacted.
        assert!(redacted_batch_body(raw, &[&first]).is_none());
        assert!(redacted_batch_body(b"{}", &[]).is_none());
    }
}
