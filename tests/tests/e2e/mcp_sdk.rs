//! The official MCP SDKs, unchanged, through real Envoy with the shipped filter, the
//! example policy library (`policies/library`, built and signed as a bundle) and the real
//! approval service (issue 17 item 5).
//!
//! The upstream is a FastMCP server (`tests/mcp/server.py`, Python SDK) whose tools are
//! named in `policies/library/mcp/data.json` — `docs.read` (allow), `k8s.scale` (approve,
//! one of `sre`), `shell.exec` (deny) — and which counts every execution. The clients are
//! `tests/mcp/client.py` (PyPI `mcp` 1.x, `streamablehttp_client`) and
//! `tests/mcp/client.mjs` (npm `@modelcontextprotocol/sdk`); each keeps ONE session while
//! this file drives it: initialize, tools/list, the allowed tool runs, the denied and the
//! unknown tool come back as tool results with `isError` and text the model can act on,
//! a refused non-tool request as a JSON-RPC error, the approval-required tool as a
//! pending result naming the approval, who must approve and when to retry; a reviewer
//! approves with the CLI; the same session retries (the SDK gives it a new JSON-RPC id)
//! and the tool runs exactly once; a further retry asks again (reuse `once`), a reviewer
//! denies it with a comment, and the identical retries that follow are told so (the
//! comment, the policy's reason, until when) without a new approval; the session still
//! works. The SDKs' own `GET` event stream and `DELETE`
//! are decided `mcp-transport`, never `default-deny`. Hold mode: a second gateway holds
//! the call until a reviewer approves and the client simply gets the tool's result.
//!
//! Needs `bash scripts/setup.sh` (Envoy and, through `scripts/setup-mcp.sh`, both SDKs),
//! `bash scripts/build-wasm.sh` and `cargo build -p airlock-approval-svc`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use airlock_bundle::{sign, Limits};
use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::gateway::Gateway;
use airlock_tests::e2e::mcp::{McpClient, McpServer, Sdk};
use airlock_tests::e2e::plugin::{plugin_config, PluginOptions};
use airlock_tests::e2e::service::{self, AirlockService};
use e2e_support::real::*;
use e2e_support::*;
use serde_json::{json, Value};

/// The MCP endpoint of `policies/library/mcp/data.json`.
const MCP_HOST: &str = "mcp.example.com";
const MCP_PATH: &str = "/mcp";
/// `approval_service.hold_ms` of the holding gateway.
const HOLD_MS: u64 = 12_000;
const BUNDLE_KEY_ID: &str = "e2e-mcp-library";
const BUNDLE_KEY: &[u8; 32] = b"airlock-e2e-mcp-library-key-32b!";

struct Fixture {
    server: McpServer,
    svc: Mutex<AirlockService>,
    /// `hold_ms: 0`: refusals are answered at once.
    gw: Gateway,
    /// `hold_ms: HOLD_MS`.
    held: Gateway,
}

impl Fixture {
    fn svc(&self) -> MutexGuard<'_, AirlockService> {
        self.svc.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[test]
fn mcp_sdk() {
    let started = Instant::now();
    let wasm = filter_module();
    // Prerequisites first, so a missing SDK fails with its install command at once.
    airlock_tests::e2e::mcp::python().unwrap_or_else(|e| panic!("{e:#}"));
    airlock_tests::e2e::mcp::node().unwrap_or_else(|e| panic!("{e:#}"));
    let server = McpServer::start().unwrap_or_else(|e| panic!("{e:#}"));
    let svc = start_service("mcp");
    let bundle = library_bundle();
    let mut gws = start_gateways(vec![
        ("mcp-sdk", "demo.yaml", real_vars(&wasm, &library_plugin(&bundle, 0), server.port(), svc.port())),
        ("mcp-sdk-held", "demo.yaml", real_vars(&wasm, &library_plugin(&bundle, HOLD_MS), server.port(), svc.port())),
    ]);
    eprintln!("[e2e_mcp_sdk] setup {:.1?}", started.elapsed());
    let held = gws.pop().unwrap();
    let gw = gws.pop().unwrap();
    let fx = Fixture { server, svc: Mutex::new(svc), gw, held };
    let all: &[Case<Fixture>] = &[
        ("python_one_session", |fx| one_session(fx, Sdk::Python)),
        ("typescript_one_session", |fx| one_session(fx, Sdk::TypeScript)),
        ("python_hold", |fx| held_session(fx, Sdk::Python)),
        ("typescript_hold", |fx| held_session(fx, Sdk::TypeScript)),
    ];
    let outcome = cases::run("e2e_mcp_sdk", &fx, all, |_| {});
    eprintln!("[e2e_mcp_sdk] total {:.1?}", started.elapsed());
    outcome.unwrap();
}

/// The example library as a gateway gets it: built from `policies/library` and signed.
fn library_bundle() -> String {
    use base64::Engine as _;
    let dir = airlock_tests::wasm::workspace_root().join("policies/library");
    let built = airlock_bundle::build_dir(&dir, Some("mcp-sdk-library")).unwrap();
    let signed = sign(&built, BUNDLE_KEY_ID, BUNDLE_KEY, &Limits::default()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(signed)
}

/// The real-service plugin configuration with the library bundle instead of a module.
fn library_plugin(bundle_base64: &str, hold_ms: u64) -> Value {
    use base64::Engine as _;
    let mut cfg = plugin_config(&PluginOptions { hold_ms, timeout_ms: 3000, ..PluginOptions::default() });
    cfg["policy"] = json!({
        "bundle": {"base64": bundle_base64},
        "bundle_keys": [{"key_id": BUNDLE_KEY_ID,
                         "key_base64": base64::engine::general_purpose::STANDARD.encode(BUNDLE_KEY)}],
        "mode": "enforce",
    });
    cfg
}

fn url(gw: &Gateway) -> String {
    format!("http://{}{MCP_PATH}", gw.addr)
}

fn start_client(sdk: Sdk, gw: &Gateway, agent_id: &str) -> McpClient {
    McpClient::start(sdk, &url(gw), MCP_HOST, agent_id).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A step's answer line, checked: it succeeded and the session is the one initialized.
fn ok(client: &McpClient, what: &str, line: anyhow::Result<Value>) -> Value {
    let line = line.unwrap_or_else(|e| panic!("{} {what}: {e:#}", client.sdk().name()));
    assert_eq!(line["ok"], true, "{} {what}: the SDK raised: {line}", client.sdk().name());
    assert_eq!(
        line["session_id"].as_str(),
        client.session_id(),
        "{} {what}: the session survives (same Mcp-Session-Id): {line}",
        client.sdk().name()
    );
    line
}

/// Sends `cmd` and checks its answer ([`ok`]).
fn step(c: &mut McpClient, what: &str, cmd: &Value) -> Value {
    let line = c.ask(cmd);
    ok(c, what, line)
}

/// `tools/call` of `name` with `arguments`, checked ([`ok`]).
fn call(c: &mut McpClient, what: &str, name: &str, arguments: &Value) -> Value {
    let line = c.call(name, arguments);
    ok(c, what, line)
}

/// A tool result that is a refusal: `isError`, the problem in `_meta`; returns (text, problem).
fn refusal(line: &Value, kind: &str, what: &str) -> (String, Value) {
    let result = &line["result"];
    assert_eq!(result["isError"], true, "{what}: a tool result with isError: {line}");
    let text = result["text"].as_str().unwrap_or_else(|| panic!("{what}: text content in {line}")).to_string();
    let problem = result["meta"]["airlock/problem"].clone();
    assert_eq!(
        problem["type"].as_str(),
        Some(format!("urn:airlock:problem:{kind}").as_str()),
        "{what}: the problem in _meta[\"airlock/problem\"]: {line}"
    );
    assert!(result["structured"].is_null(), "{what}: no structuredContent (it would fail the tool's schema): {line}");
    eprintln!("[e2e_mcp_sdk] {what}: the model reads: {text}");
    (text, problem)
}

fn contains_all(text: &str, parts: &[&str], what: &str) {
    for p in parts {
        assert!(text.contains(p), "{what}: the model-facing text says {p:?}; it is: {text}");
    }
}

fn one_session(fx: &Fixture, sdk: Sdk) {
    let agent_id = agent(&format!("mcp-{}", sdk.name()));
    let s = sdk.name();
    let mut c = start_client(sdk, &fx.gw, &agent_id);
    assert_eq!(c.initialized["server"], "airlock-e2e-tools", "initialize passed: {}", c.initialized);
    assert!(c.session_id().is_some_and(|id| !id.is_empty()), "a session id: {}", c.initialized);

    // tools/list (mcp-protocol).
    let line = step(&mut c, "tools/list", &json!({"op": "list_tools"}));
    assert_eq!(line["tools"], json!(["docs.read", "k8s.scale", "shell.exec"]), "{line}");

    // The allowed tool runs.
    let read = json!({"path": format!("runbook-{s}.md")});
    let line = call(&mut c, "docs.read", "docs.read", &read);
    assert_eq!(line["result"]["isError"], false, "{line}");
    assert_eq!(line["result"]["text"], format!("contents of runbook-{s}.md"), "{line}");
    assert_eq!(fx.server.runs_of("docs.read", &read).unwrap(), 1);

    // The denied tool: refused, told why, told not to retry; nothing ran.
    let line = call(&mut c, "shell.exec", "shell.exec", &json!({"command": "rm -rf /"}));
    let (text, problem) = refusal(&line, "denied", &format!("{s} denied tool"));
    contains_all(
        &text,
        &[
            "The call to tool `shell.exec` was NOT performed: it was refused by policy.",
            "MCP tool shell.exec may not be called with these arguments",
            "Do not retry the same call; it will be refused again.",
        ],
        "denied tool",
    );
    assert_eq!(problem["rule"], "mcp-tool-denied", "{problem}");
    assert_eq!(fx.server.runs_of_tool("shell.exec").unwrap(), 0, "the denied tool never ran");

    // A tool not on the list.
    let line = call(&mut c, "unknown tool", "something.new", &json!({}));
    let (text, problem) = refusal(&line, "denied", &format!("{s} unknown tool"));
    contains_all(
        &text,
        &["The call to tool `something.new` was NOT performed", "MCP tool something.new is not on the tool list"],
        "unknown tool",
    );
    assert_eq!(problem["rule"], "mcp-unknown-tool", "{problem}");

    // A refused request that is not a tool call: a JSON-RPC error the SDK raises as such
    // (completion/complete is not among the library's protocol methods).
    let line = c.ask(&json!({"op": "complete"})).unwrap();
    assert_eq!(line["ok"], false, "completion/complete is refused: {line}");
    assert_eq!(line["error"]["code"], -32010, "the documented code for denied: {line}");
    contains_all(
        line["error"]["message"].as_str().unwrap_or(""),
        &["The `completion/complete` request was NOT performed: it was refused by policy."],
        "refused request",
    );
    assert_eq!(line["session_id"].as_str(), c.session_id(), "the session survives a JSON-RPC error: {line}");

    // The approval-required tool: pending, with everything the model needs to say.
    let scale = json!({"deployment": format!("web-{s}"), "replicas": 3});
    let line = call(&mut c, "k8s.scale", "k8s.scale", &scale);
    let (text, problem) = refusal(&line, "approval-pending", &format!("{s} approval-required tool"));
    let id = problem["approval_id"].as_str().unwrap_or_else(|| panic!("approval_id in {problem}")).to_string();
    assert!(id.starts_with("apr_"), "{problem}");
    // The service's polling hint (the filter's `retry_after_s` when it gives none).
    let retry_after = problem["retry_after"].as_u64().unwrap_or_else(|| panic!("retry_after in {problem}"));
    assert!((1..=60).contains(&retry_after), "{problem}");
    contains_all(
        &text,
        &[
            "The call to tool `k8s.scale` was NOT performed: it needs human approval first, and the approval is pending.",
            "It needs one approval from a member of: sre.",
            "Reason: MCP tool k8s.scale needs a human's approval.",
            &format!("approval id {id}"),
            &format!("Retry exactly the same call (same tool, same arguments) in about {retry_after} seconds"),
        ],
        "pending",
    );
    assert_eq!(problem["approvers"], json!({"groups": ["sre"], "quorum": 1}), "{problem}");

    // The SDK's retry (a new JSON-RPC id) before anyone decided finds the same approval.
    let line = call(&mut c, "k8s.scale retry", "k8s.scale", &scale);
    let (_, again) = refusal(&line, "approval-pending", &format!("{s} retry while pending"));
    assert_eq!(again["approval_id"].as_str(), Some(id.as_str()), "one approval per (agent, call): {again}");
    assert_eq!(fx.server.runs_of("k8s.scale", &scale).unwrap(), 0, "nothing ran while pending");

    // A reviewer in `sre` approves with the CLI.
    {
        let svc = fx.svc();
        let dave = key(&svc, DAVE);
        let shown = svc.show(&id, &dave).unwrap();
        assert!(shown.to_string().contains("k8s.scale") && shown.to_string().contains(&agent_id), "{shown}");
        let cli = svc.cli(&["approvals", "approve", &id, "--comment", "scale it"], Some(&dave)).unwrap();
        assert!(cli.success(), "CLI approve: {cli}");
    }

    // The same session retries the identical call: it runs, exactly once.
    let line = call(&mut c, "approved retry", "k8s.scale", &scale);
    assert_eq!(line["result"]["isError"], false, "the approved call runs: {line}");
    assert_eq!(line["result"]["text"], format!("scaled web-{s} to 3 replicas"), "{line}");
    assert_eq!(fx.server.runs_of("k8s.scale", &scale).unwrap(), 1, "ran exactly once");

    // Reuse `once`: a further retry asks again and does not run.
    let line = call(&mut c, "retry after use", "k8s.scale", &scale);
    let (_, next) = refusal(&line, "approval-pending", &format!("{s} retry after the approval was used"));
    let next_id = next["approval_id"].as_str().unwrap_or_default().to_string();
    assert!(next_id.starts_with("apr_") && next_id != id, "a new approval, not the spent one: {next}");
    assert_eq!(fx.server.runs_of("k8s.scale", &scale).unwrap(), 1, "the spent approval ran nothing more");

    // A reviewer denies that one. The SDK cannot name the approval, yet its identical
    // retry is told: approval-denied, with the reviewer's comment and the policy's reason,
    // for `approvals.denied_retry_window` — no new approval, no new reviewer notification
    // (docs/protocol.md). Nothing runs.
    {
        let svc = fx.svc();
        let cli = svc.cli(&["approvals", "deny", &next_id, "--comment", "not twice"], Some(&key(&svc, DAVE))).unwrap();
        assert!(cli.success(), "CLI deny: {cli}");
    }
    for n in 1..=2 {
        let line = call(&mut c, "retry after a denial", "k8s.scale", &scale);
        let (text, denied) = refusal(&line, "approval-denied", &format!("{s} retry {n} after a denial"));
        assert_eq!(
            denied["approval_id"].as_str(),
            Some(next_id.as_str()),
            "the denial answers, none is opened: {denied}"
        );
        assert_eq!(denied["reviewer_comment"], "not twice", "{denied}");
        assert_eq!(denied["reason"], "MCP tool k8s.scale needs a human's approval", "{denied}");
        let until = denied["denied_until"].as_str().unwrap_or_else(|| panic!("denied_until in {denied}"));
        contains_all(
            &text,
            &[
                "The call to tool `k8s.scale` was NOT performed: a human reviewer denied it. The reviewer's comment: \
                 \"not twice\".",
                "The policy asked for approval because: MCP tool k8s.scale needs a human's approval (approval id ",
                "). Tell the user it was denied. Do not retry it unless the user asks you to: until ",
                &format!("until {until} the same call gets this same answer, and after that a retry asks the reviewers again."),
            ],
            "retry after a denial",
        );
    }
    {
        let svc = fx.svc();
        let pending = svc.list(Some("pending"), &key(&svc, DAVE)).unwrap();
        assert!(
            !pending.iter().any(|a| a.to_string().contains(&agent_id)),
            "no approval was opened for the retries: {pending:#?}"
        );
    }
    assert_eq!(fx.server.runs_of("k8s.scale", &scale).unwrap(), 1);

    // The session survived every refusal.
    step(&mut c, "ping", &json!({"op": "ping"}));
    let line = call(&mut c, "docs.read again", "docs.read", &read);
    assert_eq!(line["result"]["isError"], false, "{line}");
    assert_eq!(fx.server.runs_of("docs.read", &read).unwrap(), 2);
    let closed = c.close().unwrap();
    assert_eq!(closed["ok"], true, "the session ended cleanly (DELETE passed): {closed}");

    // The transport the SDK drives itself: its GET stream and DELETE were allowed by the
    // library's mcp-transport rule; nothing of the session fell to default-deny except the
    // completion request above.
    let svc = fx.svc();
    let records = audit_until(&svc, "the session's GET and DELETE decisions", Duration::from_secs(15), |r| {
        let mine = decisions_of(r, &agent_id);
        ["GET", "DELETE"].iter().all(|m| mine.iter().any(|d| field(d, "method") == Some(*m)))
    });
    let mine = decisions_of(&records, &agent_id);
    for d in mine.iter().filter(|d| matches!(field(d, "method"), Some("GET" | "DELETE"))) {
        assert_eq!(field(d, "rule"), Some("mcp-transport"), "the transport passes: {d}");
        assert_eq!(field(d, "effect"), Some("allow"), "{d}");
    }
    let default_denies: Vec<_> = mine.iter().filter(|d| field(d, "rule") == Some("default-deny")).collect();
    assert!(default_denies.len() <= 1, "only completion/complete falls to default-deny: {default_denies:#?}");
}

fn held_session(fx: &Fixture, sdk: Sdk) {
    let s = sdk.name();
    let agent_id = agent(&format!("mcp-{s}-held"));
    let mut c = start_client(sdk, &fx.held, &agent_id);
    let scale = json!({"deployment": format!("held-{s}"), "replicas": 2});
    let sent = Instant::now();
    c.send(&json!({"op": "call", "name": "k8s.scale", "arguments": scale})).unwrap();
    // The call waits at the gateway; a reviewer finds it and approves.
    let svc = fx.svc();
    let id = pending_approval(&svc, &agent_id, "k8s.scale");
    assert_eq!(fx.server.runs_of("k8s.scale", &scale).unwrap(), 0, "nothing ran while held");
    approve_ok(&svc, &id, DAVE);
    drop(svc);
    let line = c.answer();
    let line = ok(&c, "held call", line);
    let took = sent.elapsed();
    assert_eq!(line["result"]["isError"], false, "the held call ran once approved: {line}");
    assert_eq!(line["result"]["text"], format!("scaled held-{s} to 2 replicas"), "{line}");
    assert!(took < Duration::from_millis(HOLD_MS), "answered before the hold ran out: {took:?}");
    assert_eq!(fx.server.runs_of("k8s.scale", &scale).unwrap(), 1, "ran exactly once");
    eprintln!("[e2e_mcp_sdk] {s} hold: the tool result came {took:.1?} after the call");

    // Another call, which the reviewer denies while it is held: the model is told.
    let other = json!({"deployment": format!("held-{s}"), "replicas": 50});
    c.send(&json!({"op": "call", "name": "k8s.scale", "arguments": other})).unwrap();
    let svc = fx.svc();
    let deny_id = pending_approval(&svc, &agent_id, "k8s.scale");
    let resp = svc.deny(&deny_id, &key(&svc, DAVE)).unwrap();
    assert_eq!(resp.status, 200, "deny {deny_id}: {}", resp.text());
    drop(svc);
    let line = c.answer();
    let line = ok(&c, "held call denied", line);
    let (text, problem) = refusal(&line, "approval-denied", &format!("{s} denied by a reviewer while held"));
    contains_all(
        &text,
        &[
            "The call to tool `k8s.scale` was NOT performed: a human reviewer denied it. The reviewer's comment: \
             \"denied by the e2e suite\".",
            "The policy asked for approval because: MCP tool k8s.scale needs a human's approval (approval id ",
            "Do not retry it unless the user asks you to: until ",
        ],
        "approval denied",
    );
    assert!(!text.contains("denied it. denied"), "the service's words are not spliced in: {text}");
    assert_eq!(problem["approval_id"].as_str(), Some(deny_id.as_str()), "{problem}");
    // An identical retry is answered at once with the same denial, not held again.
    let sent = Instant::now();
    c.send(&json!({"op": "call", "name": "k8s.scale", "arguments": other})).unwrap();
    let line = c.answer();
    let line = ok(&c, "held call retried after its denial", line);
    let (_, again) = refusal(&line, "approval-denied", &format!("{s} held retry after a denial"));
    assert_eq!(again["approval_id"].as_str(), Some(deny_id.as_str()), "{again}");
    assert!(sent.elapsed() < Duration::from_millis(HOLD_MS / 2), "not held: {:?}", sent.elapsed());
    assert_eq!(fx.server.runs_of("k8s.scale", &other).unwrap(), 0, "the denied call never ran");
    let closed = c.close().unwrap();
    assert_eq!(closed["ok"], true, "{closed}");
}

/// The id of the pending approval of `agent_id` whose document mentions `needle`
/// (polled, bounded: a held call opens it a moment after it is sent).
fn pending_approval(svc: &AirlockService, agent_id: &str, needle: &str) -> String {
    let dave = key(svc, DAVE);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = svc.list(Some("pending"), &dave).unwrap();
        let found = list
            .iter()
            .find(|a| a.to_string().contains(agent_id) && a.to_string().contains(needle))
            .and_then(|a| service::approval_id_of(a).map(str::to_string));
        if let Some(id) = found {
            return id;
        }
        assert!(Instant::now() < deadline, "no pending approval of {agent_id} mentioning {needle}: {list:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The decision records (the filter's decision log, as the service audited it) of `agent`.
fn decisions_of<'a>(records: &'a [Value], agent_id: &str) -> Vec<&'a Value> {
    service::records_mentioning(records, "decision", agent_id)
}

/// The first string value of `key` anywhere in `doc` (a record nests the filter's fields).
fn field<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    match doc {
        Value::Object(map) => map.get(key).and_then(Value::as_str).or_else(|| map.values().find_map(|v| field(v, key))),
        Value::Array(items) => items.iter().find_map(|v| field(v, key)),
        _ => None,
    }
}
