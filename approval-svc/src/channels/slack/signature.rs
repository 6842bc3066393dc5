//! Slack's v0 request signatures: `v0=` + hex HMAC-SHA256(signing secret,
//! `"v0:" + timestamp + ":" + raw body`), with the timestamp within five minutes of our
//! clock. Computed over the bytes as received: a body re-encoded by anyone (same fields,
//! other order or escaping) no longer verifies.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Largest accepted distance between the request's timestamp and our clock, either way.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request was not accepted as Slack's.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A header is absent or not what Slack sends.
    #[error("missing or malformed Slack signature headers")]
    Malformed,
    /// Signed too long ago or in the future (a replay, or a broken clock).
    #[error("Slack request timestamp outside the {MAX_SKEW_SECS} s window")]
    Stale,
    /// The HMAC does not match.
    #[error("Slack signature does not match")]
    Mismatch,
}

/// `v0=<hex>` for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; the error branch cannot happen but must not panic.
    let Ok(mut m) = HmacSha256::new_from_slice(secret) else { return Vec::new() };
    m.update(b"v0:");
    m.update(timestamp.as_bytes());
    m.update(b":");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Checks a request's timestamp (first: a stale request is refused without touching
/// the secret) and signature, the latter in constant time.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.map(str::trim).ok_or(SignatureError::Malformed)?;
    // Digits only: `+1531420618` or ` 1531420618` parse as the same number but are
    // different signed text.
    if timestamp.is_empty() || timestamp.len() > 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    let sent: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    if (now_secs - sent).abs() > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let presented = signature
        .and_then(|s| s.trim().strip_prefix("v0="))
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Malformed)?;
    let expected = mac(secret, timestamp, body);
    if expected.len() == presented.len() && bool::from(expected.ct_eq(&presented)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published example ("Verifying requests from Slack").
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const NOW: i64 = 1_531_420_618;

    #[test]
    fn slacks_published_test_vector() {
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), EXPECTED);
        assert_eq!(verify(SECRET, Some(TS), Some(EXPECTED), BODY.as_bytes(), NOW), Ok(()));
    }

    #[test]
    fn timestamps_301_seconds_away_are_refused_both_ways() {
        let at = |now| verify(SECRET, Some(TS), Some(EXPECTED), BODY.as_bytes(), now);
        assert_eq!(at(NOW + 300), Ok(()));
        assert_eq!(at(NOW - 300), Ok(()));
        assert_eq!(at(NOW + 301), Err(SignatureError::Stale), "301 s old");
        assert_eq!(at(NOW - 301), Err(SignatureError::Stale), "301 s in the future");
    }

    #[test]
    fn a_re_serialized_body_is_refused() {
        // Same fields, other order; and the same text with `/` no longer percent-encoded:
        // any form decoder would read both as the original.
        let mut fields: Vec<&str> = BODY.split('&').collect();
        fields.reverse();
        let reordered = fields.join("&");
        let re_encoded = BODY.replace("%2F", "/");
        for body in [reordered.as_str(), re_encoded.as_str()] {
            assert_eq!(verify(SECRET, Some(TS), Some(EXPECTED), body.as_bytes(), NOW), Err(SignatureError::Mismatch));
        }
    }

    #[test]
    fn malformed_or_wrong_headers_are_refused() {
        let body = BODY.as_bytes();
        assert_eq!(verify(SECRET, None, Some(EXPECTED), body, NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some(TS), None, body, NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some("+1531420618"), Some(EXPECTED), body, NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some(TS), Some("v1=00"), body, NOW), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some(TS), Some("v0=a2114d57"), body, NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"another secret", Some(TS), Some(EXPECTED), body, NOW), Err(SignatureError::Mismatch));
        // The timestamp is signed too.
        let other_ts = "1531420619";
        assert_eq!(verify(SECRET, Some(other_ts), Some(EXPECTED), body, NOW), Err(SignatureError::Mismatch));
    }
}
