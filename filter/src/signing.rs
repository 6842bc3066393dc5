//! The filter's side of the signatures between filter and approval service: its
//! configured keys over `airlock_protocol::signing`, which writes the strings and the
//! HMACs (`docs/protocol.md`, "Signatures").

use crate::config::{SigningKey, SigningKeys};
use airlock_protocol::signing::{self as protocol, SignatureError};

/// The signature headers an answer carries.
pub use airlock_protocol::signing::Received as AnswerSignature;
pub use airlock_protocol::signing::{KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// `v1=<hex>` over the request string, signed with the current key (its id goes in
/// `x-airlock-key-id`).
pub fn sign_request(keys: &SigningKeys, timestamp: u64, method: &str, path: &str, body: &[u8]) -> Option<String> {
    Some(protocol::sign_request(&keys.current, timestamp, method, path, body).signature)
}

/// Why an answer's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSignature(pub &'static str);

impl From<SignatureError> for BadSignature {
    fn from(e: SignatureError) -> Self {
        BadSignature(match e {
            SignatureError::Unsigned(_) => "answer is not signed (a signature header is missing)",
            SignatureError::UnknownKey => "answer signed with an unknown key id",
            SignatureError::Stale => "answer timestamp malformed or outside the ±60 s window",
            SignatureError::BadSignature => "answer signature does not match",
        })
    }
}

/// Verify an answer to the request signed `request_signature` with the current or the
/// previous key, in constant time.
pub fn verify_answer(
    keys: &SigningKeys,
    now_s: u64,
    status: u32,
    request_signature: &str,
    body: &[u8],
    sig: &AnswerSignature<'_>,
) -> Result<(), BadSignature> {
    let status = u16::try_from(status).map_err(|_| BadSignature("answer status out of range"))?;
    protocol::verify_answer(keys.all(), sig, status, request_signature, body, now_s)?;
    Ok(())
}

/// Sign an answer the way the service must (used by tests and fakes).
pub fn sign_answer(
    key: &SigningKey,
    timestamp: u64,
    status: u32,
    request_signature: &str,
    body: &[u8],
) -> Option<String> {
    let status = u16::try_from(status).ok()?;
    Some(protocol::sign_answer(key, timestamp, status, request_signature, body).signature)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn keys() -> SigningKeys {
        SigningKeys {
            current: SigningKey { id: "k2".into(), secret: vec![7; 32] },
            previous: Some(SigningKey { id: "k1".into(), secret: vec![9; 32] }),
        }
    }

    #[test]
    fn request_signature_is_deterministic_and_covers_every_part() {
        let k = keys();
        let s = sign_request(&k, 100, "POST", "/v1/gateway/approvals", b"{}").unwrap();
        assert!(s.starts_with("v1="));
        assert_eq!(s, sign_request(&k, 100, "POST", "/v1/gateway/approvals", b"{}").unwrap());
        assert_ne!(s, sign_request(&k, 101, "POST", "/v1/gateway/approvals", b"{}").unwrap());
        assert_ne!(s, sign_request(&k, 100, "PUT", "/v1/gateway/approvals", b"{}").unwrap());
        assert_ne!(s, sign_request(&k, 100, "POST", "/v1/gateway/approval", b"{}").unwrap());
        assert_ne!(s, sign_request(&k, 100, "POST", "/v1/gateway/approvals", b"{ }").unwrap());
    }

    #[test]
    fn answers_verify_with_current_or_previous_key_only() {
        let k = keys();
        let req_sig = "v1=abc";
        for key in [&k.current, k.previous.as_ref().unwrap()] {
            let sig = sign_answer(key, 1000, 200, req_sig, b"{\"ok\":1}").unwrap();
            let a = AnswerSignature { key_id: Some(&key.id), timestamp: Some("1000"), signature: Some(&sig) };
            assert!(verify_answer(&k, 1030, 200, req_sig, b"{\"ok\":1}", &a).is_ok());
            // Any change fails: status, body, bound request, time window.
            assert!(verify_answer(&k, 1030, 201, req_sig, b"{\"ok\":1}", &a).is_err());
            assert!(verify_answer(&k, 1030, 200, req_sig, b"{\"ok\":2}", &a).is_err());
            assert!(verify_answer(&k, 1030, 200, "v1=abd", b"{\"ok\":1}", &a).is_err());
            assert!(verify_answer(&k, 1061, 200, req_sig, b"{\"ok\":1}", &a).is_err());
        }
        let stranger = SigningKey { id: "k1".into(), secret: vec![1; 32] };
        let sig = sign_answer(&stranger, 1000, 200, req_sig, b"").unwrap();
        let a = AnswerSignature { key_id: Some("k1"), timestamp: Some("1000"), signature: Some(&sig) };
        assert!(verify_answer(&k, 1000, 200, req_sig, b"", &a).is_err());
        let none = AnswerSignature::default();
        assert!(verify_answer(&k, 1000, 200, req_sig, b"", &none).is_err());
    }
}
