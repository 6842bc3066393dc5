//! The filter's plugin configuration for end-to-end tests, and the small policy they use.
//!
//! The policy (package `airlock`): `GET` → allow, except `/admin…` paths and the host
//! `blocked.example` → deny; `DELETE` → deny; `POST /v1/exports` → approve (high risk,
//! one data owner, body field `customer.ssn` redacted); anything else → the default deny.

use serde_json::{json, Value};

use crate::e2e::fake_service::{keys_for, ServiceKeys};

/// The header the test gateways take agent identity from.
pub const IDENTITY_HEADER: &str = "x-airlock-agent";
/// The header an agent may use to name its approval.
pub const APPROVAL_HEADER: &str = "x-airlock-approval";
/// Current signing key id.
pub const KEY_ID: &str = "e2e-k2";
/// Current signing key (32 bytes).
pub const KEY: &[u8; 32] = b"airlock-e2e-current-key-32-bytes";
/// Previous signing key id (rotation).
pub const PREVIOUS_KEY_ID: &str = "e2e-k1";
/// Previous signing key (32 bytes).
pub const PREVIOUS_KEY: &[u8; 32] = b"airlock-e2e-previous-key-32bytes";
/// The path the policy sends to approval.
pub const APPROVE_PATH: &str = "/v1/exports";
/// The approval service's Envoy cluster in every shipped config.
pub const APPROVAL_CLUSTER: &str = "airlock_approval";

/// The end-to-end policy (see the module docs).
pub const TEST_POLICY: &str = r#"package airlock

import rego.v1

default decision := {"effect": "deny", "reason": "no rule matched", "rule": "default-deny"}

decision := {"effect": "allow", "reason": "reads are allowed", "rule": "reads", "risk": "low"} if {
	input.request.method == "GET"
	not admin_path
	not blocked_host
}

decision := {"effect": "deny", "reason": "the admin API is off limits", "rule": "no-admin", "risk": "high"} if {
	input.request.method == "GET"
	admin_path
}

decision := {"effect": "deny", "reason": "this host is blocked", "rule": "blocked-host", "risk": "high"} if {
	input.request.method == "GET"
	not admin_path
	blocked_host
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
	input.request.method == "POST"
	input.request.path == "/v1/exports"
}

admin_path if startswith(input.request.path, "/admin")

blocked_host if input.request.host == "blocked.example"
"#;

/// Knobs the tests turn; everything else is fixed.
#[derive(Debug, Clone)]
pub struct PluginOptions {
    /// Rego module text.
    pub policy: String,
    /// `approval_service.hold_ms`.
    pub hold_ms: u64,
    /// `approval_service.timeout_ms`.
    pub timeout_ms: u64,
    /// `request.max_body_bytes`.
    pub max_body_bytes: u64,
    /// `request.upstream_scheme` (set behind a TLS-originating gateway).
    pub upstream_scheme: Option<String>,
    /// `decision_log.flush_ms`.
    pub flush_ms: u64,
}

impl Default for PluginOptions {
    fn default() -> Self {
        PluginOptions {
            policy: TEST_POLICY.to_string(),
            hold_ms: 0,
            timeout_ms: 1500,
            max_body_bytes: 65536,
            upstream_scheme: None,
            flush_ms: 200,
        }
    }
}

/// The plugin configuration document (`docs/configuration.md`).
pub fn plugin_config(opts: &PluginOptions) -> Value {
    use base64::Engine as _;
    let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
    let mut request = json!({
        "max_body_bytes": opts.max_body_bytes,
        "significant_headers": ["content-type"],
        "credential_headers": ["x-api-key"],
    });
    if let (Some(scheme), Some(obj)) = (&opts.upstream_scheme, request.as_object_mut()) {
        obj.insert("upstream_scheme".into(), json!(scheme));
    }
    json!({
        "policy": {
            "modules": {"e2e.rego": opts.policy},
            "revision": "e2e-1",
            "mode": "enforce",
        },
        "identity": {
            "source": "header",
            "header": IDENTITY_HEADER,
            "agents": {
                "spiffe://e2e/agent/report-bot": {"owner": "alice@e2e.example", "acts_for": []}
            }
        },
        "approval_service": {
            "cluster": APPROVAL_CLUSTER,
            "authority": "airlock-approval",
            "timeout_ms": opts.timeout_ms,
            "hold_ms": opts.hold_ms,
            "retry_after_s": 7,
            "signing": {
                "key_id": KEY_ID,
                "key_base64": b64(KEY),
                "previous": {"key_id": PREVIOUS_KEY_ID, "key_base64": b64(PREVIOUS_KEY)}
            }
        },
        "request": request,
        "decision_log": {"flush_ms": opts.flush_ms, "max_queue": 1024, "max_batch": 64}
    })
}

/// The keys the fake service needs to match [`plugin_config`].
pub fn service_keys() -> anyhow::Result<ServiceKeys> {
    keys_for((KEY_ID, KEY), Some((PREVIOUS_KEY_ID, PREVIOUS_KEY)))
}
