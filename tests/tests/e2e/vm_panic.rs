//! Fail closed when the Wasm VM dies. Uses the test-only module built with the
//! `fault-injection` feature (`bash scripts/build-wasm.sh`), where `x-airlock-fault: panic`
//! makes the filter panic. With `failure_policy: FAIL_RELOAD` (envoy/demo.yaml) the
//! panicking request gets 503, nothing reaches the upstream while the VM is down, and a
//! fresh VM then serves normally again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::Request;
use airlock_tests::e2e::fake_service::FakeService;
use airlock_tests::e2e::gateway::{fault_module, Gateway};
use airlock_tests::e2e::plugin::{service_keys, PluginOptions};
use airlock_tests::e2e::upstream::RecordingUpstream;
use e2e_support::*;

/// Longest the test waits for a fresh VM (measured: about a second).
const RECOVERY: Duration = Duration::from_secs(20);

struct Fixture {
    upstream: RecordingUpstream,
    _service: FakeService,
    gw: Gateway,
}

#[test]
fn vm_panic() {
    let wasm = fault_module().unwrap_or_else(|e| panic!("{e:#}"));
    let upstream = RecordingUpstream::http("upstream").unwrap();
    let service = FakeService::start(service_keys().unwrap()).unwrap();
    let v = vars(&wasm, &PluginOptions::default(), upstream.port(), service.port());
    let gw = start_gateways(vec![("vm-panic", "demo.yaml", v)]).pop().unwrap();
    let fx = Fixture { upstream, _service: service, gw };
    let all: &[Case<Fixture>] = &[
        ("panic_fails_closed_then_recovers", panic_fails_closed_then_recovers),
        ("recovers_again_after_a_second_panic", recovers_again_after_a_second_panic),
    ];
    let outcome = cases::run("e2e_vm_panic", &fx, all, |_| {});
    outcome.unwrap();
}

fn panic_round(fx: &Fixture, round: &str) {
    // Healthy first.
    let ok = send(&fx.gw, &as_agent(Request::get("/public/before"), &format!("{round}-before")));
    assert_eq!(ok.status, 200, "{}", ok.text());

    // The panicking request.
    let case = format!("{round}-panic");
    let outcome = fx.gw.send(&as_agent(Request::get("/public/boom"), &case).header("x-airlock-fault", "panic"));
    expect_refused(&outcome, "the request whose VM panicked");
    if let Ok(resp) = &outcome {
        assert_eq!(resp.status, 503, "{}", resp.text());
    }
    expect_nothing_reached(&fx.upstream, &case);

    // While the VM is being replaced: a denied request never passes, an allowed one gets
    // 503 until the fresh VM serves it.
    let started = Instant::now();
    let mut attempts = 0u32;
    let recovered = loop {
        attempts += 1;
        let deny_case = format!("{round}-deny-{attempts}");
        let denied = fx.gw.send(&as_agent(Request::new("DELETE", "/v1/reports/1"), &deny_case));
        expect_refused(&denied, "DELETE while the VM reloads");
        expect_nothing_reached(&fx.upstream, &deny_case);

        let allow_case = format!("{round}-allow-{attempts}");
        let allowed = fx.gw.send(&as_agent(Request::get("/public/after"), &allow_case));
        match allowed {
            Ok(resp) if resp.status == 200 => break Some(started.elapsed()),
            Ok(resp) => assert_eq!(resp.status, 503, "while reloading: {}", resp.text()),
            Err(_) => {}
        }
        if started.elapsed() > RECOVERY || attempts > 400 {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = recovered.unwrap_or_else(|| panic!("no fresh VM within {RECOVERY:?}"));
    eprintln!("[e2e_vm_panic] {round}: fresh VM after {took:?} ({attempts} attempts)");

    // The fresh VM enforces policy again.
    let case = format!("{round}-after");
    let resp = send(&fx.gw, &as_agent(Request::new("DELETE", "/v1/reports/1"), &case));
    expect_problem(&resp, 403, "denied");
    expect_nothing_reached(&fx.upstream, &case);
}

fn panic_fails_closed_then_recovers(fx: &Fixture) {
    panic_round(fx, "first");
}

fn recovers_again_after_a_second_panic(fx: &Fixture) {
    panic_round(fx, "second");
}
