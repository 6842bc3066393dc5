//! HMAC-SHA256 signatures on every gateway request and on every answer to one
//! (`docs/protocol.md`, "Signatures").
//!
//! Request string: `"airlock-v1-request\n" + ts + "\n" + METHOD + "\n" + path + "\n" + hex(sha256(body))`.
//! Answer string: `"airlock-v1-response\n" + ts + "\n" + status + "\n" + request_signature + "\n" + hex(sha256(body))`.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the key id.
pub const KEY_ID_HEADER: &str = "x-airlock-key-id";
/// Header carrying the Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-airlock-timestamp";
/// Header carrying `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-airlock-signature";
/// Largest clock difference accepted, either way, in seconds.
pub const MAX_SKEW_SECS: u64 = 60;

/// A shared HMAC key and the id that names it in `x-airlock-key-id`.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material, even in debug logs.
        f.debug_struct("Key").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The three signature headers of a message as received (`None`: absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Received<'a> {
    pub key_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// The three signature headers to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `x-airlock-key-id`.
    pub key_id: String,
    /// `x-airlock-timestamp`.
    pub timestamp: String,
    /// `x-airlock-signature`: `v1=` + lower-case hex.
    pub signature: String,
}

/// Why a signed message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// A signature header is missing (or, as the receiver saw it, repeated).
    Unsigned(&'static str),
    /// The key id is not one of ours.
    UnknownKey,
    /// Timestamp not decimal seconds, or more than [`MAX_SKEW_SECS`] away.
    Stale,
    /// Not `v1=<hex>`, or the HMAC does not match.
    BadSignature,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Unsigned(header) => write!(f, "not signed ({header} missing or repeated)"),
            SignatureError::UnknownKey => f.write_str("unknown key id"),
            SignatureError::Stale => f.write_str("stale or malformed timestamp"),
            SignatureError::BadSignature => f.write_str("signature does not match"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// Lower-case hex SHA-256 of `body` (an empty body hashes as `sha256("")`).
pub fn body_hash(body: &[u8]) -> String {
    lower_hex(&Sha256::digest(body))
}

/// Lower-case hex of `bytes`. `hex::encode` collects an iterator of `char`s one at a
/// time; the gateway hex-encodes several hashes per request, so this writes the pairs
/// into one buffer instead.
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // Only fails when the buffer is not twice the input's length.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The string a request signature covers. `path` is the `:path` sent, query included.
pub fn request_string(timestamp: &str, method: &str, path: &str, body: &[u8]) -> String {
    format!("airlock-v1-request\n{timestamp}\n{method}\n{path}\n{}", body_hash(body))
}

/// The string an answer signature covers: bound to the signature of the request it
/// answers, so a recorded answer cannot be replayed to another request.
pub fn response_string(timestamp: &str, status: u16, request_signature: &str, body: &[u8]) -> String {
    format!("airlock-v1-response\n{timestamp}\n{status}\n{request_signature}\n{}", body_hash(body))
}

/// `v1=` + lower-case hex HMAC-SHA256(`key`, `message`).
pub fn sign(key: &[u8], message: &str) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail here.
    match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            m.update(message.as_bytes());
            format!("v1={}", lower_hex(&m.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

/// Whether `signature` (`v1=<hex>`) is HMAC-SHA256(`key`, `message`), compared in
/// constant time.
pub fn verify(key: &[u8], message: &str, signature: &str) -> bool {
    let Some(given) = signature.strip_prefix("v1=").and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    m.update(message.as_bytes());
    m.verify_slice(&given).is_ok()
}

/// Decimal Unix seconds within ±[`MAX_SKEW_SECS`] of `now_s`.
pub fn fresh(timestamp: &str, now_s: u64) -> bool {
    !timestamp.is_empty()
        && timestamp.len() <= 20
        && timestamp.bytes().all(|b| b.is_ascii_digit())
        && timestamp.parse::<u64>().is_ok_and(|ts| ts.abs_diff(now_s) <= MAX_SKEW_SECS)
}

/// Signs a request with `key` at `timestamp`.
pub fn sign_request(key: &Key, timestamp: u64, method: &str, path: &str, body: &[u8]) -> Signed {
    let ts = timestamp.to_string();
    let signature = sign(&key.secret, &request_string(&ts, method, path, body));
    Signed { key_id: key.id.clone(), timestamp: ts, signature }
}

/// Signs an answer with `key` at `timestamp`, bound to `request_signature`.
pub fn sign_answer(key: &Key, timestamp: u64, status: u16, request_signature: &str, body: &[u8]) -> Signed {
    let ts = timestamp.to_string();
    let signature = sign(&key.secret, &response_string(&ts, status, request_signature, body));
    Signed { key_id: key.id.clone(), timestamp: ts, signature }
}

/// The key `received` names (any of `keys`: current and previous while they rotate) and
/// its fresh timestamp: the checks that need no body, so a receiver can run them before
/// it reads one.
pub fn precheck<'k, 'r>(
    keys: impl IntoIterator<Item = &'k Key>,
    received: &Received<'r>,
    now_s: u64,
) -> Result<(&'k Key, &'r str), SignatureError> {
    let key_id = received.key_id.ok_or(SignatureError::Unsigned(KEY_ID_HEADER))?;
    let timestamp = received.timestamp.ok_or(SignatureError::Unsigned(TIMESTAMP_HEADER))?;
    received.signature.ok_or(SignatureError::Unsigned(SIGNATURE_HEADER))?;
    let key = keys.into_iter().find(|k| k.id == key_id).ok_or(SignatureError::UnknownKey)?;
    if !fresh(timestamp, now_s) {
        return Err(SignatureError::Stale);
    }
    Ok((key, timestamp))
}

/// Verifies a request signed with any of `keys`; answers its signature (answers bind
/// to it).
pub fn verify_request<'r, 'k>(
    keys: impl IntoIterator<Item = &'k Key>,
    received: &Received<'r>,
    method: &str,
    path: &str,
    body: &[u8],
    now_s: u64,
) -> Result<&'r str, SignatureError> {
    let (key, timestamp) = precheck(keys, received, now_s)?;
    let signature = received.signature.ok_or(SignatureError::Unsigned(SIGNATURE_HEADER))?;
    if !verify(&key.secret, &request_string(timestamp, method, path, body), signature) {
        return Err(SignatureError::BadSignature);
    }
    Ok(signature)
}

/// Verifies an answer (HTTP `status`, `body`) to the request signed
/// `request_signature`, signed with any of `keys`.
pub fn verify_answer<'k>(
    keys: impl IntoIterator<Item = &'k Key>,
    received: &Received<'_>,
    status: u16,
    request_signature: &str,
    body: &[u8],
    now_s: u64,
) -> Result<(), SignatureError> {
    let (key, timestamp) = precheck(keys, received, now_s)?;
    let signature = received.signature.ok_or(SignatureError::Unsigned(SIGNATURE_HEADER))?;
    if !verify(&key.secret, &response_string(timestamp, status, request_signature, body), signature) {
        return Err(SignatureError::BadSignature);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn key(id: &str, byte: u8) -> Key {
        Key { id: id.into(), secret: vec![byte; 32] }
    }

    // Computed independently (Python's hmac/hashlib) from docs/protocol.md's strings:
    // key b"0123456789abcdef0123456789abcdef", timestamp 1800000000, body
    // {"decision_id":"dec_1","agent":"bot","digest":"00"}.
    const VECTOR_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const VECTOR_BODY: &[u8] = br#"{"decision_id":"dec_1","agent":"bot","digest":"00"}"#;
    const VECTOR_PATH: &str = "/v1/gateway/approvals/apr_1/redeem";
    const REQUEST_STRING: &str = "airlock-v1-request\n1800000000\nPOST\n/v1/gateway/approvals/apr_1/redeem\n60afb3f52dca2067aee14bf7a82c9c3fa14bec67a986860052d9d5a7ed55faa4";
    const REQUEST_SIGNATURE: &str = "v1=1cd5813cae6f23f336461e54c0d34a071e141bd7660c9b29da027df24ab65a0d";
    // The answer: status 200 at 1800000001, body {"status":"consumed"}, bound to the above.
    const RESPONSE_STRING: &str = "airlock-v1-response\n1800000001\n200\nv1=1cd5813cae6f23f336461e54c0d34a071e141bd7660c9b29da027df24ab65a0d\n014850bb2f172d86fd22fe3dc4a689e362a91c7908ee46b2026752fe326fee72";
    const RESPONSE_SIGNATURE: &str = "v1=ad222abeeb2c17d1b5ac9293f761e38265f6b2d89d87e9b9de4483eb2972665d";

    #[test]
    fn request_signature_matches_the_known_vector() {
        let message = request_string("1800000000", "POST", VECTOR_PATH, VECTOR_BODY);
        assert_eq!(message, REQUEST_STRING);
        assert_eq!(sign(VECTOR_KEY, &message), REQUEST_SIGNATURE);
        let k = Key { id: "k1".into(), secret: VECTOR_KEY.to_vec() };
        let s = sign_request(&k, 1_800_000_000, "POST", VECTOR_PATH, VECTOR_BODY);
        assert_eq!(
            s,
            Signed { key_id: "k1".into(), timestamp: "1800000000".into(), signature: REQUEST_SIGNATURE.into() }
        );
    }

    #[test]
    fn answer_signature_matches_the_known_vector() {
        let message = response_string("1800000001", 200, REQUEST_SIGNATURE, br#"{"status":"consumed"}"#);
        assert_eq!(message, RESPONSE_STRING);
        assert_eq!(sign(VECTOR_KEY, &message), RESPONSE_SIGNATURE);
    }

    #[test]
    fn empty_body_hashes_as_sha256_of_nothing() {
        assert!(request_string("1", "POST", "/", b"")
            .ends_with("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    }

    #[test]
    fn requests_verify_with_any_known_key_inside_the_window() {
        let keys = [key("k2", 2), key("k1", 1)];
        let p = "/v1/gateway/approvals";
        for k in &keys {
            let s = sign_request(k, 1000, "POST", p, b"{}");
            let r = Received { key_id: Some(&s.key_id), timestamp: Some(&s.timestamp), signature: Some(&s.signature) };
            assert_eq!(verify_request(&keys, &r, "POST", p, b"{}", 1060), Ok(s.signature.as_str()));
            assert_eq!(verify_request(&keys, &r, "POST", p, b"{}", 940), Ok(s.signature.as_str()));
            assert_eq!(verify_request(&keys, &r, "POST", p, b"{}", 1061), Err(SignatureError::Stale));
            assert_eq!(verify_request(&keys, &r, "POST", p, b"{}", 939), Err(SignatureError::Stale));
            assert_eq!(verify_request(&keys, &r, "POST", p, b"{ }", 1000), Err(SignatureError::BadSignature));
            assert_eq!(verify_request(&keys, &r, "PUT", p, b"{}", 1000), Err(SignatureError::BadSignature));
            assert_eq!(
                verify_request(&keys, &r, "POST", "/v1/gateway/decisions", b"{}", 1000),
                Err(SignatureError::BadSignature)
            );
        }
        let stranger = sign_request(&key("k1", 9), 1000, "POST", p, b"{}");
        let r =
            Received { key_id: Some("k1"), timestamp: Some(&stranger.timestamp), signature: Some(&stranger.signature) };
        assert_eq!(verify_request(&keys, &r, "POST", p, b"{}", 1000), Err(SignatureError::BadSignature));
        let r = Received { key_id: Some("k9"), ..r };
        assert_eq!(verify_request(&keys, &r, "POST", p, b"{}", 1000), Err(SignatureError::UnknownKey));
        for ts in ["", "+1000", "1000.0", "-1", "0x3e8", "100000000000000000000000"] {
            let r = Received { key_id: Some("k1"), timestamp: Some(ts), ..r };
            assert_eq!(verify_request(&keys, &r, "POST", p, b"{}", 1000), Err(SignatureError::Stale), "{ts:?}");
        }
        assert!(matches!(
            verify_request(&keys, &Received::default(), "POST", p, b"{}", 1000),
            Err(SignatureError::Unsigned(_))
        ));
    }

    #[test]
    fn answers_bind_to_the_request_they_answer() {
        let keys = [key("k2", 2), key("k1", 1)];
        let a = sign_answer(&keys[1], 1000, 200, "v1=abc", b"{\"ok\":1}");
        let r = Received { key_id: Some(&a.key_id), timestamp: Some(&a.timestamp), signature: Some(&a.signature) };
        assert!(verify_answer(&keys, &r, 200, "v1=abc", b"{\"ok\":1}", 1030).is_ok());
        assert!(verify_answer(&keys, &r, 201, "v1=abc", b"{\"ok\":1}", 1030).is_err());
        assert!(verify_answer(&keys, &r, 200, "v1=abd", b"{\"ok\":1}", 1030).is_err());
        assert!(verify_answer(&keys, &r, 200, "v1=abc", b"{\"ok\":2}", 1030).is_err());
        assert!(verify_answer(&keys, &r, 200, "v1=abc", b"{\"ok\":1}", 1061).is_err());
        assert!(verify_answer(&keys[..1], &r, 200, "v1=abc", b"{\"ok\":1}", 1030).is_err());
    }

    #[test]
    fn signatures_are_v1_lower_case_hex_and_nothing_else_verifies() {
        let s = sign(b"k", "m");
        assert!(s.starts_with("v1=") && s.len() == 67);
        assert!(s[3..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(verify(b"k", "m", &s));
        assert!(!verify(b"k", "m", &s[3..]));
        assert!(!verify(b"k", "m", &format!("v2={}", &s[3..])));
        assert!(!verify(b"k", "m", &s[..66]));
        assert!(!verify(b"k", "m", "v1=zz"));
    }

    #[test]
    fn lower_hex_is_hex_encode() {
        for bytes in [&b""[..], b"\x00\x0f\xf0\xff", b"airlock"] {
            assert_eq!(super::lower_hex(bytes), hex::encode(bytes));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(super::lower_hex(&all), hex::encode(&all));
    }
}
