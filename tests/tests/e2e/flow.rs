//! End to end through the real Envoy and the real filter (`envoy/demo.yaml`, rendered):
//! allow, deny, approve (pending → approved → redeemed with a minted credential), hold,
//! service outages and forged answers, and the decision log.
//!
//! Needs `bash scripts/setup.sh` (Envoy) and the built filter
//! (`cargo build -p airlock-filter-wasm --target wasm32-wasip1 --release`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::thread;
use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::Request;
use airlock_tests::e2e::fake_service::{AnswerSigning, ApprovalStatus, FakeService};
use airlock_tests::e2e::gateway::Gateway;
use airlock_tests::e2e::plugin::{service_keys, PluginOptions, APPROVAL_HEADER, APPROVE_PATH};
use airlock_tests::e2e::upstream::RecordingUpstream;
use e2e_support::*;
use serde_json::{json, Value};

/// How long a held request may wait (config `approval_service.hold_ms`).
const HOLD_MS: u64 = 10_000;

struct Fixture {
    upstream: RecordingUpstream,
    service: FakeService,
    /// `hold_ms: 0`: pending answers come at once.
    gw: Gateway,
    /// `hold_ms: HOLD_MS`: requests wait for the reviewer.
    held: Gateway,
}

#[test]
fn flow() {
    let wasm = filter_module();
    let upstream = RecordingUpstream::http("upstream").unwrap();
    let service = FakeService::start(service_keys().unwrap()).unwrap();
    let at_once = PluginOptions::default();
    let holding = PluginOptions { hold_ms: HOLD_MS, ..PluginOptions::default() };
    let mut gws = start_gateways(vec![
        ("flow", "demo.yaml", vars(&wasm, &at_once, upstream.port(), service.port())),
        ("flow-held", "demo.yaml", vars(&wasm, &holding, upstream.port(), service.port())),
    ]);
    let held = gws.pop().unwrap();
    let gw = gws.pop().unwrap();
    let fx = Fixture { upstream, service, gw, held };
    let all: &[Case<Fixture>] = &[
        ("allow_reaches_upstream", allow_reaches_upstream),
        ("deny_is_problem_json", deny_is_problem_json),
        ("no_identity_is_denied", no_identity_is_denied),
        ("approve_is_pending_and_deduplicated", approve_is_pending_and_deduplicated),
        ("approved_retry_carries_minted_credential", approved_retry_carries_minted_credential),
        ("approval_header_reports_denied_and_expired", approval_header_reports_denied_and_expired),
        ("hold_resumes_when_approved", hold_resumes_when_approved),
        ("hold_ends_when_denied", hold_ends_when_denied),
        ("service_down_is_unavailable", service_down_is_unavailable),
        ("slow_service_is_unavailable", slow_service_is_unavailable),
        ("forged_answers_are_unavailable", forged_answers_are_unavailable),
        ("previous_key_answers_are_accepted", previous_key_answers_are_accepted),
        ("malformed_redeem_is_unavailable", malformed_redeem_is_unavailable),
        ("redeem_refusals_map_to_problems", redeem_refusals_map_to_problems),
        ("decision_log_batches_arrive", decision_log_batches_arrive),
        ("stats_count_outcomes", stats_count_outcomes),
        ("service_saw_only_valid_calls", service_saw_only_valid_calls),
    ];
    let outcome = cases::run("e2e_flow", &fx, all, |fx| fx.service.reset_behaviour());
    outcome.unwrap();
}

fn export_body(rows: u64) -> Value {
    json!({"format": "csv", "rows": rows, "customer": {"name": "Ada", "ssn": "123-45-6789"}})
}

/// POSTs an export as `case`'s agent; expects approval-pending; returns the approval id.
fn pending_export(fx: &Fixture, case: &str, body: &Value) -> String {
    let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, body), case));
    let doc = expect_problem(&resp, 403, "approval-pending");
    let id = doc["approval_id"].as_str().expect("approval_id").to_string();
    assert!(doc["retry_after"].as_u64().is_some(), "retry_after in {doc}");
    id
}

fn allow_reaches_upstream(fx: &Fixture) {
    let case = "allow";
    let resp = send(&fx.gw, &as_agent(Request::get("/v1/reports?month=11"), case).header("user-agent", "e2e"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json().unwrap()["upstream"], "upstream");
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].method, "GET");
    assert_eq!(got[0].path, "/v1/reports?month=11");
    assert!(
        got[0].header("x-airlock-agent").is_none(),
        "the gateway strips its identity header before the upstream: {:?}",
        got[0].headers
    );
}

fn deny_is_problem_json(fx: &Fixture) {
    let case = "deny";
    let resp = send(&fx.gw, &as_agent(Request::new("DELETE", "/v1/reports/7"), case));
    let doc = expect_problem(&resp, 403, "denied");
    assert!(
        doc["detail"].as_str().unwrap_or("").contains("deletes are never allowed")
            || doc.to_string().contains("deletes are never allowed"),
        "the policy's reason reaches the agent: {doc}"
    );
    expect_nothing_reached(&fx.upstream, case);
}

fn no_identity_is_denied(fx: &Fixture) {
    let case = "anonymous";
    let resp = send(&fx.gw, &tagged(Request::get("/v1/reports"), case));
    expect_problem(&resp, 403, "denied");
    expect_nothing_reached(&fx.upstream, case);
    let empty = send(&fx.gw, &tagged(Request::get("/v1/reports"), case).header("x-airlock-agent", ""));
    expect_refused(&Ok(empty), "empty identity");
    expect_nothing_reached(&fx.upstream, case);
}

fn approve_is_pending_and_deduplicated(fx: &Fixture) {
    let case = "pending";
    let body = export_body(1);
    let req =
        as_agent(Request::post_json(APPROVE_PATH, &body), case).header("authorization", "Bearer agent-own-secret");
    let first = send(&fx.gw, &req);
    let doc = expect_problem(&first, 403, "approval-pending");
    let id = doc["approval_id"].as_str().expect("approval_id").to_string();
    let retry_after = first.header("retry-after").expect("Retry-After header");
    assert!(retry_after.parse::<u64>().is_ok_and(|s| s > 0), "Retry-After {retry_after:?}");
    assert!(doc["decision_id"].is_string(), "decision_id in {doc}");
    expect_nothing_reached(&fx.upstream, case);

    // An identical retry finds the same approval: one approval, no duplicate review.
    let second = send(&fx.gw, &req);
    let doc2 = expect_problem(&second, 403, "approval-pending");
    assert_eq!(doc2["approval_id"].as_str(), Some(id.as_str()));
    let approvals = fx.service.approvals_of(&agent(case));
    assert_eq!(approvals.len(), 1, "{approvals:#?}");
    assert_eq!(approvals[0].create_calls, 2);
    expect_nothing_reached(&fx.upstream, case);

    // What the service was told: the action, redacted, without the agent's credential.
    let sent = approvals[0].create_request.to_string();
    assert!(!sent.contains("123-45-6789"), "redacted field sent: {sent}");
    assert!(!sent.contains("agent-own-secret"), "credential sent: {sent}");
    let create = &approvals[0].create_request;
    assert_eq!(create["request"]["method"], "POST");
    assert_eq!(create["request"]["path"], APPROVE_PATH);
    assert_eq!(create["policy"]["rule"], "exports");
    assert_eq!(create["agent"]["id"], agent(case).as_str());
    assert_eq!(create["hold_ms"], 0);
}

fn approved_retry_carries_minted_credential(fx: &Fixture) {
    let case = "redeem";
    let body = export_body(2);
    let req = as_agent(Request::post_json(APPROVE_PATH, &body), case)
        .header("authorization", "Bearer agent-own-secret")
        .header("x-api-key", "agent-own-api-key");
    let id = {
        let resp = send(&fx.gw, &req);
        expect_problem(&resp, 403, "approval-pending")["approval_id"].as_str().unwrap().to_string()
    };
    fx.service.approve(&id).unwrap();

    let resp = send(&fx.gw, &req);
    assert_eq!(resp.status, 200, "approved retry: {}", resp.text());
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    let up = &got[0];
    assert_eq!(
        up.header_values("authorization"),
        vec![format!("Bearer minted-{id}").as_str()],
        "only the minted credential: {:?}",
        up.headers
    );
    assert!(up.header("x-api-key").is_none(), "configured credential header stripped");
    assert!(
        !up.headers.iter().any(|(n, _)| n.starts_with("x-airlock-")),
        "no x-airlock-* header upstream: {:?}",
        up.headers
    );
    assert_eq!(serde_json::from_slice::<Value>(&up.body).unwrap(), body);
    let approval = fx.service.approval(&id).unwrap();
    assert_eq!(approval.status, ApprovalStatus::Redeemed);
    assert_eq!(approval.redeem_calls, 1);

    // Replaying the same request after it was consumed does not go through again.
    let again = send(&fx.gw, &req);
    let doc = expect_problem(&again, 403, "approval-pending");
    assert_ne!(doc["approval_id"].as_str(), Some(id.as_str()), "a new approval");
    // Naming the consumed approval explicitly does not help either.
    let named = send(&fx.gw, &req.clone().header(APPROVAL_HEADER, &id));
    expect_problem(&named, 403, "denied");
    assert_eq!(fx.upstream.heads_for(case).len(), 1, "still exactly one upstream request");
}

fn approval_header_reports_denied_and_expired(fx: &Fixture) {
    let case = "decided";
    let denied = pending_export(fx, case, &export_body(3));
    fx.service.deny(&denied).unwrap();
    let resp = send(
        &fx.gw,
        &as_agent(Request::post_json(APPROVE_PATH, &export_body(3)), case).header(APPROVAL_HEADER, &denied),
    );
    expect_problem(&resp, 403, "approval-denied");

    let expired = pending_export(fx, case, &export_body(4));
    fx.service.expire(&expired).unwrap();
    let resp = send(
        &fx.gw,
        &as_agent(Request::post_json(APPROVE_PATH, &export_body(4)), case).header(APPROVAL_HEADER, &expired),
    );
    expect_problem(&resp, 403, "approval-expired");
    expect_nothing_reached(&fx.upstream, case);
}

fn hold_resumes_when_approved(fx: &Fixture) {
    let case = "hold-approve";
    let req = as_agent(Request::post_json(APPROVE_PATH, &export_body(5)), case)
        .timeout(Duration::from_millis(HOLD_MS + 10_000));
    let addr = fx.held.addr;
    let started = Instant::now();
    let waiting = thread::spawn(move || req.send(addr));
    let approval = fx
        .service
        .wait_for_approval_of(&agent(case), Duration::from_secs(5))
        .expect("the held request creates an approval");
    assert_eq!(approval.create_request["hold_ms"], HOLD_MS);
    thread::sleep(Duration::from_millis(500));
    assert!(!waiting.is_finished(), "the request is held while the approval is pending");
    expect_nothing_reached(&fx.upstream, case);

    fx.service.approve(&approval.id).unwrap();
    let resp = waiting.join().unwrap().unwrap();
    assert_eq!(resp.status, 200, "held request after approval: {}", resp.text());
    assert!(
        started.elapsed() < Duration::from_millis(HOLD_MS),
        "answered when approved, not at the end of the hold ({:?})",
        started.elapsed()
    );
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].header("authorization"), Some(format!("Bearer minted-{}", approval.id).as_str()));
}

fn hold_ends_when_denied(fx: &Fixture) {
    let case = "hold-deny";
    let req = as_agent(Request::post_json(APPROVE_PATH, &export_body(6)), case)
        .timeout(Duration::from_millis(HOLD_MS + 10_000));
    let addr = fx.held.addr;
    let waiting = thread::spawn(move || req.send(addr));
    let approval = fx
        .service
        .wait_for_approval_of(&agent(case), Duration::from_secs(5))
        .expect("the held request creates an approval");
    thread::sleep(Duration::from_millis(300));
    fx.service.deny(&approval.id).unwrap();
    let resp = waiting.join().unwrap().unwrap();
    expect_problem(&resp, 403, "approval-denied");
    expect_nothing_reached(&fx.upstream, case);
}

fn service_down_is_unavailable(fx: &Fixture) {
    let case = "service-down";
    fx.service.set_down(true);
    let started = Instant::now();
    let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, &export_body(7)), case));
    expect_problem(&resp, 503, "unavailable");
    assert!(started.elapsed() < Duration::from_secs(10), "failed fast: {:?}", started.elapsed());
    // A held request fails closed too.
    let resp = send(&fx.held, &as_agent(Request::post_json(APPROVE_PATH, &export_body(7)), case));
    expect_problem(&resp, 503, "unavailable");
    expect_nothing_reached(&fx.upstream, case);
    // Allow and deny do not need the service.
    let resp = send(&fx.gw, &as_agent(Request::get("/v1/while-down"), case));
    assert_eq!(resp.status, 200, "allow works without the service: {}", resp.text());
    fx.service.set_down(false);
}

fn slow_service_is_unavailable(fx: &Fixture) {
    let case = "service-slow";
    fx.service.set_delay(Duration::from_secs(4));
    let started = Instant::now();
    let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, &export_body(8)), case));
    expect_problem(&resp, 503, "unavailable");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_millis(3900),
        "answered at the callout timeout (1.5 s), took {took:?}"
    );
    expect_nothing_reached(&fx.upstream, case);
}

fn forged_answers_are_unavailable(fx: &Fixture) {
    for mode in
        [AnswerSigning::WrongKey, AnswerSigning::Unsigned, AnswerSigning::Stale, AnswerSigning::BoundToOtherRequest]
    {
        let case = format!("forged-{mode:?}").to_lowercase();
        fx.service.set_answer_signing(mode);
        let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, &export_body(9)), &case));
        assert_eq!(resp.status, 503, "{mode:?}: {}", resp.text());
        expect_problem(&resp, 503, "unavailable");
        expect_nothing_reached(&fx.upstream, &case);
    }

    // A forged "approved" must not let an approved request through either: approve for
    // real, then forge the answers to the retry.
    let case = "forged-approved";
    fx.service.set_answer_signing(AnswerSigning::Valid);
    let id = pending_export(fx, case, &export_body(10));
    fx.service.approve(&id).unwrap();
    fx.service.set_answer_signing(AnswerSigning::WrongKey);
    let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, &export_body(10)), case));
    expect_problem(&resp, 503, "unavailable");
    expect_nothing_reached(&fx.upstream, case);
}

fn previous_key_answers_are_accepted(fx: &Fixture) {
    let case = "previous-key";
    fx.service.set_answer_signing(AnswerSigning::PreviousKey);
    pending_export(fx, case, &export_body(11));
    expect_nothing_reached(&fx.upstream, case);
}

fn malformed_redeem_is_unavailable(fx: &Fixture) {
    let case = "bad-redeem";
    let id = pending_export(fx, case, &export_body(12));
    fx.service.approve(&id).unwrap();
    let req = as_agent(Request::post_json(APPROVE_PATH, &export_body(12)), case);
    for headers in [
        json!({":authority": "evil.example"}),
        json!({"Authorization": "Bearer upper-case-name"}),
        json!({"bad header": "x"}),
    ] {
        fx.service
            .set_redeem_override(Some((200, json!({"approval_id": id, "status": "redeemed", "headers": headers}))));
        let resp = send(&fx.gw, &req);
        assert_eq!(resp.status, 503, "headers {headers}: {}", resp.text());
        expect_problem(&resp, 503, "unavailable");
        expect_nothing_reached(&fx.upstream, case);
    }
    // A redeem that failed did not consume anything: the real one still works.
    fx.service.set_redeem_override(None);
    let resp = send(&fx.gw, &req);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

fn redeem_refusals_map_to_problems(fx: &Fixture) {
    let case = "redeem-refused";
    let id = pending_export(fx, case, &export_body(13));
    fx.service.approve(&id).unwrap();
    let req = as_agent(Request::post_json(APPROVE_PATH, &export_body(13)), case);
    for (status, word, kind) in [
        (409, "consumed", "denied"),
        (409, "mismatch", "denied"),
        (409, "not_approved", "denied"),
        (410, "expired", "approval-expired"),
    ] {
        fx.service.set_redeem_override(Some((status, json!({"status": word}))));
        let resp = send(&fx.gw, &req);
        expect_problem(&resp, 403, kind);
    }
    expect_nothing_reached(&fx.upstream, case);
}

fn decision_log_batches_arrive(fx: &Fixture) {
    let case = "decision-log";
    let who = agent(case);
    assert_eq!(send(&fx.gw, &as_agent(Request::get("/v1/logged"), case)).status, 200);
    assert_eq!(send(&fx.gw, &as_agent(Request::new("DELETE", "/v1/logged"), case)).status, 403);
    let allow = fx
        .service
        .wait_for_decision(|r| r["agent"] == who.as_str() && r["effect"] == "allow", Duration::from_secs(10))
        .expect("an allow record for this agent");
    assert_eq!(allow["enforced"], "allow");
    assert_eq!(allow["mode"], "enforce");
    assert_eq!(allow["rule"], "reads");
    assert_eq!(allow["policy_revision"], "e2e-1");
    assert_eq!(allow["method"], "GET");
    assert_eq!(allow["path"], "/v1/logged");
    assert!(allow["decision_id"].is_string(), "{allow}");
    assert!(allow["time_ms"].as_u64().is_some(), "{allow}");
    assert_eq!(allow["digest"].as_str().map(str::len), Some(64), "{allow}");
    let deny = fx
        .service
        .wait_for_decision(|r| r["agent"] == who.as_str() && r["effect"] == "deny", Duration::from_secs(10))
        .expect("a deny record for this agent");
    assert_eq!(deny["enforced"], "deny");
    assert_eq!(deny["rule"], "no-deletes");
    for batch in fx.service.decision_batches() {
        assert!(batch["dropped"].as_u64().is_some(), "{batch}");
        assert!(batch["records"].as_array().is_some_and(|r| r.len() <= 64), "{batch}");
    }
}

fn stats_count_outcomes(fx: &Fixture) {
    let stats = fx.gw.envoy.stats("wasmcustom\\.airlock").unwrap();
    let get = |name: &str| stats.get(&format!("wasmcustom.airlock.{name}")).copied();
    assert!(get("decisions.allow").is_some_and(|n| n > 0), "{stats:#?}");
    assert!(get("decisions.deny").is_some_and(|n| n > 0), "{stats:#?}");
    assert!(get("decisions.approve").is_some_and(|n| n > 0), "{stats:#?}");
    assert!(get("callout.failures").is_some_and(|n| n > 0), "{stats:#?}");
    assert!(get("credentials.injected").is_some_and(|n| n > 0), "{stats:#?}");
}

fn service_saw_only_valid_calls(fx: &Fixture) {
    let rejected = fx.service.rejected_calls();
    assert!(rejected.is_empty(), "calls the service refused: {rejected:#?}");
    let violations = fx.service.violations();
    assert!(violations.is_empty(), "protocol violations: {violations:#?}");
    let calls = fx.service.calls();
    assert!(calls.iter().all(|c| c.key_id.as_deref() == Some("e2e-k2")), "every call signed with the current key");
}
