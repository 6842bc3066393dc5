//! HMAC-SHA256 signatures between the filter and the approval service
//! (`docs/protocol.md`, "Signatures").

use crate::config::{SigningKey, SigningKeys};
use crate::digest::sha256_hex;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far the service's clock may be from ours before an answer is refused.
pub const MAX_SKEW_S: u64 = 60;

pub const KEY_ID_HEADER: &str = "x-airlock-key-id";
pub const TIMESTAMP_HEADER: &str = "x-airlock-timestamp";
pub const SIGNATURE_HEADER: &str = "x-airlock-signature";

fn mac(key: &SigningKey, parts: &[&[u8]]) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(&key.secret).ok()?;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            m.update(b"\n");
        }
        m.update(p);
    }
    Some(m)
}

/// `v1=<hex>` over the request string, with the key's id for the header.
pub fn sign_request(keys: &SigningKeys, timestamp: u64, method: &str, path: &str, body: &[u8]) -> Option<String> {
    let ts = timestamp.to_string();
    let body_hash = sha256_hex(body);
    let m = mac(
        &keys.current,
        &[b"airlock-v1-request", ts.as_bytes(), method.as_bytes(), path.as_bytes(), body_hash.as_bytes()],
    )?;
    Some(format!("v1={}", hex::encode(m.finalize().into_bytes())))
}

/// The signature headers an answer carries.
#[derive(Debug, Clone, Default)]
pub struct AnswerSignature<'a> {
    pub key_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why an answer's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSignature(pub &'static str);

/// Verify an answer to the request signed `request_signature`, in constant time.
pub fn verify_answer(
    keys: &SigningKeys,
    now_s: u64,
    status: u32,
    request_signature: &str,
    body: &[u8],
    sig: &AnswerSignature<'_>,
) -> Result<(), BadSignature> {
    let key_id = sig.key_id.ok_or(BadSignature("answer has no key id"))?;
    let key = if keys.current.id == key_id {
        &keys.current
    } else {
        match &keys.previous {
            Some(p) if p.id == key_id => p,
            _ => return Err(BadSignature("answer signed with an unknown key id")),
        }
    };
    let ts_text = sig.timestamp.ok_or(BadSignature("answer has no timestamp"))?;
    let ts: u64 = ts_text.parse().map_err(|_| BadSignature("answer timestamp is not a number"))?;
    if ts.abs_diff(now_s) > MAX_SKEW_S {
        return Err(BadSignature("answer timestamp outside the ±60 s window"));
    }
    let given = sig
        .signature
        .and_then(|s| s.strip_prefix("v1="))
        .and_then(|h| hex::decode(h).ok())
        .ok_or(BadSignature("answer signature missing or not v1 hex"))?;
    let status = status.to_string();
    let body_hash = sha256_hex(body);
    let m = mac(
        key,
        &[
            b"airlock-v1-response",
            ts_text.as_bytes(),
            status.as_bytes(),
            request_signature.as_bytes(),
            body_hash.as_bytes(),
        ],
    )
    .ok_or(BadSignature("unusable key"))?;
    // `verify_slice` compares in constant time.
    m.verify_slice(&given).map_err(|_| BadSignature("answer signature does not match"))
}

/// Sign an answer the way the service must (used by tests and fakes).
pub fn sign_answer(
    key: &SigningKey,
    timestamp: u64,
    status: u32,
    request_signature: &str,
    body: &[u8],
) -> Option<String> {
    let ts = timestamp.to_string();
    let status = status.to_string();
    let body_hash = sha256_hex(body);
    let m = mac(
        key,
        &[b"airlock-v1-response", ts.as_bytes(), status.as_bytes(), request_signature.as_bytes(), body_hash.as_bytes()],
    )?;
    Some(format!("v1={}", hex::encode(m.finalize().into_bytes())))
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
