//! The filter ↔ service signatures of `docs/protocol.md`, both directions.
//!
//! Request string: `"airlock-v1-request\n" + ts + "\n" + METHOD + "\n" + path + "\n" + hex(sha256(body))`.
//! Answer string: `"airlock-v1-response\n" + ts + "\n" + status + "\n" + request_signature + "\n" + hex(sha256(body))`.
//! Signature header value: `v1=` + lower-case hex HMAC-SHA256.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the signing key id.
pub const KEY_ID_HEADER: &str = "x-airlock-key-id";
/// Header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-airlock-timestamp";
/// Header carrying `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-airlock-signature";
/// How far a timestamp may be from the verifier's clock.
pub const MAX_SKEW_SECS: i64 = 60;

/// Lower-case hex SHA-256 of `body` (of the empty string when `body` is empty).
pub fn body_hash(body: &[u8]) -> String {
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

/// `v1=` + hex HMAC-SHA256(key, message).
pub fn sign(key: &[u8], message: &str) -> anyhow::Result<String> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|e| anyhow::anyhow!("bad HMAC key: {e}"))?;
    mac.update(message.as_bytes());
    Ok(format!("v1={}", hex::encode(mac.finalize().into_bytes())))
}

/// Constant-time check of a `v1=<hex>` signature header value.
pub fn verify(key: &[u8], message: &str, signature: &str) -> bool {
    let Some(hex_part) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_part) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(message.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// Current Unix time in seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether a decimal timestamp is within [`MAX_SKEW_SECS`] of now.
pub fn timestamp_fresh(timestamp: &str) -> bool {
    match timestamp.parse::<i64>() {
        Ok(ts) if timestamp.bytes().all(|b| b.is_ascii_digit()) => (now_secs() - ts).abs() <= MAX_SKEW_SECS,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sign_then_verify() {
        let key = [7u8; 32];
        let msg = request_string("1700000000", "POST", "/v1/gateway/approvals", b"{}");
        let sig = sign(&key, &msg).unwrap();
        assert!(sig.starts_with("v1="));
        assert!(verify(&key, &msg, &sig));
        assert!(!verify(&[8u8; 32], &msg, &sig));
        assert!(!verify(&key, &msg, &sig.replace("v1=", "v2=")));
        assert!(!verify(&key, &format!("{msg}x"), &sig));
    }

    #[test]
    fn empty_body_hashes_as_sha256_of_empty_string() {
        assert_eq!(body_hash(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn stale_timestamps_are_refused() {
        assert!(timestamp_fresh(&now_secs().to_string()));
        assert!(!timestamp_fresh(&(now_secs() - 61).to_string()));
        assert!(!timestamp_fresh(&(now_secs() + 61).to_string()));
        assert!(!timestamp_fresh("+1700000000"));
        assert!(!timestamp_fresh("soon"));
    }
}
