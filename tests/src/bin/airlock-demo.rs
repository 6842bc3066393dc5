//! The Airlock demo: real Envoy with the filter and the demo policy in front of a
//! sample upstream, an approval service, and a scripted agent whose calls are allowed,
//! denied, and held for a human.
//!
//! Run with `bash scripts/demo.sh` (which installs Envoy and builds the filter first).
//! `--stay` keeps everything running afterwards so you can send your own requests.
//!
//! The approval service here is the protocol-faithful fake from the test suite
//! (`tests/src/e2e/fake_service.rs`): the real service is the next milestone. The
//! reviewer's click is therefore played by the script.

use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::fake_service::FakeService;
use airlock_tests::e2e::gateway::{filter_module, test_vars, Gateway};
use airlock_tests::e2e::plugin::{plugin_config, service_keys, PluginOptions, IDENTITY_HEADER};
use airlock_tests::e2e::upstream::RecordingUpstream;
use anyhow::Context;
use serde_json::json;
use std::time::{Duration, Instant};

const AGENT: &str = "spiffe://corp/agent/report-bot";

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
        Some(b) => Request::new(method, path).header("content-type", "application/json").body(b.to_string().into_bytes()),
        None => Request::new(method, path),
    };
    r.header("host", host).header(IDENTITY_HEADER, AGENT).header("authorization", "Bearer agent-own-token")
}

fn main() -> anyhow::Result<()> {
    let stay = std::env::args().any(|a| a == "--stay");
    let tl = Timeline { start: Instant::now() };
    println!("Airlock demo — agent calls through Envoy, decided by Rego in the gateway\n");

    let upstream = RecordingUpstream::http("sample-upstream")?;
    let service = FakeService::start(service_keys()?)?;
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
    tl.say("setup", &format!("sample upstream on 127.0.0.1:{}, approval service on 127.0.0.1:{}", upstream.port(), service.port()));
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
    if let Some(a) = service.approval(&approval_id) {
        let req = &a.create_request["request"];
        tl.say(
            "reviewer",
            &format!(
                "sees: {} {}{} by {} (owner {}), risk {}, body {}",
                req["method"].as_str().unwrap_or(""),
                req["host"].as_str().unwrap_or(""),
                req["path"].as_str().unwrap_or(""),
                a.agent,
                a.create_request["agent"]["owner"].as_str().unwrap_or("?"),
                a.create_request["policy"]["risk"].as_str().unwrap_or("?"),
                req["body"]
            ),
        );
    }

    tl.say("agent", "retries the identical request before anyone decided");
    tl.answer(&gw.send(&agent_call("POST", "api.example.com", "/v1/exports", Some(export.clone())))?);
    let created = service.approvals().len();
    tl.say("service", &format!("{created} approval on record (an identical retry finds the same one)"));

    tl.say("reviewer", &format!("approves {approval_id}  (later: in Teams, Slack or `airlock approve {approval_id}`)"));
    service.approve(&approval_id)?;

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
    let records = service.decision_records();
    tl.say("service", &format!("{} allow/deny decisions shipped in batches by the gateway:", records.len()));
    for r in &records {
        println!(
            "           {:<6} {:<14} {} {}{}",
            r["enforced"].as_str().unwrap_or(""),
            r["rule"].as_str().unwrap_or(""),
            r["method"].as_str().unwrap_or(""),
            r["host"].as_str().unwrap_or(""),
            r["path"].as_str().unwrap_or("")
        );
    }
    let stats = gw.envoy.stats("wasmcustom")?;
    println!();
    tl.say("gateway", "Envoy stats:");
    for (k, v) in stats.iter().filter(|(_, v)| **v > 0) {
        println!("           {k} = {v}");
    }
    println!("\nEnvoy log: {}", gw.envoy.log_path().display());
    println!("Upstream saw {} request(s); nothing denied or pending ever reached it.", upstream.requests().len());

    if stay {
        println!("\nStill running (Ctrl-C to stop). Try:\n  curl -s -H 'host: api.example.com' -H '{IDENTITY_HEADER}: {AGENT}' http://{}/v1/reports", gw.addr);
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    Ok(())
}
