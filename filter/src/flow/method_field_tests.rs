#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A `_method` form field or query parameter never lets the upstream run another method
//! than the one the policy decided (issue 11 #1).

use super::tests::{harness_with, start, Harness};
use super::Step;
use crate::source::fake::FakeRequest;

/// Denies every call, naming the method the policy saw.
const ECHO: &str = r#"package airlock
decision := {"effect": "deny", "rule": "echo", "reason": sprintf("method %s", [input.request.method])}
"#;

fn harness(mode: &str) -> Harness {
    harness_with(|cfg| {
        cfg["policy"]["modules"]["p.rego"] = ECHO.into();
        cfg["request"]["method_override"] = mode.into();
    })
}

fn form(method: &str, path: &str) -> FakeRequest {
    FakeRequest::new(method, "api.example.com", path)
        .with("x-airlock-agent", "bot")
        .with("content-type", "application/x-www-form-urlencoded")
}

fn refusal(step: &Step) -> (String, String) {
    let Step::Reply(r) = step else { panic!("expected a reply, got {step:?}") };
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    (v["rule"].as_str().unwrap_or_default().to_string(), v["detail"].as_str().unwrap_or_default().to_string())
}

#[test]
fn a_method_field_in_a_form_or_the_query_is_refused_by_default() {
    for (req, body) in [
        (form("POST", "/v1/items/9"), &b"name=x&_method=DELETE"[..]),
        (form("POST", "/v1/items/9"), &b"%5Fmethod=delete"[..]),
        (
            FakeRequest::new("GET", "api.example.com", "/v1/items/9?_method=DELETE").with("x-airlock-agent", "bot"),
            &b""[..],
        ),
    ] {
        let mut h = harness("refuse");
        let (_, step) = start(&mut h, &req, body);
        let (rule, detail) = refusal(&step);
        assert_eq!(rule, "airlock.malformed-request", "{detail}");
        assert!(detail.contains("_method") && detail.contains("request.method_override"), "{detail}");
    }
}

#[test]
fn applied_the_field_is_the_method_the_policy_decides() {
    let mut h = harness("apply");
    let (_, step) = start(&mut h, &form("POST", "/v1/items/9"), b"_method=delete");
    let (rule, detail) = refusal(&step);
    assert_eq!((rule.as_str(), detail.contains("method DELETE")), ("echo", true), "{detail}");
    // On anything but a POST, a field naming another method is ambiguous.
    let mut h = harness("apply");
    let (_, step) = start(&mut h, &form("PUT", "/v1/items/9"), b"_method=DELETE");
    assert_eq!(refusal(&step).0, "airlock.malformed-request");
}

#[test]
fn a_post_form_too_large_to_check_is_refused() {
    let big = vec![b'a'; 200]; // the harness buffers at most 64 bytes
    let mut h = harness("refuse");
    let (_, step) = start(&mut h, &form("POST", "/v1/items"), &big);
    let (rule, detail) = refusal(&step);
    assert_eq!(rule, "airlock.malformed-request");
    assert!(detail.contains("cannot be checked for a `_method` field"), "{detail}");
    // Frameworks read the field on POSTs only: a large PUT form is the policy's to decide.
    let mut h = harness("refuse");
    let (_, step) = start(&mut h, &form("PUT", "/v1/items"), &big);
    assert_eq!(refusal(&step).0, "echo");
}
