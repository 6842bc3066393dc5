//! The action digest: one approval covers exactly one action (see `docs/digest.md`).

use crate::action::Action;
use sha2::{Digest as _, Sha256};

const ABSENT: u32 = u32::MAX;

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        // Most allowed calls carry no body: spare them a hash.
        return EMPTY_SHA256_HEX.to_string();
    }
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of no bytes, hex.
pub const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Digest of an action whose body hashes to `body_sha256` (hex).
pub fn action_digest(action: &Action, body_sha256: &str) -> String {
    let mut h = Sha256::new();
    let mut field = |value: Option<&[u8]>| match value {
        Some(v) => {
            // Lengths above u32::MAX cannot occur: bodies and headers are capped far lower.
            let len = u32::try_from(v.len()).unwrap_or(ABSENT - 1);
            h.update(len.to_be_bytes());
            h.update(v);
        }
        None => h.update(ABSENT.to_be_bytes()),
    };
    field(Some(b"airlock-digest-v1"));
    field(Some(action.method.as_bytes()));
    field(Some(action.scheme.as_bytes()));
    field(Some(action.host.as_bytes()));
    field(Some(action.port.to_string().as_bytes()));
    field(Some(action.path.as_bytes()));
    let mut query: Vec<&(String, String)> = action.query.iter().collect();
    query.sort();
    field(Some(query.len().to_string().as_bytes()));
    for (k, v) in query {
        field(Some(k.as_bytes()));
        field(Some(v.as_bytes()));
    }
    field(Some(action.significant.len().to_string().as_bytes()));
    for (name, value) in &action.significant {
        field(Some(name.as_bytes()));
        field(value.as_deref().map(str::as_bytes));
    }
    field(Some(body_sha256.as_bytes()));
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::type_complexity)]
    use super::*;
    use crate::action::Action;

    fn action() -> Action {
        Action {
            request_id: None,
            method: "POST".into(),
            scheme: "https".into(),
            host: "api.example.com".into(),
            port: 443,
            path: "/v1/exports".into(),
            query: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            headers: vec![],
            significant: vec![("content-type".into(), Some("application/json".into()))],
            content_type: None,
            content_length: None,
            approval_hint: None,
            airlock_headers: vec![],
        }
    }

    #[test]
    fn the_empty_body_constant_is_the_hash_of_nothing() {
        assert_eq!(EMPTY_SHA256_HEX, hex::encode(Sha256::digest(b"")));
        assert_eq!(sha256_hex(b""), EMPTY_SHA256_HEX);
        assert_ne!(sha256_hex(b" "), EMPTY_SHA256_HEX);
    }

    #[test]
    fn every_component_changes_the_digest() {
        let body = sha256_hex(b"{}");
        let base = action_digest(&action(), &body);
        let variants: Vec<Box<dyn Fn(&mut Action)>> = vec![
            Box::new(|a| a.method = "PUT".into()),
            Box::new(|a| a.scheme = "http".into()),
            Box::new(|a| a.host = "api.example.org".into()),
            Box::new(|a| a.port = 8443),
            Box::new(|a| a.path = "/v1/export".into()),
            Box::new(|a| a.query.push(("c".into(), "3".into()))),
            Box::new(|a| a.query[0].1 = "3".into()),
            Box::new(|a| a.significant[0].1 = None),
            Box::new(|a| a.significant[0].1 = Some("text/csv".into())),
        ];
        for change in variants {
            let mut a = action();
            change(&mut a);
            assert_ne!(action_digest(&a, &body), base);
        }
        assert_ne!(action_digest(&action(), &sha256_hex(b"{ }")), base);
    }

    #[test]
    fn query_order_does_not_matter() {
        let body = sha256_hex(b"");
        let mut a = action();
        let d1 = action_digest(&a, &body);
        a.query.reverse();
        assert_eq!(action_digest(&a, &body), d1);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let body = sha256_hex(b"");
        let mut a = action();
        a.query = vec![("ab".into(), "c".into())];
        let mut b = action();
        b.query = vec![("a".into(), "bc".into())];
        assert_ne!(action_digest(&a, &body), action_digest(&b, &body));
    }

    #[test]
    fn known_vector_is_stable() {
        // Pinned so any change to the encoding is a deliberate, documented one.
        let d = action_digest(&action(), &sha256_hex(b"{}"));
        // Computed independently from docs/digest.md (Python: struct.pack(">I", len) + bytes).
        assert_eq!(d, "03b2e9bc9b522c871e6c9e05b3bdea3ba2a0d77bd4988feb2dd9a08157dabf9b");
    }
}
