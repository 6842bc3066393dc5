//! The service's side of the gateway signatures (`docs/protocol.md`): its keys, and the
//! headers of an axum request read for `airlock_protocol::signing`, which writes the
//! strings and the HMACs for both ends.

use airlock_protocol::signing::{self as protocol, Key, Received};
use axum::http::HeaderMap;

pub use airlock_protocol::signing::{
    request_string, response_string, sign, SignatureError, Signed as AnswerSignature, KEY_ID_HEADER, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};

/// Largest clock difference accepted.
pub const MAX_SKEW_SECS: i64 = protocol::MAX_SKEW_SECS as i64;

/// The gateway keys: every key is accepted; the first signs answers.
#[derive(Clone)]
pub struct GatewayKeys {
    keys: Vec<Key>,
}

/// The header, present exactly once: a repeated signature header is refused, never
/// guessed between.
fn one_header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().map_err(|_| SignatureError::Unsigned(name)),
        _ => Err(SignatureError::Unsigned(name)),
    }
}

fn received(headers: &HeaderMap) -> Result<Received<'_>, SignatureError> {
    Ok(Received {
        key_id: Some(one_header(headers, KEY_ID_HEADER)?),
        timestamp: Some(one_header(headers, TIMESTAMP_HEADER)?),
        signature: Some(one_header(headers, SIGNATURE_HEADER)?),
    })
}

/// Our clock as the protocol counts it (a clock before 1970 makes every timestamp stale).
fn now(now_secs: i64) -> u64 {
    u64::try_from(now_secs).unwrap_or(0)
}

impl GatewayKeys {
    /// Keys in order; the first signs answers. Callers ensure at least one.
    pub fn new(keys: Vec<(String, Vec<u8>)>) -> GatewayKeys {
        GatewayKeys { keys: keys.into_iter().map(|(id, secret)| Key { id, secret }).collect() }
    }

    /// The checks that need no body: the three headers present once, a known key id and
    /// a fresh timestamp. The service runs these before reading a body, so a caller with
    /// no key cannot make it buffer (or wait for) one.
    pub fn precheck(&self, headers: &HeaderMap, now_secs: i64) -> Result<(), SignatureError> {
        protocol::precheck(&self.keys, &received(headers)?, now(now_secs)).map(|_| ())
    }

    /// Verifies a request; returns its signature header value (answers bind to it).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        body: &[u8],
        now_secs: i64,
    ) -> Result<String, SignatureError> {
        protocol::verify_request(&self.keys, &received(headers)?, method, path, body, now(now_secs)).map(str::to_string)
    }

    /// Signs an answer bound to `request_signature` with the first key.
    pub fn sign_answer(
        &self,
        status: u16,
        request_signature: &str,
        body: &[u8],
        now_secs: i64,
    ) -> Option<AnswerSignature> {
        let key = self.keys.first()?;
        Some(protocol::sign_answer(key, now(now_secs), status, request_signature, body))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    const NOW: i64 = 1_800_000_000;

    fn keys() -> GatewayKeys {
        GatewayKeys::new(vec![("k2".into(), vec![2; 32]), ("k1".into(), vec![1; 32])])
    }

    fn signed(key_id: &str, key: &[u8], ts: i64, path: &str, body: &[u8]) -> HeaderMap {
        let ts = ts.to_string();
        let mut h = HeaderMap::new();
        h.insert(KEY_ID_HEADER, HeaderValue::from_str(key_id).unwrap());
        h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&ts).unwrap());
        let sig = sign(key, &request_string(&ts, "POST", path, body));
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(&sig).unwrap());
        h
    }

    #[test]
    fn accepts_current_and_previous_keys() {
        let k = keys();
        for (id, key) in [("k2", [2u8; 32]), ("k1", [1u8; 32])] {
            let h = signed(id, &key, NOW, "/v1/gateway/approvals", b"{}");
            assert!(k.verify(&h, "POST", "/v1/gateway/approvals", b"{}", NOW).is_ok());
        }
    }

    #[test]
    fn refuses_stale_unknown_tampered_and_unsigned() {
        let k = keys();
        let p = "/v1/gateway/approvals";
        let h = signed("k2", &[2; 32], NOW - 61, p, b"{}");
        assert_eq!(k.verify(&h, "POST", p, b"{}", NOW), Err(SignatureError::Stale));
        let h = signed("k2", &[2; 32], NOW + 61, p, b"{}");
        assert_eq!(k.verify(&h, "POST", p, b"{}", NOW), Err(SignatureError::Stale));
        let h = signed("k9", &[2; 32], NOW, p, b"{}");
        assert_eq!(k.verify(&h, "POST", p, b"{}", NOW), Err(SignatureError::UnknownKey));
        let h = signed("k2", &[2; 32], NOW, p, b"{}");
        assert_eq!(k.verify(&h, "POST", p, b"{\"x\":1}", NOW), Err(SignatureError::BadSignature));
        assert_eq!(k.verify(&h, "POST", "/v1/gateway/decisions", b"{}", NOW), Err(SignatureError::BadSignature));
        let h = signed("k2", &[1; 32], NOW, p, b"{}");
        assert_eq!(k.verify(&h, "POST", p, b"{}", NOW), Err(SignatureError::BadSignature));
        assert!(matches!(k.verify(&HeaderMap::new(), "POST", p, b"{}", NOW), Err(SignatureError::Unsigned(_))));
        let mut h = signed("k2", &[2; 32], NOW, p, b"{}");
        h.append(SIGNATURE_HEADER, HeaderValue::from_static("v1=00"));
        assert!(matches!(k.verify(&h, "POST", p, b"{}", NOW), Err(SignatureError::Unsigned(_))));
    }

    #[test]
    fn answers_bind_to_the_request_signature() {
        let a = keys().sign_answer(200, "v1=abc", b"{}", NOW).unwrap();
        assert_eq!(a.key_id, "k2");
        assert_eq!(a.signature, sign(&[2; 32], &response_string(&NOW.to_string(), 200, "v1=abc", b"{}")));
        assert_ne!(a.signature, sign(&[2; 32], &response_string(&NOW.to_string(), 200, "v1=abd", b"{}")));
    }

    #[test]
    fn empty_body_hashes_as_sha256_of_nothing() {
        assert!(request_string("1", "POST", "/", b"")
            .ends_with("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    }
}
