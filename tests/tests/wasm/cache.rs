//! The decision cache through the real filter module: a repeated allow is served
//! without evaluating, but never across a policy swap, never for a request that differs
//! in anything the policy can see, and never for a policy whose result can change
//! between two calls (`filter/src/cache.rs`).

use crate::bundle::{bundle, config_with, next_poll, polled, records, serve, BUNDLE_PATH};
use crate::wasm_support::*;

use airlock_tests::host::{Host, Stream};
use serde_json::{json, Value};

const HITS: &str = "airlock.decision_cache.hits";
const EVAL_TIME: &str = "airlock.policy.eval_time_us";

fn evaluations(host: &Host) -> usize {
    host.histogram(EVAL_TIME).map(|v| v.len()).unwrap_or(0)
}

/// Allows exactly one shape of request; everything else is denied.
const EXACT: &str = r#"package airlock
import rego.v1
default decision := {"effect": "deny", "rule": "default-deny"}
decision := {"effect": "allow", "rule": "exact"} if {
	input.request.method == "POST"
	input.request.path == "/v1/items"
	input.request.query.page == ["2"]
	input.request.headers["x-tenant"] == "blue"
	input.agent.id == "spiffe://corp/agent/report-bot"
	input.request.body.ok == true
}
"#;

fn with_policy(rego: &str) -> Value {
    let mut cfg = config();
    cfg["policy"]["modules"] = json!({"airlock.rego": rego});
    cfg["request"]["input_headers"] = json!(["x-tenant", "content-type"]);
    cfg
}

fn post(host: &mut Host, agent: &str, path: &str, tenant: &str, body: &Value) -> Stream {
    host.request()
        .method("POST")
        .scheme("https")
        .authority(HOST)
        .path(path)
        .header(IDENTITY_HEADER, agent)
        .header("x-tenant", tenant)
        .json(body)
        .send()
        .unwrap()
}

#[test]
fn a_repeated_allow_is_served_from_the_cache_and_still_recorded() {
    let mut host = host_with(&with_policy(EXACT));
    for _ in 0..3 {
        // The host gives every request its own x-request-id, as Envoy does; this
        // policy cannot read it, so it is not part of the key.
        let s = post(&mut host, AGENT, "/v1/items?page=2", "blue", &json!({"ok": true}));
        assert_reached_upstream(&host, &s);
    }
    assert_eq!(evaluations(&host), 1);
    assert_eq!(metric(&host, HITS), 2);
    assert_eq!(metric(&host, "airlock.decisions.allow"), 3);
    let batch = ship_decisions(&mut host);
    let recs = batch["records"].as_array().unwrap();
    assert_eq!(recs.len(), 3, "one decision record per request, hit or not");
    let ids: std::collections::BTreeSet<&str> = recs.iter().map(|r| r["decision_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "each record is its own request's: {recs:?}");
    assert!(recs.iter().all(|r| r["rule"] == "exact" && r["enforced"] == "allow"), "{recs:?}");
}

#[test]
fn a_changed_body_header_path_or_agent_never_meets_a_stale_allow() {
    let mut host = host_with(&with_policy(EXACT));
    let ok = post(&mut host, AGENT, "/v1/items?page=2", "blue", &json!({"ok": true}));
    assert_reached_upstream(&host, &ok);
    let cases: [(&str, &str, &str, &str, Value); 5] = [
        ("body", AGENT, "/v1/items?page=2", "blue", json!({"ok": false})),
        ("header", AGENT, "/v1/items?page=2", "red", json!({"ok": true})),
        ("path", AGENT, "/v1/items/1?page=2", "blue", json!({"ok": true})),
        ("query", AGENT, "/v1/items?page=3", "blue", json!({"ok": true})),
        ("agent", "spiffe://corp/agent/other", "/v1/items?page=2", "blue", json!({"ok": true})),
    ];
    for (what, agent, path, tenant, body) in cases {
        let s = post(&mut host, agent, path, tenant, &body);
        let problem = assert_problem(&host, &s, 403, "denied");
        assert_eq!(problem["rule"], "default-deny", "{what}");
    }
    assert_eq!(metric(&host, HITS), 0);
    // And the original still hits.
    let again = post(&mut host, AGENT, "/v1/items?page=2", "blue", &json!({"ok": true}));
    assert_reached_upstream(&host, &again);
    assert_eq!(metric(&host, HITS), 1);
}

#[test]
fn a_cached_allow_never_survives_a_bundle_swap_to_deny() {
    let mut host = host_with(&config_with(polled()));
    let first = the_pending(&host, BUNDLE_PATH);
    serve(&mut host, &first, "\"rev-1\"", &bundle("rev-1", true));
    for _ in 0..2 {
        let s = send_get(&mut host, HOST, "/v1/reports");
        assert_reached_upstream(&host, &s);
    }
    assert_eq!(metric(&host, HITS), 1, "the second GET came from the cache\n{}", host.logs_text());

    let next = next_poll(&mut host);
    serve(&mut host, &next, "\"rev-2\"", &bundle("rev-2", false));
    for _ in 0..2 {
        let s = send_get(&mut host, HOST, "/v1/reports");
        let problem = assert_problem(&host, &s, 403, "denied");
        assert_eq!(problem["rule"], "reads");
    }
    assert_eq!(metric(&host, HITS), 1, "nothing served from the cache after the swap");
    let recs = records(&mut host);
    let seen: Vec<(&str, &str)> =
        recs.iter().map(|r| (r["policy_revision"].as_str().unwrap(), r["enforced"].as_str().unwrap())).collect();
    assert_eq!(seen, [("rev-1", "allow"), ("rev-1", "allow"), ("rev-2", "deny"), ("rev-2", "deny")]);

    // And back: rev-3 allows again, evaluated afresh.
    let third = next_poll(&mut host);
    serve(&mut host, &third, "\"rev-3\"", &bundle("rev-3", true));
    let s = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &s);
    assert_eq!(metric(&host, HITS), 1);
}

#[test]
fn clock_and_random_policies_are_never_cached() {
    // `time.*` is not compiled into the filter (regorus `time` feature off): such a
    // policy is refused at configure time, so it can never serve, cached or not.
    let clock = "package airlock\nimport rego.v1\ndecision := {\"effect\": \"allow\"} if time.now_ns() > 0\n";
    let host = Host::try_new(with_policy(clock).to_string()).unwrap();
    assert!(!host.configured(), "{}", host.logs_text());

    let random = "package airlock\nimport rego.v1\ndecision := {\"effect\": \"allow\"} if rand.intn(\"k\", 10) >= 0\n";
    let mut host = host_with(&with_policy(random));
    assert!(host.log_contains("decision cache off"), "{}", host.logs_text());
    for _ in 0..3 {
        let s = send_get(&mut host, HOST, "/v1/reports");
        assert_reached_upstream(&host, &s);
    }
    assert_eq!(evaluations(&host), 3);
    assert_eq!(metric(&host, HITS), 0);
}

#[test]
fn a_policy_that_reads_the_request_id_keys_on_it() {
    let rego = "package airlock\nimport rego.v1\ndefault decision := {\"effect\": \"deny\"}\n\
                decision := {\"effect\": \"allow\"} if startswith(input.request.id, \"ok-\")\n";
    let mut host = host_with(&with_policy(rego));
    let get = |host: &mut Host, id: &str| {
        host.request()
            .method("GET")
            .scheme("https")
            .authority(HOST)
            .path("/v1/reports")
            .header(IDENTITY_HEADER, AGENT)
            .header("x-request-id", id)
            .send()
            .unwrap()
    };
    let s = get(&mut host, "ok-1");
    assert_reached_upstream(&host, &s);
    let s = get(&mut host, "no-1");
    assert_problem(&host, &s, 403, "denied");
    let s = get(&mut host, "ok-1");
    assert_reached_upstream(&host, &s);
    assert_eq!(metric(&host, HITS), 1);
}
