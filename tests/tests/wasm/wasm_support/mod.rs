//! Helpers shared by the `wasm_*` scenario files: one inline policy and configuration,
//! the approval service's side of the signatures (`docs/protocol.md`), the action
//! digest computed independently from `docs/digest.md`, and outcome assertions.
//! Test code: panics are the point.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, UNIX_EPOCH};

use airlock_tests::host::{Callout, Host, LocalReply, Outcome, Stream};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const AGENT: &str = "spiffe://corp/agent/report-bot";
pub const OWNER: &str = "alice@corp.example";
pub const IDENTITY_HEADER: &str = "x-airlock-agent";
pub const CLUSTER: &str = "airlock_approval";
pub const AUTHORITY: &str = "airlock-approval";
pub const KEY_ID: &str = "k2";
pub const KEY: [u8; 32] = [7; 32];
pub const PREVIOUS_KEY_ID: &str = "k1";
pub const PREVIOUS_KEY: [u8; 32] = [9; 32];
pub const TIMEOUT_MS: u64 = 2_000;
pub const RETRY_AFTER_S: u64 = 7;
pub const MAX_BODY: usize = 1_024;
pub const REVISION: &str = "wasm-flow-1";
pub const APPROVALS: &str = "/v1/gateway/approvals";
pub const APPROVALS_FIND: &str = "/v1/gateway/approvals/find";
pub const DECISIONS: &str = "/v1/gateway/decisions";
pub const HOST: &str = "api.example.com";
pub const BLOCKED_HOST: &str = "blocked.example.com";
pub const EXPORTS: &str = "/v1/exports";

/// Secrets the agent sends; none may ever reach the approval service.
pub const AGENT_AUTHORIZATION: &str = "Bearer agent-own-token-SECRET1";
pub const AGENT_COOKIE: &str = "session=agent-cookie-SECRET2";
pub const AGENT_API_KEY: &str = "agent-api-key-SECRET3";
pub const AGENT_PROXY_AUTH: &str = "Basic agent-proxy-SECRET4";
pub const SECRETS: [&str; 4] = ["SECRET1", "SECRET2", "SECRET3", "SECRET4"];

/// Precedence through `else`; two disagreeing rules for PATCH make evaluating
/// `decision` a conflict error.
pub const POLICY: &str = r#"package airlock

import rego.v1

default decision := {"effect": "deny", "rule": "default-deny", "reason": "no rule allows this call"}

decision := {"effect": "deny", "rule": "blocked-host", "risk": "high", "reason": "this host is blocked"} if {
	data.blocked_hosts[input.request.host]
} else := {"effect": "deny", "rule": "no-deletes", "risk": "high", "reason": "agents may not delete"} if {
	input.request.method == "DELETE"
} else := {"effect": "approve", "rule": "held-export", "risk": "high", "reason": "held export",
           "approvers": {"groups": ["data-owners"], "quorum": 1}, "hold": "30s"} if {
	input.request.method == "POST"
	input.request.path == "/v1/held"
} else := {"effect": "approve", "rule": "pii-export", "risk": "high",
           "reason": "customer data leaves the company",
           "approvers": {"groups": ["data-owners"], "quorum": 1}, "expires_in": "15m",
           "credential": "s3-export", "reuse": "once", "redact": ["request.body.customer.ssn"]} if {
	input.request.method in {"POST", "PUT"}
	startswith(input.request.path, "/v1/exports")
} else := {"effect": "permit", "rule": "typo"} if {
	input.request.path == "/v1/malformed"
} else := {"effect": "allow", "rule": "budget"} if {
	input.request.path == "/v1/expensive"
	count([x | some x in numbers.range(1, 300000)]) > 0
} else := {"effect": "allow", "rule": "reads", "risk": "low", "reason": "read-only call"} if {
	input.request.method in {"GET", "HEAD"}
}

decision := {"effect": "allow", "rule": "conflict-a"} if input.request.method == "PATCH"

decision := {"effect": "deny", "rule": "conflict-b"} if input.request.method == "PATCH"
"#;

pub fn b64(key: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// The plugin configuration every scenario starts from.
pub fn config() -> Value {
    json!({
        "policy": {
            "modules": {"airlock.rego": POLICY},
            "data": {"blocked_hosts": {BLOCKED_HOST: true}},
            "revision": REVISION
        },
        "identity": {
            "source": "header",
            "header": IDENTITY_HEADER,
            "agents": {AGENT: {"owner": OWNER, "acts_for": []}}
        },
        "approval_service": {
            "cluster": CLUSTER,
            "authority": AUTHORITY,
            "timeout_ms": TIMEOUT_MS,
            "hold_ms": 0,
            "retry_after_s": RETRY_AFTER_S,
            "signing": {
                "key_id": KEY_ID, "key_base64": b64(&KEY),
                "previous": {"key_id": PREVIOUS_KEY_ID, "key_base64": b64(&PREVIOUS_KEY)}
            }
        },
        "request": {
            "max_body_bytes": MAX_BODY,
            "significant_headers": ["content-type"],
            "credential_headers": ["x-api-key"],
            "upstream_scheme": "https"
        },
        "decision_log": {"flush_ms": 1000, "max_queue": 64, "max_batch": 16}
    })
}

pub fn host() -> Host {
    host_with(&config())
}

pub fn host_with(cfg: &Value) -> Host {
    Host::new(cfg.to_string()).unwrap_or_else(|e| panic!("{e:#}"))
}

// ----- signatures, as the approval service computes them -----

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `v1=` + lower-case hex HMAC-SHA256.
pub fn hmac_v1(key: &[u8], message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn request_string(ts: &str, method: &str, path: &str, body: &[u8]) -> String {
    format!("airlock-v1-request\n{ts}\n{method}\n{path}\n{}", sha256_hex(body))
}

pub fn response_string(ts: &str, status: u16, request_signature: &str, body: &[u8]) -> String {
    format!("airlock-v1-response\n{ts}\n{status}\n{request_signature}\n{}", sha256_hex(body))
}

pub fn now_s(host: &Host) -> u64 {
    host.now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Checks a callout the way the service does: the current key id, a timestamp from the
/// host clock, and the HMAC over the request string.
pub fn assert_signed_by_filter(host: &Host, call: &Callout) {
    assert_eq!(call.header("x-airlock-key-id").as_deref(), Some(KEY_ID), "{call:?}");
    let ts = call.header("x-airlock-timestamp").expect("timestamp header");
    let ts_n: u64 = ts.parse().unwrap_or_else(|_| panic!("timestamp {ts:?}"));
    let sent = call.sent_at.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(ts_n, sent, "signed at the host's clock");
    assert!(ts_n.abs_diff(now_s(host)) <= 60);
    let sig = call.header("x-airlock-signature").expect("signature header");
    let method = call.method().unwrap();
    let path = call.path().unwrap();
    let expected = hmac_v1(&KEY, &request_string(&ts, &method, &path, &call.body));
    assert_eq!(sig, expected, "request signature over {method} {path}");
    // Any other key, path or body would not verify.
    assert_ne!(sig, hmac_v1(&PREVIOUS_KEY, &request_string(&ts, &method, &path, &call.body)));
    assert_ne!(sig, hmac_v1(&KEY, &request_string(&ts, &method, &path, b"{}")));
}

/// How to sign an answer; `Signer::service(host)` is the honest service.
#[derive(Clone, Debug)]
pub struct Signer {
    pub key_id: String,
    pub key: Vec<u8>,
    pub timestamp: u64,
    /// The request signature the answer is bound to; `None`: the answered callout's.
    pub bound_to: Option<String>,
}

impl Signer {
    pub fn service(host: &Host) -> Signer {
        Signer { key_id: KEY_ID.into(), key: KEY.to_vec(), timestamp: now_s(host), bound_to: None }
    }

    pub fn previous_key(host: &Host) -> Signer {
        Signer { key_id: PREVIOUS_KEY_ID.into(), key: PREVIOUS_KEY.to_vec(), ..Signer::service(host) }
    }

    pub fn headers(&self, call: &Callout, status: u16, body: &[u8]) -> Vec<(String, String)> {
        let ts = self.timestamp.to_string();
        let bound = self.bound_to.clone().unwrap_or_else(|| call.header("x-airlock-signature").unwrap_or_default());
        vec![
            ("content-type".into(), "application/json".into()),
            ("x-airlock-key-id".into(), self.key_id.clone()),
            ("x-airlock-timestamp".into(), ts.clone()),
            ("x-airlock-signature".into(), hmac_v1(&self.key, &response_string(&ts, status, &bound, body))),
        ]
    }
}

/// Delivers an answer with exactly these headers.
pub fn respond_raw(host: &mut Host, call: &Callout, status: u16, headers: &[(String, String)], body: &[u8]) {
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    host.respond_callout(call.token, status, &pairs, body).unwrap_or_else(|e| panic!("{e:#}\n{}", host.logs_text()));
}

/// Answers as `signer` signs.
pub fn respond_signed(host: &mut Host, call: &Callout, signer: &Signer, status: u16, body: &[u8]) {
    let headers = signer.headers(call, status, body);
    respond_raw(host, call, status, &headers, body);
}

/// Answers as the honest service: current key, host clock, bound to `call`.
pub fn respond(host: &mut Host, call: &Callout, status: u16, body: &Value) {
    let signer = Signer::service(host);
    respond_signed(host, call, &signer, status, body.to_string().as_bytes());
}

// ----- callouts -----

/// Pending callouts to `path` (the decision log excluded unless asked for).
pub fn pending_to(host: &Host, path: &str) -> Vec<Callout> {
    host.pending_callouts().into_iter().filter(|c| c.path().as_deref() == Some(path)).collect()
}

/// Every callout ever made to `path`.
pub fn calls_to(host: &Host, path: &str) -> Vec<Callout> {
    host.callouts().into_iter().filter(|c| c.path().as_deref() == Some(path)).collect()
}

/// Every callout ever made about approvals (create or redeem).
pub fn approval_calls(host: &Host) -> Vec<Callout> {
    host.callouts().into_iter().filter(|c| c.path().is_some_and(|p| p.starts_with(APPROVALS))).collect()
}

/// The one pending call to `path`.
pub fn the_pending(host: &Host, path: &str) -> Callout {
    let calls = pending_to(host, path);
    assert_eq!(
        calls.len(),
        1,
        "expected one pending call to {path}: {:?}\n{}",
        host.pending_callouts(),
        host.logs_text()
    );
    calls.into_iter().next().unwrap()
}

/// The pending create-or-find call made for `stream`.
/// The pending approval call of `stream`: the create, or the find a worker sends for an
/// action the service is known to hold an approval for (`docs/protocol.md`, "Finding
/// an existing approval"), which is the create body without `request.body`.
pub fn create_call_for(host: &Host, stream: &Stream) -> Callout {
    let mut calls = pending_to(host, APPROVALS);
    calls.extend(pending_to(host, APPROVALS_FIND));
    calls.into_iter().find(|c| c.context_id == stream.id()).unwrap_or_else(|| {
        panic!("no create call for request {}: {:?}\n{}", stream.id(), host.pending_callouts(), host.logs_text())
    })
}

pub fn redeem_path(approval_id: &str) -> String {
    format!("{APPROVALS}/{approval_id}/redeem")
}

// ----- requests -----

/// The body of the standard export, with a secret the policy redacts.
pub fn export_body() -> Value {
    json!({"format": "csv", "customer": {"name": "Ada Lovelace", "ssn": "123-45-6789"}})
}

/// POST /v1/exports?format=csv as the agent, with its own credentials attached.
pub fn send_export(host: &mut Host, body: &Value, extra: &[(&str, &str)]) -> Stream {
    let mut req = host
        .request()
        .method("POST")
        .scheme("https")
        .authority(HOST)
        .path("/v1/exports?format=csv")
        .header(IDENTITY_HEADER, AGENT)
        .header("authorization", AGENT_AUTHORIZATION)
        .header("cookie", AGENT_COOKIE)
        .header("x-api-key", AGENT_API_KEY)
        .header("proxy-authorization", AGENT_PROXY_AUTH)
        .header("user-agent", "report-bot/1.0");
    for (k, v) in extra {
        req = req.header(k, v);
    }
    req.json(body).send().unwrap()
}

/// GET as the agent.
pub fn send_get(host: &mut Host, authority: &str, path: &str) -> Stream {
    host.request()
        .method("GET")
        .scheme("https")
        .authority(authority)
        .path(path)
        .header(IDENTITY_HEADER, AGENT)
        .send()
        .unwrap()
}

// ----- outcomes -----

pub fn local_reply(host: &Host, stream: &Stream) -> LocalReply {
    match stream.outcome() {
        Outcome::LocalReply(r) => r,
        other => panic!("expected a local reply, got {other:?}\n{}", host.logs_text()),
    }
}

/// Nothing of the request reached the upstream, and the agent got a refusal.
pub fn assert_blocked(host: &Host, stream: &Stream) {
    assert!(
        !stream.reached_upstream() && !stream.upstream_saw_headers(),
        "must not reach the upstream: {:?}\n{}",
        stream.outcome(),
        host.logs_text()
    );
    assert!(stream.response_status().is_some_and(|s| s >= 400), "the agent must get a refusal: {:?}", stream.outcome());
}

/// A problem+json local reply of `kind` with `status`; nothing upstream. Returns the body.
pub fn assert_problem(host: &Host, stream: &Stream, status: u32, kind: &str) -> Value {
    assert_blocked(host, stream);
    let reply = local_reply(host, stream);
    assert_eq!(reply.status, status, "{reply:?}\n{}", host.logs_text());
    assert_eq!(reply.header("content-type").as_deref(), Some("application/problem+json"), "{reply:?}");
    let body = reply.json().unwrap();
    assert_eq!(body["type"], format!("urn:airlock:problem:{kind}"), "{body}\n{}", host.logs_text());
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert!(body["decision_id"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    body
}

pub fn assert_reached_upstream(host: &Host, stream: &Stream) {
    assert!(
        stream.reached_upstream(),
        "expected the request upstream, got {:?}\n{}",
        stream.outcome(),
        host.logs_text()
    );
}

pub fn metric(host: &Host, name: &str) -> u64 {
    host.metric(name).unwrap_or(0)
}

/// Ships the decision log now and returns the batch body, answering it with 202.
pub fn ship_decisions(host: &mut Host) -> Value {
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    let call = the_pending(host, DECISIONS);
    assert_signed_by_filter(host, &call);
    let batch = call.json().unwrap();
    respond(host, &call, 202, &json!({}));
    batch
}

// ----- the action digest, from docs/digest.md -----

/// The fields the digest covers: query as decoded `(name, value)` pairs, significant
/// headers in configured order.
pub struct DigestInput<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub query: Vec<(&'a str, &'a str)>,
    pub significant: Vec<(&'a str, Option<&'a str>)>,
    pub body: &'a [u8],
}

impl DigestInput<'_> {
    /// The standard export as `send_export` sends it.
    pub fn export(body: &[u8]) -> DigestInput<'_> {
        DigestInput {
            method: "POST",
            scheme: "https",
            host: HOST,
            port: 443,
            path: EXPORTS,
            query: vec![("format", "csv")],
            significant: vec![("content-type", Some("application/json"))],
            body,
        }
    }

    pub fn digest(&self) -> String {
        fn field(h: &mut Sha256, value: Option<&[u8]>) {
            match value {
                Some(v) => {
                    h.update((v.len() as u32).to_be_bytes());
                    h.update(v);
                }
                None => h.update(u32::MAX.to_be_bytes()),
            }
        }
        let mut h = Sha256::new();
        field(&mut h, Some(b"airlock-digest-v1"));
        field(&mut h, Some(self.method.as_bytes()));
        field(&mut h, Some(self.scheme.as_bytes()));
        field(&mut h, Some(self.host.as_bytes()));
        field(&mut h, Some(self.port.to_string().as_bytes()));
        field(&mut h, Some(self.path.as_bytes()));
        let mut query = self.query.clone();
        query.sort();
        field(&mut h, Some(query.len().to_string().as_bytes()));
        for (k, v) in query {
            field(&mut h, Some(k.as_bytes()));
            field(&mut h, Some(v.as_bytes()));
        }
        field(&mut h, Some(self.significant.len().to_string().as_bytes()));
        for (k, v) in &self.significant {
            field(&mut h, Some(k.as_bytes()));
            field(&mut h, v.map(str::as_bytes));
        }
        field(&mut h, Some(sha256_hex(self.body).as_bytes()));
        hex::encode(h.finalize())
    }
}
