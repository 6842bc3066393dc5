//! Signed policy bundles through the real filter module: inline in the plugin
//! configuration, and polled from a cluster with ETags — first fetch, 304, a new
//! revision swapping in (decision records carry it), a bad bundle refused while the
//! old one keeps serving, and fail-closed denial before any bundle has arrived.
//!
//! A tampered *inline* bundle makes `on_configure` return false (Envoy refuses the
//! configuration, as for any invalid setting); a tampered *polled* bundle is refused
//! at run time and the last good one keeps serving.

use crate::wasm_support::*;

use std::time::Duration;

use airlock_bundle::{build, sign, Entry, Limits};
use airlock_tests::host::{Callout, Host};
use serde_json::{json, Value};

const BUNDLE_KEY_ID: &str = "bundles-1";
const BUNDLE_KEY: [u8; 32] = [42; 32];
const BUNDLE_CLUSTER: &str = "airlock_bundles";
pub(crate) const BUNDLE_PATH: &str = "/bundles/airlock.tar.gz";
const POLL_MS: u64 = 5_000;
const LOADED: &str = "airlock.bundle.loaded";
const REJECTED: &str = "airlock.bundle.rejected";
const FETCH_FAILURES: &str = "airlock.bundle.fetch_failures";

/// The scenario policy as a signed bundle; `reads_allowed: false` turns the GET rule
/// into a deny so a swap is visible in outcomes, not only in records.
pub(crate) fn bundle(revision: &str, reads_allowed: bool) -> Vec<u8> {
    bundle_with(json!({"revision": revision, "roots": [""]}), reads_allowed)
}

pub(crate) fn bundle_with(manifest: Value, reads_allowed: bool) -> Vec<u8> {
    let policy = if reads_allowed {
        POLICY.to_string()
    } else {
        POLICY.replace("\"effect\": \"allow\", \"rule\": \"reads\"", "\"effect\": \"deny\", \"rule\": \"reads\"")
    };
    let files = vec![
        Entry { name: ".manifest".into(), bytes: manifest.to_string().into_bytes() },
        Entry { name: "airlock/policy.rego".into(), bytes: policy.into_bytes() },
        Entry { name: "blocked_hosts/data.json".into(), bytes: json!({BLOCKED_HOST: true}).to_string().into_bytes() },
    ];
    sign(&build(files, None).unwrap(), BUNDLE_KEY_ID, &BUNDLE_KEY, &Limits::default()).unwrap()
}

/// A signed bundle with one byte of a file changed after signing.
fn tampered(revision: &str) -> Vec<u8> {
    let mut entries = airlock_bundle::read_archive(&bundle(revision, true), &Limits::default()).unwrap();
    let rego = entries.iter_mut().find(|e| e.name == "airlock/policy.rego").unwrap();
    rego.bytes =
        String::from_utf8(rego.bytes.clone()).unwrap().replace("no rule allows", "all rules allow").into_bytes();
    airlock_bundle::write_archive(&entries).unwrap()
}

pub(crate) fn config_with(bundle_cfg: Value) -> Value {
    let mut cfg = config();
    cfg["policy"] = json!({
        "bundle": bundle_cfg,
        "bundle_keys": [{"key_id": BUNDLE_KEY_ID, "key_base64": b64(&BUNDLE_KEY)}]
    });
    cfg
}

fn inline(bytes: &[u8]) -> Value {
    json!({"base64": b64(bytes)})
}

pub(crate) fn polled() -> Value {
    json!({"cluster": BUNDLE_CLUSTER, "path": BUNDLE_PATH, "authority": "bundles.internal", "poll_ms": POLL_MS})
}

/// Every decision record shipped so far, in order (ships what is queued now; every
/// batch is answered with 202, so none is sent twice).
pub(crate) fn records(host: &mut Host) -> Vec<Value> {
    ship_decisions(host);
    calls_to(host, DECISIONS).iter().flat_map(|c| c.json().unwrap()["records"].as_array().unwrap().clone()).collect()
}

/// Advance time until the filter polls; decision batches met on the way are accepted.
pub(crate) fn next_poll(host: &mut Host) -> Callout {
    for _ in 0..(2 * POLL_MS / 1_000 + 2) {
        if let Some(c) = pending_to(host, BUNDLE_PATH).into_iter().next() {
            return c;
        }
        host.advance_time(Duration::from_millis(1_000)).unwrap();
        for d in pending_to(host, DECISIONS) {
            respond(host, &d, 202, &json!({}));
        }
    }
    panic!("no bundle poll: {:?}\n{}", host.pending_callouts(), host.logs_text());
}

pub(crate) fn serve(host: &mut Host, poll: &Callout, etag: &str, body: &[u8]) {
    host.respond_callout(poll.token, 200, &[("etag", etag), ("content-type", "application/gzip")], body)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", host.logs_text()));
}

#[test]
fn inline_bundle_loads_and_decides() {
    let mut host = host_with(&config_with(inline(&bundle("inline-7", true))));
    assert_eq!(metric(&host, LOADED), 1);
    assert!(host.log_contains("policy revision `inline-7`"), "{}", host.logs_text());
    let allowed = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &allowed);
    let blocked = send_get(&mut host, BLOCKED_HOST, "/v1/reports");
    let body = assert_problem(&host, &blocked, 403, "denied");
    assert_eq!(body["rule"], "blocked-host", "bundle data is mounted at its directory");
    let records = records(&mut host);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["policy_revision"] == "inline-7"), "{records:?}");
    // No cluster configured: nothing is polled.
    assert!(pending_to(&host, BUNDLE_PATH).is_empty());
}

#[test]
fn tampered_or_wrongly_keyed_inline_bundle_refuses_the_configuration() {
    let host = Host::try_new(config_with(inline(&tampered("inline-8"))).to_string()).unwrap();
    assert!(!host.configured());
    assert!(host.log_contains("airlock/policy.rego"), "{}", host.logs_text());
    assert!(host.log_contains("SHA-256 differs"), "{}", host.logs_text());

    let mut cfg = config_with(inline(&bundle("inline-9", true)));
    cfg["policy"]["bundle_keys"][0]["key_base64"] = b64(&[1; 32]).into();
    let host = Host::try_new(cfg.to_string()).unwrap();
    assert!(!host.configured());
    assert!(host.log_contains("does not verify with key `bundles-1`"), "{}", host.logs_text());
}

#[test]
fn no_bundle_yet_denies_then_polled_bundles_swap_and_bad_ones_are_refused() {
    let mut host = host_with(&config_with(polled()));
    // The first poll goes out at configure time, unconditional (no ETag yet).
    let first = the_pending(&host, BUNDLE_PATH);
    assert_eq!(first.cluster, BUNDLE_CLUSTER);
    assert_eq!(first.method().as_deref(), Some("GET"));
    assert_eq!(first.authority().as_deref(), Some("bundles.internal"));
    assert_eq!(first.header("if-none-match"), None);

    // Until a bundle verifies, every request is refused: fail closed.
    let early = send_get(&mut host, HOST, "/v1/reports");
    let body = assert_problem(&host, &early, 403, "denied");
    assert_eq!(body["rule"], "airlock.policy-error", "{body}");

    serve(&mut host, &first, "\"rev-1\"", &bundle("rev-1", true));
    assert_eq!(metric(&host, LOADED), 1, "{}", host.logs_text());
    assert!(host.log_contains("policy bundle revision `rev-1` loaded"), "{}", host.logs_text());
    let ok = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &ok);
    let recs = records(&mut host);
    assert_eq!(
        (recs[0]["policy_revision"].as_str(), recs[0]["rule"].as_str()),
        (Some("none"), Some("airlock.policy-error"))
    );
    assert_eq!(recs[1]["policy_revision"], "rev-1");

    // Unchanged: 304 to If-None-Match, rev-1 keeps serving.
    let second = next_poll(&mut host);
    assert_eq!(second.header("if-none-match").as_deref(), Some("\"rev-1\""));
    host.respond_callout(second.token, 304, &[("etag", "\"rev-1\"")], b"").unwrap();
    assert_eq!((metric(&host, LOADED), metric(&host, REJECTED)), (1, 0));
    let again = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &again);

    // A new revision swaps in: the same GET is now denied, and records say rev-2.
    let third = next_poll(&mut host);
    serve(&mut host, &third, "\"rev-2\"", &bundle("rev-2", false));
    assert_eq!(metric(&host, LOADED), 2);
    let denied = send_get(&mut host, HOST, "/v1/reports");
    assert_problem(&host, &denied, 403, "denied");

    // A tampered bundle is refused with a log line and a stat; rev-2 keeps serving.
    let fourth = next_poll(&mut host);
    assert_eq!(fourth.header("if-none-match").as_deref(), Some("\"rev-2\""));
    serve(&mut host, &fourth, "\"rev-3\"", &tampered("rev-3"));
    assert_eq!((metric(&host, LOADED), metric(&host, REJECTED)), (2, 1));
    assert!(host.log_contains("policy bundle refused (keeping revision `rev-2`)"), "{}", host.logs_text());
    assert!(host.log_contains("`airlock/policy.rego`: SHA-256 differs"), "{}", host.logs_text());
    let still = send_get(&mut host, HOST, "/v1/reports");
    assert_problem(&host, &still, 403, "denied");
    let recs = records(&mut host);
    let revisions: Vec<&str> = recs.iter().map(|r| r["policy_revision"].as_str().unwrap()).collect();
    assert_eq!(revisions.last().copied(), Some("rev-2"), "{recs:?}");
    assert_eq!(revisions, ["none", "rev-1", "rev-1", "rev-2", "rev-2"]);

    // The refused bundle's ETag is remembered: it is not downloaded again.
    let fifth = next_poll(&mut host);
    assert_eq!(fifth.header("if-none-match").as_deref(), Some("\"rev-3\""));
    assert!(!host.is_failed());
}

#[test]
fn failed_polls_are_counted_retried_sooner_and_never_open_the_gate() {
    let mut host = host_with(&config_with(polled()));
    let first = the_pending(&host, BUNDLE_PATH);
    host.fail_callout(first.token).unwrap();
    assert_eq!(metric(&host, FETCH_FAILURES), 1);
    // Backoff starts at ~1 s, well before the 5 s interval.
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    let retry = the_pending(&host, BUNDLE_PATH);
    host.respond_callout(retry.token, 503, &[], b"upstream down").unwrap();
    assert_eq!(metric(&host, FETCH_FAILURES), 2);
    let stream = send_get(&mut host, HOST, "/v1/reports");
    assert_problem(&host, &stream, 403, "denied");
    // A bundle that is not even gzip: refused, still denying.
    let third = next_poll(&mut host);
    serve(&mut host, &third, "\"junk\"", b"<html>not a bundle</html>");
    assert_eq!(metric(&host, REJECTED), 1);
    assert!(host.log_contains("no policy loaded yet"), "{}", host.logs_text());
    let stream = send_get(&mut host, HOST, "/v1/reports");
    assert_problem(&host, &stream, 403, "denied");
}

#[test]
fn an_inline_bundle_serves_until_the_polled_one_arrives() {
    let mut cfg = config_with(polled());
    cfg["policy"]["bundle"]["base64"] = b64(&bundle("seed-1", true)).into();
    let mut host = host_with(&cfg);
    let again = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &again);
    let first = the_pending(&host, BUNDLE_PATH);
    serve(&mut host, &first, "\"rev-9\"", &bundle("rev-9", false));
    let stream = send_get(&mut host, HOST, "/v1/reports");
    assert_problem(&host, &stream, 403, "denied");
    let recs = records(&mut host);
    let revisions: Vec<&str> = recs.iter().map(|r| r["policy_revision"].as_str().unwrap()).collect();
    assert_eq!(revisions, ["seed-1", "rev-9"]);
}

#[test]
fn per_rule_shadow_logs_what_would_have_happened_and_lets_the_call_through() {
    let manifest = json!({"revision": "tuning-1", "airlock": {"shadow_rules": ["blocked-host"]}});
    let mut host = host_with(&config_with(inline(&bundle_with(manifest, true))));
    let shadowed = send_get(&mut host, BLOCKED_HOST, "/v1/reports");
    assert_reached_upstream(&host, &shadowed);
    assert_eq!(metric(&host, "airlock.decisions.shadow_allow"), 1);
    // Other rules of the same bundle are enforced.
    let delete = host
        .request()
        .method("DELETE")
        .scheme("https")
        .authority(HOST)
        .path("/v1/reports/1")
        .header(IDENTITY_HEADER, AGENT)
        .send()
        .unwrap();
    let body = assert_problem(&host, &delete, 403, "denied");
    assert_eq!(body["rule"], "no-deletes");
    let recs = records(&mut host);
    let r = &recs[0];
    assert_eq!(
        (r["rule"].as_str(), r["effect"].as_str(), r["enforced"].as_str()),
        (Some("blocked-host"), Some("deny"), Some("allow"))
    );
    assert_eq!((r["mode"].as_str(), r["policy_revision"].as_str()), (Some("shadow"), Some("tuning-1")));
    assert_eq!((recs[1]["mode"].as_str(), recs[1]["enforced"].as_str()), (Some("enforce"), Some("deny")));
}

/// Measurement, not a check (`cargo test -p airlock-tests --test wasm bundle_swap_cost
/// -- --ignored --nocapture`): wall time for the filter in wasmtime to verify, compile
/// and swap in the example library as a polled bundle. Reported in docs/bundles.md.
#[test]
#[ignore]
fn bundle_swap_cost() {
    let dir = airlock_tests::wasm::workspace_root().join("policies/library");
    let mut host = host_with(&config_with(polled()));
    let mut poll = the_pending(&host, BUNDLE_PATH);
    let mut times = Vec::new();
    for i in 0..5 {
        let bytes = sign(
            &airlock_bundle::build_dir(&dir, Some(&format!("lib-{i}"))).unwrap(),
            BUNDLE_KEY_ID,
            &BUNDLE_KEY,
            &Limits::default(),
        )
        .unwrap();
        let started = std::time::Instant::now();
        serve(&mut host, &poll, &format!("\"lib-{i}\""), &bytes);
        times.push(started.elapsed());
        assert_eq!(metric(&host, LOADED), i + 1, "{}", host.logs_text());
        if i == 0 {
            println!("library bundle: {} bytes", bytes.len());
        }
        poll = next_poll(&mut host);
    }
    println!("verify + compile + swap in wasmtime: {times:?}");
}
