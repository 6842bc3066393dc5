//! Attacks through the real Envoy and the real filter (`envoy/demo.yaml`, rendered): path
//! and encoding tricks, host spellings, identity-header games, oversized bodies and a body
//! swapped under an approval. None may turn a deny or an approve into an allow: nothing
//! reaches the upstream. Requests are written byte for byte (raw TCP), so no client
//! library normalizes the tricks away — except the HTTP/2 ones: a body whose DATA frames
//! never end the stream, ended by trailers instead (h2c through hyper's client).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::{H2Request, Request, Response};
use airlock_tests::e2e::fake_service::{ApprovalStatus, FakeService};
use airlock_tests::e2e::gateway::Gateway;
use airlock_tests::e2e::plugin::{service_keys, PluginOptions, APPROVAL_HEADER, APPROVE_PATH, IDENTITY_HEADER};
use airlock_tests::e2e::upstream::{RecordingUpstream, CASE_HEADER};
use e2e_support::*;
use serde_json::json;

struct Fixture {
    upstream: RecordingUpstream,
    service: FakeService,
    /// Trusts the identity header from 127.0.0.1 (the test client).
    gw: Gateway,
    /// Trusts no peer: the identity header is stripped from every request.
    untrusted: Gateway,
}

#[test]
fn adversarial() {
    let wasm = filter_module();
    let upstream = RecordingUpstream::http("upstream").unwrap();
    let service = FakeService::start(service_keys().unwrap()).unwrap();
    let opts = PluginOptions::default();
    let trusted = vars(&wasm, &opts, upstream.port(), service.port());
    let mut nobody = trusted.clone();
    // TEST-NET-3: no peer of this test is ever "internal".
    nobody.insert("AIRLOCK_TRUSTED_HOP_ADDRESS".into(), "203.0.113.254".into());
    let mut gws =
        start_gateways(vec![("adversarial", "demo.yaml", trusted), ("adversarial-untrusted", "demo.yaml", nobody)]);
    let untrusted = gws.pop().unwrap();
    let gw = gws.pop().unwrap();
    let fx = Fixture { upstream, service, gw, untrusted };
    let all: &[Case<Fixture>] = &[
        ("ambiguous_encodings_are_denied_by_the_filter", ambiguous_encodings_are_denied_by_the_filter),
        ("path_tricks_never_reach_a_denied_path", path_tricks_never_reach_a_denied_path),
        ("percent_encoded_letters_do_not_dodge_policy", percent_encoded_letters_do_not_dodge_policy),
        ("approve_route_spellings_never_pass", approve_route_spellings_never_pass),
        ("host_spellings_of_a_blocked_host_are_denied", host_spellings_of_a_blocked_host_are_denied),
        ("identity_header_games_are_refused", identity_header_games_are_refused),
        ("spoofed_identity_from_untrusted_peer_is_stripped", spoofed_identity_from_untrusted_peer_is_stripped),
        ("oversized_body_on_approve_route_is_denied", oversized_body_on_approve_route_is_denied),
        ("approval_covers_exactly_one_action", approval_covers_exactly_one_action),
        ("request_smuggling_is_refused", request_smuggling_is_refused),
        ("h2_trailers_do_not_carry_an_approve_upstream", h2_trailers_do_not_carry_an_approve_upstream),
        ("h2_trailers_do_not_carry_a_deny_upstream", h2_trailers_do_not_carry_a_deny_upstream),
        ("h2_trailers_on_an_allowed_request_pass_decided", h2_trailers_on_an_allowed_request_pass_decided),
    ];
    let outcome = cases::run("e2e_adversarial", &fx, all, |fx| fx.service.reset_behaviour());
    outcome.unwrap();
}

/// Sends `METHOD target` (verbatim) as `case`'s agent and checks it was refused and that
/// nothing tagged `case` reached the upstream.
fn refused(fx: &Fixture, case: &str, method: &str, target: &str) {
    let outcome = fx.gw.send(&as_agent(Request::new(method, target), case));
    expect_refused(&outcome, &format!("{method} {target}"));
    expect_nothing_reached(&fx.upstream, case);
}

/// Sends `GET target` (verbatim) as `case`'s agent. Either it is refused and nothing
/// reached the upstream, or Envoy normalized it into a plain path that the policy allowed:
/// then the upstream got exactly one request, its path is unambiguous (no encoded or raw
/// separators, NUL, `;`, dot segments or empty segments) and it is not under `denied`.
fn refused_or_unambiguous(fx: &Fixture, case: &str, target: &str, denied: &str) {
    let outcome = fx.gw.send(&as_agent(Request::get(target), case));
    match outcome {
        Ok(resp) if resp.is_success() => {
            let heads = fx.upstream.heads_for(case);
            assert_eq!(heads.len(), 1, "GET {target}: {heads:#?}");
            let path = heads[0].path.split('?').next().unwrap_or("").to_string();
            let lower = path.to_ascii_lowercase();
            let ambiguous = ["%2f", "%5c", "%00", "%2e", "%25", "\\", ";", "//", "/./", "/../"]
                .iter()
                .any(|bad| lower.contains(bad))
                || lower.ends_with("/..")
                || lower.ends_with("/.");
            assert!(!ambiguous, "GET {target} reached the upstream as the ambiguous {path:?}");
            assert!(!path.starts_with(denied), "GET {target} reached the denied {path:?}");
        }
        other => {
            expect_refused(&other, &format!("GET {target}"));
            expect_nothing_reached(&fx.upstream, case);
        }
    }
}

fn ambiguous_encodings_are_denied_by_the_filter(fx: &Fixture) {
    // GET under /public is allowed by policy; these spellings stay ambiguous after
    // Envoy's normalization (escaped slashes are kept), so the filter must deny them
    // itself, with a problem+json answer.
    for (i, target) in [
        "/public/a%2Fb",
        "/public/a%2fb",
        "/public/a%5Cb",
        "/public/a%5cb",
        "/public/a;jsessionid=0123",
        "/public;v=1/a",
    ]
    .iter()
    .enumerate()
    {
        let case = format!("ambiguous-{i}");
        let resp = send(&fx.gw, &as_agent(Request::get(target), &case));
        assert_eq!(resp.status, 403, "GET {target}: {}", resp.text());
        expect_problem(&resp, 403, "denied");
        expect_nothing_reached(&fx.upstream, &case);
    }
    // NUL and a raw backslash: Envoy may refuse them (400) or normalize them (a raw `\`
    // becomes `/`); the upstream never sees them as such.
    for (i, target) in ["/public/a%00b", "/public/a\\b"].iter().enumerate() {
        refused_or_unambiguous(fx, &format!("ambiguous-raw-{i}"), target, "/admin");
    }
    // The plain spelling is allowed: the refusals above are about the encodings.
    let resp = send(&fx.gw, &as_agent(Request::get("/public/a"), "ambiguous-plain"));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

fn path_tricks_never_reach_a_denied_path(fx: &Fixture) {
    // GET /admin... is denied by policy; each of these is /admin/users to some server.
    // Envoy's normalization may turn some into a different plain path (for example
    // `/public//../admin/users` is `/public/admin/users` after RFC 3986 dot removal):
    // fine, as long as that plain path is what the upstream gets.
    for (i, target) in [
        "/admin/users",
        "/public/../admin/users",
        "/public/./../admin/users",
        "//admin/users",
        "///admin//users",
        "/public//../admin/users",
        "/public/..%2Fadmin/users",
        "/public/..%2fadmin/users",
        "/public%2F..%2Fadmin/users",
        "/public/%2e%2e/admin/users",
        "/public/%2E%2E/admin/users",
        "/public/.%2e/admin/users",
        "/public/%2e%2e%2fadmin/users",
        "/public/..%5Cadmin/users",
        "/public/..%5cadmin/users",
        "/public\\..\\admin/users",
        "/public/..;/admin/users",
        "/public;x=1/../admin/users",
        "/public/..%00/admin/users",
        "/admin%00/users",
        "http://e2e.test/admin/users",
        "http://e2e.test//public/../admin/users",
    ]
    .iter()
    .enumerate()
    {
        refused_or_unambiguous(fx, &format!("trick-{i}"), target, "/admin");
    }
}

fn percent_encoded_letters_do_not_dodge_policy(fx: &Fixture) {
    // `%61` is `a`: an upstream that decodes it serves /admin. Either Envoy decodes it
    // before the filter (and the policy denies /admin), or the filter refuses it.
    for (i, target) in
        ["/%61dmin/users", "/%61%64%6d%69%6e/users", "/adm%69n/users", "/%2561dmin/../admin/users"].iter().enumerate()
    {
        refused(fx, &format!("encoded-letter-{i}"), "GET", target);
    }
}

fn approve_route_spellings_never_pass(fx: &Fixture) {
    let body = json!({"format": "csv"}).to_string().into_bytes();
    for (i, target) in [
        "/v1/exports",
        "//v1/exports",
        "/v1//exports",
        "/v1/./exports",
        "/v1/x/../exports",
        "/v1%2Fexports",
        "/v1%2fexports",
        "/v1/exports;x=1",
        "/v1/exports%00",
        "/v1/%65xports",
        "/V1/exports",
        "/v1/exports/",
        "/v1/exports?format=csv",
        "http://e2e.test/v1/exports",
    ]
    .iter()
    .enumerate()
    {
        let case = format!("approve-spelling-{i}");
        let req =
            as_agent(Request::new("POST", target), &case).header("content-type", "application/json").body(body.clone());
        let outcome = fx.gw.send(&req);
        expect_refused(&outcome, &format!("POST {target}"));
        expect_nothing_reached(&fx.upstream, &case);
    }
}

fn host_spellings_of_a_blocked_host_are_denied(fx: &Fixture) {
    for (i, host) in [
        "blocked.example",
        "BLOCKED.EXAMPLE",
        "Blocked.Example",
        "blocked.example.",
        "blocked.example:80",
        "BLOCKED.EXAMPLE.:8080",
    ]
    .iter()
    .enumerate()
    {
        let case = format!("host-{i}");
        let resp = send(&fx.gw, &as_agent(Request::get("/public").header("host", host), &case));
        assert_eq!(resp.status, 403, "Host {host}: {}", resp.text());
        expect_problem(&resp, 403, "denied");
        expect_nothing_reached(&fx.upstream, &case);
    }
    // Absolute-form target naming the blocked host, with an innocent Host header.
    let case = "host-absolute";
    let outcome =
        fx.gw.send(&as_agent(Request::get("http://blocked.example/public"), case).header("host", "fine.example"));
    expect_refused(&outcome, "absolute-form target of a blocked host");
    expect_nothing_reached(&fx.upstream, case);
    // Duplicate Host headers.
    let case = "host-duplicate";
    let outcome = fx.gw.send(
        &as_agent(Request::get("/public"), case).header("host", "fine.example").header("host", "blocked.example"),
    );
    expect_refused(&outcome, "two Host headers");
    expect_nothing_reached(&fx.upstream, case);
}

fn identity_header_games_are_refused(fx: &Fixture) {
    let games: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("two-different", vec![(IDENTITY_HEADER, "spiffe://e2e/agent/a"), (IDENTITY_HEADER, "spiffe://e2e/agent/b")]),
        ("two-same", vec![(IDENTITY_HEADER, "spiffe://e2e/agent/a"), (IDENTITY_HEADER, "spiffe://e2e/agent/a")]),
        ("comma-joined", vec![(IDENTITY_HEADER, "spiffe://e2e/agent/a, spiffe://e2e/agent/b")]),
        ("empty", vec![(IDENTITY_HEADER, "")]),
        ("tab-inside", vec![(IDENTITY_HEADER, "spiffe://e2e/agent/a\tb")]),
        ("non-ascii", vec![(IDENTITY_HEADER, "spiffe://e2e/agent/\u{e9}")]),
        ("underscore-spelling", vec![("x_airlock_agent", "spiffe://e2e/agent/a")]),
    ];
    for (name, headers) in games {
        let case = format!("identity-{name}");
        let mut req = tagged(Request::get("/public"), &case);
        for (n, v) in &headers {
            req = req.header(n, v);
        }
        let outcome = fx.gw.send(&req);
        expect_refused(&outcome, &format!("identity game {name}"));
        expect_nothing_reached(&fx.upstream, &case);
    }
}

fn spoofed_identity_from_untrusted_peer_is_stripped(fx: &Fixture) {
    let case = "spoof-untrusted";
    let spoofed = "spiffe://e2e/agent/report-bot";
    let resp = send(&fx.untrusted, &tagged(Request::get("/public"), case).header(IDENTITY_HEADER, spoofed));
    expect_problem(&resp, 403, "denied");
    let resp = send(
        &fx.untrusted,
        &tagged(Request::post_json(APPROVE_PATH, &json!({"format": "csv"})), case).header(IDENTITY_HEADER, spoofed),
    );
    expect_problem(&resp, 403, "denied");
    expect_nothing_reached(&fx.upstream, case);
    assert!(fx.service.approvals_of(spoofed).is_empty(), "no approval may be created under a spoofed identity");
    // The same request from the trusted hop is honoured (the header itself is fine).
    let resp = send(&fx.gw, &tagged(Request::get("/public"), "spoof-trusted").header(IDENTITY_HEADER, spoofed));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

fn oversized_body_on_approve_route_is_denied(fx: &Fixture) {
    for (name, size) in [("over-cap", 100 * 1024), ("over-envoy-buffer", 2 * 1024 * 1024)] {
        let case = format!("oversized-{name}");
        let filler = "x".repeat(size);
        let body = json!({"format": "csv", "filler": filler}).to_string().into_bytes();
        let req =
            as_agent(Request::new("POST", APPROVE_PATH), &case).header("content-type", "application/json").body(body);
        let outcome = fx.gw.send(&req);
        expect_refused(&outcome, &format!("{size}-byte body on the approve route"));
        if let Ok(resp) = &outcome {
            assert!(
                resp.status == 403 || resp.status == 413,
                "{size} bytes: want 403 denied (or Envoy's 413), got {} {}",
                resp.status,
                resp.text()
            );
            if resp.status == 403 {
                expect_problem(resp, 403, "denied");
            }
        }
        expect_nothing_reached(&fx.upstream, &case);
        assert!(fx.service.approvals_of(&agent(&case)).is_empty(), "an oversized body is never sent for approval");
    }
    // Under the cap it is an ordinary approval.
    let case = "oversized-under-cap";
    let body = json!({"format": "csv", "filler": "x".repeat(60 * 1024)});
    let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, &body), case));
    expect_problem(&resp, 403, "approval-pending");
}

fn approval_covers_exactly_one_action(fx: &Fixture) {
    let case = "one-action";
    let body_a = json!({"format": "csv", "table": "customers"});
    let body_b = json!({"format": "csv", "table": "payroll"});
    let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, &body_a), case));
    let id = expect_problem(&resp, 403, "approval-pending")["approval_id"].as_str().unwrap().to_string();
    fx.service.approve(&id).unwrap();

    // Each variant names the approved approval but is a different action.
    let variants: Vec<(&str, Request)> = vec![
        ("other body", as_agent(Request::post_json(APPROVE_PATH, &body_b), case)),
        ("other query", as_agent(Request::post_json(&format!("{APPROVE_PATH}?format=xml"), &body_a), case)),
        (
            "other content-type",
            as_agent(Request::new("POST", APPROVE_PATH), case)
                .header("content-type", "text/plain")
                .body(body_a.to_string().into_bytes()),
        ),
        ("other host", as_agent(Request::post_json(APPROVE_PATH, &body_a), case).header("host", "elsewhere.example")),
        (
            "other agent",
            as_agent(Request::post_json(APPROVE_PATH, &body_a), "one-action-intruder").header(CASE_HEADER, case),
        ),
    ];
    for (what, req) in variants {
        let resp = send(&fx.gw, &req.header(APPROVAL_HEADER, &id));
        assert_eq!(resp.status, 403, "{what} under approval {id}: {}", resp.text());
        expect_problem(&resp, 403, "denied");
        expect_nothing_reached(&fx.upstream, case);
    }
    // Without naming it, the other body is simply a new action needing its own approval.
    let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, &body_b), case));
    let other = expect_problem(&resp, 403, "approval-pending")["approval_id"].as_str().unwrap().to_string();
    assert_ne!(other, id);
    expect_nothing_reached(&fx.upstream, case);
    assert_eq!(fx.service.approval(&id).unwrap().status, ApprovalStatus::Approved, "not consumed");

    // The approved action itself goes through once, with its own body.
    let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, &body_a), case));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&got[0].body).unwrap(), body_a);
    let resp = send(&fx.gw, &as_agent(Request::post_json(APPROVE_PATH, &body_a), case));
    expect_problem(&resp, 403, "approval-pending");
    assert_eq!(fx.upstream.heads_for(case).len(), 1, "consumed: no second pass");
}

fn request_smuggling_is_refused(fx: &Fixture) {
    let case = "smuggle";
    let agent_id = agent(case);
    let raw = [
        // Content-Length and Transfer-Encoding together.
        format!(
            "POST /v1/exports HTTP/1.1\r\nhost: e2e.test\r\n{IDENTITY_HEADER}: {agent_id}\r\n{CASE_HEADER}: {case}\r\n\
             content-type: application/json\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n\
             0\r\n\r\nDELETE /v1/reports HTTP/1.1\r\nhost: e2e.test\r\n{CASE_HEADER}: {case}\r\n\r\n"
        ),
        // Two different Content-Lengths.
        format!(
            "POST /v1/exports HTTP/1.1\r\nhost: e2e.test\r\n{IDENTITY_HEADER}: {agent_id}\r\n{CASE_HEADER}: {case}\r\n\
             content-type: application/json\r\ncontent-length: 2\r\ncontent-length: 30\r\nconnection: close\r\n\r\n{{}}"
        ),
    ];
    for bytes in raw {
        let outcome = fx.gw.send_raw(bytes.as_bytes());
        expect_refused(&outcome, "smuggling attempt");
        expect_nothing_reached(&fx.upstream, case);
    }
}

// ----- HTTP/2: a body ended by trailers ---------------------------------------------------
//
// Every DATA frame says "more to come" and a trailers HEADERS frame ends the stream, so
// the filter never sees a body callback with end_of_stream. A filter that waits for one
// and lets the trailers callback continue sends the request upstream undecided (fixed in
// 89615c9): these prove, through real Envoy, that trailers end the body and the request
// is decided on it.

/// `req` as sent by scenario `case`'s agent: identity header + case tag.
fn h2_as_agent(req: H2Request, case: &str) -> H2Request {
    req.header(IDENTITY_HEADER, &agent(case)).header(CASE_HEADER, case)
}

/// `req` (HTTP/2, h2c) through the trusting gateway.
fn send_h2(fx: &Fixture, req: &H2Request) -> Response {
    req.send(fx.gw.addr).unwrap_or_else(|e| panic!("HTTP/2 request to the gateway failed: {e:#}"))
}

/// `body` in two DATA frames, neither ending the stream; trailers end it when `trailers`.
fn h2_with_body(req: H2Request, body: &[u8], trailers: bool) -> H2Request {
    let (first, rest) = body.split_at(body.len() / 2);
    let req = req.data(first).data(rest);
    if trailers {
        req.trailer("x-e2e-trailer", "end").trailer("grpc-status", "0")
    } else {
        req
    }
}

fn h2_trailers_do_not_carry_an_approve_upstream(fx: &Fixture) {
    let case = "h2-trailers-approve";
    let body = json!({"format": "csv", "table": "customers", "rows": 1000}).to_string().into_bytes();
    let post = || h2_as_agent(H2Request::new("POST", APPROVE_PATH), case).header("content-type", "application/json");

    // The same action over HTTP/1 and over HTTP/2 with the stream ended by an empty DATA
    // frame: approval pending, one approval.
    let http1 = as_agent(Request::new("POST", APPROVE_PATH), case)
        .header("content-type", "application/json")
        .body(body.clone());
    let resp = send(&fx.gw, &http1);
    let id = expect_problem(&resp, 403, "approval-pending")["approval_id"].as_str().unwrap().to_string();
    let resp = send_h2(fx, &h2_with_body(post(), &body, false));
    let doc = expect_problem(&resp, 403, "approval-pending");
    assert_eq!(doc["approval_id"].as_str(), Some(id.as_str()), "HTTP/2 without trailers is the same action: {doc}");
    expect_nothing_reached(&fx.upstream, case);

    // Ended by trailers: the same answer, for the same action (its digest covers the
    // whole body, so the body was read to its end before the decision).
    let resp = send_h2(fx, &h2_with_body(post(), &body, true));
    let doc = expect_problem(&resp, 403, "approval-pending");
    assert_eq!(doc["approval_id"].as_str(), Some(id.as_str()), "trailers do not change the action: {doc}");
    expect_nothing_reached(&fx.upstream, case);
    let approvals = fx.service.approvals_of(&agent(case));
    assert_eq!(approvals.len(), 1, "{approvals:#?}");
    assert_eq!(approvals[0].create_calls, 3, "each of the three requests asked for approval: {approvals:#?}");
    assert_eq!(approvals[0].status, ApprovalStatus::Pending);

    // A different body ended by trailers is a new action, not a pass either.
    let other = json!({"format": "csv", "table": "payroll"}).to_string().into_bytes();
    let resp = send_h2(fx, &h2_with_body(post(), &other, true));
    let doc = expect_problem(&resp, 403, "approval-pending");
    assert_ne!(doc["approval_id"].as_str(), Some(id.as_str()), "another body is another action: {doc}");
    expect_nothing_reached(&fx.upstream, case);
}

fn h2_trailers_do_not_carry_a_deny_upstream(fx: &Fixture) {
    let body = json!({"id": 7, "reason": "cleanup"}).to_string().into_bytes();
    for (i, (method, target)) in [("DELETE", "/v1/reports/7"), ("GET", "/admin/users")].iter().enumerate() {
        let case = format!("h2-trailers-deny-{i}");
        let req = h2_as_agent(H2Request::new(method, target), &case).header("content-type", "application/json");
        let resp = send_h2(fx, &h2_with_body(req, &body, true));
        assert_eq!(resp.status, 403, "{method} {target} with trailers: {}", resp.text());
        expect_problem(&resp, 403, "denied");
        expect_nothing_reached(&fx.upstream, &case);
    }
}

fn h2_trailers_on_an_allowed_request_pass_decided(fx: &Fixture) {
    let case = "h2-trailers-allow";
    let body = b"{\"query\": \"the body of an allowed read, in two DATA frames\"}".to_vec();
    let req = h2_as_agent(H2Request::new("GET", "/public/h2"), case).header("content-type", "application/json");
    let resp = send_h2(fx, &h2_with_body(req, &body, true));
    assert_eq!(resp.status, 200, "an allowed request with trailers goes through: {}", resp.text());
    assert_eq!(resp.json().unwrap()["upstream"], "upstream", "the upstream answered: {}", resp.text());
    let got = fx.upstream.wait_for(case, 1, std::time::Duration::from_secs(5));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!((got[0].method.as_str(), got[0].path.as_str()), ("GET", "/public/h2"));
    assert_eq!(got[0].body, body, "the body arrives whole");
    // It went through because the filter allowed it, not because the trailers slipped it
    // past an undecided filter: the decision log has the allow.
    let who = agent(case);
    let record = fx
        .service
        .wait_for_decision(
            |r| r["agent"] == who.as_str() && r["path"] == "/public/h2",
            std::time::Duration::from_secs(10),
        )
        .expect("a decision record for the allowed request: the filter decided it");
    assert_eq!(
        (&record["effect"], &record["enforced"], &record["rule"]),
        (&json!("allow"), &json!("allow"), &json!("reads"))
    );
}
