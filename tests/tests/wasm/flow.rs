//! Scenarios through the real filter module in the wasmtime proxy-wasm host: allow,
//! deny, approve (create-or-find, pending, approved → redeem → credential injected),
//! hold, refusals, forged and failed service answers, bad configurations, shadow mode,
//! stats and policy errors. Assertions are about outcomes — what reached the upstream,
//! what the agent got back, what the approval service was sent — never the order of
//! hostcalls.
//!
//! Needs the release build: `cargo build -p airlock-filter-wasm --target wasm32-wasip1 --release`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::wasm_support;

use std::time::Duration;

use airlock_tests::host::{Callout, CalloutFailure, Host, LogLevel, Outcome, Stream};
use serde_json::{json, Value};
use wasm_support::*;

const ALLOW: &str = "airlock.decisions.allow";
const DENY: &str = "airlock.decisions.deny";
const APPROVE: &str = "airlock.decisions.approve";
const SHADOW_ALLOW: &str = "airlock.decisions.shadow_allow";
const POLICY_ERRORS: &str = "airlock.policy.errors";
const CALLOUT_FAILURES: &str = "airlock.callout.failures";
const INJECTED: &str = "airlock.credentials.injected";
const LOG_SHIP_FAILURES: &str = "airlock.decision_log.ship_failures";
const EVAL_TIME: &str = "airlock.policy.eval_time_us";

/// Sends the standard export and answers its create call with `status` (200).
fn export_answered(host: &mut Host, answer: Value) -> Stream {
    let stream = send_export(host, &export_body(), &[]);
    let create = create_call_for(host, &stream);
    respond(host, &create, 200, &answer);
    stream
}

/// Sends the standard export, approves it, and returns the stream with its redeem call.
fn export_approved(host: &mut Host, approval_id: &str) -> (Stream, Callout) {
    let stream = export_answered(host, json!({"approval_id": approval_id, "status": "approved"}));
    assert!(stream.is_paused(), "{:?}\n{}", stream.outcome(), host.logs_text());
    let redeem = the_pending(host, &redeem_path(approval_id));
    (stream, redeem)
}

// ----- allow -----

#[test]
fn allow_reaches_the_upstream_and_ships_a_signed_decision_record() {
    let mut host = wasm_support::host();
    let stream = host
        .request()
        .method("GET")
        .scheme("https")
        .authority(HOST)
        .path("/v1/reports?year=2026&q=a%20b")
        .header(IDENTITY_HEADER, AGENT)
        .header("x-request-id", "req-allow-1")
        .header("authorization", AGENT_AUTHORIZATION)
        .send()
        .unwrap();
    assert_reached_upstream(&host, &stream);
    assert_eq!(stream.header(":path").as_deref(), Some("/v1/reports?year=2026&q=a%20b"));
    // An allowed call is the agent's own: its headers go on untouched.
    assert_eq!(stream.header("authorization").as_deref(), Some(AGENT_AUTHORIZATION));
    assert!(stream.local_reply().is_none());
    // No callout per request: the record waits for the timer.
    assert!(host.callouts().is_empty(), "{:?}", host.callouts());
    host.finish(&stream).unwrap();

    host.advance_time(Duration::from_millis(1_000)).unwrap();
    let call = the_pending(&host, DECISIONS);
    assert_eq!(call.cluster, CLUSTER);
    assert_eq!(call.method().as_deref(), Some("POST"));
    assert_eq!(call.authority().as_deref(), Some(AUTHORITY));
    assert_eq!(call.header("content-type").as_deref(), Some("application/json"));
    assert!(call.timeout.is_some_and(|t| t <= Duration::from_millis(TIMEOUT_MS)), "{call:?}");
    assert_signed_by_filter(&host, &call);

    let batch = call.json().unwrap();
    assert_eq!(batch["dropped"], 0, "{batch}");
    let records = batch["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{batch}");
    let r = &records[0];
    assert_eq!(r["decision_id"], "dec_req-allow-1");
    assert_eq!(r["effect"], "allow");
    assert_eq!(r["enforced"], "allow");
    assert_eq!(r["mode"], "enforce");
    assert_eq!(r["rule"], "reads");
    assert_eq!(r["risk"], "low");
    assert_eq!(r["reason"], "read-only call");
    assert_eq!(r["policy_revision"], REVISION);
    assert_eq!(r["agent"], AGENT);
    assert_eq!(r["method"], "GET");
    assert_eq!(r["host"], HOST);
    assert_eq!(r["path"], "/v1/reports");
    let expected = DigestInput {
        method: "GET",
        scheme: "https",
        host: HOST,
        port: 443,
        path: "/v1/reports",
        query: vec![("year", "2026"), ("q", "a b")],
        significant: vec![("content-type", None)],
        body: b"",
    }
    .digest();
    assert_eq!(r["digest"], expected.as_str(), "digest per docs/digest.md");
    assert!(r["time_ms"].as_u64().is_some_and(|t| t / 1000 <= now_s(&host)));
    assert!(!batch.to_string().contains("SECRET1"), "{batch}");

    respond(&mut host, &call, 202, &json!({"accepted": 1}));
    assert_eq!(metric(&host, LOG_SHIP_FAILURES), 0, "{}", host.logs_text());
    // Delivered: the next tick has nothing to send.
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    assert!(pending_to(&host, DECISIONS).is_empty(), "{:?}", host.pending_callouts());
    assert!(!host.is_failed());
}

/// A busy worker must not be limited to one batch per flush interval: while whole
/// batches wait, each accepted batch is followed by the next at once.
#[test]
fn a_backlog_of_full_batches_ships_without_waiting_for_the_timer() {
    let mut host = wasm_support::host(); // max_batch 16, max_queue 64
    for i in 0..40 {
        let stream = send_get(&mut host, HOST, &format!("/v1/reports?n={i}"));
        assert_reached_upstream(&host, &stream);
        host.finish(&stream).unwrap();
    }
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    let first = the_pending(&host, DECISIONS);
    assert_eq!(first.json().unwrap()["records"].as_array().map(Vec::len), Some(16));
    respond(&mut host, &first, 202, &json!({}));
    // No tick in between: 24 left, a full batch, so it goes now.
    let second = the_pending(&host, DECISIONS);
    assert_eq!(second.json().unwrap()["records"].as_array().map(Vec::len), Some(16));
    respond(&mut host, &second, 202, &json!({}));
    // 8 left: less than a batch, so they wait for the timer.
    assert!(pending_to(&host, DECISIONS).is_empty(), "{:?}", host.pending_callouts());
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    let third = the_pending(&host, DECISIONS);
    assert_eq!(third.json().unwrap()["records"].as_array().map(Vec::len), Some(8));
    assert_eq!(third.json().unwrap()["dropped"], 0);
    // A refused batch never triggers an immediate resend.
    respond(&mut host, &third, 500, &json!({}));
    assert!(pending_to(&host, DECISIONS).is_empty());
}

#[test]
fn a_refused_decision_batch_is_shipped_again() {
    let mut host = wasm_support::host();
    let stream = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &stream);
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    let first = the_pending(&host, DECISIONS);
    // 202 but signed with a key the filter does not know: not accepted.
    let forged = Signer { key_id: "k9".into(), ..Signer::service(&host) };
    respond_signed(&mut host, &first, &forged, 202, b"{}");
    assert_eq!(metric(&host, LOG_SHIP_FAILURES), 1, "{}", host.logs_text());
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    let second = the_pending(&host, DECISIONS);
    assert_eq!(first.json().unwrap()["records"], second.json().unwrap()["records"]);
    // A 500 is no acceptance either.
    respond(&mut host, &second, 500, &json!({}));
    assert_eq!(metric(&host, LOG_SHIP_FAILURES), 2);
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    let third = the_pending(&host, DECISIONS);
    respond(&mut host, &third, 202, &json!({}));
    host.advance_time(Duration::from_millis(1_000)).unwrap();
    assert!(pending_to(&host, DECISIONS).is_empty());
    assert_eq!(metric(&host, LOG_SHIP_FAILURES), 2);
}

#[test]
fn an_allowed_request_loses_the_approval_header() {
    let mut host = wasm_support::host();
    let stream = host
        .request()
        .method("GET")
        .authority(HOST)
        .path("/v1/reports")
        .header(IDENTITY_HEADER, AGENT)
        .header("x-airlock-approval", "apr_old")
        .send()
        .unwrap();
    assert_reached_upstream(&host, &stream);
    assert_eq!(stream.header("x-airlock-approval"), None);
}

// ----- deny -----

#[test]
fn deny_is_a_problem_and_nothing_goes_upstream() {
    let mut host = wasm_support::host();
    let stream = host
        .request()
        .method("DELETE")
        .authority(HOST)
        .path("/v1/customers/42")
        .header(IDENTITY_HEADER, AGENT)
        .header("x-request-id", "req-deny-1")
        .send()
        .unwrap();
    let body = assert_problem(&host, &stream, 403, "denied");
    assert_eq!(body["decision_id"], "dec_req-deny-1");
    assert_eq!(body["rule"], "no-deletes");
    assert!(body["detail"].as_str().unwrap().contains("agents may not delete"), "{body}");
    let reply = local_reply(&host, &stream);
    assert_eq!(reply.header("x-airlock-decision-id").as_deref(), Some("dec_req-deny-1"));
    assert!(approval_calls(&host).is_empty());
    host.finish(&stream).unwrap();

    let batch = ship_decisions(&mut host);
    let r = &batch["records"][0];
    assert_eq!(r["effect"], "deny");
    assert_eq!(r["enforced"], "deny");
    assert_eq!(r["rule"], "no-deletes");
    assert_eq!(r["method"], "DELETE");
}

#[test]
fn a_request_with_a_body_is_denied_without_forwarding_a_byte() {
    let mut host = wasm_support::host();
    let stream = host
        .request()
        .method("DELETE")
        .authority(HOST)
        .path("/v1/customers")
        .header(IDENTITY_HEADER, AGENT)
        .json(&json!({"ids": [1, 2, 3]}))
        .send()
        .unwrap();
    assert_problem(&host, &stream, 403, "denied");
    assert!(stream.upstream_body().is_empty());
}

// ----- approve: create-or-find -----

#[test]
fn approve_sends_a_signed_create_call_with_the_redacted_action_and_no_credentials() {
    let mut host = wasm_support::host();
    let body = export_body();
    let stream = send_export(&mut host, &body, &[("x-request-id", "req-exp-1")]);
    assert!(stream.is_paused(), "{:?}\n{}", stream.outcome(), host.logs_text());
    assert!(!stream.upstream_saw_headers());

    let call = the_pending(&host, APPROVALS);
    assert_eq!(call.cluster, CLUSTER);
    assert_eq!(call.method().as_deref(), Some("POST"));
    assert_eq!(call.authority().as_deref(), Some(AUTHORITY));
    assert_eq!(call.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(call.context_id, stream.id());
    assert_eq!(call.timeout, Some(Duration::from_millis(TIMEOUT_MS)), "hold 0: plain timeout");
    assert_signed_by_filter(&host, &call);

    let sent = call.json().unwrap();
    let raw_body = body.to_string();
    assert_eq!(sent["decision_id"], "dec_req-exp-1");
    assert_eq!(sent["agent"], json!({"id": AGENT, "source": "header", "owner": OWNER, "acts_for": []}));
    let digest = DigestInput::export(raw_body.as_bytes()).digest();
    assert_eq!(sent["digest"], digest.as_str(), "digest per docs/digest.md: {sent}");
    assert_eq!(sent["hold_ms"], 0);
    assert!(sent.get("approval_id").is_none_or(Value::is_null), "{sent}");
    let policy = &sent["policy"];
    assert_eq!(policy["revision"], REVISION);
    assert_eq!(policy["rule"], "pii-export");
    assert_eq!(policy["reason"], "customer data leaves the company");
    assert_eq!(policy["risk"], "high");
    assert_eq!(policy["approvers"], json!({"groups": ["data-owners"], "quorum": 1}));
    assert_eq!(policy["expires_in"], "15m");
    assert_eq!(policy["credential"], "s3-export");
    assert_eq!(policy["reuse"], "once");
    let request = &sent["request"];
    assert_eq!(request["id"], "req-exp-1");
    assert_eq!(request["method"], "POST");
    assert_eq!(request["scheme"], "https");
    assert_eq!(request["host"], HOST);
    assert_eq!(request["port"], 443);
    assert_eq!(request["path"], EXPORTS);
    assert_eq!(request["query"], json!({"format": ["csv"]}));
    assert_eq!(request["headers"]["content-type"], "application/json");
    assert_eq!(request["headers"]["user-agent"], "report-bot/1.0");
    assert_eq!(request["body_size"], raw_body.len());
    assert_eq!(request["body_sha256"], sha256_hex(raw_body.as_bytes()).as_str());
    // Redacted for reviewers; the rest of the body as sent.
    assert_eq!(request["body"]["customer"]["ssn"], "[REDACTED]");
    assert_eq!(request["body"]["customer"]["name"], "Ada Lovelace");
    assert_eq!(request["body"]["format"], "csv");
    let text = call.body_text();
    assert!(!text.contains("123-45-6789"), "{text}");

    // No credential header, name or value, anywhere in what the service gets.
    let headers = request["headers"].as_object().unwrap();
    for name in ["authorization", "cookie", "x-api-key", "proxy-authorization"] {
        assert!(!headers.contains_key(name), "{name} sent: {text}");
    }
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} in the create call: {text}");
        for (name, value) in call.headers.pairs() {
            assert!(!value.contains(secret), "{secret} in callout header {name}");
        }
    }
    assert_eq!(metric(&host, APPROVE), 1);
}

#[test]
fn pending_answer_is_403_with_approval_id_and_retry_after() {
    let mut host = wasm_support::host();
    let stream = export_answered(
        &mut host,
        json!({"approval_id": "apr_pend1", "status": "pending", "retry_after": 12,
               "expires_at": "2026-11-21T19:30:00Z", "unknown_field": true}),
    );
    let body = assert_problem(&host, &stream, 403, "approval-pending");
    assert_eq!(body["approval_id"], "apr_pend1");
    assert_eq!(body["retry_after"], 12);
    assert!(body["detail"].as_str().unwrap().contains("apr_pend1"), "{body}");
    assert_eq!(local_reply(&host, &stream).header("retry-after").as_deref(), Some("12"));
    // Nothing after the create call: no redeem.
    assert_eq!(approval_calls(&host).len(), 1);

    // The service gave no retry_after: the configured one.
    let stream = export_answered(&mut host, json!({"approval_id": "apr_pend1", "status": "pending"}));
    let body = assert_problem(&host, &stream, 403, "approval-pending");
    assert_eq!(body["retry_after"], RETRY_AFTER_S);
    assert_eq!(local_reply(&host, &stream).header("retry-after"), Some(RETRY_AFTER_S.to_string()));
}

#[test]
fn an_identical_retry_carries_the_same_digest_and_the_named_approval() {
    let mut host = wasm_support::host();
    let first = send_export(&mut host, &export_body(), &[]);
    let second = send_export(&mut host, &export_body(), &[("x-airlock-approval", "apr_same")]);
    let a = create_call_for(&host, &first).json().unwrap();
    let b = create_call_for(&host, &second).json().unwrap();
    assert_eq!(a["digest"], b["digest"], "same action, same digest");
    assert_eq!(a["agent"], b["agent"]);
    assert_ne!(a["decision_id"], b["decision_id"]);
    assert_eq!(b["approval_id"], "apr_same");
}

/// Once the service answered with an approval, the identical request only asks to find
/// it: the create body without the body; a 404 sends the full create at once.
#[test]
fn a_known_approval_is_found_without_resending_the_body() {
    let mut host = wasm_support::host();
    let first = send_export(&mut host, &export_body(), &[]);
    let create = create_call_for(&host, &first);
    assert_eq!(create.path().as_deref(), Some(APPROVALS));
    assert!(create.json().unwrap()["request"]["body"].is_object());
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_known", "status": "pending"}));

    let second = send_export(&mut host, &export_body(), &[]);
    let find = create_call_for(&host, &second);
    assert_eq!(find.path().as_deref(), Some(APPROVALS_FIND));
    assert_signed_by_filter(&host, &find);
    let (c, f) = (create.json().unwrap(), find.json().unwrap());
    assert_eq!(f["request"].get("body"), None, "the body is not sent again");
    assert_eq!((&f["digest"], &f["request"]["body_sha256"]), (&c["digest"], &c["request"]["body_sha256"]));
    // Not found: the full create follows for the same request, signed afresh.
    host.respond_callout(find.token, 404, &[], b"{}").unwrap();
    let create = create_call_for(&host, &second);
    assert_eq!(create.path().as_deref(), Some(APPROVALS));
    assert_signed_by_filter(&host, &create);
    assert!(create.json().unwrap()["request"]["body"].is_object());
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_new", "status": "pending"}));
    assert_eq!(second.response_status(), Some(403), "{:?}", second.outcome());
}

#[test]
fn approved_then_redeemed_goes_upstream_with_only_the_minted_credential() {
    let mut host = wasm_support::host();
    let body = export_body();
    let stream = send_export(&mut host, &body, &[("x-airlock-approval", "apr_ok1")]);
    let create = create_call_for(&host, &stream);
    let digest = create.json().unwrap()["digest"].clone();
    let decision_id = create.json().unwrap()["decision_id"].clone();
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_ok1", "status": "approved"}));
    assert!(stream.is_paused(), "{:?}\n{}", stream.outcome(), host.logs_text());

    let redeem = the_pending(&host, &redeem_path("apr_ok1"));
    assert_eq!(redeem.cluster, CLUSTER);
    assert_eq!(redeem.method().as_deref(), Some("POST"));
    assert_eq!(redeem.context_id, stream.id());
    assert_eq!(redeem.timeout, Some(Duration::from_millis(TIMEOUT_MS)));
    assert_signed_by_filter(&host, &redeem);
    assert_eq!(redeem.json().unwrap(), json!({"decision_id": decision_id, "agent": AGENT, "digest": digest}));
    for secret in SECRETS {
        assert!(!redeem.body_text().contains(secret));
    }

    respond(
        &mut host,
        &redeem,
        200,
        &json!({"approval_id": "apr_ok1", "status": "redeemed",
                "headers": {"authorization": "Bearer minted-for-one-action", "x-export-grant": "g-1"},
                "expires_at": "2026-11-21T19:30:00Z"}),
    );
    assert_reached_upstream(&host, &stream);
    let up = stream.upstream_headers().unwrap();
    assert_eq!(up.get("authorization").as_deref(), Some("Bearer minted-for-one-action"));
    assert_eq!(up.values("authorization").len(), 1);
    assert_eq!(up.get("x-export-grant").as_deref(), Some("g-1"));
    for gone in ["cookie", "x-api-key", "proxy-authorization", "x-airlock-approval"] {
        assert!(!up.contains(gone), "{gone} reached the upstream: {up:?}");
    }
    for secret in SECRETS {
        assert!(up.pairs().iter().all(|(_, v)| !v.contains(secret)), "{secret} reached the upstream: {up:?}");
    }
    // The upstream gets the real, unredacted body, byte for byte.
    assert_eq!(stream.upstream_body(), body.to_string().into_bytes());
    assert_eq!(up.get(":path").as_deref(), Some("/v1/exports?format=csv"));
    assert_eq!(metric(&host, INJECTED), 1);
    assert!(stream.anomalies().is_empty(), "{:?}", stream.anomalies());
    host.finish(&stream).unwrap();
    assert!(!host.is_failed());
}

/// protocol.md, redeem: "The filter removes the agent's own credential headers ... and
/// every `x-airlock-*` header". The filter removes only `x-airlock-approval`; the
/// identity header (and any other `x-airlock-*` the agent sent) reaches the upstream
/// next to the minted credential.
#[test]
fn a_redeemed_request_carries_no_airlock_headers_upstream() {
    let mut host = wasm_support::host();
    let stream = send_export(&mut host, &export_body(), &[("x-airlock-approval", "apr_h1"), ("x-airlock-note", "hi")]);
    let create = create_call_for(&host, &stream);
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_h1", "status": "approved"}));
    let redeem = the_pending(&host, &redeem_path("apr_h1"));
    respond(
        &mut host,
        &redeem,
        200,
        &json!({"approval_id": "apr_h1", "status": "redeemed", "headers": {"authorization": "Bearer m"}}),
    );
    assert_reached_upstream(&host, &stream);
    let up = stream.upstream_headers().unwrap();
    let airlock: Vec<_> = up.pairs().into_iter().filter(|(k, _)| k.starts_with("x-airlock-")).collect();
    assert!(airlock.is_empty(), "x-airlock-* headers upstream: {airlock:?}");
}

// ----- hold -----

#[test]
fn hold_from_config_keeps_the_request_paused_until_the_answer() {
    let mut cfg = config();
    cfg["approval_service"]["hold_ms"] = json!(20_000);
    let mut host = host_with(&cfg);
    let stream = send_export(&mut host, &export_body(), &[]);
    let create = create_call_for(&host, &stream);
    assert_eq!(create.json().unwrap()["hold_ms"], 20_000);
    assert_eq!(create.timeout, Some(Duration::from_millis(20_000 + TIMEOUT_MS)));

    // The service long-polls; time passes, ticks run, the request waits.
    host.advance_time(Duration::from_millis(15_000)).unwrap();
    assert!(stream.is_paused(), "{:?}\n{}", stream.outcome(), host.logs_text());
    assert!(!stream.upstream_saw_headers());
    assert_eq!(pending_to(&host, APPROVALS).len(), 1);

    // Approved at 15 s: the same request resumes, with the minted credential.
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_hold1", "status": "approved"}));
    let redeem = the_pending(&host, &redeem_path("apr_hold1"));
    assert_eq!(redeem.timeout, Some(Duration::from_millis(TIMEOUT_MS)), "redeem does not hold");
    assert_signed_by_filter(&host, &redeem);
    respond(
        &mut host,
        &redeem,
        200,
        &json!({"approval_id": "apr_hold1", "status": "redeemed", "headers": {"authorization": "Bearer held"}}),
    );
    assert_reached_upstream(&host, &stream);
    assert_eq!(stream.header("authorization").as_deref(), Some("Bearer held"));
    assert_eq!(stream.upstream_body(), export_body().to_string().into_bytes());
}

#[test]
fn hold_from_the_decision_overrides_the_config() {
    let mut host = wasm_support::host();
    let stream = host
        .request()
        .method("POST")
        .authority(HOST)
        .path("/v1/held")
        .header(IDENTITY_HEADER, AGENT)
        .json(&json!({"rows": 10}))
        .send()
        .unwrap();
    let create = create_call_for(&host, &stream);
    let sent = create.json().unwrap();
    assert_eq!(sent["hold_ms"], 30_000, "{sent}");
    assert_eq!(sent["policy"]["rule"], "held-export");
    assert_eq!(create.timeout, Some(Duration::from_millis(30_000 + TIMEOUT_MS)));
    host.advance_time(Duration::from_millis(29_000)).unwrap();
    assert!(stream.is_paused(), "{:?}", stream.outcome());
    // Still undecided when the hold ends: the service answers pending.
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_held", "status": "pending"}));
    let body = assert_problem(&host, &stream, 403, "approval-pending");
    assert_eq!(body["approval_id"], "apr_held");
}

#[test]
fn a_held_request_whose_service_never_answers_is_unavailable() {
    let mut host = wasm_support::host();
    let stream = host
        .request()
        .method("POST")
        .authority(HOST)
        .path("/v1/held")
        .header(IDENTITY_HEADER, AGENT)
        .json(&json!({"rows": 10}))
        .send()
        .unwrap();
    host.advance_time(Duration::from_millis(30_000 + TIMEOUT_MS - 1)).unwrap();
    assert!(stream.is_paused(), "{:?}", stream.outcome());
    host.advance_time(Duration::from_millis(1)).unwrap();
    let body = assert_problem(&host, &stream, 503, "unavailable");
    assert!(body["retry_after"].is_u64(), "{body}");
    assert_eq!(metric(&host, CALLOUT_FAILURES), 1);
}

// ----- the service's other answers -----

#[test]
fn decided_approvals_are_refused_with_the_matching_problem() {
    for (status, kind) in [
        ("denied", "approval-denied"),
        ("cancelled", "approval-denied"),
        ("expired", "approval-expired"),
        ("mismatch", "denied"),
    ] {
        let mut host = wasm_support::host();
        let stream = export_answered(&mut host, json!({"approval_id": "apr_x1", "status": status}));
        let body = assert_problem(&host, &stream, 403, kind);
        assert_eq!(body["approval_id"], "apr_x1", "{status}: {body}");
        assert_eq!(approval_calls(&host).len(), 1, "{status}: no redeem");
        // The service's own words are not spliced into the agent's answer; a denial's
        // comment and how long it stands are passed on, each in its own member.
        let stream = export_answered(
            &mut host,
            json!({"approval_id": "apr_x1", "status": status, "detail": "denied by a reviewer",
                   "comment": "reviewer bob said no", "denied_until": "2026-11-21T19:30:00Z"}),
        );
        let body = assert_problem(&host, &stream, 403, kind);
        let detail = body["detail"].as_str().unwrap();
        assert!(!detail.contains("denied by a reviewer"), "{status}: {detail}");
        if kind == "approval-denied" {
            assert_eq!(body["reviewer_comment"], "reviewer bob said no", "{status}: {body}");
            assert_eq!(body["denied_until"], "2026-11-21T19:30:00Z", "{status}: {body}");
            assert!(detail.contains("\"reviewer bob said no\"") && detail.contains("Do not retry"), "{detail}");
        } else {
            assert!(body.get("reviewer_comment").is_none(), "{status}: {body}");
        }
    }
}

#[test]
fn a_refused_redeem_is_denied_or_expired() {
    for (code, status, kind) in [
        (409, "consumed", "denied"),
        (409, "mismatch", "denied"),
        (409, "not_approved", "denied"),
        (410, "expired", "approval-expired"),
    ] {
        let mut host = wasm_support::host();
        let (stream, redeem) = export_approved(&mut host, "apr_r1");
        respond(&mut host, &redeem, code, &json!({"status": status}));
        let body = assert_problem(&host, &stream, 403, kind);
        assert_eq!(body["approval_id"], "apr_r1", "{code} {status}: {body}");
        assert_eq!(metric(&host, INJECTED), 0);
    }
}

#[test]
fn an_answer_signed_with_the_previous_key_is_accepted() {
    let mut host = wasm_support::host();
    let stream = send_export(&mut host, &export_body(), &[]);
    let create = create_call_for(&host, &stream);
    let previous = Signer::previous_key(&host);
    let body = json!({"approval_id": "apr_rot", "status": "approved"}).to_string();
    respond_signed(&mut host, &create, &previous, 200, body.as_bytes());
    let redeem = the_pending(&host, &redeem_path("apr_rot"));
    // The filter still signs with its current key.
    assert_signed_by_filter(&host, &redeem);
    let body =
        json!({"approval_id": "apr_rot", "status": "redeemed", "headers": {"authorization": "Bearer r"}}).to_string();
    respond_signed(&mut host, &redeem, &previous, 200, body.as_bytes());
    assert_reached_upstream(&host, &stream);
    assert_eq!(stream.header("authorization").as_deref(), Some("Bearer r"));
}

#[test]
fn an_answer_within_the_skew_window_is_accepted() {
    for skew in [-59i64, 59] {
        let mut host = wasm_support::host();
        let stream = send_export(&mut host, &export_body(), &[]);
        let create = create_call_for(&host, &stream);
        let mut signer = Signer::service(&host);
        signer.timestamp = signer.timestamp.checked_add_signed(skew).unwrap();
        let body = json!({"approval_id": "apr_skew", "status": "pending"}).to_string();
        respond_signed(&mut host, &create, &signer, 200, body.as_bytes());
        assert_problem(&host, &stream, 403, "approval-pending");
    }
}

/// Every way an answer can fail to be the service's answer to this request.
#[derive(Clone, Copy, Debug)]
enum Forgery {
    UnknownKeyId,
    WrongKey,
    PreviousKeyIdWithCurrentKey,
    StaleBy61s,
    FutureBy61s,
    BoundToAnotherSignature,
    SignedOverAnotherStatus,
    SignedOverAnotherBody,
    NoSignatureHeaders,
    SignatureWithoutV1,
    SignatureNotHex,
    TimestampNotANumber,
}

impl Forgery {
    const ALL: [Forgery; 12] = [
        Forgery::UnknownKeyId,
        Forgery::WrongKey,
        Forgery::PreviousKeyIdWithCurrentKey,
        Forgery::StaleBy61s,
        Forgery::FutureBy61s,
        Forgery::BoundToAnotherSignature,
        Forgery::SignedOverAnotherStatus,
        Forgery::SignedOverAnotherBody,
        Forgery::NoSignatureHeaders,
        Forgery::SignatureWithoutV1,
        Forgery::SignatureNotHex,
        Forgery::TimestampNotANumber,
    ];

    /// Headers for a 200 answer with `body` to `call`.
    fn headers(self, host: &Host, call: &Callout, body: &[u8]) -> Vec<(String, String)> {
        let honest = Signer::service(host);
        let now = now_s(host);
        let signer = match self {
            Forgery::UnknownKeyId => Signer { key_id: "k9".into(), ..honest },
            Forgery::WrongKey => Signer { key: vec![1; 32], ..honest },
            Forgery::PreviousKeyIdWithCurrentKey => Signer { key_id: PREVIOUS_KEY_ID.into(), ..honest },
            Forgery::StaleBy61s => Signer { timestamp: now - 61, ..honest },
            Forgery::FutureBy61s => Signer { timestamp: now + 61, ..honest },
            Forgery::BoundToAnotherSignature => Signer { bound_to: Some(format!("v1={}", "ab".repeat(32))), ..honest },
            Forgery::SignedOverAnotherStatus => return honest.headers(call, 201, body),
            Forgery::SignedOverAnotherBody => {
                return honest.headers(call, 200, br#"{"approval_id": "apr_f", "status": "pending"}"#)
            }
            Forgery::NoSignatureHeaders => return vec![("content-type".into(), "application/json".into())],
            Forgery::SignatureWithoutV1 | Forgery::SignatureNotHex | Forgery::TimestampNotANumber => {
                let mut headers = honest.headers(call, 200, body);
                for (name, value) in &mut headers {
                    match (self, name.as_str()) {
                        (Forgery::SignatureWithoutV1, "x-airlock-signature") => {
                            *value = value.trim_start_matches("v1=").to_string()
                        }
                        (Forgery::SignatureNotHex, "x-airlock-signature") => *value = "v1=zz".into(),
                        (Forgery::TimestampNotANumber, "x-airlock-timestamp") => *value = format!("+{now}"),
                        _ => {}
                    }
                }
                return headers;
            }
        };
        signer.headers(call, 200, body)
    }
}

#[test]
fn forged_stale_or_unsigned_answers_are_unavailable() {
    let approved = json!({"approval_id": "apr_f", "status": "approved"}).to_string();
    let redeemed = json!({"approval_id": "apr_f", "status": "redeemed", "headers": {"authorization": "Bearer forged"}})
        .to_string();
    for forgery in Forgery::ALL {
        let mut host = wasm_support::host();
        let stream = send_export(&mut host, &export_body(), &[]);
        let create = create_call_for(&host, &stream);
        let headers = forgery.headers(&host, &create, approved.as_bytes());
        respond_raw(&mut host, &create, 200, &headers, approved.as_bytes());
        let body = assert_problem(&host, &stream, 503, "unavailable");
        assert!(body["retry_after"].is_u64(), "{forgery:?}: {body}");
        assert_eq!(approval_calls(&host).len(), 1, "{forgery:?}: no redeem after a forged approval");
        assert_eq!(metric(&host, CALLOUT_FAILURES), 1, "{forgery:?}");
        assert!(host.log_contains("approval service unusable"), "{forgery:?}: {}", host.logs_text());

        // The same forgery on a redeem answer carrying a credential.
        let mut host = wasm_support::host();
        let (stream, redeem) = export_approved(&mut host, "apr_f");
        let headers = forgery.headers(&host, &redeem, redeemed.as_bytes());
        respond_raw(&mut host, &redeem, 200, &headers, redeemed.as_bytes());
        assert_problem(&host, &stream, 503, "unavailable");
        assert_eq!(metric(&host, INJECTED), 0, "{forgery:?}");
    }
}

/// Signed when the call came in, delivered after the host clock moved on by more than
/// 60 s (a long hold keeps the callout open): stale on arrival.
#[test]
fn an_answer_that_arrives_more_than_60s_after_it_was_signed_is_refused() {
    let mut cfg = config();
    cfg["approval_service"]["hold_ms"] = json!(120_000);
    for (delay_s, accepted) in [(60, true), (61, false)] {
        let mut host = host_with(&cfg);
        let stream = send_export(&mut host, &export_body(), &[]);
        let create = create_call_for(&host, &stream);
        let body = json!({"approval_id": "apr_late", "status": "pending"}).to_string();
        let headers = Signer::service(&host).headers(&create, 200, body.as_bytes());
        host.advance_time(Duration::from_secs(delay_s)).unwrap();
        assert!(stream.is_paused(), "held for {delay_s} s: {:?}", stream.outcome());
        respond_raw(&mut host, &create, 200, &headers, body.as_bytes());
        if accepted {
            assert_problem(&host, &stream, 403, "approval-pending");
        } else {
            assert_problem(&host, &stream, 503, "unavailable");
        }
    }
}

#[test]
fn an_answer_recorded_for_another_request_is_refused() {
    let mut host = wasm_support::host();
    let a = send_export(&mut host, &export_body(), &[]);
    let b = send_export(&mut host, &json!({"format": "csv", "customer": {"ssn": "1"}}), &[]);
    let call_a = create_call_for(&host, &a);
    let call_b = create_call_for(&host, &b);
    assert_ne!(call_a.header("x-airlock-signature"), call_b.header("x-airlock-signature"));
    // A genuine "approved" the service signed for B, replayed as the answer to A.
    let approved = json!({"approval_id": "apr_b", "status": "approved"}).to_string();
    let for_b = Signer::service(&host).headers(&call_b, 200, approved.as_bytes());
    respond_raw(&mut host, &call_a, 200, &for_b, approved.as_bytes());
    assert_problem(&host, &a, 503, "unavailable");
    // B itself is unaffected and still waits for its own answer.
    assert!(b.is_paused());
    respond_raw(&mut host, &call_b, 200, &for_b, approved.as_bytes());
    let redeem_b = the_pending(&host, &redeem_path("apr_b"));
    assert_eq!(redeem_b.context_id, b.id());

    // A genuine credential answer for B's redeem cannot be replayed to another redeem.
    let c = send_export(&mut host, &json!({"format": "csv", "n": 3}), &[]);
    let call_c = create_call_for(&host, &c);
    respond(&mut host, &call_c, 200, &json!({"approval_id": "apr_c", "status": "approved"}));
    let redeem_c = the_pending(&host, &redeem_path("apr_c"));
    let credential =
        json!({"approval_id": "apr_b", "status": "redeemed", "headers": {"authorization": "Bearer for-b"}}).to_string();
    let signed_for_b = Signer::service(&host).headers(&redeem_b, 200, credential.as_bytes());
    respond_raw(&mut host, &redeem_c, 200, &signed_for_b, credential.as_bytes());
    assert_problem(&host, &c, 503, "unavailable");
    respond_raw(&mut host, &redeem_b, 200, &signed_for_b, credential.as_bytes());
    assert_reached_upstream(&host, &b);
    assert_eq!(b.header("authorization").as_deref(), Some("Bearer for-b"));
}

// ----- the service fails -----

#[test]
fn create_call_failures_fail_closed() {
    #[derive(Debug)]
    enum Failure {
        Reset,
        Timeout,
        Unreachable,
        ClockPastTimeout,
        Status(u16),
        Body(&'static str),
    }
    let failures = [
        Failure::Reset,
        Failure::Timeout,
        Failure::Unreachable,
        Failure::ClockPastTimeout,
        Failure::Status(500),
        Failure::Status(503),
        Failure::Status(401),
        Failure::Status(201),
        Failure::Body("not json"),
        Failure::Body(""),
        Failure::Body(r#"{"approval_id": "apr_1", "status": "maybe"}"#),
        Failure::Body(r#"{"status": "approved"}"#),
        Failure::Body(r#"{"approval_id": "../admin", "status": "approved"}"#),
        Failure::Body(r#"{"approval_id": "", "status": "approved"}"#),
        Failure::Body(r#"["approved"]"#),
    ];
    for failure in &failures {
        let mut host = wasm_support::host();
        let stream = send_export(&mut host, &export_body(), &[]);
        let create = create_call_for(&host, &stream);
        match failure {
            Failure::Reset => host.fail_callout(create.token).unwrap(),
            Failure::Timeout => host.fail_callout_with(create.token, CalloutFailure::Timeout).unwrap(),
            Failure::Unreachable => host.fail_callout_with(create.token, CalloutFailure::Unreachable).unwrap(),
            Failure::ClockPastTimeout => {
                host.advance_time(Duration::from_millis(TIMEOUT_MS - 1)).unwrap();
                assert!(stream.is_paused(), "still within the timeout");
                host.advance_time(Duration::from_millis(1)).unwrap();
            }
            Failure::Status(code) => {
                respond(&mut host, &create, *code, &json!({"approval_id": "apr_1", "status": "approved"}))
            }
            Failure::Body(text) => {
                let signer = Signer::service(&host);
                respond_signed(&mut host, &create, &signer, 200, text.as_bytes());
            }
        }
        let body = assert_problem(&host, &stream, 503, "unavailable");
        assert_eq!(body["retry_after"], RETRY_AFTER_S, "{failure:?}");
        assert_eq!(local_reply(&host, &stream).header("retry-after"), Some(RETRY_AFTER_S.to_string()), "{failure:?}");
        assert_eq!(approval_calls(&host).len(), 1, "{failure:?}: nothing after the failure");
        assert_eq!(metric(&host, CALLOUT_FAILURES), 1, "{failure:?}");
        assert!(!host.is_failed(), "{failure:?}: {:?}", host.failure());
        // The worker keeps serving.
        let next = send_get(&mut host, HOST, "/v1/reports");
        assert_reached_upstream(&host, &next);
    }
}

#[test]
fn redeem_failures_fail_closed() {
    let bad_answers: [(u16, Value); 9] = [
        (500, json!({"status": "redeemed", "headers": {"authorization": "Bearer x"}})),
        (200, json!({"status": "pending"})),
        (200, json!({"status": "redeemed", "headers": {":path": "/admin"}})),
        (200, json!({"status": "redeemed", "headers": {":authority": "evil.example.com"}})),
        (200, json!({"status": "redeemed", "headers": {"x-airlock-agent": "spiffe://corp/agent/root"}})),
        (200, json!({"status": "redeemed", "headers": {"authorization": "Bearer a\r\nx-evil: 1"}})),
        (200, json!({"status": "redeemed", "headers": {"Authorization": "Bearer upper"}})),
        (200, json!({"status": "redeemed", "headers": {"host": "evil.example.com"}})),
        (404, json!({"status": "consumed"})),
    ];
    for (code, answer) in &bad_answers {
        let mut host = wasm_support::host();
        let (stream, redeem) = export_approved(&mut host, "apr_rf");
        respond(&mut host, &redeem, *code, answer);
        assert_problem(&host, &stream, 503, "unavailable");
        assert_eq!(metric(&host, INJECTED), 0, "{code} {answer}");
    }
    for failure in [CalloutFailure::Reset, CalloutFailure::Timeout, CalloutFailure::Unreachable] {
        let mut host = wasm_support::host();
        let (stream, redeem) = export_approved(&mut host, "apr_rf");
        host.fail_callout_with(redeem.token, failure).unwrap();
        assert_problem(&host, &stream, 503, "unavailable");
    }
    // Malformed JSON, signed.
    let mut host = wasm_support::host();
    let (stream, redeem) = export_approved(&mut host, "apr_rf");
    let signer = Signer::service(&host);
    respond_signed(&mut host, &redeem, &signer, 200, b"{\"status\": \"redeemed\",");
    assert_problem(&host, &stream, 503, "unavailable");
    // The redeem times out on the clock.
    let mut host = wasm_support::host();
    let (stream, _) = export_approved(&mut host, "apr_rf");
    host.advance_time(Duration::from_millis(TIMEOUT_MS)).unwrap();
    assert_problem(&host, &stream, 503, "unavailable");
}

#[test]
fn an_unknown_cluster_fails_closed() {
    let mut cfg = config();
    cfg["approval_service"]["cluster"] = json!("no_such_cluster");
    let options = airlock_tests::host::HostOptions { clusters: Some(vec![CLUSTER.to_string()]), ..Default::default() };
    let mut host = Host::with_options(cfg.to_string(), options).unwrap();
    assert!(host.configured(), "{}", host.logs_text());
    let stream = send_export(&mut host, &export_body(), &[]);
    assert_problem(&host, &stream, 503, "unavailable");
    assert!(!host.is_failed());
}

// ----- configuration -----

#[test]
fn bad_configurations_are_refused_with_a_log_line_that_names_the_problem() {
    let mut unknown_key = config();
    unknown_key["request"]["max_body"] = json!(10);
    let mut unknown_top = config();
    unknown_top["polcy"] = json!({});
    let mut short_key = config();
    short_key["approval_service"]["signing"]["key_base64"] = json!(b64(&[7; 16]));
    let mut short_previous = config();
    short_previous["approval_service"]["signing"]["previous"]["key_base64"] = json!(b64(&[9; 31]));
    let mut not_base64 = config();
    not_base64["approval_service"]["signing"]["key_base64"] = json!("not base64 !!");
    let mut syntax = config();
    syntax["policy"]["modules"] = json!({"broken.rego": "package airlock\ndecision := {\"effect\": "});
    let mut entrypoint = config();
    entrypoint["policy"]["entrypoint"] = json!("data.airlock.verdict");
    let mut no_modules = config();
    no_modules["policy"]["modules"] = json!({});
    let mut wrong_type = config();
    wrong_type["approval_service"]["timeout_ms"] = json!("2s");
    let mut header_source = config();
    header_source["identity"] = json!({"source": "header"});
    let mut bad_source = config();
    bad_source["identity"]["source"] = json!("ip");
    let mut no_signing = config();
    no_signing["approval_service"].as_object_mut().unwrap().remove("signing");

    let cases: [(&str, Value, &[&str]); 12] = [
        ("unknown key", unknown_key, &["unknown field", "max_body"]),
        ("unknown top-level key", unknown_top, &["unknown field", "polcy"]),
        ("short key", short_key, &["approval_service.signing.key_base64", "at least 32"]),
        ("short previous key", short_previous, &["signing.previous.key_base64", "at least 32"]),
        ("key not base64", not_base64, &["key_base64", "base64"]),
        ("Rego syntax error", syntax, &["broken.rego"]),
        ("missing entrypoint", entrypoint, &["data.airlock.verdict"]),
        ("no modules", no_modules, &["policy.modules"]),
        ("wrong type", wrong_type, &["invalid type", "2s"]),
        ("header source without a header", header_source, &["identity.header"]),
        ("unknown identity source", bad_source, &["unknown variant", "ip"]),
        ("no signing keys", no_signing, &["missing field", "signing"]),
    ];
    for (what, cfg, needles) in cases {
        let mut host = Host::try_new(cfg.to_string()).unwrap();
        assert!(!host.configured(), "{what}: accepted\n{}", host.logs_text());
        assert!(!host.is_failed(), "{what}: refusing must not crash: {:?}", host.failure());
        let line = host
            .logs()
            .into_iter()
            .find(|l| l.message.contains("invalid configuration"))
            .unwrap_or_else(|| panic!("{what}: no log line says why:\n{}", host.logs_text()));
        assert!(line.level >= LogLevel::Error, "{what}: {line}");
        for needle in needles {
            assert!(line.message.contains(needle), "{what}: `{needle}` not in: {}", line.message);
        }
        // Nothing goes through an unconfigured filter.
        let stream = send_get(&mut host, HOST, "/v1/reports");
        assert_blocked(&host, &stream);
    }
    for not_json in ["", "{", "[]", "null"] {
        let host = Host::try_new(not_json).unwrap();
        assert!(!host.configured(), "{not_json:?} accepted");
        assert!(host.log_contains("invalid configuration"), "{}", host.logs_text());
    }
}

#[test]
fn a_refused_reconfiguration_keeps_the_previous_policy() {
    let mut host = wasm_support::host();
    let mut bad = config();
    bad["policy"]["modules"] = json!({"x.rego": "package airlock\ndecision := {"});
    assert!(!host.configure(bad.to_string()).unwrap());
    // Whatever the filter does after a refused update, it never lets a deny through.
    let stream =
        host.request().method("DELETE").authority(HOST).path("/v1/x").header(IDENTITY_HEADER, AGENT).send().unwrap();
    assert_blocked(&host, &stream);
}

// ----- shadow mode -----

#[test]
fn shadow_mode_allows_and_records_what_the_policy_denies_or_holds() {
    let mut cfg = config();
    cfg["policy"]["mode"] = json!("shadow");
    let mut host = host_with(&cfg);
    let delete = host
        .request()
        .method("DELETE")
        .authority(HOST)
        .path("/v1/customers/42")
        .header(IDENTITY_HEADER, AGENT)
        .header("authorization", AGENT_AUTHORIZATION)
        .send()
        .unwrap();
    assert_reached_upstream(&host, &delete);
    assert_eq!(delete.header("authorization").as_deref(), Some(AGENT_AUTHORIZATION));
    let export = send_export(&mut host, &export_body(), &[]);
    assert_reached_upstream(&host, &export);
    assert!(approval_calls(&host).is_empty(), "shadow mode never asks for approval");
    let get = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &get);

    assert_eq!(metric(&host, SHADOW_ALLOW), 2);
    assert_eq!(metric(&host, ALLOW), 3);
    assert_eq!(metric(&host, DENY), 0);

    let batch = ship_decisions(&mut host);
    let records = batch["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{batch}");
    let by_rule = |rule: &str| records.iter().find(|r| r["rule"] == rule).unwrap_or_else(|| panic!("{rule}: {batch}"));
    for (rule, effect) in [("no-deletes", "deny"), ("pii-export", "approve"), ("reads", "allow")] {
        let r = by_rule(rule);
        assert_eq!(r["effect"], effect, "{r}");
        assert_eq!(r["enforced"], "allow", "{r}");
        assert_eq!(r["mode"], "shadow", "{r}");
    }
}

// ----- stats -----

#[test]
fn stats_count_each_effect() {
    let mut host = wasm_support::host();
    let all = [
        ALLOW,
        DENY,
        APPROVE,
        SHADOW_ALLOW,
        POLICY_ERRORS,
        CALLOUT_FAILURES,
        INJECTED,
        "airlock.decision_log.dropped",
        LOG_SHIP_FAILURES,
    ];
    for name in all {
        assert_eq!(host.metric(name), Some(0), "{name} defined at configure time");
    }
    assert_eq!(host.histogram(EVAL_TIME).map(|v| v.len()), Some(0));

    let get = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &get);
    let get2 = send_get(&mut host, HOST, "/v1/reports/2");
    assert_reached_upstream(&host, &get2);
    let delete =
        host.request().method("DELETE").authority(HOST).path("/v1/x").header(IDENTITY_HEADER, AGENT).send().unwrap();
    assert_blocked(&host, &delete);
    let (approved, redeem) = export_approved(&mut host, "apr_s1");
    respond(&mut host, &redeem, 200, &json!({"status": "redeemed", "headers": {"authorization": "Bearer s"}}));
    assert_reached_upstream(&host, &approved);
    let failed = send_export(&mut host, &export_body(), &[]);
    let create = create_call_for(&host, &failed);
    host.fail_callout(create.token).unwrap();
    assert_blocked(&host, &failed);
    let malformed = send_get(&mut host, HOST, "/v1/malformed");
    assert_blocked(&host, &malformed);
    let anonymous = host.request().method("GET").authority(HOST).path("/v1/reports").send().unwrap();
    assert_blocked(&host, &anonymous);

    assert_eq!(metric(&host, ALLOW), 2);
    // DELETE, the policy error, the request without identity.
    assert_eq!(metric(&host, DENY), 3);
    assert_eq!(metric(&host, APPROVE), 2);
    assert_eq!(metric(&host, POLICY_ERRORS), 1);
    assert_eq!(metric(&host, CALLOUT_FAILURES), 1);
    assert_eq!(metric(&host, INJECTED), 1);
    assert_eq!(metric(&host, SHADOW_ALLOW), 0);
    // Every policy evaluation is timed; the refusal without identity ran no policy, and
    // the second export (the same request as the first) came from the decision cache.
    assert_eq!(host.histogram(EVAL_TIME).map(|v| v.len()), Some(5));
    assert_eq!(metric(&host, "airlock.decision_cache.hits"), 1);
}

// ----- policy errors -----

#[test]
fn policy_errors_and_malformed_decisions_deny() {
    let mut host = wasm_support::host();
    // (method, path, what, any of these in the detail)
    let cases: [(&str, &str, &str, &[&str]); 3] = [
        ("GET", "/v1/malformed", "malformed decision", &["malformed policy decision"]),
        // OPA raises a conflict error; regorus's RVM yields undefined. Both deny.
        ("PATCH", "/v1/reports", "conflicting rules", &["policy produced no decision", "evaluation failed"]),
        ("GET", "/v1/expensive", "instruction budget", &["instruction limit"]),
    ];
    for (i, (method, path, what, details)) in cases.iter().enumerate() {
        let stream =
            host.request().method(method).authority(HOST).path(path).header(IDENTITY_HEADER, AGENT).send().unwrap();
        let body = assert_problem(&host, &stream, 403, "denied");
        assert_eq!(body["rule"], "airlock.policy-error", "{what}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(details.iter().any(|d| detail.contains(d)), "{what}: {detail}");
        assert_eq!(metric(&host, POLICY_ERRORS), i as u64 + 1, "{what}");
        assert!(!host.is_failed(), "{what}: {:?}", host.failure());
    }
    assert!(approval_calls(&host).is_empty());
    let batch = ship_decisions(&mut host);
    let records = batch["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r["rule"] == "airlock.policy-error" && r["enforced"] == "deny"));
}

#[test]
fn an_undefined_decision_denies() {
    let mut cfg = config();
    cfg["policy"]["modules"] = json!({"airlock.rego": "package airlock\n\
        import rego.v1\n\
        decision := {\"effect\": \"allow\", \"rule\": \"only-health\"} if input.request.path == \"/health\"\n"});
    let mut host = host_with(&cfg);
    let ok = send_get(&mut host, HOST, "/health");
    assert_reached_upstream(&host, &ok);
    let stream = send_get(&mut host, HOST, "/v1/reports");
    let body = assert_problem(&host, &stream, 403, "denied");
    assert_eq!(body["rule"], "airlock.policy-error");
    assert_eq!(metric(&host, POLICY_ERRORS), 1);
}

#[test]
fn a_wrong_shape_of_decision_denies() {
    for decision in [
        r#""allow""#,
        "true",
        r#"{"effect": "ALLOW"}"#,
        r#"{"effect": "allow", "extra": 1}"#,
        r#"{"effect": "approve", "hold": "a while"}"#,
        r#"{"effect": "approve", "redact": ["agent.id"]}"#,
        r#"{"effect": "approve", "approvers": {"quorum": 0}}"#,
        r#"[{"effect": "allow"}]"#,
    ] {
        let mut cfg = config();
        cfg["policy"]["modules"] = json!({"airlock.rego": format!("package airlock\ndecision := {decision}\n")});
        let mut host = host_with(&cfg);
        let stream = send_get(&mut host, HOST, "/v1/reports");
        let body = assert_problem(&host, &stream, 403, "denied");
        assert_eq!(body["rule"], "airlock.policy-error", "{decision}");
        let export = send_export(&mut host, &export_body(), &[]);
        assert_problem(&host, &export, 403, "denied");
        assert!(approval_calls(&host).is_empty(), "{decision}");
    }
}

// ----- the VM stays healthy -----

#[test]
fn many_requests_leave_no_paused_stream_and_no_anomaly() {
    let mut host = wasm_support::host();
    let mut streams = Vec::new();
    for i in 0..20 {
        let s = match i % 4 {
            0 => send_get(&mut host, HOST, &format!("/v1/reports/{i}")),
            1 => host
                .request()
                .method("DELETE")
                .authority(HOST)
                .path("/v1/x")
                .header(IDENTITY_HEADER, AGENT)
                .send()
                .unwrap(),
            2 => export_answered(&mut host, json!({"approval_id": format!("apr_{i}"), "status": "pending"})),
            _ => {
                let (s, redeem) = export_approved(&mut host, &format!("apr_{i}"));
                respond(
                    &mut host,
                    &redeem,
                    200,
                    &json!({"status": "redeemed", "headers": {"authorization": "Bearer z"}}),
                );
                s
            }
        };
        assert!(!s.is_paused(), "request {i}: {:?}", s.outcome());
        assert!(s.anomalies().is_empty(), "request {i}: {:?}", s.anomalies());
        assert!(!matches!(s.outcome(), Outcome::Failed { .. }));
        host.finish(&s).unwrap();
        streams.push(s);
    }
    assert_eq!(streams.iter().filter(|s| s.reached_upstream()).count(), 10);
    assert!(!host.is_failed());
    assert!(pending_to(&host, APPROVALS).is_empty(), "{:?}", host.pending_callouts());
}
