//! Fail closed when the Wasm VM dies. Uses the test-only module built with the
//! `fault-injection` feature (`bash scripts/build-wasm.sh`), where `x-airlock-fault: panic`
//! makes the filter panic. With `failure_policy: FAIL_RELOAD` (envoy/demo.yaml) the
//! panicking request gets 503, nothing reaches the upstream while the VM is down, and a
//! fresh VM then serves normally again. A request the dead VM was holding (paused while
//! the approval service long-polls) cannot be resumed by anyone: Envoy's timeouts in the
//! shipped config must end it, promptly, rather than its 5-minute stream idle default.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::time::{Duration, Instant};

use serde_json::json;

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::Request;
use airlock_tests::e2e::fake_service::FakeService;
use airlock_tests::e2e::gateway::{fault_module, Gateway};
use airlock_tests::e2e::plugin::{service_keys, PluginOptions};
use airlock_tests::e2e::template;
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

/// The held request's hold and callout timeout in the test (short, so the test waits
/// seconds, not the shipped minutes).
const HOLD: Duration = Duration::from_secs(2);
const CALLOUT: Duration = Duration::from_millis(1500);
/// The shipped demo.yaml with its timeouts scaled to the test's hold: each setting must
/// appear exactly once in the shipped file, so the test breaks if one is dropped.
const SCALED: &[(&str, &str)] =
    &[("stream_idle_timeout: 60s", "stream_idle_timeout: 6s"), ("request_timeout: 120s", "request_timeout: 12s")];
/// How soon after the panic the held request must have ended: the scaled bound plus
/// room for a loaded CI machine, still far below Envoy's 300 s default.
const HELD_BOUND: Duration = Duration::from_secs(20);
/// Envoy's default stream idle timeout: what a held request waited before the fix.
const ENVOY_IDLE_DEFAULT: Duration = Duration::from_secs(300);

fn scaled_demo() -> String {
    let mut text = template::read_shipped("demo.yaml").unwrap();
    for (shipped, scaled) in SCALED {
        assert_eq!(text.matches(shipped).count(), 1, "envoy/demo.yaml must set `{shipped}` exactly once");
        text = text.replace(shipped, scaled);
    }
    text
}

#[test]
fn a_request_held_when_the_vm_dies_ends_promptly() {
    let wasm = fault_module().unwrap_or_else(|e| panic!("{e:#}"));
    let upstream = RecordingUpstream::http("upstream").unwrap();
    let service = FakeService::start(service_keys().unwrap()).unwrap();
    let opts = PluginOptions {
        hold_ms: u64::try_from(HOLD.as_millis()).unwrap(),
        timeout_ms: u64::try_from(CALLOUT.as_millis()).unwrap(),
        ..PluginOptions::default()
    };
    let v = vars(&wasm, &opts, upstream.port(), service.port());
    let gw = Gateway::spawn_text("vm-panic-held", "demo.yaml", &scaled_demo(), &v)
        .and_then(Gateway::ready)
        .unwrap_or_else(|e| panic!("{e:#}"));

    // An export that needs approval: the filter pauses it while the service long-polls.
    let case = "held";
    let held = as_agent(Request::post_json("/v1/exports", &json!({"format": "csv"})), case)
        .timeout(ENVOY_IDLE_DEFAULT + Duration::from_secs(30));
    let addr = gw.addr;
    let sent = Instant::now();
    let waiter = std::thread::spawn(move || {
        let outcome = held.send(addr);
        (outcome, Instant::now())
    });
    let approval = service.wait_for_approval_of(&agent(case), Duration::from_secs(10));
    assert!(approval.is_some(), "the held request never reached the approval service");

    // Another request kills the VM while the export is held.
    let boom = "held-boom";
    let outcome = gw.send(&as_agent(Request::get("/public/boom"), boom).header("x-airlock-fault", "panic"));
    let panicked = Instant::now();
    expect_refused(&outcome, "the request whose VM panicked");

    let (outcome, ended) = waiter.join().unwrap();
    let after_panic = ended.saturating_duration_since(panicked);
    let total = ended.saturating_duration_since(sent);
    let how = match &outcome {
        Ok(resp) => format!("{} {}", resp.status, resp.text().trim()),
        Err(e) => format!("error: {e:#}"),
    };
    eprintln!("[e2e_vm_panic] held request ended {after_panic:?} after the panic ({total:?} after it was sent): {how}");
    expect_refused(&outcome, "the request held when the VM died");
    expect_nothing_reached(&upstream, case);
    if after_panic >= ENVOY_IDLE_DEFAULT {
        gw.envoy.print_log();
    }
    assert!(
        after_panic < HELD_BOUND,
        "the held request must end within {HELD_BOUND:?} of the panic, took {after_panic:?}: {how}"
    );
}
