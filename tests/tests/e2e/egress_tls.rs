//! The egress gateway (`envoy/egress-gateway.yaml`) and the sidecar (`envoy/sidecar.yaml`)
//! through the real Envoy: agents speak plain HTTP, the gateway originates TLS to a local
//! HTTPS upstream (test CA, SNI, SAN check) and calls the approval service over TLS. A
//! gateway given the wrong CA fails closed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::Request;
use airlock_tests::e2e::fake_service::FakeService;
use airlock_tests::e2e::gateway::{Gateway, APPROVAL_HOST, SIDECAR_AGENT, UPSTREAM_HOST};
use airlock_tests::e2e::plugin::{service_keys, PluginOptions, APPROVE_PATH, IDENTITY_HEADER};
use airlock_tests::e2e::tls::TestCa;
use airlock_tests::e2e::upstream::RecordingUpstream;
use e2e_support::*;
use serde_json::json;

struct Fixture {
    upstream: RecordingUpstream,
    service: FakeService,
    egress: Gateway,
    /// Same config, but trusting a CA that signed neither the upstream nor the service.
    wrong_ca: Gateway,
    sidecar: Gateway,
    _dir: tempfile::TempDir,
}

#[test]
fn egress_tls() {
    let wasm = filter_module();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("airlock e2e CA").unwrap();
    let other_ca = TestCa::new("some other CA").unwrap();
    let ca_path = ca.write_pem(dir.path(), "ca.pem").unwrap();
    let other_ca_path = other_ca.write_pem(dir.path(), "other-ca.pem").unwrap();
    let upstream = RecordingUpstream::https("tls-upstream", &ca.server_cert(&[UPSTREAM_HOST]).unwrap()).unwrap();
    let service = FakeService::start_tls(service_keys().unwrap(), &ca.server_cert(&[APPROVAL_HOST]).unwrap()).unwrap();

    let opts = PluginOptions { upstream_scheme: Some("https".into()), ..PluginOptions::default() };
    let mut good = vars(&wasm, &opts, upstream.port(), service.port());
    good.insert("AIRLOCK_UPSTREAM_CA".into(), ca_path.display().to_string());
    good.insert("AIRLOCK_APPROVAL_CA".into(), ca_path.display().to_string());
    let (client_cert, client_key) =
        ca.client_cert("gateway.airlock.test").unwrap().write_pem(dir.path(), "gw").unwrap();
    good.insert("AIRLOCK_APPROVAL_CLIENT_CERT".into(), client_cert.display().to_string());
    good.insert("AIRLOCK_APPROVAL_CLIENT_KEY".into(), client_key.display().to_string());
    let mut bad = good.clone();
    bad.insert("AIRLOCK_UPSTREAM_CA".into(), other_ca_path.display().to_string());
    bad.insert("AIRLOCK_APPROVAL_CA".into(), other_ca_path.display().to_string());
    let mut gws = start_gateways(vec![
        ("egress", "egress-gateway.yaml", good.clone()),
        ("egress-wrong-ca", "egress-gateway.yaml", bad),
        ("sidecar", "sidecar.yaml", good),
    ]);
    let sidecar = gws.pop().unwrap();
    let wrong_ca = gws.pop().unwrap();
    let egress = gws.pop().unwrap();
    let fx = Fixture { upstream, service, egress, wrong_ca, sidecar, _dir: dir };
    let all: &[Case<Fixture>] = &[
        ("allow_goes_upstream_over_verified_tls", allow_goes_upstream_over_verified_tls),
        ("hosts_off_the_allowlist_are_refused", hosts_off_the_allowlist_are_refused),
        ("approval_over_tls_end_to_end", approval_over_tls_end_to_end),
        ("wrong_ca_fails_closed", wrong_ca_fails_closed),
        ("sidecar_stamps_its_agent_identity", sidecar_stamps_its_agent_identity),
    ];
    let outcome = cases::run("e2e_egress_tls", &fx, all, |fx| fx.service.reset_behaviour());
    outcome.unwrap();
}

fn api(req: Request) -> Request {
    req.header("host", UPSTREAM_HOST)
}

fn allow_goes_upstream_over_verified_tls(fx: &Fixture) {
    let case = "tls-allow";
    let resp = send(&fx.egress, &as_agent(api(Request::get("/v1/reports")), case));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    let up = &got[0];
    assert!(up.tls, "the upstream leg is TLS");
    assert_eq!(up.sni.as_deref(), Some(UPSTREAM_HOST), "SNI");
    assert_eq!(up.header("host"), Some(UPSTREAM_HOST));
    for internal in ["x-airlock-agent", "x-forwarded-for", "x-envoy-internal", "x-envoy-expected-rq-timeout-ms"] {
        assert!(up.header(internal).is_none(), "{internal} leaked upstream: {:?}", up.headers);
    }
    // And a denied call stays home.
    let case = "tls-deny";
    let resp = send(&fx.egress, &as_agent(api(Request::new("DELETE", "/v1/reports/1")), case));
    expect_problem(&resp, 403, "denied");
    expect_nothing_reached(&fx.upstream, case);
}

fn hosts_off_the_allowlist_are_refused(fx: &Fixture) {
    let case = "tls-other-host";
    let resp = send(&fx.egress, &as_agent(Request::get("/v1/reports").header("host", "elsewhere.example"), case));
    assert_eq!(resp.status, 403, "{}", resp.text());
    expect_nothing_reached(&fx.upstream, case);
}

fn approval_over_tls_end_to_end(fx: &Fixture) {
    let case = "tls-approve";
    let body = json!({"format": "csv"});
    let req =
        as_agent(api(Request::post_json(APPROVE_PATH, &body)), case).header("authorization", "Bearer agent-own-secret");
    let resp = send(&fx.egress, &req);
    let id = expect_problem(&resp, 403, "approval-pending")["approval_id"].as_str().unwrap().to_string();
    expect_nothing_reached(&fx.upstream, case);
    let approval = fx.service.approval(&id).unwrap();
    let seen = &approval.create_request["request"];
    assert_eq!(seen["scheme"], "https", "the digest covers what the upstream sees: {seen}");
    assert_eq!(seen["host"], UPSTREAM_HOST, "{seen}");
    assert_eq!(seen["port"], 443, "{seen}");

    fx.service.approve(&id).unwrap();
    let resp = send(&fx.egress, &req);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = fx.upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].tls);
    assert_eq!(got[0].header_values("authorization"), vec![format!("Bearer minted-{id}").as_str()]);
}

fn wrong_ca_fails_closed(fx: &Fixture) {
    let case = "tls-wrong-ca";
    let resp = send(&fx.wrong_ca, &as_agent(api(Request::get("/v1/reports")), case));
    assert_eq!(resp.status, 503, "unverifiable upstream: {}", resp.text());
    let resp = send(&fx.wrong_ca, &as_agent(api(Request::post_json(APPROVE_PATH, &json!({"format": "csv"}))), case));
    expect_problem(&resp, 503, "unavailable");
    expect_nothing_reached(&fx.upstream, case);
    assert!(fx.service.approvals_of(&agent(case)).is_empty(), "no callout went to an unverified approval service");
}

fn sidecar_stamps_its_agent_identity(fx: &Fixture) {
    let case = "sidecar";
    let spoofed = "spiffe://e2e/agent/someone-else";
    // Allowed read: goes out over TLS; the decision is recorded under the sidecar's agent.
    let resp = send(&fx.sidecar, &tagged(api(Request::get("/v1/sidecar-read")), case).header(IDENTITY_HEADER, spoofed));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(fx.upstream.requests_for(case)[0].tls);
    // An approval is requested for the sidecar's agent, never for the claimed one.
    let resp = send(
        &fx.sidecar,
        &tagged(api(Request::post_json(APPROVE_PATH, &json!({"format": "csv", "by": "sidecar"}))), case)
            .header(IDENTITY_HEADER, spoofed),
    );
    expect_problem(&resp, 403, "approval-pending");
    assert!(fx.service.approvals_of(spoofed).is_empty(), "spoofed identity used");
    assert_eq!(fx.service.approvals_of(SIDECAR_AGENT).len(), 1);
    // Without any identity header the sidecar still knows who it serves.
    let resp = send(&fx.sidecar, &tagged(api(Request::get("/v1/sidecar-read")), case));
    assert_eq!(resp.status, 200, "{}", resp.text());
}
