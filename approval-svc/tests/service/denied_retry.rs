//! A reviewer's "no" reaches the agent: an identical retry after a denial is answered
//! `denied` (with the reviewer's comment) for `approvals.denied_retry_window`, without a
//! new approval or a new reviewer notification; after the window it asks again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::{Duration, Instant};

use airlock_approval_svc::audit::verify::verify_database;
use serde_json::{json, Value};
use support::*;

const CREATE: &str = "/v1/gateway/approvals";

/// (approvals, outbox rows, `approval.retry_refused` records) in the database.
fn counts(db: &std::path::Path) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        count("SELECT count(*) FROM approvals"),
        count("SELECT count(*) FROM outbox"),
        count("SELECT count(*) FROM audit_records WHERE kind = 'approval.retry_refused'"),
    )
}

/// A pending approval for `tag`, denied by bob with `comment`.
async fn denied(s: &Service, tag: &str, comment: &str) -> (Value, String) {
    let body = create_body(&digest(tag), 0, None, 1);
    let id = gateway(&s.router, CREATE, &body).await.json()["approval_id"].as_str().unwrap().to_string();
    let deny = format!("/v1/approvals/{id}/deny");
    let a = reviewer(&s.router, "POST", &deny, Some("bob-key"), Some(json!({"comment": comment}))).await;
    assert_eq!(a.json()["status"], "denied", "{:?}", a.json());
    (body, id)
}

fn seconds_until(rfc3339: &Value) -> i64 {
    let at = humantime::parse_rfc3339(rfc3339.as_str().unwrap()).unwrap();
    at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - now_secs()
}

#[tokio::test]
async fn an_identical_retry_after_a_denial_is_denied_with_the_comment_and_asks_no_one() {
    let s = service();
    let (body, id) = denied(&s, "denied-retry", "not during the freeze").await;
    let before = counts(&s.db);
    let mut retry = body.clone();
    retry["decision_id"] = json!("dec_retry");
    // Held or not, the answer comes at once.
    retry["hold_ms"] = json!(5000);
    for n in 1..=3 {
        let started = Instant::now();
        let a = gateway(&s.router, CREATE, &retry).await;
        assert_eq!(a.status, 200);
        let a = a.json();
        assert_eq!(a["status"], "denied", "retry {n}: {a}");
        assert_eq!(a["approval_id"], id.as_str(), "the denied approval answers, none is opened: {a}");
        assert_eq!(a["comment"], "not during the freeze", "{a}");
        let left = seconds_until(&a["denied_until"]);
        assert!((14 * 60..=15 * 60).contains(&left), "denied for the default 15 minutes: {a}");
        assert!(started.elapsed() < Duration::from_secs(2), "not held: {:?}", started.elapsed());
    }
    let (approvals, outbox, evidence) = counts(&s.db);
    assert_eq!((approvals, outbox), (before.0, before.1), "no new approval, no new notification");
    assert_eq!(evidence, 2, "the 1st and 2nd of 3 retries are in the audit trail");
    // Another action of the same agent is not affected.
    let other = gateway(&s.router, CREATE, &create_body(&digest("denied-retry-other"), 0, None, 1)).await.json();
    assert_eq!(other["status"], "pending", "{other}");
    let metrics = send(&s.router, axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap()).await;
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(text.contains("airlock_approval_retries_denied_total 3"), "{text}");
    verify_database(&s.db, Some(&AUDIT_KEY)).unwrap();
}

#[tokio::test]
async fn after_the_denied_retry_window_an_identical_retry_asks_the_reviewers_again() {
    let s = service_with_denied_retry_window(Duration::from_millis(1500));
    let (body, id) = denied(&s, "denied-window", "no").await;
    let a = gateway(&s.router, CREATE, &body).await.json();
    assert_eq!((a["status"].as_str(), a["approval_id"].as_str()), (Some("denied"), Some(id.as_str())), "{a}");
    let before = counts(&s.db);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let a = gateway(&s.router, CREATE, &body).await.json();
    assert_eq!(a["status"], "pending", "{a}");
    assert_ne!(a["approval_id"], id.as_str(), "a new approval: {a}");
    let after = counts(&s.db);
    assert_eq!(after.0, before.0 + 1);
    assert!(after.1 > before.1, "the reviewers are notified of the new approval");
    // The old approval, named by id, is still denied — now without `denied_until`.
    let mut named = body.clone();
    named["approval_id"] = json!(id);
    let a = gateway(&s.router, CREATE, &named).await.json();
    assert_eq!(a["status"], "denied", "{a}");
    assert_eq!(a["comment"], "no", "{a}");
    assert!(a.get("denied_until").is_none(), "{a}");
}

#[tokio::test]
async fn a_zero_window_turns_the_denial_answer_off() {
    let s = service_with_denied_retry_window(Duration::ZERO);
    let (body, id) = denied(&s, "denied-off", "no").await;
    let a = gateway(&s.router, CREATE, &body).await.json();
    assert_eq!(a["status"], "pending", "{a}");
    assert_ne!(a["approval_id"], id.as_str(), "{a}");
}
