//! Gateway request signatures and answer signatures (`docs/protocol.md`).
//!
//! Request string: `"airlock-v1-request\n" + ts + "\n" + METHOD + "\n" + path + "\n" + hex(sha256(body))`.
//! Answer string: `"airlock-v1-response\n" + ts + "\n" + status + "\n" + request_signature + "\n" + hex(sha256(body))`.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the key id.
pub const KEY_ID_HEADER: &str = "x-airlock-key-id";
/// Header carrying the Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-airlock-timestamp";
/// Header carrying `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-airlock-signature";
/// Largest clock difference accepted.
pub const MAX_SKEW_SECS: i64 = 60;

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A signature header is missing or repeated.
    #[error("request is not signed ({0} missing or repeated)")]
    Unsigned(&'static str),
    /// The key id is not configured.
    #[error("unknown key id")]
    UnknownKey,
    /// Timestamp unparsable or more than 60 s away.
    #[error("stale or malformed timestamp")]
    Stale,
    /// HMAC mismatch.
    #[error("signature does not match")]
    BadSignature,
}

/// The gateway keys: every key is accepted; the first signs answers.
#[derive(Clone)]
pub struct GatewayKeys {
    keys: Vec<(String, Vec<u8>)>,
}

/// An answer's signature headers.
#[derive(Clone, Debug)]
pub struct AnswerSignature {
    /// `x-airlock-key-id`.
    pub key_id: String,
    /// `x-airlock-timestamp`.
    pub timestamp: String,
    /// `x-airlock-signature`.
    pub signature: String,
}

fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The string a request signature covers.
pub fn request_string(timestamp: &str, method: &str, path: &str, body: &[u8]) -> String {
    format!("airlock-v1-request\n{timestamp}\n{method}\n{path}\n{}", body_hash(body))
}

/// The string an answer signature covers.
pub fn response_string(timestamp: &str, status: u16, request_signature: &str, body: &[u8]) -> String {
    format!("airlock-v1-response\n{timestamp}\n{status}\n{request_signature}\n{}", body_hash(body))
}

fn mac(key: &[u8]) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(key).ok()
}

/// `v1=` + hex HMAC-SHA256(key, message).
pub fn sign(key: &[u8], message: &str) -> String {
    match mac(key) {
        Some(mut m) => {
            m.update(message.as_bytes());
            format!("v1={}", hex::encode(m.finalize().into_bytes()))
        }
        None => String::new(),
    }
}

fn one_header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().map_err(|_| SignatureError::Unsigned(name)),
        _ => Err(SignatureError::Unsigned(name)),
    }
}

/// Decimal Unix seconds within ±`MAX_SKEW_SECS` of `now_secs`.
fn fresh(timestamp: &str, now_secs: i64) -> bool {
    !timestamp.is_empty()
        && timestamp.len() <= 20
        && timestamp.bytes().all(|b| b.is_ascii_digit())
        && timestamp.parse::<i64>().is_ok_and(|ts| (now_secs - ts).abs() <= MAX_SKEW_SECS)
}

impl GatewayKeys {
    /// Keys in order; the first signs answers. Callers ensure at least one.
    pub fn new(keys: Vec<(String, Vec<u8>)>) -> GatewayKeys {
        GatewayKeys { keys }
    }

    /// The checks that need no body: the three headers present once, a known key id and
    /// a fresh timestamp. The service runs these before reading a body, so a caller with
    /// no key cannot make it buffer (or wait for) one.
    pub fn precheck(&self, headers: &HeaderMap, now_secs: i64) -> Result<(), SignatureError> {
        let key_id = one_header(headers, KEY_ID_HEADER)?;
        let timestamp = one_header(headers, TIMESTAMP_HEADER)?;
        one_header(headers, SIGNATURE_HEADER)?;
        if !self.keys.iter().any(|(id, _)| id == key_id) {
            return Err(SignatureError::UnknownKey);
        }
        if !fresh(timestamp, now_secs) {
            return Err(SignatureError::Stale);
        }
        Ok(())
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
        let key_id = one_header(headers, KEY_ID_HEADER)?;
        let timestamp = one_header(headers, TIMESTAMP_HEADER)?;
        let signature = one_header(headers, SIGNATURE_HEADER)?;
        let key = self.keys.iter().find(|(id, _)| id == key_id).map(|(_, k)| k).ok_or(SignatureError::UnknownKey)?;
        if !fresh(timestamp, now_secs) {
            return Err(SignatureError::Stale);
        }
        let expected =
            signature.strip_prefix("v1=").and_then(|h| hex::decode(h).ok()).ok_or(SignatureError::BadSignature)?;
        let mut m = mac(key).ok_or(SignatureError::BadSignature)?;
        m.update(request_string(timestamp, method, path, body).as_bytes());
        m.verify_slice(&expected).map_err(|_| SignatureError::BadSignature)?;
        Ok(signature.to_string())
    }

    /// Signs an answer bound to `request_signature` with the first key.
    pub fn sign_answer(
        &self,
        status: u16,
        request_signature: &str,
        body: &[u8],
        now_secs: i64,
    ) -> Option<AnswerSignature> {
        let (key_id, key) = self.keys.first()?;
        let timestamp = now_secs.to_string();
        let signature = sign(key, &response_string(&timestamp, status, request_signature, body));
        Some(AnswerSignature { key_id: key_id.clone(), timestamp, signature })
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
