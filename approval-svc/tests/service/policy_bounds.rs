//! What a policy may ask of the service: reuse windows and quorums it can honour. An
//! impossible ask is refused (422 `policy-refused`, saying why), never stored as
//! something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use serde_json::{json, Value};
use support::*;

async fn create_with(s: &Service, tag: &str, edit: impl FnOnce(&mut Value)) -> Answer {
    let mut body = create_body(&digest(tag), 0, None, 1);
    edit(&mut body);
    gateway(&s.router, "/v1/gateway/approvals", &body).await
}

fn assert_refused(a: &Answer, needle: &str) {
    assert_eq!(a.status, 422, "{}", String::from_utf8_lossy(&a.body));
    let p = a.json();
    assert_eq!(p["type"], "urn:airlock:problem:policy-refused");
    assert!(p["detail"].as_str().unwrap().contains(needle), "{p}");
}

#[tokio::test]
async fn a_reuse_window_longer_than_configured_is_refused() {
    let s = service();
    let a = create_with(&s, "years", |b| b["policy"]["reuse"] = json!("window:1000years")).await;
    assert_refused(&a, "max_reuse_window");
    let a = create_with(&s, "hour", |b| b["policy"]["reuse"] = json!("window:1h")).await;
    assert_eq!((a.status, a.json()["status"].clone()), (200, json!("pending")));
}

#[tokio::test]
async fn impossible_quorums_are_refused_not_rewritten() {
    let s = service();
    let a = create_with(&s, "zero", |b| b["policy"]["approvers"]["quorum"] = json!(0)).await;
    assert_refused(&a, "quorum 0");
    let a = create_with(&s, "billion", |b| b["policy"]["approvers"]["quorum"] = json!(1_000_000_000)).await;
    assert_refused(&a, "max_quorum");
    // data-owners has three configured reviewers (and no OIDC brings others).
    let a = create_with(&s, "four", |b| b["policy"]["approvers"]["quorum"] = json!(4)).await;
    assert_refused(&a, "3 known reviewers");
    let a = create_with(&s, "nobody", |b| b["policy"]["approvers"]["groups"] = json!(["no-such-group"])).await;
    assert_refused(&a, "0 known reviewers");
    let a = create_with(&s, "three", |b| b["policy"]["approvers"]["quorum"] = json!(3)).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(audit_events(&s.db, "approval.created").len() == 1, "refused asks create nothing");
}
