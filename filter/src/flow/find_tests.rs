#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A repeated request only asks the service to find its approval; the body goes only
//! with a create (`crate::known`, `docs/protocol.md`, "Finding an existing approval").

use super::tests::{answer, call_of, export, harness, now, reply_json, start};
use super::*;
use serde_json::json;

const BODY: &[u8] = br#"{"ssn": "123-45-6789", "table": "users"}"#;

fn sent(call: &Call) -> serde_json::Value {
    serde_json::from_slice(&call.body).unwrap()
}

fn pending(call: &Call) -> Answer {
    answer(call, 200, json!({"approval_id": "apr_1", "status": "pending"}))
}

#[test]
fn a_repeated_request_finds_its_approval_without_sending_the_body() {
    let mut h = harness();
    let (mut f, step) = start(&mut h, &export(), BODY);
    let create = call_of(step);
    assert_eq!(create.path, callout::APPROVALS_PATH);
    assert_eq!(sent(&create)["request"]["body"]["ssn"], crate::redact::MASK);
    reply_json(&f.on_answer(&mut h.w, &pending(&create), now()));

    let (mut f, step) = start(&mut h, &export(), BODY);
    let find = call_of(step);
    assert_eq!(find.path, callout::APPROVALS_FIND_PATH);
    let (c, s) = (sent(&create), sent(&find));
    assert_eq!(s["request"].get("body"), None, "the body is not sent again");
    // Everything else is what the create said: the service checks it as strictly.
    for field in ["digest", "agent", "policy", "hold_ms"] {
        assert_eq!(s[field], c[field], "{field}");
    }
    for field in ["body_sha256", "body_size", "method", "host", "path", "query", "headers"] {
        assert_eq!(s["request"][field], c["request"][field], "{field}");
    }
    let (status, v) = reply_json(&f.on_answer(&mut h.w, &pending(&find), now()));
    assert_eq!((status, v["type"].as_str()), (403, Some("urn:airlock:problem:approval-pending")));
    assert_eq!(v["approval_id"], "apr_1");

    // Another body is another action: created in full.
    let (_, step) = start(&mut h, &export(), br#"{"ssn": "000-00-0000", "table": "users"}"#);
    assert_eq!(call_of(step).path, callout::APPROVALS_PATH);
}

#[test]
fn nothing_found_sends_the_full_create_and_verifies_its_answer() {
    let mut h = harness();
    let (mut f, step) = start(&mut h, &export(), BODY);
    let create = call_of(step);
    f.on_answer(&mut h.w, &pending(&create), now());

    let (mut f, step) = start(&mut h, &export(), BODY);
    let find = call_of(step);
    // A 404 — signed or not, as from a service without finds — means "create".
    let not_found = Answer { status: Some(404), body: b"{}".to_vec(), ..Answer::default() };
    let create = call_of(f.on_answer(&mut h.w, &not_found, now()));
    assert_eq!(create.path, callout::APPROVALS_PATH);
    assert_ne!(create.signature, find.signature);
    assert_eq!(sent(&create)["request"]["body"]["ssn"], crate::redact::MASK);
    // The create's answer must be signed and bound to the create: the find's is refused.
    let (status, v) = reply_json(&f.on_answer(&mut h.w, &pending(&find), now()));
    assert_eq!((status, v["type"].as_str()), (503, Some("urn:airlock:problem:unavailable")));

    // A 404 to a create is no hint: unavailable, fail closed.
    let (mut f, step) = start(&mut h, &export(), BODY);
    let create = call_of(step);
    assert_eq!(create.path, callout::APPROVALS_PATH, "the stale hint was forgotten");
    let (status, _) = reply_json(&f.on_answer(&mut h.w, &not_found, now()));
    assert_eq!(status, 503);
}

#[test]
fn a_finds_other_answers_are_verified_like_a_creates() {
    let mut h = harness();
    let (mut f, step) = start(&mut h, &export(), BODY);
    f.on_answer(&mut h.w, &pending(&call_of(step)), now());
    let (mut f, step) = start(&mut h, &export(), BODY);
    let find = call_of(step);
    assert_eq!(find.path, callout::APPROVALS_FIND_PATH);
    let mut forged = pending(&find);
    forged.status = Some(200);
    forged.body = br#"{"approval_id": "apr_1", "status": "approved"}"#.to_vec();
    let (status, _) = reply_json(&f.on_answer(&mut h.w, &forged, now()));
    assert_eq!(status, 503);
}

#[test]
fn a_used_or_expired_approval_is_asked_for_afresh() {
    let mut h = harness();
    let (mut f, step) = start(&mut h, &export(), BODY);
    let create = call_of(step);
    let redeem = call_of(f.on_answer(
        &mut h.w,
        &answer(&create, 200, json!({"approval_id": "apr_1", "status": "approved"})),
        now(),
    ));
    let step = f.on_answer(&mut h.w, &answer(&redeem, 200, json!({"status": "redeemed", "headers": {}})), now());
    assert!(matches!(step, Step::ContinueWith(_)), "{step:?}");
    let (mut f, step) = start(&mut h, &export(), BODY);
    let create = call_of(step);
    assert_eq!(create.path, callout::APPROVALS_PATH, "used: created in full");
    f.on_answer(&mut h.w, &answer(&create, 200, json!({"approval_id": "apr_1", "status": "expired"})), now());
    let (_, step) = start(&mut h, &export(), BODY);
    assert_eq!(call_of(step).path, callout::APPROVALS_PATH, "expired: created in full");
}

#[test]
fn a_named_approval_is_only_ever_found() {
    let mut h = harness();
    let (_, step) = start(&mut h, &export().with("x-airlock-approval", "apr_9"), BODY);
    let find = call_of(step);
    assert_eq!(find.path, callout::APPROVALS_FIND_PATH);
    assert_eq!(sent(&find)["approval_id"], "apr_9");
    assert_eq!(sent(&find)["request"].get("body"), None);
}
