#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The demo policy shipped in `policies/demo` compiles and decides as documented.

use airlock_filter::config::PolicyConfig;
use airlock_filter::decision::{from_policy_output, Effect};
use airlock_filter::policy::Policy;
use regorus::Value;
use std::collections::BTreeMap;

fn demo() -> Policy {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/demo");
    let mut modules = BTreeMap::new();
    modules.insert("airlock.rego".to_string(), std::fs::read_to_string(dir.join("airlock.rego")).unwrap());
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data.json")).unwrap()).unwrap();
    Policy::compile(&PolicyConfig {
        modules,
        data: Some(data),
        bundle: None,
        entrypoint: "data.airlock.decision".into(),
        revision: "demo".into(),
        mode: Default::default(),
        max_instructions: 100_000,
        rule_index: true,
    })
    .unwrap()
}

fn decide(p: &mut Policy, input: serde_json::Value) -> (Effect, String) {
    let d = from_policy_output(p.evaluate(Value::from(input)));
    (d.effect, d.rule.unwrap_or_default())
}

fn req(method: &str, host: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let mut r = serde_json::json!({"request": {"method": method, "host": host, "path": path, "headers": {}, "query": {}},
                                   "agent": {"id": "bot", "source": "header"}});
    if !body.is_null() {
        r["request"]["body"] = body.clone();
        if body["jsonrpc"] == "2.0" {
            r["request"]["jsonrpc"] = serde_json::json!({"method": body["method"], "tool": body["params"]["name"]});
        }
    }
    r
}

#[test]
fn demo_policy_decides_as_documented() {
    let mut p = demo();
    let null = serde_json::Value::Null;
    let cases = [
        (req("GET", "api.example.com", "/v1/reports", null.clone()), Effect::Allow, "read-only"),
        (req("GET", "evil.example.net", "/", null.clone()), Effect::Deny, "unknown-host"),
        (req("DELETE", "api.example.com", "/v1/users/1", null.clone()), Effect::Deny, "no-deletes"),
        (
            req("POST", "api.example.com", "/v1/exports", serde_json::json!({"table": "users"})),
            Effect::Approve,
            "data-export",
        ),
        (req("POST", "api.example.com", "/v1/things", null.clone()), Effect::Deny, "default-deny"),
        (
            req(
                "POST",
                "mcp.example.com",
                "/mcp",
                serde_json::json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "k8s.scale"}}),
            ),
            Effect::Approve,
            "mcp-dangerous-tool",
        ),
        (
            req(
                "POST",
                "mcp.example.com",
                "/mcp",
                serde_json::json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "docs.read"}}),
            ),
            Effect::Allow,
            "mcp-safe-tool",
        ),
    ];
    for (input, effect, rule) in cases {
        assert_eq!(decide(&mut p, input.clone()), (effect, rule.to_string()), "{input}");
    }
}
