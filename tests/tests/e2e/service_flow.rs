//! The whole flow with the REAL approval service (`airlock serve`, SQLite) behind real
//! Envoy and the real filter (`envoy/demo.yaml`, cluster `airlock_approval` pointed at
//! the service): allow/deny land in the audit trail; approvals are decided through the
//! CLI and the reviewer API; the approved retry carries a minted JWT the test verifies;
//! hold mode; every refusal (replay, changed action, expiry, self-approval, duplicate
//! vote); `airlock audit verify` passes, and fails after a one-byte edit.
//!
//! Needs `bash scripts/setup.sh` (Envoy), the filter
//! (`cargo build -p airlock-filter-wasm --target wasm32-wasip1 --release`) and the service
//! (`cargo build -p airlock-approval-svc`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::Response;
use airlock_tests::e2e::gateway::Gateway;
use airlock_tests::e2e::plugin::APPROVAL_HEADER;
use airlock_tests::e2e::service::{self, approval_id_of, status_of, AirlockService, ServiceOptions};
use airlock_tests::e2e::upstream::RecordingUpstream;
use e2e_support::real::*;
use e2e_support::*;
use serde_json::Value;

/// `approval_service.hold_ms` of the holding gateway.
const HOLD_MS: u64 = 8_000;

struct Fixture {
    upstream: RecordingUpstream,
    svc: Mutex<AirlockService>,
    /// `hold_ms: 0`.
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
fn service_flow() {
    let started = Instant::now();
    let wasm = filter_module();
    let svc = start_service("flow");
    let upstream = RecordingUpstream::http("upstream").unwrap();
    let mut gws = start_gateways(vec![
        ("svc-flow", "demo.yaml", real_vars(&wasm, &plugin(0), upstream.port(), svc.port())),
        ("svc-flow-held", "demo.yaml", real_vars(&wasm, &plugin(HOLD_MS), upstream.port(), svc.port())),
    ]);
    eprintln!("[e2e_service_flow] setup {:.1?}", started.elapsed());
    let held = gws.pop().unwrap();
    let gw = gws.pop().unwrap();
    let fx = Fixture { upstream, svc: Mutex::new(svc), gw, held };
    let all: &[Case<Fixture>] = &[
        ("allow_and_deny_are_audited", allow_and_deny_are_audited),
        ("approve_via_cli_and_api_mints_credential", approve_via_cli_and_api_mints_credential),
        ("hold_completes_on_approve", hold_completes_on_approve),
        ("replay_after_consumption", replay_after_consumption),
        ("changed_action_is_refused", changed_action_is_refused),
        ("expired_approval_is_refused", expired_approval_is_refused),
        ("self_approval_is_refused", self_approval_is_refused),
        ("quorum_counts_distinct_humans", quorum_counts_distinct_humans),
        ("pending_latency", pending_latency),
        // Last: stops the service and edits its database.
        ("audit_verify_and_tamper", audit_verify_and_tamper),
    ];
    let outcome = cases::run("e2e_service_flow", &fx, all, |_| {});
    eprintln!("[e2e_service_flow] total {:.1?}", started.elapsed());
    outcome.unwrap();
}

/// A runaway agent against the service's cap on pending approvals (here 2): the next new
/// action fails closed as `unavailable` and says why, nothing reaches the upstream, and
/// an identical retry of a pending action still finds its approval.
#[test]
fn pending_cap_fails_closed_and_says_why() {
    let wasm = filter_module();
    let opts = ServiceOptions { reviewers: reviewers(), max_pending_per_agent: Some(2), ..ServiceOptions::default() };
    let svc = AirlockService::start("cap", &opts).unwrap_or_else(|e| panic!("{e:#}"));
    let upstream = RecordingUpstream::http("upstream-cap").unwrap();
    let gw = start_gateways(vec![("svc-cap", "demo.yaml", real_vars(&wasm, &plugin(0), upstream.port(), svc.port()))])
        .pop()
        .unwrap();
    let export = |n: u64| post_as(OWNED_AGENT, &format!("cap-{n}"), EXPORT_PATH, &export_body("cap", n));
    let first = pending(&gw, &export(1));
    pending(&gw, &export(2));
    let resp = gw.send(&export(3)).unwrap();
    let doc = expect_problem(&resp, 503, "unavailable");
    assert!(doc["detail"].as_str().unwrap_or("").contains("waiting for review"), "{doc}");
    assert!(doc["retry_after"].as_u64().is_some(), "{doc}");
    assert_eq!(pending(&gw, &export(1)), first, "an identical retry finds its approval");
    for n in 1..=3 {
        assert!(upstream.requests_for(&format!("cap-{n}")).is_empty(), "cap-{n} reached the upstream");
    }
}

fn send_ok(gw: &Gateway, req: &airlock_tests::e2e::client::Request) -> Response {
    send(gw, req)
}

fn allow_and_deny_are_audited(fx: &Fixture) {
    let case = "svc-allow-deny";
    let who = agent(case);
    let resp = send(&fx.gw, &as_agent(airlock_tests::e2e::client::Request::get("/v1/reports?month=11"), case));
    assert_eq!(resp.status, 200, "allowed: {}", resp.text());
    assert_eq!(fx.upstream.requests_for(case).len(), 1);
    let resp = send(&fx.gw, &as_agent(airlock_tests::e2e::client::Request::new("DELETE", "/v1/reports/7"), case));
    expect_problem(&resp, 403, "denied");
    assert_eq!(fx.upstream.heads_for(case).len(), 1, "the delete never reached the upstream");

    let svc = fx.svc();
    let records = audit_until(&svc, "allow and deny decisions", Duration::from_secs(15), |r| {
        service::records_mentioning(r, "decision", &who).len() >= 2
    });
    let mine = service::records_mentioning(&records, "decision", &who);
    let text: Vec<String> = mine.iter().map(|r| r.to_string()).collect();
    assert!(text.iter().any(|t| t.contains("\"allow\"") && t.contains("reads")), "an allow decision record: {text:#?}");
    assert!(
        text.iter().any(|t| t.contains("\"deny\"") && t.contains("no-deletes")),
        "a deny decision record: {text:#?}"
    );
}

fn approve_via_cli_and_api_mints_credential(fx: &Fixture) {
    let case = "svc-approve";
    let who = agent(case);
    let mut seen: Vec<Response> = Vec::new();
    let req_a =
        post_as(&who, case, EXPORT_PATH, &export_body(case, 1)).header("authorization", "Bearer agent-own-secret");
    let first = send_ok(&fx.gw, &req_a);
    let id_a = expect_pending(&first);
    seen.push(first);
    assert!(id_a.starts_with("apr_"), "approval id {id_a}");

    // An identical retry before anyone decided finds the same approval.
    let again = send_ok(&fx.gw, &req_a);
    assert_eq!(expect_pending(&again), id_a, "deduplicated on (agent, digest)");
    seen.push(again);
    expect_nothing_reached(&fx.upstream, case);

    let svc = fx.svc();
    let bob = key(&svc, BOB);
    // What a reviewer sees: the action, redacted, without the agent's credential.
    let shown = svc.show(&id_a, &bob).unwrap();
    let text = shown.to_string();
    assert!(text.contains("exports need a data owner"), "reason in {shown}");
    assert!(text.contains(&who), "agent in {shown}");
    assert!(text.contains(EXPORT_PATH) && text.contains(HOST), "action in {shown}");
    assert!(!text.contains("123-45-6789"), "redacted field shown: {shown}");
    assert!(!text.contains("agent-own-secret"), "agent credential shown: {shown}");
    assert_eq!(status_of(&shown), Some("pending"), "{shown}");
    let listed = svc.list(Some("pending"), &bob).unwrap();
    assert!(listed.iter().any(|a| approval_id_of(a) == Some(id_a.as_str())), "pending list holds {id_a}: {listed:#?}");
    let cli_list = svc.cli(&["approvals", "list", "--status", "pending"], Some(&bob)).unwrap();
    assert!(cli_list.success() && cli_list.stdout.contains(&id_a), "{cli_list}");
    let cli_show = svc.cli(&["approvals", "show", &id_a], Some(&bob)).unwrap();
    assert!(cli_show.success() && cli_show.stdout.contains(&id_a), "{cli_show}");

    // The reviewer approves with the CLI.
    let cli = svc.cli(&["approvals", "approve", &id_a, "--comment", "ok for the partner drop"], Some(&bob)).unwrap();
    assert!(cli.success(), "CLI approve: {cli}");

    let resp = send_ok(&fx.gw, &req_a);
    assert_eq!(resp.status, 200, "approved retry: {}", resp.text());
    seen.push(resp);
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    let (token_a, claims_a) = check_credential(&got[0], &who, &[BOB]);
    assert_eq!(
        serde_json::from_slice::<Value>(&got[0].body).unwrap(),
        export_body(case, 1),
        "the approved body, unchanged"
    );
    if let Some(d) = shown.get("digest").and_then(Value::as_str) {
        assert!(claims_a.to_string().contains(d), "digest claim {d} in {claims_a}");
    }

    // A second action, approved through the API.
    let req_b =
        post_as(&who, case, EXPORT_PATH, &export_body(case, 2)).header("authorization", "Bearer agent-own-secret");
    let first_b = send_ok(&fx.gw, &req_b);
    let id_b = expect_pending(&first_b);
    seen.push(first_b);
    assert_ne!(id_a, id_b, "another digest, another approval");
    let approved = approve_ok(&svc, &id_b, CAROL);
    assert!(approved.to_string().contains(&id_b), "200 with the approval: {approved}");
    let resp = send_ok(&fx.gw, &req_b);
    assert_eq!(resp.status, 200, "approved retry: {}", resp.text());
    seen.push(resp);
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 2, "{got:#?}");
    let (token_b, claims_b) = check_credential(&got[1], &who, &[CAROL]);
    assert_ne!(claims_a["jti"], claims_b["jti"], "one jti per credential");

    // The agent never saw a credential.
    for r in &seen {
        let all = format!("{:?}{}", r.headers, r.text());
        for t in [&token_a, &token_b] {
            let sig = t.rsplit('.').next().unwrap_or("");
            assert!(!all.contains(sig), "credential in an answer to the agent: {all}");
        }
        assert!(!all.contains(service::CREDENTIAL_SECRET), "secret leaked: {all}");
    }
    let shown = svc.show(&id_a, &bob).unwrap();
    assert!(is_redeemed(&shown) || status_of(&shown) == Some("approved"), "redeemed: {shown}");

    // Audit: created, review, approved, redeemed, credential minted (without the secret).
    let records = audit_until(&svc, "the approval's life", Duration::from_secs(10), |r| {
        ["approval.created", "review", "approval.approved", "approval.redeemed", "credential.minted"]
            .iter()
            .all(|k| !service::records_mentioning(r, k, &id_a).is_empty())
    });
    for r in service::records_mentioning(&records, "credential.minted", &id_a) {
        let t = r.to_string();
        assert!(!t.contains(token_a.rsplit('.').next().unwrap_or("")), "token in audit: {t}");
        assert!(!t.contains(service::CREDENTIAL_SECRET), "secret in audit: {t}");
    }
    let reviews = service::records_mentioning(&records, "review", &id_a);
    assert!(reviews.iter().any(|r| r.to_string().contains(BOB)), "the review names who: {reviews:#?}");
}

fn hold_completes_on_approve(fx: &Fixture) {
    let case = "svc-hold";
    let who = agent(case);
    let req = post_as(&who, case, EXPORT_PATH, &export_body(case, 1)).timeout(Duration::from_millis(HOLD_MS + 10_000));
    let addr = fx.held.addr;
    let started = Instant::now();
    let waiting = thread::spawn(move || {
        let r = req.send(addr);
        (r, Instant::now())
    });
    let svc = fx.svc();
    let bob = key(&svc, BOB);
    let mut id = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while id.is_none() && Instant::now() < deadline {
        id = find_in_list(&svc.list(Some("pending"), &bob).unwrap(), &who);
        if id.is_none() {
            thread::sleep(Duration::from_millis(50));
        }
    }
    let id = id.expect("the held request created a pending approval");
    thread::sleep(Duration::from_millis(400));
    assert!(!waiting.is_finished(), "held while pending");
    expect_nothing_reached(&fx.upstream, case);
    approve_ok(&svc, &id, BOB);
    let approved_at = Instant::now();
    let (resp, answered_at) = waiting.join().unwrap();
    let resp = resp.unwrap();
    assert_eq!(resp.status, 200, "held request after approval: {}", resp.text());
    let lag = answered_at.saturating_duration_since(approved_at);
    eprintln!(
        "[e2e_service_flow] hold: answered {lag:.1?} after the approve returned (held {:.1?})",
        answered_at - started
    );
    assert!(lag < Duration::from_secs(2), "completed the moment it was approved: {lag:?}");
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1);
    check_credential(&got[0], &who, &[BOB]);
}

fn replay_after_consumption(fx: &Fixture) {
    let case = "svc-replay";
    let who = agent(case);
    let req = post_as(&who, case, EXPORT_PATH, &export_body(case, 1));
    let id = pending(&fx.gw, &req);
    {
        let svc = fx.svc();
        approve_ok(&svc, &id, BOB);
    }
    let resp = send_ok(&fx.gw, &req);
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Identical replay: a new approval, nothing upstream.
    let replay = send_ok(&fx.gw, &req);
    let new_id = expect_pending(&replay);
    assert_ne!(new_id, id, "a consumed approval is not reused");
    // Naming the consumed approval: redeem refused (409 consumed → denied).
    let named = send_ok(&fx.gw, &req.clone().header(APPROVAL_HEADER, &id));
    expect_problem(&named, 403, "denied");
    assert_eq!(fx.upstream.heads_for(case).len(), 1, "exactly one reached the upstream");
}

fn changed_action_is_refused(fx: &Fixture) {
    let case = "svc-changed";
    let variant_case = "svc-changed-variant";
    let who = agent(case);
    let body = export_body(case, 1);
    let req = post_as(&who, case, EXPORT_PATH, &body);
    let id = pending(&fx.gw, &req);
    {
        let svc = fx.svc();
        approve_ok(&svc, &id, BOB);
    }
    let variants = vec![
        ("body", post_as(&who, variant_case, EXPORT_PATH, &export_body(case, 2))),
        ("method", {
            airlock_tests::e2e::client::Request::new("PUT", EXPORT_PATH)
                .header("content-type", "application/json")
                .header("host", HOST)
                .header(airlock_tests::e2e::plugin::IDENTITY_HEADER, &who)
                .header(airlock_tests::e2e::upstream::CASE_HEADER, variant_case)
                .body(body.to_string().into_bytes())
        }),
        ("path", post_as(&who, variant_case, "/v1/exports/all", &body)),
        ("query", post_as(&who, variant_case, "/v1/exports?full=1", &body)),
        ("host", {
            airlock_tests::e2e::client::Request::post_json(EXPORT_PATH, &body)
                .header("host", "other.e2e.test")
                .header(airlock_tests::e2e::plugin::IDENTITY_HEADER, &who)
                .header(airlock_tests::e2e::upstream::CASE_HEADER, variant_case)
        }),
    ];
    for (what, v) in &variants {
        for named in [false, true] {
            let r = if named { v.clone().header(APPROVAL_HEADER, &id) } else { v.clone() };
            let resp = send_ok(&fx.gw, &r);
            assert!(
                resp.status == 403
                    && matches!(
                        resp.problem_type().as_deref(),
                        Some("urn:airlock:problem:denied" | "urn:airlock:problem:approval-pending")
                    ),
                "changed {what} (approval named: {named}) must be refused: {} {}",
                resp.status,
                resp.text()
            );
            if named {
                assert_eq!(
                    resp.problem_type().as_deref(),
                    Some("urn:airlock:problem:denied"),
                    "changed {what} naming {id}: mismatch → denied: {}",
                    resp.text()
                );
            }
        }
    }
    expect_nothing_reached(&fx.upstream, variant_case);
    // The approval was not spent by the attempts: the original goes through once.
    let resp = send_ok(&fx.gw, &req);
    assert_eq!(resp.status, 200, "the approved action itself: {}", resp.text());
    assert_eq!(fx.upstream.heads_for(case).len(), 1);
}

fn expired_approval_is_refused(fx: &Fixture) {
    let case = "svc-expired";
    let who = agent(case);
    // (a) Nobody decided in time: a late approve is refused, the agent gets expired.
    let req_a = post_as(&who, case, SHORT_PATH, &export_body(case, 1));
    let id_a = pending(&fx.gw, &req_a);
    // (b) Approved in time but not used in time.
    let req_b = post_as(&who, case, SHORT_PATH, &export_body(case, 2));
    let id_b = pending(&fx.gw, &req_b);
    {
        let svc = fx.svc();
        approve_ok(&svc, &id_b, BOB);
    }
    thread::sleep(SHORT_EXPIRY + Duration::from_millis(700));
    {
        let svc = fx.svc();
        let late = svc.approve(&id_a, &key(&svc, BOB)).unwrap();
        expect_api_problem(&late, 410, "approval-expired", "approve after the deadline");
        let shown = svc.show(&id_a, &key(&svc, BOB)).unwrap();
        assert_eq!(status_of(&shown), Some("expired"), "{shown}");
    }
    let resp = send_ok(&fx.gw, &req_a.clone().header(APPROVAL_HEADER, &id_a));
    expect_problem(&resp, 403, "approval-expired");
    let resp = send_ok(&fx.gw, &req_b.clone().header(APPROVAL_HEADER, &id_b));
    assert!(
        resp.status == 403 && resp.problem_type().as_deref() == Some("urn:airlock:problem:approval-expired"),
        "approved but expired before use: want approval-expired, got {} {}",
        resp.status,
        resp.text()
    );
    let resp = send_ok(&fx.gw, &req_b);
    assert!(!resp.is_success(), "identical retry after expiry: {} {}", resp.status, resp.text());
    expect_nothing_reached(&fx.upstream, case);
}

fn self_approval_is_refused(fx: &Fixture) {
    let case = "svc-self";
    let owned = pending(&fx.gw, &post_as(OWNED_AGENT, case, EXPORT_PATH, &export_body(case, 1)));
    let owned_oid = pending(&fx.gw, &post_as(OWNED_OID_AGENT, case, EXPORT_PATH, &export_body(case, 2)));
    let acts = pending(&fx.gw, &post_as(ACTS_FOR_AGENT, case, EXPORT_PATH, &export_body(case, 3)));
    let svc = fx.svc();
    let alice = key(&svc, ALICE);
    expect_api_problem(
        &svc.approve(&owned, &alice).unwrap(),
        403,
        "separation-of-duties",
        "the owner (by id) approves her agent's action",
    );
    expect_api_problem(
        &svc.approve(&owned_oid, &alice).unwrap(),
        403,
        "separation-of-duties",
        "the owner (by alias) approves her agent's action",
    );
    expect_api_problem(
        &svc.approve(&acts, &key(&svc, ERIN)).unwrap(),
        403,
        "separation-of-duties",
        "the human the agent acts for approves",
    );
    let cli = svc.cli(&["approvals", "approve", &owned], Some(&alice)).unwrap();
    assert!(!cli.success(), "self-approval through the CLI must fail: {cli}");
    expect_api_problem(
        &svc.approve(&owned, &key(&svc, DAVE)).unwrap(),
        403,
        "not-an-approver",
        "a reviewer outside data-owners",
    );
    expect_api_problem(&svc.approve(&owned, "not-a-key").unwrap(), 401, "", "an unknown API key");
    expect_api_problem(
        &svc.api("POST", &format!("/v1/approvals/{owned}/approve"), None, None).unwrap(),
        401,
        "",
        "no credentials",
    );
    for id in [&owned, &owned_oid, &acts] {
        let shown = svc.show(id, &key(&svc, BOB)).unwrap();
        assert_eq!(status_of(&shown), Some("pending"), "still pending: {shown}");
    }
    drop(svc);
    let resp = send_ok(&fx.gw, &post_as(OWNED_AGENT, case, EXPORT_PATH, &export_body(case, 1)));
    assert_eq!(expect_pending(&resp), owned);
    expect_nothing_reached(&fx.upstream, case);
    // A valid reviewer can approve the same action (the refusals were for who, not what).
    {
        let svc = fx.svc();
        approve_ok(&svc, &owned, BOB);
    }
    let resp = send_ok(&fx.gw, &post_as(OWNED_AGENT, case, EXPORT_PATH, &export_body(case, 1)));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

fn quorum_counts_distinct_humans(fx: &Fixture) {
    let case = "svc-quorum";
    let who = agent(case);
    let req = post_as(&who, case, TWO_PERSON_PATH, &export_body(case, 1));
    let id = pending(&fx.gw, &req);
    {
        let svc = fx.svc();
        let first = approve_ok(&svc, &id, BOB);
        assert_eq!(status_of(&first), Some("pending"), "1 of 2: {first}");
        expect_api_problem(&svc.approve(&id, &key(&svc, BOB)).unwrap(), 409, "duplicate-vote", "bob votes twice");
        let cli = svc.cli(&["approvals", "approve", &id], Some(&key(&svc, BOB))).unwrap();
        assert!(!cli.success(), "bob's third vote through the CLI must fail: {cli}");
        let shown = svc.show(&id, &key(&svc, BOB)).unwrap();
        assert_eq!(status_of(&shown), Some("pending"), "one human is not a quorum of 2: {shown}");
    }
    let resp = send_ok(&fx.gw, &req);
    assert_eq!(expect_pending(&resp), id);
    expect_nothing_reached(&fx.upstream, case);
    {
        let svc = fx.svc();
        let second = approve_ok(&svc, &id, CAROL);
        assert_eq!(status_of(&second), Some("approved"), "2 of 2: {second}");
    }
    let resp = send_ok(&fx.gw, &req);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1);
    check_credential(&got[0], &who, &[BOB, CAROL]);
}

fn pending_latency(fx: &Fixture) {
    let case = "svc-latency";
    let who = agent(case);
    const N: u64 = 60;
    let mut took = Vec::new();
    for i in 0..N {
        let req = post_as(&who, case, EXPORT_PATH, &export_body(case, 1000 + i));
        let t = Instant::now();
        let resp = send_ok(&fx.gw, &req);
        took.push(t.elapsed());
        expect_pending(&resp);
    }
    took.sort();
    eprintln!(
        "[e2e_service_flow] pending answer latency through Envoy + real service, {N} new approvals: \
         p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        percentile(&took, 50.0),
        percentile(&took, 99.0),
        took[took.len() - 1]
    );
    expect_nothing_reached(&fx.upstream, case);
}

fn audit_verify_and_tamper(fx: &Fixture) {
    // Records to tamper with even when this scenario runs alone.
    let case = "svc-tamper";
    for rows in 0..2 {
        pending(&fx.gw, &post_as(&agent(case), case, EXPORT_PATH, &export_body(case, rows)));
    }
    let mut svc = fx.svc();
    let records = svc.audit_export().unwrap();
    let created: Vec<&Value> = records.iter().filter(|r| service::kind_of(r) == Some("approval.created")).collect();
    let target = created[created.len() / 2].clone();
    let seq = target["seq"].as_i64().unwrap_or_else(|| panic!("seq in {target}"));
    let clean_stop = svc.stop().unwrap();
    assert!(clean_stop, "airlock serve stops on SIGTERM");
    let ok = svc.audit_verify().unwrap();
    assert!(ok.success(), "verify on the untouched database: {ok}");
    let how = service::tamper_audit_byte(svc.database(), seq).unwrap();
    eprintln!("[e2e_service_flow] tampered: {how}");
    let bad = svc.audit_verify().unwrap();
    assert_eq!(bad.code, Some(1), "verify after a one-byte edit exits 1: {bad}");
    let text = bad.text();
    assert!(
        text.split(|c: char| !c.is_ascii_digit()).any(|n| n == seq.to_string()),
        "verify names record {seq}: {bad}"
    );
}
