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
    let mut body: Value = serde_json::from_slice(raw).ok()?;
    for path in paths {
        let Some(rest) = path.strip_prefix("request.body") else { continue };
        if rest.is_empty() {
            return Some(Value::String(MASK.into()));
        }
        let Some(rest) = rest.strip_prefix('.') else { continue };
        mask(&mut body, &rest.split('.').collect::<Vec<_>>());
    }
    Some(body)
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
}
