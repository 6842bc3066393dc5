//! Shared by the suites that run the REAL approval service (`e2e_service_*.rs`): the
//! policy, the plugin configuration (agents with owners), the reviewers, and helpers for
//! approvals, credentials and the audit trail.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::gateway::{self, Gateway};
use airlock_tests::e2e::plugin::{plugin_config, PluginOptions};
use airlock_tests::e2e::server::Received;
use airlock_tests::e2e::service::{self, approval_id_of, credential_keys, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::e2e::template::Vars;
use serde_json::{json, Value};

use super::expect_problem;

/// Host the agents call (the credential's `aud`).
pub const HOST: &str = "api.e2e.test";
/// Quorum-1 export (credential `export-token`, reuse once, 15 min).
pub const EXPORT_PATH: &str = "/v1/exports";
/// Quorum 2 of data-owners.
pub const TWO_PERSON_PATH: &str = "/v1/two-person";
/// Expires 2 s after creation.
pub const SHORT_PATH: &str = "/v1/short";
/// `expires_in` of [`SHORT_PATH`] approvals.
pub const SHORT_EXPIRY: Duration = Duration::from_secs(2);

/// Agent owned by alice (by id).
pub const OWNED_AGENT: &str = "spiffe://e2e/agent/owned-by-alice";
/// Agent owned by one of alice's aliases.
pub const OWNED_OID_AGENT: &str = "spiffe://e2e/agent/owned-by-alice-oid";
/// Agent that acts for erin.
pub const ACTS_FOR_AGENT: &str = "spiffe://e2e/agent/acts-for-erin";
/// Alice's alias (an Entra object id, say).
pub const ALICE_OID: &str = "00000000-aaaa-bbbb-cccc-00000000a11c";

pub const BOB: &str = "bob@e2e.example";
pub const CAROL: &str = "carol@e2e.example";
pub const ALICE: &str = "alice@e2e.example";
pub const ERIN: &str = "erin@e2e.example";
pub const DAVE: &str = "dave@e2e.example";

/// The policy of the real-service suites.
pub const SERVICE_POLICY: &str = r#"package airlock

import rego.v1

default decision := {"effect": "deny", "reason": "no rule matched", "rule": "default-deny"}

decision := {"effect": "allow", "reason": "reads are allowed", "rule": "reads", "risk": "low"} if {
	input.request.method == "GET"
	not startswith(input.request.path, "/admin")
}

decision := {"effect": "deny", "reason": "the admin API is off limits", "rule": "no-admin", "risk": "high"} if {
	input.request.method == "GET"
	startswith(input.request.path, "/admin")
}

decision := {"effect": "deny", "reason": "deletes are never allowed", "rule": "no-deletes", "risk": "high"} if {
	input.request.method == "DELETE"
}

decision := {
	"effect": "approve",
	"reason": "exports need a data owner",
	"rule": "exports",
	"risk": "high",
	"approvers": {"groups": ["data-owners"], "quorum": 1},
	"expires_in": "15m",
	"credential": "export-token",
	"reuse": "once",
	"redact": ["request.body.customer.ssn"],
} if {
	input.request.method in {"POST", "PUT"}
	export_path
}

decision := {
	"effect": "approve",
	"reason": "two data owners must agree",
	"rule": "two-person",
	"risk": "critical",
	"approvers": {"groups": ["data-owners"], "quorum": 2},
	"expires_in": "15m",
	"credential": "export-token",
	"reuse": "once",
} if {
	input.request.method == "POST"
	input.request.path == "/v1/two-person"
}

decision := {
	"effect": "approve",
	"reason": "short-lived approval",
	"rule": "short",
	"risk": "medium",
	"approvers": {"groups": ["data-owners"], "quorum": 1},
	"expires_in": "2s",
	"credential": "export-token",
	"reuse": "once",
} if {
	input.request.method == "POST"
	input.request.path == "/v1/short"
}

export_path if input.request.path == "/v1/exports"

export_path if startswith(input.request.path, "/v1/exports/")
"#;

/// The reviewers every real-service suite configures.
pub fn reviewers() -> Vec<Reviewer> {
    vec![
        Reviewer::new(BOB, &["data-owners"]),
        Reviewer::new(CAROL, &["data-owners", "sre"]),
        Reviewer::new(ALICE, &["data-owners"]).alias(ALICE_OID),
        Reviewer::new(ERIN, &["data-owners"]),
        Reviewer::new(DAVE, &["sre"]),
    ]
}

/// Starts the real service (fails naming the build command when the binary is missing).
pub fn start_service(name: &str) -> AirlockService {
    // `pending_latency` and the crash test create dozens of approvals for one agent.
    let opts =
        ServiceOptions { reviewers: reviewers(), max_pending_per_agent: Some(1000), ..ServiceOptions::default() };
    AirlockService::start(name, &opts).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The plugin configuration: [`SERVICE_POLICY`] and agents with owners.
pub fn plugin(hold_ms: u64) -> Value {
    let mut cfg = plugin_config(&PluginOptions {
        policy: SERVICE_POLICY.to_string(),
        hold_ms,
        timeout_ms: 3000,
        ..PluginOptions::default()
    });
    cfg["identity"]["agents"] = json!({
        OWNED_AGENT: {"owner": ALICE, "acts_for": []},
        OWNED_OID_AGENT: {"owner": ALICE_OID, "acts_for": []},
        ACTS_FOR_AGENT: {"owner": "frank@e2e.example", "acts_for": [ERIN]},
    });
    cfg
}

/// Template values for `envoy/demo.yaml` wired to the upstream and the real service.
pub fn real_vars(wasm: &Path, plugin: &Value, upstream_port: u16, service_port: u16) -> Vars {
    let mut v = gateway::test_vars(wasm, plugin);
    v.insert("AIRLOCK_UPSTREAM_PORT".into(), upstream_port.to_string());
    v.insert("AIRLOCK_APPROVAL_PORT".into(), service_port.to_string());
    v
}

/// An export body.
pub fn export_body(tag: &str, rows: u64) -> Value {
    json!({"format": "csv", "rows": rows, "tag": tag,
           "customer": {"name": "Ada", "ssn": "123-45-6789"}})
}

/// `POST path` on [`HOST`] with a JSON body, as `agent`, tagged `case`.
pub fn post_as(agent_id: &str, case: &str, path: &str, body: &Value) -> Request {
    Request::post_json(path, body)
        .header("host", HOST)
        .header(airlock_tests::e2e::plugin::IDENTITY_HEADER, agent_id)
        .header(airlock_tests::e2e::upstream::CASE_HEADER, case)
}

/// Expects approval-pending; returns the approval id.
pub fn expect_pending(resp: &Response) -> String {
    let doc = expect_problem(resp, 403, "approval-pending");
    doc["approval_id"].as_str().unwrap_or_else(|| panic!("approval_id in {doc}")).to_string()
}

/// Sends `req` through `gw`; expects approval-pending; returns the approval id.
pub fn pending(gw: &Gateway, req: &Request) -> String {
    let resp = gw.send(req).unwrap_or_else(|e| panic!("request to the gateway failed: {e:#}"));
    expect_pending(&resp)
}

/// The API key of reviewer `id`.
pub fn key(svc: &AirlockService, id: &str) -> String {
    svc.reviewer(id).unwrap().api_key.clone()
}

/// Approves through the API as `reviewer`; expects 200; returns the approval document.
pub fn approve_ok(svc: &AirlockService, id: &str, reviewer: &str) -> Value {
    let resp = svc.approve(id, &key(svc, reviewer)).unwrap();
    assert_eq!(resp.status, 200, "{reviewer} approves {id}: {} {}", resp.status, resp.text());
    resp.json().unwrap_or(Value::Null)
}

/// A reviewer API refusal: status and `urn:airlock:problem:<kind>`.
pub fn expect_api_problem(resp: &Response, status: u16, kind: &str, what: &str) {
    let text = resp.text();
    assert_eq!(resp.status, status, "{what}: want {status} {kind}, got {} {text}", resp.status);
    let ct = resp.header("content-type").unwrap_or("");
    assert!(ct.starts_with("application/problem+json"), "{what}: want problem+json, got {ct:?}: {text}");
    if !kind.is_empty() {
        let doc = resp.json().unwrap();
        assert_eq!(
            doc["type"].as_str(),
            Some(format!("urn:airlock:problem:{kind}").as_str()),
            "{what}: problem type in {doc}"
        );
    }
}

/// The first approval in `list` (newest first) whose text mentions `needle`.
pub fn find_in_list(list: &[Value], needle: &str) -> Option<String> {
    list.iter().find(|a| a.to_string().contains(needle)).and_then(|a| approval_id_of(a).map(str::to_string))
}

/// Whether an approval document says it was redeemed (status `redeemed`, or a redeem
/// time / count).
pub fn is_redeemed(doc: &Value) -> bool {
    service::status_of(doc) == Some("redeemed")
        || ["redeemed_at", "consumed_at"].iter().any(|k| doc.get(*k).is_some_and(|v| !v.is_null()))
        || ["redeems", "redeem_count", "redeemed"].iter().any(|k| match doc.get(*k) {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0) > 0,
            Some(Value::Bool(b)) => *b,
            Some(Value::Array(a)) => !a.is_empty(),
            _ => false,
        })
}

/// Polls the exported audit trail (bounded) until `cond` holds; returns the records.
pub fn audit_until(svc: &AirlockService, what: &str, timeout: Duration, cond: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let records = svc.audit_export().unwrap_or_else(|e| panic!("{e:#}"));
        if cond(&records) {
            return records;
        }
        if Instant::now() >= deadline {
            let kinds: Vec<&str> = records.iter().filter_map(service::kind_of).collect();
            panic!("{what}: not in the audit trail within {timeout:?}; {} records, kinds {kinds:?}", records.len());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The minted credential on an upstream request: exactly one `authorization`, a valid
/// HS256 JWT under the profile's secret with sub = agent, aud = host, a digest claim,
/// exp at most 5 min away, a jti, and (when given) the approvers in `act`. Returns the
/// token and its claims.
pub fn check_credential(up: &Received, agent_id: &str, approvers: &[&str]) -> (String, Value) {
    let auth = up.header_values("authorization");
    assert_eq!(auth.len(), 1, "exactly one authorization upstream: {:?}", up.headers);
    assert!(!auth[0].contains("agent-own-secret"), "the agent's own credential was stripped: {:?}", up.headers);
    let token =
        auth[0].strip_prefix("Bearer ").unwrap_or_else(|| panic!("Bearer credential, got {:?}", auth[0])).to_string();
    let claims = service::verify_jwt_hs256(&token, &credential_keys())
        .unwrap_or_else(|e| panic!("minted credential {token}: {e:#}"));
    assert_eq!(claims["sub"].as_str(), Some(agent_id), "sub in {claims}");
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == HOST,
        Value::Array(a) => a.iter().any(|x| x.as_str() == Some(HOST)),
        _ => false,
    };
    assert!(aud_ok, "aud = {HOST} in {claims}");
    let digest = claims
        .as_object()
        .and_then(|o| o.iter().find(|(k, v)| k.contains("digest") && v.as_str().is_some_and(is_hex64)))
        .map(|(_, v)| v.as_str().unwrap_or("").to_string());
    assert!(digest.is_some(), "an airlock digest claim (64 hex) in {claims}");
    let now = service::unix_now();
    let exp = claims["exp"].as_i64().unwrap_or_else(|| panic!("exp in {claims}"));
    assert!(exp > now - 5, "not already expired: {claims}");
    assert!(exp <= now + 300 + 5, "exp at most 5 min away: {claims}");
    if let Some(iat) = claims["iat"].as_i64() {
        assert!(exp - iat <= 300, "lifetime at most 5 min: {claims}");
    }
    assert!(claims["jti"].is_string(), "jti in {claims}");
    let act = claims["act"].to_string();
    for a in approvers {
        assert!(act.contains(a), "approver {a} in act: {claims}");
    }
    assert!(
        !up.headers.iter().any(|(n, _)| n.starts_with("x-airlock-")),
        "no x-airlock-* header upstream: {:?}",
        up.headers
    );
    (token, claims)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Percentile (nearest rank) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
