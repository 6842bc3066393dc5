//! Slack interactivity requests: the v0 signature over the raw body
//! (`channels/slack/signature.rs`), then the `payload` form field it carries.
//!
//! Input, separated by `\n--\n`: timestamp header, signature header, body.
#![no_main]
use airlock_approval_svc::channels::slack::interact::parse_payload;
use airlock_approval_svc::channels::slack::signature::{sign, verify, SignatureError};
use airlock_fuzz::parts;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 3);
    let (ts, sig, body) = (String::from_utf8_lossy(p[0]), String::from_utf8_lossy(p[1]), p[2]);

    // Whatever arrives verifies only if it is the secret's signature of exactly it.
    if verify(SECRET, Some(&ts), Some(&sig), body, NOW).is_ok() {
        let expected = sign(SECRET, ts.trim(), body);
        assert!(sig.trim().eq_ignore_ascii_case(&expected), "accepted {sig:?} for {ts:?}");
        assert!(ts.trim().bytes().all(|b| b.is_ascii_digit()));
    }
    assert!(verify(SECRET, None, Some(&sig), body, NOW).is_err());
    assert!(verify(SECRET, Some(&ts), None, body, NOW).is_err());

    // What Slack signs now verifies; any other body, time or secret does not.
    let now = NOW.to_string();
    let good = sign(SECRET, &now, body);
    assert_eq!(verify(SECRET, Some(&now), Some(&good), body, NOW), Ok(()));
    let mut other = body.to_vec();
    other.push(b'&');
    assert_eq!(verify(SECRET, Some(&now), Some(&good), &other, NOW), Err(SignatureError::Mismatch));
    assert!(verify(b"another secret", Some(&now), Some(&good), body, NOW).is_err());
    assert_eq!(verify(SECRET, Some(&now), Some(&good), body, NOW + 301), Err(SignatureError::Stale));

    // Parsed only after the signature matched; must not panic on anything Slack could send.
    let _ = parse_payload(body);
});
