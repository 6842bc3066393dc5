//! The REAL approval service over mutual TLS behind the reference egress gateway
//! (`envoy/egress-gateway.yaml`, cluster `airlock_approval` with SNI, a CA and the
//! gateway's client certificate): an approval is created, approved over HTTPS and redeemed
//! through the gateway, and the approved retry carries the minted credential. A gateway
//! whose client certificate another CA signed gets `unavailable` (fail closed) and creates
//! nothing; plaintext and certificate-less clients are refused by the service.
//!
//! Needs `bash scripts/setup.sh` (Envoy), the filter (`bash scripts/build-wasm.sh`) and the
//! service (`cargo build -p airlock-approval-svc`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::time::Duration;

use airlock_tests::e2e::client::Request;
use airlock_tests::e2e::gateway::{APPROVAL_HOST, UPSTREAM_HOST};
use airlock_tests::e2e::plugin::{PluginOptions, IDENTITY_HEADER};
use airlock_tests::e2e::service::{self, AirlockService, ServiceOptions, ServiceTls};
use airlock_tests::e2e::tls::{client_config, send_tls, TestCa};
use airlock_tests::e2e::upstream::{RecordingUpstream, CASE_HEADER};
use e2e_support::real::*;
use e2e_support::*;
use serde_json::json;

#[test]
fn approval_service_over_mutual_tls() {
    let wasm = filter_module();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("airlock e2e CA").unwrap();
    let other = TestCa::new("some other CA").unwrap();
    let ca_path = ca.write_pem(dir.path(), "ca.pem").unwrap();
    let (cert_file, key_file) =
        ca.server_cert(&[APPROVAL_HOST, "127.0.0.1"]).unwrap().write_pem(dir.path(), "approval").unwrap();
    let (gw_cert, gw_key) = ca.client_cert("gateway.airlock.test").unwrap().write_pem(dir.path(), "gateway").unwrap();
    let (odd_cert, odd_key) = other.client_cert("gateway.airlock.test").unwrap().write_pem(dir.path(), "odd").unwrap();
    let reviewer_cert = ca.client_cert("reviewer-cli.airlock.test").unwrap();
    let (cli_cert, cli_key) =
        ca.client_cert("reviewer-cli.airlock.test").unwrap().write_pem(dir.path(), "cli").unwrap();
    let tls = ServiceTls {
        cert_file,
        key_file,
        client_ca_file: Some(ca_path.clone()),
        server_name: APPROVAL_HOST.into(),
        client: client_config(&ca, Some(&reviewer_cert)).unwrap(),
    };
    let opts = ServiceOptions { reviewers: reviewers(), tls: Some(tls), ..ServiceOptions::default() };
    let svc = AirlockService::start("mtls", &opts).unwrap_or_else(|e| panic!("{e:#}"));
    let upstream = RecordingUpstream::https("mtls-upstream", &ca.server_cert(&[UPSTREAM_HOST]).unwrap()).unwrap();

    let plugin = PluginOptions {
        policy: SERVICE_POLICY.to_string(),
        timeout_ms: 3000,
        upstream_scheme: Some("https".into()),
        ..PluginOptions::default()
    };
    let mut good = vars(&wasm, &plugin, upstream.port(), svc.port());
    for (k, v) in [
        ("AIRLOCK_UPSTREAM_CA", &ca_path),
        ("AIRLOCK_APPROVAL_CA", &ca_path),
        ("AIRLOCK_APPROVAL_CLIENT_CERT", &gw_cert),
        ("AIRLOCK_APPROVAL_CLIENT_KEY", &gw_key),
    ] {
        good.insert(k.into(), v.display().to_string());
    }
    let mut odd = good.clone();
    odd.insert("AIRLOCK_APPROVAL_CLIENT_CERT".into(), odd_cert.display().to_string());
    odd.insert("AIRLOCK_APPROVAL_CLIENT_KEY".into(), odd_key.display().to_string());
    let mut gws =
        start_gateways(vec![("mtls", "egress-gateway.yaml", good), ("mtls-odd-cert", "egress-gateway.yaml", odd)]);
    let odd_gw = gws.pop().unwrap();
    let gw = gws.pop().unwrap();

    let export = |case: &str, who: &str| {
        Request::post_json(EXPORT_PATH, &export_body(case, 1))
            .header("host", UPSTREAM_HOST)
            .header(IDENTITY_HEADER, who)
            .header(CASE_HEADER, case)
            .header("authorization", "Bearer agent-own-secret")
    };
    let bob = key(&svc, BOB);

    // Created, approved over HTTPS, redeemed: the approved retry carries the credential.
    let case = "mtls-approve";
    let who = agent(case);
    let id = expect_pending(&send(&gw, &export(case, &who)));
    expect_nothing_reached(&upstream, case);
    let approve = Request::post_json(&format!("/v1/approvals/{id}/approve"), &json!({"comment": "over mTLS"}))
        .header("authorization", &format!("Bearer {bob}"));
    let answer = svc.send(&approve).unwrap();
    assert_eq!(answer.status, 200, "approve over HTTPS: {}", answer.text());
    let resp = send(&gw, &export(case, &who));
    assert_eq!(resp.status, 200, "approved retry: {}", resp.text());
    let got = upstream.requests_for(case);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].tls, "the upstream leg is TLS");
    let auth = got[0].header_values("authorization");
    assert_eq!(auth.len(), 1, "the agent's own credential replaced: {:?}", got[0].headers);
    let token = auth[0].strip_prefix("Bearer ").unwrap_or_else(|| panic!("minted Bearer credential: {auth:?}"));
    let claims = service::verify_jwt_hs256(token, &service::credential_keys()).unwrap();
    assert_eq!(claims["sub"], who.as_str(), "{claims}");
    assert_eq!(claims["aud"], UPSTREAM_HOST, "{claims}");
    assert!(claims["act"].to_string().contains(BOB), "{claims}");

    // A gateway whose client certificate the service's CA did not sign: fail closed.
    let case = "mtls-odd-cert";
    let stranger = agent(case);
    let resp = send(&odd_gw, &export(case, &stranger));
    expect_problem(&resp, 503, "unavailable");
    expect_nothing_reached(&upstream, case);
    let list = Request::get("/v1/approvals").header("authorization", &format!("Bearer {bob}"));
    let listed = svc.send(&list).unwrap();
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(listed.text().contains(&who) && !listed.text().contains(&stranger), "{}", listed.text());

    // The CLI over mTLS: --ca-file, --client-cert, --client-key; without a certificate it
    // is refused.
    let url = format!("https://127.0.0.1:{}", svc.port());
    let (ca_s, cert_s, key_s) =
        (ca_path.display().to_string(), cli_cert.display().to_string(), cli_key.display().to_string());
    let listed = svc
        .cli(
            &["approvals", "list", "--url", &url, "--ca-file", &ca_s, "--client-cert", &cert_s, "--client-key", &key_s],
            Some(&bob),
        )
        .unwrap();
    assert!(listed.success() && listed.stdout.contains(&id), "{listed}");
    let refused = svc.cli(&["approvals", "list", "--url", &url, "--ca-file", &ca_s], Some(&bob)).unwrap();
    assert!(!refused.success(), "the CLI without a client certificate was served: {refused}");

    // The service itself: no plaintext, no client without a certificate.
    let plain = Request::get("/readyz").timeout(Duration::from_secs(3)).send(svc.addr());
    assert!(plain.as_ref().map_or(true, |r| r.status != 200), "plaintext answered: {plain:?}");
    let anonymous = client_config(&ca, None).unwrap();
    let refused = send_tls(svc.addr(), APPROVAL_HOST, anonymous, &Request::get("/readyz"), Duration::from_secs(3));
    assert!(refused.is_err(), "a client without a certificate was served: {refused:?}");
}
