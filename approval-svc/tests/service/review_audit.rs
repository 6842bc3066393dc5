//! Refused review attempts are evidence too: each lands in the audit chain (and so in
//! the evidence export), bounded per reviewer and per source so nobody can flood it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use support::*;

async fn pending(s: &Service, tag: &str, quorum: u32) -> String {
    let a = gateway(&s.router, "/v1/gateway/approvals", &create_body(&digest(tag), 0, None, quorum)).await.json();
    a["approval_id"].as_str().unwrap().to_string()
}

fn refused(db: &std::path::Path) -> Vec<Value> {
    audit_events(db, "review.refused").iter().map(|t| serde_json::from_str(t).unwrap()).collect()
}

#[tokio::test]
async fn owner_outsider_and_duplicate_votes_are_recorded_when_refused() {
    let s = service();
    let id = pending(&s, "refused-attempts", 2).await;
    let approve = format!("/v1/approvals/{id}/approve");
    assert_eq!(reviewer(&s.router, "POST", &approve, Some("alice-key"), None).await.status, 403);
    assert_eq!(reviewer(&s.router, "POST", &approve, Some("dave-key"), None).await.status, 403);
    assert_eq!(reviewer(&s.router, "POST", &approve, Some("bob-key"), None).await.status, 200);
    assert_eq!(reviewer(&s.router, "POST", &approve, Some("bob-key"), None).await.status, 409);
    let records = refused(&s.db);
    let seen: Vec<(String, String)> = records
        .iter()
        .map(|r| (r["reviewer"].as_str().unwrap().to_string(), r["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            ("alice@corp.example".to_string(), "separation-of-duties".to_string()),
            ("dave@corp.example".into(), "not-an-approver".into()),
            ("bob@corp.example".into(), "duplicate-vote".into()),
        ]
    );
    assert!(records.iter().all(|r| r["approval_id"] == json!(id) && r["channel"] == "api" && r["vote"] == "approve"));
    // In the evidence export, and the chain still verifies.
    let out = tempfile::tempdir().unwrap();
    let report = airlock_approval_svc::audit::export::export(&s.db, out.path(), Some(&AUDIT_KEY), 5).unwrap();
    assert!(report.ok());
    let lines = std::fs::read_to_string(out.path().join("records.jsonl")).unwrap();
    assert_eq!(lines.matches("\"kind\":\"review.refused\"").count(), 3);
    let summary: Value = serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["records_by_kind"]["review.refused"], 3);
}

#[tokio::test]
async fn refused_attempts_cannot_flood_the_chain() {
    let s = service();
    let id = pending(&s, "flood", 1).await;
    let approve = format!("/v1/approvals/{id}/approve");
    for _ in 0..60 {
        assert_eq!(reviewer(&s.router, "POST", &approve, Some("dave-key"), None).await.status, 403);
    }
    let records = refused(&s.db);
    assert!(!records.is_empty() && records.len() <= 20, "{} records for one reviewer", records.len());
    // Another reviewer is still heard.
    assert_eq!(reviewer(&s.router, "POST", &approve, Some("alice-key"), None).await.status, 403);
    assert_eq!(refused(&s.db).last().unwrap()["reviewer"], "alice@corp.example");
}

#[tokio::test]
async fn a_chat_click_that_fails_verification_is_recorded_bounded() {
    let s = service_with_slack();
    let id = pending(&s, "slack-forged", 1).await;
    let payload = json!({"type": "block_actions", "api_app_id": "A1", "team": {"id": "T1"},
                         "user": {"id": "U-bob"}, "actions": [{"action_id": "approve", "value": id}]});
    let form = format!("payload={}", urlencode(&payload.to_string()));
    for _ in 0..40 {
        let req = Request::post("/slack/interactivity")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", now_secs().to_string())
            .header("x-slack-signature", "v0=0000000000000000000000000000000000000000000000000000000000000000")
            .body(Body::from(form.clone()))
            .unwrap();
        assert_eq!(send(&s.router, req).await.status, 401);
    }
    let records = refused(&s.db);
    assert!(!records.is_empty() && records.len() <= 20, "{} records from one source", records.len());
    let first = &records[0];
    assert_eq!(first["channel"], "slack");
    assert_eq!(first["reason"], "unverified-callback");
    assert!(first["evidence"]["body_sha256"].as_str().unwrap().len() == 64, "{first}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
