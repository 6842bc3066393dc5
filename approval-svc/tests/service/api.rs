//! The service in-process: the gateway protocol (signed both ways) and the reviewer API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::Duration;

use airlock_approval_svc::audit::verify::verify_database;
use serde_json::{json, Value};
use support::*;

#[tokio::test]
async fn create_is_idempotent_and_signed() {
    let s = service();
    let d = digest("a");
    let first = gateway(&s.router, "/v1/gateway/approvals", &create_body(&d, 0, Some("export-api"), 1)).await;
    assert_eq!(first.status, 200);
    let first = first.json();
    assert_eq!(first["status"], "pending");
    let id = first["approval_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("apr_") && id.len() == 28, "{id}");
    assert!(first["retry_after"].as_u64().unwrap() > 0);
    assert!(first["expires_at"].as_str().unwrap().ends_with('Z'));
    let again = gateway(&s.router, "/v1/gateway/approvals", &create_body(&d, 0, Some("export-api"), 1)).await.json();
    assert_eq!(again["approval_id"], id);
    let mut other = create_body(&digest("b"), 0, None, 1);
    other["approval_id"] = json!(id);
    let mismatch = gateway(&s.router, "/v1/gateway/approvals", &other).await;
    assert_eq!(mismatch.status, 200);
    assert_eq!(mismatch.json()["status"], "mismatch");
}

#[tokio::test]
async fn unsigned_stale_unknown_key_and_tampered_calls_are_refused() {
    let s = service();
    let body = create_body(&digest("a"), 0, None, 1).to_string();
    let path = "/v1/gateway/approvals";
    let cases = [
        signed_request("k2", &GATEWAY_KEY, now_secs() - 61, path, &body),
        signed_request("k9", &GATEWAY_KEY, now_secs(), path, &body),
        signed_request("k2", &OLD_GATEWAY_KEY, now_secs(), path, &body),
        {
            let mut r = signed_request("k2", &GATEWAY_KEY, now_secs(), path, &body);
            *r.body_mut() = axum::body::Body::from(body.replace("report-bot", "other-bot"));
            r
        },
        {
            let mut r = signed_request("k2", &GATEWAY_KEY, now_secs(), path, &body);
            r.headers_mut().remove("x-airlock-signature");
            r
        },
    ];
    for req in cases {
        let a = send(&s.router, req).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.headers["content-type"], "application/problem+json");
        assert_eq!(a.json()["type"], "urn:airlock:problem:unauthenticated");
    }
    // The previous key still verifies (rotation).
    let ok = send(&s.router, signed_request("k1", &OLD_GATEWAY_KEY, now_secs(), path, &body)).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn hold_wakes_on_approval_then_redeem_mints_a_bound_jwt_once() {
    let s = service();
    let d = digest("flow");
    let router = s.router.clone();
    let body = create_body(&d, 8000, Some("export-api"), 1);
    let held = tokio::spawn(async move { gateway(&router, "/v1/gateway/approvals", &body).await.json() });
    // Wait for the approval to exist, then approve it.
    let mut id = String::new();
    for _ in 0..100 {
        let list = reviewer(&s.router, "GET", "/v1/approvals?status=pending", Some("bob-key"), None).await.json();
        if let Some(first) = list["approvals"].as_array().and_then(|a| a.first()) {
            id = first["id"].as_str().unwrap().to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!id.is_empty());
    let shown = reviewer(&s.router, "GET", &format!("/v1/approvals/{id}"), Some("bob-key"), None).await.json();
    assert_eq!(shown["reason"], "exports customer PII");
    assert_eq!(shown["body"]["customer"]["ssn"], "[REDACTED]");
    assert_eq!(shown["owner"], "alice@corp.example");
    let started = std::time::Instant::now();
    let approved = reviewer(
        &s.router,
        "POST",
        &format!("/v1/approvals/{id}/approve"),
        Some("bob-key"),
        Some(json!({"comment": "ok"})),
    )
    .await;
    assert_eq!(approved.status, 200, "{:?}", approved.json());
    assert_eq!(approved.json()["status"], "approved");
    let answer = held.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "hold must wake on the decision");
    assert_eq!(answer["status"], "approved");
    assert_eq!(answer["approval_id"], id);

    let redeem_path = format!("/v1/gateway/approvals/{id}/redeem");
    let redeem_body = json!({"decision_id": "dec_2", "agent": AGENT, "digest": d});
    let wrong =
        gateway(&s.router, &redeem_path, &json!({"decision_id": "dec_2", "agent": AGENT, "digest": digest("other")}))
            .await;
    assert_eq!((wrong.status, wrong.json()["status"].clone()), (409, json!("mismatch")));
    let redeemed = gateway(&s.router, &redeem_path, &redeem_body).await;
    assert_eq!(redeemed.status, 200);
    let r = redeemed.json();
    assert_eq!(r["status"], "redeemed");
    let bearer = r["headers"]["authorization"].as_str().unwrap();
    let token = bearer.strip_prefix("Bearer ").unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&["api.example.com"]);
    let claims =
        jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_secret(&JWT_KEY), &v).unwrap().claims;
    assert_eq!(claims["sub"], AGENT);
    assert_eq!(claims["airlock_digest"], d);
    assert_eq!(claims["act"]["approvers"], json!(["bob@corp.example"]));

    let again = gateway(&s.router, &redeem_path, &redeem_body).await;
    assert_eq!((again.status, again.json()["status"].clone()), (409, json!("consumed")));
    // Asking by id for a redeemed approval answers approved; without the id, a new one.
    let mut by_id = create_body(&d, 0, Some("export-api"), 1);
    by_id["approval_id"] = json!(id);
    assert_eq!(gateway(&s.router, "/v1/gateway/approvals", &by_id).await.json()["status"], "approved");
    let fresh = gateway(&s.router, "/v1/gateway/approvals", &create_body(&d, 0, Some("export-api"), 1)).await.json();
    assert_ne!(fresh["approval_id"], json!(id));
    assert_eq!(fresh["status"], "pending");

    let report = verify_database(&s.db, Some(&AUDIT_KEY)).unwrap();
    assert!(report.ok(), "{report:?}");
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    let kinds: Vec<String> = conn
        .prepare("SELECT kind FROM audit_records ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for k in ["approval.created", "review", "approval.approved", "approval.redeemed", "credential.minted"] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    let all: String = conn
        .prepare("SELECT group_concat(event, ' ') FROM audit_records")
        .unwrap()
        .query_row([], |r| r.get(0))
        .unwrap();
    assert!(!all.contains(token), "the credential must never reach the audit trail");
}

#[tokio::test]
async fn reviewer_refusals() {
    let s = service();
    let d = digest("refusals");
    let id = gateway(&s.router, "/v1/gateway/approvals", &create_body(&d, 0, Some("legacy"), 2)).await.json()
        ["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let approve = format!("/v1/approvals/{id}/approve");
    let problem = |a: &Answer| (a.status, a.json()["type"].as_str().unwrap_or_default().to_string());
    let a = reviewer(&s.router, "POST", &approve, None, None).await;
    assert_eq!(problem(&a), (401, "urn:airlock:problem:unauthenticated".into()));
    let a = reviewer(&s.router, "POST", &approve, Some("wrong-key"), None).await;
    assert_eq!(a.status, 401);
    // The owner, and someone the agent acts for (matched by alias).
    for key in ["alice-key", "carol-key"] {
        let a = reviewer(&s.router, "POST", &approve, Some(key), None).await;
        assert_eq!(problem(&a), (403, "urn:airlock:problem:separation-of-duties".into()), "{key}");
    }
    let a = reviewer(&s.router, "POST", &approve, Some("dave-key"), None).await;
    assert_eq!(problem(&a), (403, "urn:airlock:problem:not-an-approver".into()));
    let a = reviewer(&s.router, "POST", "/v1/approvals/apr_nope/approve", Some("bob-key"), None).await;
    assert_eq!(a.status, 404);
    let a = reviewer(&s.router, "POST", &approve, Some("bob-key"), Some(json!({"comment": "fine"}))).await;
    assert_eq!((a.status, a.json()["status"].clone()), (200, json!("pending")), "quorum 2 needs a second human");
    let a = reviewer(&s.router, "POST", &approve, Some("bob-key"), None).await;
    assert_eq!(problem(&a), (409, "urn:airlock:problem:duplicate-vote".into()));
    let a = reviewer(
        &s.router,
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        Some("bob-key"),
        Some(json!({"comment": "changed my mind"})),
    )
    .await;
    assert_eq!(problem(&a), (409, "urn:airlock:problem:duplicate-vote".into()));
    // A deny by another eligible reviewer decides.
    let mut other = create_body(&digest("deny"), 0, None, 1);
    other["agent"]["owner"] = json!("someone@corp.example");
    other["agent"]["acts_for"] = json!([]);
    let id2 =
        gateway(&s.router, "/v1/gateway/approvals", &other).await.json()["approval_id"].as_str().unwrap().to_string();
    let a = reviewer(
        &s.router,
        "POST",
        &format!("/v1/approvals/{id2}/deny"),
        Some("carol-key"),
        Some(json!({"comment": "no"})),
    )
    .await;
    assert_eq!(a.json()["status"], "denied");
    let a = reviewer(&s.router, "POST", &format!("/v1/approvals/{id2}/approve"), Some("bob-key"), None).await;
    assert_eq!(problem(&a), (409, "urn:airlock:problem:already-decided".into()));
    assert_eq!(
        gateway(&s.router, "/v1/gateway/approvals", &{
            let mut b = other.clone();
            b["approval_id"] = json!(id2);
            b
        })
        .await
        .json()["status"],
        "denied"
    );
    let r = gateway(
        &s.router,
        &format!("/v1/gateway/approvals/{id2}/redeem"),
        &json!({"decision_id": "d", "agent": AGENT, "digest": digest("deny")}),
    )
    .await;
    assert_eq!((r.status, r.json()["status"].clone()), (409, json!("not_approved")));
}

#[tokio::test]
async fn static_credential_and_expiry() {
    let s = service();
    let d = digest("static");
    let mut body = create_body(&d, 0, Some("legacy"), 1);
    body["agent"]["owner"] = json!("someone@corp.example");
    let id =
        gateway(&s.router, "/v1/gateway/approvals", &body).await.json()["approval_id"].as_str().unwrap().to_string();
    reviewer(&s.router, "POST", &format!("/v1/approvals/{id}/approve"), Some("bob-key"), None).await;
    let r = gateway(
        &s.router,
        &format!("/v1/gateway/approvals/{id}/redeem"),
        &json!({"decision_id": "d", "agent": AGENT, "digest": d}),
    )
    .await;
    assert_eq!(r.json()["headers"], json!({"x-api-key": "s3cr3t-static"}));
    // An approval with a 1 s deadline expires: the held create and the reviewer both see it.
    let mut short = create_body(&digest("short"), 2500, None, 1);
    short["policy"]["expires_in"] = json!("1s");
    let started = std::time::Instant::now();
    let a = gateway(&s.router, "/v1/gateway/approvals", &short).await.json();
    assert_eq!(a["status"], "expired");
    assert!(started.elapsed() < Duration::from_millis(2400));
    let id = a["approval_id"].as_str().unwrap();
    let r = reviewer(&s.router, "POST", &format!("/v1/approvals/{id}/approve"), Some("bob-key"), None).await;
    assert_eq!((r.status, r.json()["type"].clone()), (410, json!("urn:airlock:problem:approval-expired")));
    let r = gateway(
        &s.router,
        &format!("/v1/gateway/approvals/{id}/redeem"),
        &json!({"decision_id": "d", "agent": AGENT, "digest": digest("short")}),
    )
    .await;
    assert_eq!((r.status, r.json()["status"].clone()), (410, json!("expired")));
}

#[tokio::test]
async fn decision_batches_land_in_the_audit_trail() {
    let s = service();
    let batch = json!({"dropped": 2, "records": [
        {"decision_id": "dec_a", "time_ms": 1, "effect": "allow", "enforced": "allow", "mode": "enforce", "rule": "r",
         "reason": "", "risk": "low", "policy_revision": "1", "agent": AGENT, "digest": digest("x"), "method": "GET", "host": "h", "path": "/"},
        {"decision_id": "dec_b", "time_ms": 2, "effect": "deny", "enforced": "deny", "mode": "enforce", "rule": "r",
         "reason": "", "risk": "low", "policy_revision": "1", "agent": AGENT, "digest": digest("y"), "method": "GET", "host": "h", "path": "/"}
    ]});
    let a = gateway(&s.router, "/v1/gateway/decisions", &batch).await;
    assert_eq!(a.status, 202);
    let bad = gateway(&s.router, "/v1/gateway/decisions", &json!({"dropped": 0})).await;
    assert_eq!(bad.status, 400);
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    let n: i64 =
        conn.query_row("SELECT count(*) FROM audit_records WHERE kind = 'decision'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2);
    let m = reviewer(&s.router, "GET", "/metrics", None, None).await;
    let text = String::from_utf8(m.body).unwrap();
    assert!(text.contains("airlock_decisions_total{effect=\"deny\"} 1"), "{text}");
    assert!(text.contains("airlock_approvals_pending 0"));
    assert!(text.contains("airlock_audit_append_seconds_count"));
    assert!(text.contains("airlock_redeem_failures_total"));
}

#[tokio::test]
async fn ops_endpoints_and_every_route_is_documented() {
    let s = service();
    assert_eq!(reviewer(&s.router, "GET", "/healthz", None, None).await.status, 200);
    assert_eq!(reviewer(&s.router, "GET", "/readyz", None, None).await.status, 200);
    let doc = reviewer(&s.router, "GET", "/openapi.json", None, None).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in airlock_approval_svc::api::ROUTES {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
        // The route is really served (not the 404 fallback).
        let concrete = path.replace("{id}", "apr_x");
        let a = reviewer(&s.router, &method.to_uppercase(), &concrete, None, None).await;
        assert_ne!(a.status, 404, "{method} {path} is not routed");
    }
    // Chat callbacks are documented and routed, and say so when their channel is off.
    for (method, path) in airlock_approval_svc::api::CHAT_ROUTES {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
        let a = reviewer(&s.router, &method.to_uppercase(), path, None, Some(json!({}))).await;
        assert_eq!(a.status, 404, "{method} {path} answers while its channel is not configured");
        assert_eq!(a.json()["type"], "urn:airlock:problem:not-found", "{method} {path}");
    }
    for (method, path) in airlock_approval_svc::api::OPTIONAL_ROUTES {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
    }
    let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        airlock_approval_svc::api::ROUTES.len()
            + airlock_approval_svc::api::CHAT_ROUTES.len()
            + airlock_approval_svc::api::OPTIONAL_ROUTES.len(),
        "documented paths that are not routed"
    );
    assert_eq!(reviewer(&s.router, "GET", "/nope", None, None).await.status, 404);
}

#[tokio::test]
async fn the_owner_cancels_a_pending_approval_saying_why_and_nobody_else_can() {
    let s = service();
    let id = gateway(&s.router, "/v1/gateway/approvals", &create_body(&digest("cancel"), 0, None, 1)).await.json()
        ["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let cancel = format!("/v1/approvals/{id}/cancel");
    let problem = |a: &Answer| (a.status, a.json()["type"].as_str().unwrap_or_default().to_string());
    let why = Some(json!({"reason": "asked by mistake"}));
    assert_eq!(reviewer(&s.router, "POST", &cancel, None, why.clone()).await.status, 401);
    // An approver who is not the owner, and someone the agent acts for.
    for key in ["bob-key", "carol-key"] {
        let a = reviewer(&s.router, "POST", &cancel, Some(key), why.clone()).await;
        assert_eq!(problem(&a), (403, "urn:airlock:problem:not-the-owner".into()), "{key}");
    }
    for bad in [None, Some(json!({"reason": "  "})), Some(json!({"reason": "x", "extra": 1})), Some(json!({}))] {
        let a = reviewer(&s.router, "POST", &cancel, Some("alice-key"), bad.clone()).await;
        assert_eq!(problem(&a), (400, "urn:airlock:problem:bad-request".into()), "{bad:?}");
    }
    let a = reviewer(&s.router, "POST", "/v1/approvals/apr_nope/cancel", Some("alice-key"), why.clone()).await;
    assert_eq!(a.status, 404);
    assert!(audit_events(&s.db, "approval.cancelled").is_empty(), "a refused cancel records nothing");

    let a = reviewer(&s.router, "POST", &cancel, Some("alice-key"), why.clone()).await;
    assert_eq!((a.status, a.json()["status"].clone()), (200, json!("cancelled")));
    let events = audit_events(&s.db, "approval.cancelled");
    assert_eq!(events.len(), 1);
    let event: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(
        (event["by"].clone(), event["reason"].clone()),
        (json!("alice@corp.example"), json!("asked by mistake"))
    );
    // First decision wins: neither a second cancel nor a vote moves it again.
    let a = reviewer(&s.router, "POST", &cancel, Some("alice-key"), why).await;
    assert_eq!(problem(&a), (409, "urn:airlock:problem:already-decided".into()));
    let a = reviewer(&s.router, "POST", &format!("/v1/approvals/{id}/approve"), Some("bob-key"), None).await;
    assert_eq!(problem(&a), (409, "urn:airlock:problem:already-decided".into()));
    let report = verify_database(&s.db, Some(&AUDIT_KEY)).unwrap();
    assert!(report.ok(), "{report:?}");
}
