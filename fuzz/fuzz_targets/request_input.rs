//! A request through the filter's native core, as the host hands it over: the header
//! map (serialized as proxy-wasm does), identity, the action (method, target, headers),
//! the body read as JSON / JSON-RPC (single calls and batches), the policy input, a real
//! policy evaluation and the resulting step.
//!
//! Input: `name: value` header lines, `\n--\n`, the body.
#![no_main]
use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};

use airlock_filter::body::{self, read_json, RpcCall};
use airlock_filter::config::Config;
use airlock_filter::flow::{Flow, Step};
use airlock_filter::metrics::MemoryMetrics;
use airlock_filter::source::Headers;
use airlock_filter::worker::Worker;
use airlock_fuzz::{header_lines, parts, serialize_map, Request, KEY_B64};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Allows exactly two things: a GET under /public/, and MCP `tools/call` of `search`
/// POSTed to /mcp (alone or as every call of a batch). Exports need approval.
const POLICY: &str = r#"package airlock
default decision := {"effect": "deny", "reason": "no rule matched", "rule": "default"}
decision := {"effect": "allow", "rule": "reads"} if {
    input.request.method == "GET"
    startswith(input.request.path, "/public/")
}
decision := {"effect": "allow", "rule": "search"} if {
    input.request.method == "POST"
    input.request.path == "/mcp"
    input.request.jsonrpc.method == "tools/call"
    input.request.jsonrpc.tool == "search"
}
decision := {"effect": "approve", "rule": "exports", "reason": "export"} if {
    input.request.method == "POST"
    input.request.path == "/v1/exports"
}
"#;

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(worker());
}

fn worker() -> Worker {
    let cfg = serde_json::json!({
        "policy": {"modules": {"p.rego": POLICY}},
        "identity": {"source": "header", "header": "x-airlock-agent", "agents": {"bot": {"owner": "alice"}}},
        "approval_service": {"cluster": "svc", "signing": {"key_id": "k1", "key_base64": KEY_B64}},
        "request": {"max_body_bytes": 4096, "significant_headers": ["content-type"]},
        "decision_cache": {"max_entries": 0}
    });
    let config = Config::parse(cfg.to_string().as_bytes()).unwrap();
    Worker::new(config, Box::new(MemoryMetrics::default()), Box::new(|_| {})).unwrap()
}

/// A call the policy allows: JSON-RPC 2.0 `tools/call` of `search`.
fn is_search(v: &Value) -> bool {
    v["jsonrpc"] == "2.0" && v["method"] == "tools/call" && v["params"]["name"] == "search"
}

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 2);
    let (head, body) = (p[0], p[1]);
    let lines = header_lines(head);

    // The host's serialized map reads back header by header, in order.
    let headers = Headers::from_serialized(&serialize_map(&lines)).unwrap();
    assert_eq!(headers.len(), lines.len());
    for ((n, v), (hn, hv)) in lines.iter().zip(headers.iter()) {
        assert_eq!((String::from_utf8_lossy(n).as_ref(), String::from_utf8_lossy(v).as_ref()), (hn, hv));
    }
    let _ = Headers::from_serialized(head);

    // The strict JSON reader: its canonical form is a fixed point, and a body it accepts
    // is one the policy engine represents.
    if let Ok(text) = std::str::from_utf8(body) {
        if let Ok(tree) = body::parse(text) {
            let mut canon = String::new();
            body::canonical(&tree, &mut canon);
            let again = body::parse(&canon).expect("canonical text parses");
            assert_eq!(again, tree);
            if let Some(call) = RpcCall::of(&tree) {
                assert_eq!(RpcCall::of(&again).as_ref(), Some(&call));
            }
        }
    }
    let json = read_json(body).ok();
    if let Some(j) = &json {
        if let Some(Ok(calls)) = &j.batch {
            assert!(!calls.is_empty() && j.call.is_none());
        }
    }

    let req = Request { headers, properties: Vec::new() };
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let step = WORKER.with(|w| {
        let mut w = w.borrow_mut();
        let mut flow = Flow::new();
        let mut step = flow.on_headers(&mut w, &req, body.is_empty(), now);
        if step == Step::NeedBody {
            let bytes = body.to_vec();
            step = flow.on_body(&mut w, body.len(), true, move || Some(bytes), now);
        }
        // The decision record the filter ships is one the approval service accepts.
        while let Some(batch) = w.log.next_batch() {
            if let Err(e) = airlock_approval_svc::api::fuzzing::gateway::decisions(&batch) {
                panic!("the service refuses the filter's batch: {e}\n{}", String::from_utf8_lossy(&batch));
            }
            w.log.delivered();
        }
        step
    });

    // Whatever goes upstream is what the policy allowed, judged on what the upstream sees.
    if matches!(step, Step::Continue | Step::ContinueWith(_)) {
        let h = &req.headers;
        let method = h.get(":method").unwrap();
        let path = h.get(":path").unwrap();
        assert!(h.get("x-airlock-agent").is_some());
        for o in ["x-http-method-override", "x-http-method", "x-method-override"] {
            assert!(h.get(o).is_none(), "{o} went upstream");
        }
        match (method.as_ref(), path.as_ref()) {
            ("GET", p) => assert!(p.starts_with("/public/"), "{p:?}"),
            ("POST", "/mcp") => {
                let v: Value = serde_json::from_slice(body).expect("an allowed MCP body is JSON");
                match &v {
                    Value::Array(calls) => assert!(!calls.is_empty() && calls.iter().all(is_search), "{v}"),
                    one => assert!(is_search(one), "{v}"),
                }
            }
            other => panic!("allowed {other:?}"),
        }
    }
});
