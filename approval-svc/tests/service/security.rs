//! Attacks on the gateway endpoints: replayed signed redeems, unauthenticated bodies,
//! long-poll floods.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::Duration;

use airlock_approval_svc::api::GatewayGuards;
use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use support::*;

async fn approved(s: &Service, d: &str, reuse: &str) -> String {
    let mut body = create_body(d, 0, Some("legacy"), 1);
    body["policy"]["reuse"] = json!(reuse);
    let created = gateway(&s.router, "/v1/gateway/approvals", &body).await.json();
    let id = created["approval_id"].as_str().unwrap().to_string();
    let ok = reviewer(&s.router, "POST", &format!("/v1/approvals/{id}/approve"), Some("bob-key"), None).await;
    assert_eq!(ok.status, 200, "{:?}", ok.json());
    id
}

#[tokio::test]
async fn a_replayed_signed_redeem_mints_nothing_even_with_a_reuse_window() {
    let s = service();
    let d = digest("replay");
    let id = approved(&s, &d, "window:10m").await;
    let path = format!("/v1/gateway/approvals/{id}/redeem");
    let body = json!({"decision_id": "dec_r1", "agent": AGENT, "digest": d}).to_string();
    let ts = now_secs();
    let first = send(&s.router, signed_request("k2", &GATEWAY_KEY, ts, &path, &body)).await;
    assert_eq!(first.status, 200);
    // The same bytes again (captured on the wire), well inside the ±60 s window.
    let replay = send(&s.router, signed_request("k2", &GATEWAY_KEY, ts, &path, &body)).await;
    assert_eq!(replay.status, 409, "replay minted: {}", String::from_utf8_lossy(&replay.body));
    assert_eq!(replay.json()["status"], "consumed");
    assert!(!String::from_utf8_lossy(&replay.body).contains("s3cr3t-static"));
    // A fresh redeem by the gateway (new decision id, new signature) still works.
    let again = gateway(&s.router, &path, &json!({"decision_id": "dec_r2", "agent": AGENT, "digest": d})).await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn a_replayed_signed_redeem_is_refused_after_a_restart_too() {
    let s = service();
    let d = digest("replay-restart");
    let id = approved(&s, &d, "window:10m").await;
    let path = format!("/v1/gateway/approvals/{id}/redeem");
    let body = json!({"decision_id": "dec_rr1", "agent": AGENT, "digest": d}).to_string();
    let ts = now_secs();
    let first = send(&s.router, signed_request("k2", &GATEWAY_KEY, ts, &path, &body)).await;
    assert_eq!(first.status, 200);
    let replay = send(&s.router, signed_request("k2", &GATEWAY_KEY, ts, &path, &body)).await;
    assert_eq!(replay.status, 409);
    let s = restart(s);
    let replay = send(&s.router, signed_request("k2", &GATEWAY_KEY, ts, &path, &body)).await;
    assert_eq!(replay.status, 409, "replay minted after a restart: {}", String::from_utf8_lossy(&replay.body));
    assert_eq!(replay.json()["status"], "consumed");
    assert_eq!(audit_events(&s.db, "approval.redeemed").len(), 1, "one redeem, one credential");
    // The gateway's own next redeem (fresh signature) is still honoured by the window.
    let again = gateway(&s.router, &path, &json!({"decision_id": "dec_rr2", "agent": AGENT, "digest": d})).await;
    assert_eq!(again.status, 200);
}

fn decision_record(i: usize) -> serde_json::Value {
    json!({"decision_id": format!("dec_{i}"), "time_ms": 1_795_000_000_000u64, "effect": "allow",
           "enforced": "allow", "mode": "enforce", "rule": "read-only", "reason": "reads are fine",
           "risk": "low", "policy_revision": "r1", "agent": AGENT, "digest": digest("x"),
           "method": "GET", "host": "api.example.com", "path": "/v1/items"})
}

#[tokio::test]
async fn a_replayed_decision_batch_lands_once() {
    let s = service();
    let path = "/v1/gateway/decisions";
    let body = json!({"dropped": 2, "records": [decision_record(1), decision_record(2)]}).to_string();
    let ts = now_secs();
    for _ in 0..5 {
        let a = send(&s.router, signed_request("k2", &GATEWAY_KEY, ts, path, &body)).await;
        assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    }
    assert_eq!(audit_events(&s.db, "decision").len(), 2, "five copies of one batch landed more than once");
    assert_eq!(audit_events(&s.db, "decision.dropped").len(), 1);
    // After a restart too.
    let s = restart(s);
    let a = send(&s.router, signed_request("k2", &GATEWAY_KEY, ts, path, &body)).await;
    assert_eq!(a.status, 202);
    assert_eq!(audit_events(&s.db, "decision").len(), 2);
    // The same records signed afresh are a new batch (the filter re-signs a retry).
    let a = send(&s.router, signed_request("k2", &GATEWAY_KEY, ts + 1, path, &body)).await;
    assert_eq!(a.status, 202);
    assert_eq!(audit_events(&s.db, "decision").len(), 4);
}

#[tokio::test]
async fn decision_batches_are_validated_record_by_record_and_bounded() {
    let s = service();
    let path = "/v1/gateway/decisions";
    let empties = format!("{{\"dropped\": 0, \"records\": [{}]}}", vec!["{}"; 100_000].join(","));
    let a = send(&s.router, signed_request("k2", &GATEWAY_KEY, now_secs(), path, &empties)).await;
    assert_eq!(a.status, 400, "100,000 empty records were accepted");
    let too_many: Vec<_> = (0..1001).map(decision_record).collect();
    let a = gateway(&s.router, path, &json!({"dropped": 0, "records": too_many})).await;
    assert_eq!(a.status, 400, "more records than a batch may hold");
    for (field, bad) in [
        ("effect", json!("maybe")),
        ("enforced", json!(7)),
        ("mode", json!("audit")),
        ("decision_id", json!("")),
        ("time_ms", json!(-1)),
        ("risk", json!("extreme")),
        ("digest", json!("not-hex")),
        ("agent", json!(null)),
    ] {
        let mut r = decision_record(1);
        r[field] = bad;
        let a = gateway(&s.router, path, &json!({"dropped": 0, "records": [r]})).await;
        assert_eq!(a.status, 400, "{field}: {}", String::from_utf8_lossy(&a.body));
    }
    assert!(audit_events(&s.db, "decision").is_empty(), "a refused batch records nothing");
    let ok: Vec<_> = (0..1000).map(decision_record).collect();
    let a = gateway(&s.router, path, &json!({"dropped": 0, "records": ok})).await;
    assert_eq!((a.status, a.json()["accepted"].clone()), (202, json!(1000)));
}

#[tokio::test]
async fn unsigned_requests_are_refused_before_their_body_is_read() {
    let s = service();
    // A body that never ends (slowloris / memory): must not be awaited without a key.
    let endless = futures_util_stream();
    let req = Request::post("/v1/gateway/approvals")
        .header("content-type", "application/json")
        .body(Body::new(endless))
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), send(&s.router, req)).await;
    let answer = answer.expect("the service waited for the body of an unsigned request");
    assert_eq!(answer.status, 401);
    // Same with a known key id but a stale timestamp.
    let req = Request::post("/v1/gateway/approvals")
        .header("x-airlock-key-id", "k2")
        .header("x-airlock-timestamp", (now_secs() - 3600).to_string())
        .header("x-airlock-signature", "v1=00")
        .body(Body::new(futures_util_stream()))
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), send(&s.router, req)).await.expect("waited for body");
    assert_eq!(answer.status, 401);
}

/// A body stream that yields nothing, ever.
fn futures_util_stream() -> impl http_body::Body<Data = axum::body::Bytes, Error = std::io::Error> + Send + 'static {
    struct Never;
    impl http_body::Body for Never {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Pending
        }
    }
    Never
}

#[tokio::test]
async fn long_polls_are_bounded() {
    let s = service_with_guards(GatewayGuards::new(1));
    let router = s.router.clone();
    let held_body = create_body(&digest("held-1"), 8000, None, 1);
    let held = tokio::spawn(async move { gateway(&router, "/v1/gateway/approvals", &held_body).await.json() });
    // Wait until the first create holds its slot.
    for _ in 0..200 {
        if s.state.guards.holds.available_permits() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.state.guards.holds.available_permits(), 0);
    let started = std::time::Instant::now();
    let second =
        gateway(&s.router, "/v1/gateway/approvals", &create_body(&digest("held-2"), 8000, None, 1)).await.json();
    assert_eq!(second["status"], "pending");
    assert!(started.elapsed() < Duration::from_secs(3), "a create past the hold bound must answer at once");
    held.abort();
}
