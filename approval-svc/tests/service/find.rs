//! `POST /v1/gateway/approvals/find`: a repeated request asks the service to find its
//! approval without sending its body again. It is checked as strictly as a create,
//! answers what a create would answer when an approval answers the action, and 404
//! (`approval-not-found`) where a create would create — creating nothing, notifying no
//! one, auditing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use airlock_approval_svc::audit::verify::verify_database;
use airlock_protocol::{APPROVALS_FIND_PATH, APPROVALS_PATH, PROBLEM_APPROVAL_NOT_FOUND};
use serde_json::{json, Value};
use support::*;

/// (approvals, outbox rows, audit records) in the database.
fn counts(db: &std::path::Path) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        count("SELECT count(*) FROM approvals"),
        count("SELECT count(*) FROM outbox"),
        count("SELECT count(*) FROM audit_records"),
    )
}

/// The create body as a find sends it: everything but `request.body`.
fn find_body(create: &Value) -> Value {
    let mut find = create.clone();
    find["request"].as_object_mut().unwrap().remove("body");
    find["decision_id"] = json!("dec_find");
    find
}

#[tokio::test]
async fn a_find_answers_what_a_create_would_and_creates_nothing() {
    let s = service();
    let create = create_body(&digest("find-1"), 0, None, 1);
    assert_eq!(APPROVALS_PATH, "/v1/gateway/approvals");

    // Nothing to find: 404, signed, and nothing created, notified or audited.
    let before = counts(&s.db);
    let a = gateway(&s.router, APPROVALS_FIND_PATH, &find_body(&create)).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["type"], PROBLEM_APPROVAL_NOT_FOUND);
    assert_eq!(counts(&s.db), before);

    // Created in full, then found by the find: the same approval, as a create finds it.
    let created = gateway(&s.router, APPROVALS_PATH, &create).await.json();
    assert_eq!(created["status"], "pending");
    let after_create = counts(&s.db);
    let found = gateway(&s.router, APPROVALS_FIND_PATH, &find_body(&create)).await;
    assert_eq!(found.status, 200);
    let found = found.json();
    assert_eq!(
        (found["status"].as_str(), found["approval_id"].as_str()),
        (Some("pending"), created["approval_id"].as_str())
    );
    let again = gateway(&s.router, APPROVALS_PATH, &create).await.json();
    assert_eq!(found, again, "a find answers exactly what a create answers");
    assert_eq!(counts(&s.db), after_create, "no second approval, notification or record");

    // What reviewers are shown is the create's body.
    let id = created["approval_id"].as_str().unwrap();
    let shown = reviewer(&s.router, "GET", &format!("/v1/approvals/{id}"), Some("bob-key"), None).await.json();
    assert!(shown.to_string().contains("[REDACTED]"), "{shown}");

    // Another agent or another action is not found.
    let mut other = find_body(&create);
    other["digest"] = json!(digest("find-other"));
    assert_eq!(gateway(&s.router, APPROVALS_FIND_PATH, &other).await.status, 404);
    let mut other = find_body(&create);
    other["agent"]["id"] = json!("spiffe://corp/agent/other");
    assert_eq!(gateway(&s.router, APPROVALS_FIND_PATH, &other).await.status, 404);

    // A named approval: found when it is this agent's and action's, else mismatch.
    let mut named = find_body(&create);
    named["approval_id"] = json!(id);
    assert_eq!(gateway(&s.router, APPROVALS_FIND_PATH, &named).await.json()["status"], "pending");
    named["digest"] = json!(digest("find-other"));
    assert_eq!(gateway(&s.router, APPROVALS_FIND_PATH, &named).await.json()["status"], "mismatch");
    verify_database(&s.db, Some(&AUDIT_KEY)).unwrap();
}

#[tokio::test]
async fn a_find_is_checked_as_strictly_as_a_create() {
    let s = service();
    let create = create_body(&digest("find-strict"), 0, None, 1);
    gateway(&s.router, APPROVALS_PATH, &create).await;
    // The policy's ask is checked before anything is looked up.
    let mut bad = find_body(&create);
    bad["policy"]["approvers"]["quorum"] = json!(0);
    assert_eq!(gateway(&s.router, APPROVALS_FIND_PATH, &bad).await.status, 422);
    let mut bad = find_body(&create);
    bad["digest"] = json!("not-a-digest");
    assert_eq!(gateway(&s.router, APPROVALS_FIND_PATH, &bad).await.status, 400);
    // Unsigned: refused like every gateway call.
    let req = axum::http::Request::post(APPROVALS_FIND_PATH)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(find_body(&create).to_string()))
        .unwrap();
    assert_eq!(send(&s.router, req).await.status, 401);
}
