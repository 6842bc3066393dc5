//! The decision reader (`decision::from_policy_output`) over any value a policy could
//! produce, built from JSON.
#![no_main]
use airlock_filter::decision::{from_policy_output, Effect, POLICY_ERROR_RULE};
use libfuzzer_sys::fuzz_target;
use regorus::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(value) = Value::from_json_str(text) else { return };
    let d = from_policy_output(Ok(value));
    if d.rule.as_deref() == Some(POLICY_ERROR_RULE) {
        assert_eq!(d.effect, Effect::Deny, "a malformed decision denies");
        return;
    }
    // A decision that was read is well formed...
    assert!(d.approvers.as_ref().is_none_or(|a| a.quorum >= 1));
    assert!(d.redact.iter().all(|p| p.starts_with("request.body")));
    for v in [&d.expires_in, &d.hold].into_iter().flatten() {
        assert!(humantime::parse_duration(v).is_ok(), "{v:?}");
    }
    assert!(d.reuse.as_deref().is_none_or(|r| r == "once" || r.starts_with("window:")));
    let _ = d.hold();
    // ... and reads back as itself.
    let json = serde_json::to_string(&d).unwrap();
    let again = from_policy_output(Ok(Value::from_json_str(&json).unwrap()));
    assert_eq!(again, d, "{json}");
});
