//! The Airlock demo: real Envoy with the filter and the demo policy in front of a
//! sample upstream, an approval service, and a scripted agent whose calls are allowed,
//! denied, and held for a human.
//!
//! Run with `bash scripts/demo.sh` (which installs Envoy and builds the filter first).
//! `--stay` keeps everything running afterwards so you can send your own requests.
//!
//! The approval service is the REAL one (`airlock serve`, built by
//! `cargo build -p airlock-approval-svc`), started with the same helper the end-to-end
//! tests use (`tests/src/e2e/service.rs`), its SQLite database and audit trail in
//! `target/airlock-demo/`. The reviewer approves with the `airlock` CLI: the demo prints
//! the command line and runs it, then verifies the audit trail with `airlock audit verify`.

use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::gateway::{filter_module, test_vars, Gateway};
use airlock_tests::e2e::plugin::{plugin_config, PluginOptions, IDENTITY_HEADER};
use airlock_tests::e2e::service::{self, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::e2e::upstream::RecordingUpstream;
use anyhow::Context;
use serde_json::json;
use std::time::{Duration, Instant};

const AGENT: &str = "spiffe://corp/agent/report-bot";
const REVIEWER: &str = "bob@corp.example";

struct Timeline {
    start: Instant,
}

impl Timeline {
    fn say(&self, who: &str, what: &str) {
        let t = self.start.elapsed().as_secs_f64();
        println!("[{t:6.2}s] {who:<9} {what}");
    }

    fn answer(&self, r: &Response) {
        let detail = match r.json() {
            Ok(v) if v.get("type").is_some() => format!(
                "{} {} — {}{}",
                r.status,
                v["type"].as_str().unwrap_or(""),
                v["detail"].as_str().unwrap_or(""),
                v["approval_id"].as_str().map(|a| format!(" [approval {a}]")).unwrap_or_default(),
            ),
            _ => format!("{} from the upstream: {}", r.status, r.text().chars().take(100).collect::<String>()),
        };
        self.say("gateway", &detail);
    }
}

fn demo_plugin() -> anyhow::Result<serde_json::Value> {
    let root = airlock_tests::wasm::workspace_root().join("policies/demo");
    let rego = std::fs::read_to_string(root.join("airlock.rego")).context("reading policies/demo/airlock.rego")?;
    let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("data.json"))?)?;
    let mut cfg = plugin_config(&PluginOptions { policy: rego, ..PluginOptions::default() });
    cfg["policy"]["data"] = data;
    cfg["policy"]["revision"] = json!("demo-1");
    cfg["identity"]["agents"] = json!({AGENT: {"owner": "alice@corp.example", "acts_for": []}});
    cfg["decision_log"]["flush_ms"] = json!(500);
    Ok(cfg)
}

fn agent_call(method: &str, host: &str, path: &str, body: Option<serde_json::Value>) -> Request {
    let r = match body {
        Some(b) => {
            Request::new(method, path).header("content-type", "application/json").body(b.to_string().into_bytes())
        }
        None => Request::new(method, path),
    };
    r.header("host", host).header(IDENTITY_HEADER, AGENT).header("authorization", "Bearer agent-own-token")
}

fn main() -> anyhow::Result<()> {
    let stay = std::env::args().any(|a| a == "--stay");
    let tl = Timeline { start: Instant::now() };
    println!("Airlock demo — agent calls through Envoy, decided by Rego in the gateway\n");

    let upstream = RecordingUpstream::http("sample-upstream")?;
    let state = airlock_tests::wasm::workspace_root().join("target").join("airlock-demo");
    let mut service = AirlockService::start(
        "demo",
        &ServiceOptions {
            reviewers: vec![
                Reviewer::new(REVIEWER, &["data-owners"]),
                Reviewer::new("alice@corp.example", &["data-owners"]),
            ],
            credentials: vec!["export-api".into()],
            state_dir: Some(state),
            ..ServiceOptions::default()
        },
    )?;
    let reviewer_key = service.reviewer(REVIEWER)?.api_key.clone();
    let wasm = filter_module()?;
    let mut vars = test_vars(&wasm, &demo_plugin()?);
    vars.insert("AIRLOCK_UPSTREAM_PORT".into(), upstream.port().to_string());
    vars.insert("AIRLOCK_APPROVAL_PORT".into(), service.port().to_string());
    let started = Instant::now();
    let gw = Gateway::start("demo", "demo.yaml", &vars)?;
    tl.say(
        "setup",
        &format!(
            "Envoy ready in {:.1}s: agents → http://{}  (admin http://{}), policy policies/demo",
            started.elapsed().as_secs_f64(),
            gw.addr,
            gw.envoy.admin()
        ),
    );
    tl.say(
        "setup",
        &format!(
            "sample upstream on 127.0.0.1:{}, approval service `airlock serve` on {} (database {})",
            upstream.port(),
            service.url(),
            service.database().display()
        ),
    );
    println!();

    tl.say("agent", "GET https://api.example.com/v1/reports  (read-only)");
    tl.answer(&gw.send(&agent_call("GET", "api.example.com", "/v1/reports", None))?);

    tl.say("agent", "DELETE https://api.example.com/v1/users/42");
    tl.answer(&gw.send(&agent_call("DELETE", "api.example.com", "/v1/users/42", None))?);

    tl.say("agent", "GET https://pastebin.example.net/upload  (host not on the allow-list)");
    tl.answer(&gw.send(&agent_call("GET", "pastebin.example.net", "/upload", None))?);

    tl.say("agent", "GET https://api.example.com/v1/reports%2F..%2Fadmin  (encoded-slash path trick)");
    tl.answer(&gw.send(&agent_call("GET", "api.example.com", "/v1/reports%2F..%2Fadmin", None))?);

    let export = json!({"table": "customers", "format": "csv",
                        "destination": {"bucket": "s3://partner-drop", "credentials": "AKIA-SECRET"}});
    tl.say("agent", "POST https://api.example.com/v1/exports  (bulk export to a partner bucket)");
    let first = gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(export.clone())))?;
    tl.answer(&first);
    let approval_id = first.json()?["approval_id"].as_str().unwrap_or_default().to_string();
    match service.show(&approval_id, &reviewer_key) {
        Ok(a) => {
            let field = |k: &str| {
                a.get(k).or_else(|| a.get("request").and_then(|r| r.get(k))).cloned().unwrap_or(serde_json::Value::Null)
            };
            let text = |v: serde_json::Value| match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => "?".into(),
                other => other.to_string(),
            };
            let agent = match field("agent") {
                serde_json::Value::Object(o) => o.get("id").cloned().unwrap_or_default(),
                other => other,
            };
            tl.say(
                "reviewer",
                &format!(
                    "sees: {} {}{} by {} (owner {}), risk {}, reason \"{}\", body {}",
                    text(field("method")),
                    text(field("host")),
                    text(field("path")),
                    text(agent),
                    text(field("owner")),
                    text(field("risk")),
                    text(field("reason")),
                    field("body")
                ),
            );
        }
        Err(e) => tl.say("reviewer", &format!("could not show {approval_id}: {e:#}")),
    }

    tl.say("agent", "retries the identical request before anyone decided");
    tl.answer(&gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(export.clone())))?);
    let pending = service.list(Some("pending"), &reviewer_key)?.len();
    tl.say("service", &format!("{pending} pending approval on record (an identical retry finds the same one)"));

    let key_file = service.state_dir().join("bob.api-key");
    std::fs::write(&key_file, &reviewer_key)?;
    tl.say("reviewer", &format!("approves {approval_id} with the CLI (or in Teams, Slack, the API):"));
    println!(
        "           $ AIRLOCK_URL={} AIRLOCK_API_KEY=\"$(cat {})\" \\\n               {} approvals approve {approval_id} --comment \"partner drop agreed\"",
        service.url(),
        key_file.display(),
        service.binary().display()
    );
    let out = service
        .cli(&["approvals", "approve", &approval_id, "--comment", "partner drop agreed"], Some(&reviewer_key))?;
    match serde_json::from_str::<serde_json::Value>(&out.stdout) {
        Ok(v) => println!(
            "           | exit {}: approval {} is now {} (reviews: {})",
            out.code.map_or_else(|| "killed".to_string(), |c| c.to_string()),
            service::approval_id_of(&v).unwrap_or("?"),
            service::status_of(&v).unwrap_or("?"),
            v["reviews"]
        ),
        Err(_) => {
            for line in out.text().lines() {
                println!("           | {line}");
            }
        }
    }
    if !out.success() {
        anyhow::bail!("the reviewer's CLI approve failed: {out}");
    }

    tl.say("agent", "retries with a different body (a bigger export) on the same approval");
    let mut bigger = export.clone();
    bigger["table"] = json!("customers_full_history");
    tl.answer(&gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(bigger)))?);

    tl.say("agent", "retries the identical request");
    tl.answer(&gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(export.clone())))?);
    if let Some(last) = upstream.requests().last() {
        tl.say(
            "upstream",
            &format!(
                "received {} {} with authorization `{}` (the agent's own token was stripped)",
                last.method,
                last.path,
                last.header("authorization").unwrap_or("none")
            ),
        );
    }

    tl.say("agent", "replays the same request once more");
    tl.answer(&gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(export)))?);

    std::thread::sleep(Duration::from_millis(1200));
    let records = service.audit_export()?;
    let decisions: Vec<&serde_json::Value> =
        records.iter().filter(|r| service::kind_of(r) == Some("decision")).collect();
    tl.say(
        "service",
        &format!("{} allow/deny decisions shipped in batches by the gateway, in the audit trail:", decisions.len()),
    );
    for r in &decisions {
        let e = r.get("event").unwrap_or(r);
        let e = e.get("record").unwrap_or(e);
        println!(
            "           {:<6} {:<14} {} {}{}",
            e["enforced"].as_str().or(e["effect"].as_str()).unwrap_or(""),
            e["rule"].as_str().unwrap_or(""),
            e["method"].as_str().unwrap_or(""),
            e["host"].as_str().unwrap_or(""),
            e["path"].as_str().unwrap_or("")
        );
    }
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for r in &records {
        if let Some(k) = service::kind_of(r) {
            *kinds.entry(k.to_string()).or_default() += 1;
        }
    }
    tl.say("service", &format!("audit records by kind: {kinds:?}"));
    let stats = gw.envoy.stats("wasmcustom")?;
    println!();
    tl.say("gateway", "Envoy stats:");
    for (k, v) in stats.iter().filter(|(_, v)| **v > 0) {
        println!("           {k} = {v}");
    }
    println!("\nEnvoy log: {}", gw.envoy.log_path().display());
    println!("Upstream saw {} request(s); nothing denied or pending ever reached it.", upstream.requests().len());

    if !stay {
        // A clean shutdown seals the chain head with a final checkpoint.
        service.stop()?;
    }
    let evidence = service.state_dir().join("evidence");
    let _ = std::fs::remove_dir_all(&evidence);
    let db = service.database().display().to_string();
    let ev = evidence.display().to_string();
    let export = service.cli(&["audit", "export", "--database", &db, "--out", &ev], None)?;
    println!("\nAudit trail: {db}");
    println!("Evidence bundle: {ev}/ ({})", if export.success() { "written" } else { "export failed" });
    println!("$ AIRLOCK_AUDIT_KEY=... {} audit verify --database {db}", service.binary().display());
    let verify = service.audit_verify()?;
    for line in verify.text().lines() {
        println!("  | {line}");
    }
    if !verify.success() {
        anyhow::bail!("audit verify failed: {verify}");
    }
    println!("Service logs: {} and {}", service.log_paths().0.display(), service.log_paths().1.display());

    if stay {
        println!("\nStill running (Ctrl-C to stop). Try:\n  curl -s -H 'host: api.example.com' -H '{IDENTITY_HEADER}: {AGENT}' http://{}/v1/reports", gw.addr);
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    Ok(())
}
