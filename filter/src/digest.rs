//! The action digest: one approval covers exactly one action (see `docs/digest.md`).

use crate::action::Action;
use crate::body::RpcCall;
use airlock_protocol::signing::lower_hex;
use sha2::{Digest as _, Sha256};

const ABSENT: u32 = u32::MAX;

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        // Most allowed calls carry no body: spare them a hash.
        return EMPTY_SHA256_HEX.to_string();
    }
    lower_hex(&Sha256::digest(bytes))
}

/// SHA-256 of no bytes, hex.
pub const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The body's part of the digest: for a JSON-RPC call, the call itself (its canonical
/// form, without `id` and `params._meta`), so a client's retry with a new `id` is the
/// same action; for any other body, its bytes. The prefixes keep the two apart.
pub fn body_component(body_sha256: &str, call: Option<&RpcCall>) -> String {
    match call {
        Some(c) if c.is_notification() => format!("jsonrpc-notification:{}", c.canonical_sha256),
        Some(c) => format!("jsonrpc-request:{}", c.canonical_sha256),
        None => body_sha256.to_string(),
    }
}

/// The body's part of the digest for a JSON-RPC batch: `jsonrpc-batch:` and the hex
/// SHA-256 of each call's own body part ([`body_component`]: request or notification,
/// and the hash of its canonical form), in batch order, each followed by a newline. So
/// one approval covers exactly these calls in this order, whatever their `id`s.
pub fn batch_component(calls: &[RpcCall]) -> String {
    let mut h = Sha256::new();
    for c in calls {
        h.update(body_component("", Some(c)).as_bytes());
        h.update(b"\n");
    }
    format!("jsonrpc-batch:{}", lower_hex(&h.finalize()))
}

/// Digest of an action whose body part is `body` (see [`body_component`]).
pub fn action_digest(action: &Action, body: &str) -> String {
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
    field(Some(body.as_bytes()));
    lower_hex(&h.finalize())
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

    fn rpc(body: &str) -> String {
        let call = crate::body::read_json(body.as_bytes()).unwrap().call;
        body_component(&sha256_hex(body.as_bytes()), call.as_ref())
    }

    #[test]
    fn a_json_rpc_retry_with_a_new_id_is_the_same_action() {
        let first = rpc(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3}}}"#,
        );
        let retry = rpc(
            r#"{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"arguments": {"replicas": 3}, "name": "k8s.scale", "_meta": {"progressToken": 2}}}"#,
        );
        assert_eq!(action_digest(&action(), &first), action_digest(&action(), &retry));
        for other in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":4}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.drain","arguments":{"replicas":3}}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3}}}"#,
        ] {
            assert_ne!(action_digest(&action(), &rpc(other)), action_digest(&action(), &first), "{other}");
        }
        // The rest of the action still counts.
        let mut a = action();
        a.path = "/other".into();
        assert_ne!(action_digest(&a, &first), action_digest(&action(), &first));
    }

    #[test]
    fn a_call_never_shares_a_digest_with_a_body_that_is_not_one() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let call = rpc(body);
        assert!(call.starts_with("jsonrpc-request:"));
        assert_ne!(call, sha256_hex(body.as_bytes()));
        // Not JSON-RPC 2.0: the bytes are the action.
        let plain = r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#;
        assert_eq!(rpc(plain), sha256_hex(plain.as_bytes()));
    }

    #[test]
    fn json_rpc_vector_is_stable() {
        // docs/digest.md, "Test vectors" (computed independently in Python).
        let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3,"deployment":"web"},"_meta":{"progressToken":7}}}"#;
        let c = crate::body::read_json(body.as_bytes()).unwrap().call.unwrap();
        assert_eq!(
            crate::body::RpcCall::canonical(&crate::body::parse(body).unwrap()),
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{"deployment":"web","replicas":3},"name":"k8s.scale"}}"#
        );
        assert_eq!(c.canonical_sha256, "cfcfcdd57f9fd4620b1d69399be68526b756516d728798645ef0aba7b0955dc8");
        assert_eq!(
            action_digest(&action(), &rpc(body)),
            "c7c9dae088b3bed8c4b16e418d03f4079ee624d7b3e4d1850c39a7fe68160b29"
        );
    }

    #[test]
    fn known_vector_is_stable() {
        // Pinned so any change to the encoding is a deliberate, documented one.
        let d = action_digest(&action(), &sha256_hex(b"{}"));
        // Computed independently from docs/digest.md (Python: struct.pack(">I", len) + bytes).
        assert_eq!(d, "03b2e9bc9b522c871e6c9e05b3bdea3ba2a0d77bd4988feb2dd9a08157dabf9b");
    }

    fn batch(body: &str) -> String {
        let calls = crate::body::read_json(body.as_bytes()).unwrap().batch.unwrap().unwrap();
        batch_component(&calls)
    }

    #[test]
    fn a_batch_is_its_calls_in_order_whatever_their_ids() {
        let b = batch(
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3}}},
                {"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        );
        let retry = batch(
            r#"[{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"_meta":{"progressToken":1},"arguments":{"replicas":3},"name":"k8s.scale"}},
                {"method":"notifications/initialized","jsonrpc":"2.0"}]"#,
        );
        assert_eq!(b, retry);
        for other in [
            // Another order, another argument, a request where there was a notification,
            // a call fewer or more.
            r#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3}}}]"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":4}}},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3}}},{"jsonrpc":"2.0","id":2,"method":"notifications/initialized"}]"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3}}}]"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3}}},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        ] {
            assert_ne!(batch(other), b, "{other}");
        }
        // A batch of one is not the call alone: the answer differs (an array).
        let one = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#;
        assert_ne!(batch(one), rpc(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#));
        assert!(b.starts_with("jsonrpc-batch:"));
    }

    #[test]
    fn json_rpc_batch_vector_is_stable() {
        // docs/digest.md, "Test vectors" (computed independently in Python).
        let body = r#"[{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"k8s.scale","arguments":{"replicas":3,"deployment":"web"},"_meta":{"progressToken":7}}},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#;
        let part = batch(body);
        assert_eq!(part, "jsonrpc-batch:4884b2913055f3ec2b404ed6d14186a1590c70b2602639d42f2e45df7b59fd7d");
        assert_eq!(action_digest(&action(), &part), "54c4aecb41c309ebfcf7646cbba1faa697d010bf7138ee22612303019467f5c9");
    }
}
