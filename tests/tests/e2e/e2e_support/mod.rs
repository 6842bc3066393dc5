//! Helpers shared by the `e2e_*` test files (test code: panics are the point).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod real;

use std::path::Path;
use std::time::Duration;

use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::gateway::{self, Gateway};
use airlock_tests::e2e::plugin::{plugin_config, PluginOptions, IDENTITY_HEADER};
use airlock_tests::e2e::template::Vars;
use airlock_tests::e2e::upstream::{RecordingUpstream, CASE_HEADER};
use serde_json::Value;

/// The built filter, or a failure that names the build command.
pub fn filter_module() -> std::path::PathBuf {
    gateway::filter_module().unwrap_or_else(|e| panic!("{e:#}"))
}

/// Agent id used by scenario `case` (each scenario its own agent, so approvals and
/// decision records never mix).
pub fn agent(case: &str) -> String {
    format!("spiffe://e2e/agent/{case}")
}

/// `req` as sent by scenario `case`'s agent: identity header + case tag.
pub fn as_agent(req: Request, case: &str) -> Request {
    req.header(IDENTITY_HEADER, &agent(case)).header(CASE_HEADER, case)
}

/// `req` tagged for scenario `case`, with no identity.
pub fn tagged(req: Request, case: &str) -> Request {
    req.header(CASE_HEADER, case)
}

/// Template values for a gateway wired to `upstream_port` and `approval_port`.
pub fn vars(wasm: &Path, opts: &PluginOptions, upstream_port: u16, approval_port: u16) -> Vars {
    let mut v = gateway::test_vars(wasm, &plugin_config(opts));
    v.insert("AIRLOCK_UPSTREAM_PORT".into(), upstream_port.to_string());
    v.insert("AIRLOCK_APPROVAL_PORT".into(), approval_port.to_string());
    v
}

/// Starts several gateways at once (each V8 compile takes seconds; they overlap).
pub fn start_gateways(specs: Vec<(&str, &str, Vars)>) -> Vec<Gateway> {
    Gateway::start_all(&specs).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Sends and unwraps with context.
pub fn send(gw: &Gateway, req: &Request) -> Response {
    gw.send(req).unwrap_or_else(|e| panic!("request to the gateway failed: {e:#}"))
}

/// Checks a problem+json answer (RFC 9457) of `urn:airlock:problem:<kind>`; returns it.
pub fn expect_problem(resp: &Response, status: u16, kind: &str) -> Value {
    let body = resp.text();
    assert_eq!(resp.status, status, "want {status} {kind}, got {} with {body}", resp.status);
    let ct = resp.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/problem+json"),
        "want application/problem+json, got content-type {ct:?}: {body}"
    );
    let doc = resp.json().unwrap();
    assert_eq!(doc["type"].as_str(), Some(format!("urn:airlock:problem:{kind}").as_str()), "problem type in {doc}");
    assert_eq!(doc["status"].as_u64(), Some(u64::from(status)), "problem status in {doc}");
    assert!(doc["title"].is_string(), "problem title in {doc}");
    doc
}

/// Checks nothing tagged `case` reached the upstream — not even a request head whose
/// body never followed.
pub fn expect_nothing_reached(upstream: &RecordingUpstream, case: &str) {
    let got = upstream.heads_for(case);
    assert!(got.is_empty(), "nothing of {case} may reach the upstream, but these request heads did: {got:#?}");
}

/// An outcome that is a refusal: an error (connection closed) or a non-2xx status.
pub fn expect_refused(outcome: &anyhow::Result<Response>, what: &str) {
    if let Ok(resp) = outcome {
        assert!(!resp.is_success(), "{what}: must be refused, got {} {}", resp.status, resp.text());
    }
}

/// Bounded wait for a condition.
pub fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {timeout:?}");
}
