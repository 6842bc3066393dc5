//! The `http` credential minter end to end: a local fake minter, redeems through the
//! signed gateway endpoint, failures that must not consume the approval.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_approval_svc::credentials::Credentials;
use serde_json::{json, Value};
use support::*;

const SECRET: &str = "hvs.minted-secret-7f3a";
const BEARER: &str = "Bearer eyJ.minted.token-91c2";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Ok,
    Fail500,
    Hang,
    /// A header the gateway would refuse to inject: (name, value).
    BadHeader(&'static str, &'static str),
    NotJson,
    NoHeaders,
    NumberValue,
}

struct Minter {
    server: FakeServer,
    mode: Arc<Mutex<Mode>>,
}

impl Minter {
    fn start() -> Minter {
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let m = mode.clone();
        let server = FakeServer::start("/mint", move |r| {
            if r.method != "POST" || r.path != "/mint" {
                return Reply::Json(404, "{}".into());
            }
            match *m.lock().unwrap() {
                Mode::Ok => Reply::Json(
                    200,
                    json!({"headers": {"authorization": BEARER, "x-vault-token": SECRET}, "expires_at": "2030-01-01T00:00:00Z"}).to_string(),
                ),
                Mode::Fail500 => Reply::Json(500, json!({"error": "vault sealed"}).to_string()),
                Mode::Hang => Reply::Hang(Duration::from_secs(3)),
                // A valid header next to the bad one: all or nothing.
                Mode::BadHeader(name, value) => {
                    Reply::Json(200, json!({"headers": {"authorization": BEARER, name: value}}).to_string())
                }
                Mode::NotJson => Reply::Json(200, "headers: x-vault-token".into()),
                Mode::NoHeaders => Reply::Json(200, json!({"token": SECRET}).to_string()),
                Mode::NumberValue => Reply::Json(200, json!({"headers": {"x-vault-token": 42}}).to_string()),
            }
        });
        Minter { server, mode }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// The service with one profile, `vault`, configured as an operator would.
fn service_for(minter: &Minter) -> Service {
    let config = parse_config(&format!(
        "[credentials.vault]\nkind = \"http\"\nurl = \"{}\"\ntimeout = \"500ms\"\n",
        minter.server.url
    ));
    service_with(None, Some(Credentials::load(&config.credentials).unwrap()))
}

/// An approved approval whose policy names `vault`.
async fn approved(s: &Service, tag: &str) -> String {
    let created = gateway(&s.router, "/v1/gateway/approvals", &create_body(&digest(tag), 0, Some("vault"), 1)).await;
    assert_eq!(created.status, 200, "{:?}", created.json());
    let id = created.json()["approval_id"].as_str().unwrap().to_string();
    let a = reviewer(&s.router, "POST", &format!("/v1/approvals/{id}/approve"), Some("bob-key"), None).await;
    assert_eq!(a.json()["status"], "approved");
    id
}

async fn redeem(s: &Service, id: &str, tag: &str) -> Answer {
    gateway(
        &s.router,
        &format!("/v1/gateway/approvals/{id}/redeem"),
        &json!({"decision_id": "dec_r", "agent": AGENT, "digest": digest(tag)}),
    )
    .await
}

async fn stored_status(s: &Service, id: &str) -> Value {
    reviewer(&s.router, "GET", &format!("/v1/approvals/{id}"), Some("bob-key"), None).await.json()["status"].clone()
}

#[tokio::test]
async fn redeem_returns_exactly_the_minted_headers() {
    let minter = Minter::start();
    let s = service_for(&minter);
    let id = approved(&s, "mint-ok").await;
    assert_eq!(minter.server.hits(), 0, "nothing is minted before the redeem");

    let r = redeem(&s, &id, "mint-ok").await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let answer = r.json();
    assert_eq!(answer["status"], "redeemed");
    assert_eq!(answer["approval_id"], id);
    assert_eq!(answer["headers"], json!({"authorization": BEARER, "x-vault-token": SECRET}));
    assert!(answer["expires_at"].as_str().unwrap().starts_with("2030-01-01T00:00:00"), "{answer}");

    // What the minter was told.
    let calls = minter.server.recorded();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].method.as_str(), calls[0].path.as_str()), ("POST", "/mint"));
    assert!(
        calls[0].content_type.as_deref().unwrap_or_default().starts_with("application/json"),
        "{:?}",
        calls[0].content_type
    );
    assert_eq!(
        calls[0].json(),
        json!({"agent": AGENT, "host": "api.example.com", "digest": digest("mint-ok"),
               "approvers": ["bob@corp.example"], "approval_id": id})
    );

    // Consumed: a second redeem is refused without asking the minter again.
    let again = redeem(&s, &id, "mint-ok").await;
    assert_eq!((again.status, again.json()["status"].clone()), (409, json!("consumed")));
    assert_eq!(minter.server.hits(), 1);

    // The audit trail names the headers, never their values.
    let minted = audit_events(&s.db, "credential.minted");
    assert_eq!(minted.len(), 1, "{minted:?}");
    assert!(minted[0].contains("x-vault-token") && minted[0].contains("authorization"), "{}", minted[0]);
    assert!(minted[0].contains(&id));
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    let all: String = conn.query_row("SELECT group_concat(event, ' ') FROM audit_records", [], |r| r.get(0)).unwrap();
    assert!(!all.contains(SECRET) && !all.contains("minted.token"), "a credential reached the audit trail");
}

#[tokio::test]
async fn a_failing_minter_does_not_consume_the_approval() {
    let minter = Minter::start();
    let s = service_for(&minter);
    let id = approved(&s, "mint-fail").await;
    let failures = [
        Mode::Fail500,
        Mode::Hang,
        Mode::BadHeader("X-Vault-Token", SECRET),
        Mode::BadHeader("x vault token", SECRET),
        Mode::BadHeader(":authority", SECRET),
        Mode::BadHeader("", SECRET),
        // Lower-case tokens, but the filter refuses them (docs/protocol.md: malformed).
        Mode::BadHeader("x_vault_token", SECRET),
        Mode::BadHeader("x-airlock-agent", SECRET),
        Mode::BadHeader("host", "internal.example"),
        Mode::BadHeader("x-vault-token", "hvs.minted-secret-7f3a\r\nx-admin: 1"),
        Mode::NotJson,
        Mode::NoHeaders,
        Mode::NumberValue,
    ];
    for (n, mode) in failures.into_iter().enumerate() {
        minter.set(mode);
        let started = Instant::now();
        // `gateway` checks the answer is signed and bound to the request.
        let r = redeem(&s, &id, "mint-fail").await;
        assert!(started.elapsed() < Duration::from_millis(2500), "{mode:?}: the minter timeout bounds the redeem");
        // docs/protocol.md: anything but 200, 409 and 410 is `unavailable` for the filter.
        assert_eq!(r.status, 500, "{mode:?}");
        assert_eq!(r.headers["content-type"], "application/problem+json", "{mode:?}");
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(
            !text.contains(SECRET) && !text.contains("minted.token"),
            "{mode:?}: the answer leaks the minter's answer"
        );
        assert_eq!(minter.server.hits(), n + 1, "{mode:?}");
        assert_eq!(stored_status(&s, &id).await, "approved", "{mode:?}: the approval must not be consumed");
    }
    assert!(audit_events(&s.db, "credential.minted").is_empty());
    assert!(audit_events(&s.db, "approval.redeemed").is_empty());
    let m = String::from_utf8(reviewer(&s.router, "GET", "/metrics", None, None).await.body).unwrap();
    assert!(m.lines().any(|l| l.starts_with("airlock_redeem_failures_total ") && !l.ends_with(" 0")), "{m}");

    // The minter recovers: the same approval redeems once.
    minter.set(Mode::Ok);
    let r = redeem(&s, &id, "mint-fail").await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["headers"], json!({"authorization": BEARER, "x-vault-token": SECRET}));
    assert_eq!(stored_status(&s, &id).await, "redeemed");
    assert_eq!(audit_events(&s.db, "credential.minted").len(), 1);
    assert_eq!(audit_events(&s.db, "approval.redeemed").len(), 1);
    let r = redeem(&s, &id, "mint-fail").await;
    assert_eq!((r.status, r.json()["status"].clone()), (409, json!("consumed")));
}

#[tokio::test]
async fn an_unreachable_minter_fails_the_redeem_and_unknown_profiles_are_refused_at_create() {
    let minter = Minter::start();
    let s = service_for(&minter);
    let id = approved(&s, "mint-down").await;
    drop(minter); // nothing listens there any more
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = redeem(&s, &id, "mint-down").await;
    assert_eq!(r.status, 500);
    assert_eq!(stored_status(&s, &id).await, "approved");
    assert!(audit_events(&s.db, "credential.minted").is_empty());
    // A policy naming a profile this service does not have never becomes an approval.
    let r = gateway(&s.router, "/v1/gateway/approvals", &create_body(&digest("other"), 0, Some("export-api"), 1)).await;
    assert_eq!(r.status, 400);
}
