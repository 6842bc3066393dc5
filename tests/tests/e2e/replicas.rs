//! Two `airlock serve` replicas on one real PostgreSQL, behind real Envoy (one cluster,
//! both endpoints, round robin): an approval created through one replica is approved
//! through the other and redeemed through either; `kill -9` of one replica under load
//! loses no acknowledged record and the audit chain verifies; with PostgreSQL stopped,
//! approval-required calls answer `unavailable` (nothing reaches the upstream) while
//! allowed calls pass, and the replicas recover when it is back, without a restart.
//!
//! Needs Debian's postgresql (`bash scripts/setup.sh`), Envoy, the filter
//! (`bash scripts/build-wasm.sh`) and the service (`cargo build -p airlock-approval-svc`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use airlock_tests::e2e::gateway::Gateway;
use airlock_tests::e2e::plugin::APPROVAL_HEADER;
use airlock_tests::e2e::postgres::TestPostgres;
use airlock_tests::e2e::service::{status_of, AirlockService, ServiceOptions};
use airlock_tests::e2e::upstream::RecordingUpstream;
use e2e_support::real::*;
use e2e_support::*;

/// The approval cluster of `envoy/demo.yaml`, with a second endpoint for replica B.
fn two_endpoint_config() -> String {
    let path = airlock_tests::wasm::workspace_root().join("envoy").join("demo.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let one = "        - endpoint:\n            address:\n              socket_address: {address: ${AIRLOCK_APPROVAL_ADDRESS}, port_value: ${AIRLOCK_APPROVAL_PORT}}\n";
    assert!(text.contains(one), "envoy/demo.yaml's approval endpoint changed shape; update this test");
    let two = format!(
        "{one}        - endpoint:\n            address:\n              socket_address: {{address: ${{AIRLOCK_APPROVAL_ADDRESS}}, port_value: ${{AIRLOCK_APPROVAL_PORT_B}}}}\n"
    );
    text.replace(one, &two)
}

fn replica(name: &str, url: &str) -> AirlockService {
    let opts = ServiceOptions {
        reviewers: reviewers(),
        max_pending_per_agent: Some(1000),
        store_url: Some(url.to_string()),
        ..ServiceOptions::default()
    };
    AirlockService::start(name, &opts).unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn two_replicas_on_postgres() {
    let started = Instant::now();
    let wasm = filter_module();
    let pg = TestPostgres::start("replicas").unwrap_or_else(|e| panic!("{e:#}"));
    let url = pg.url();
    let a = replica("replica-a", &url);
    let mut b = replica("replica-b", &url);
    let upstream = RecordingUpstream::http("upstream").unwrap();
    let mut vars = real_vars(&wasm, &plugin(0), upstream.port(), a.port());
    vars.insert("AIRLOCK_APPROVAL_PORT_B".into(), b.port().to_string());
    let gw = Gateway::spawn_text("replicas", "demo.yaml", &two_endpoint_config(), &vars)
        .and_then(Gateway::ready)
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("[e2e_replicas] setup {:.1?}", started.elapsed());

    // 1. Created through the gateway (either replica), approved through each replica in
    //    turn, redeemed by the retry (either replica).
    for (round, approver) in [&a, &b, &a, &b].into_iter().enumerate() {
        let case = format!("replicas-flow-{round}");
        let who = agent(&case);
        let req = post_as(&who, &case, EXPORT_PATH, &export_body(&case, round as u64));
        let id = pending(&gw, &req);
        for svc in [&a, &b] {
            let shown = svc.show(&id, &key(svc, BOB)).unwrap();
            assert_eq!(status_of(&shown), Some("pending"), "both replicas see {id}: {shown}");
        }
        approve_ok(approver, &id, BOB);
        let resp = send(&gw, &req.clone().header(APPROVAL_HEADER, &id));
        assert_eq!(resp.status, 200, "{case}: the retry runs once approved: {}", resp.text());
        let up = upstream.wait_for(&case, 1, Duration::from_secs(5));
        check_credential(&up[0], &who, &[BOB]);
        let again = send(&gw, &req.clone().header(APPROVAL_HEADER, &id));
        assert_ne!(again.status, 200, "{case}: a `once` approval is used up on every replica");
        assert_eq!(upstream.requests_for(&case).len(), 1);
    }

    // 2. kill -9 of replica B under a load of create → approve → redeem through both.
    let acknowledged = kill9_under_load(&gw, &a, &mut b);
    for id in &acknowledged {
        let shown = a.show(id, &key(&a, BOB)).unwrap();
        assert!(
            matches!(status_of(&shown), Some("approved" | "redeemed")),
            "an approval the API acknowledged survives the kill: {shown}"
        );
    }
    let verified = a.audit_verify().unwrap();
    assert!(verified.success(), "one chain, verified after the kill: {verified}");

    // 3. PostgreSQL down: approval-required calls are refused as unavailable and never
    //    reach the upstream; allowed calls are not affected.
    pg.stop().unwrap();
    let case = "replicas-db-down";
    let who = agent(case);
    let held = post_as(&who, case, EXPORT_PATH, &export_body(case, 1));
    for _ in 0..3 {
        let resp = send(&gw, &held);
        expect_problem(&resp, 503, "unavailable");
    }
    let read = airlock_tests::e2e::client::Request::get("/v1/items")
        .header("host", HOST)
        .header(airlock_tests::e2e::plugin::IDENTITY_HEADER, &who)
        .header(airlock_tests::e2e::upstream::CASE_HEADER, "replicas-db-down-read");
    assert_eq!(send(&gw, &read).status, 200, "an allowed call passes while the database is down");
    assert!(upstream.requests_for(case).is_empty(), "nothing held reached the upstream");

    // 4. PostgreSQL back: the same replicas serve again, no restart.
    pg.resume().unwrap();
    eventually("the replicas reconnect", Duration::from_secs(20), || {
        send(&gw, &held).problem_type().as_deref() == Some("urn:airlock:problem:approval-pending")
    });
    let id = pending(&gw, &held);
    approve_ok(&b, &id, CAROL);
    assert_eq!(send(&gw, &held.clone().header(APPROVAL_HEADER, &id)).status, 200);
    assert!(a.audit_verify().unwrap().success());
    eprintln!("[e2e_replicas] total {:.1?}", started.elapsed());
}

/// Runs creates, approvals (through both replicas' APIs) and redeems from 3 threads,
/// kills replica B with SIGKILL after ~1.5 s and restarts it; returns the approvals
/// the API answered 200 to.
fn kill9_under_load(gw: &Gateway, a: &AirlockService, b: &mut AirlockService) -> Vec<String> {
    const THREADS: u64 = 3;
    const PER_THREAD: u64 = 60;
    const LOAD_LIMIT: Duration = Duration::from_secs(15);
    let case = "replicas-kill9";
    let who = agent(case);
    let clients = [a.client(), b.client()];
    let key_bob = key(a, BOB);
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let addr = gw.addr;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (acked, stop, who, clients, key_bob) =
                (acknowledged.clone(), stop.clone(), who.clone(), clients, key_bob.clone());
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > LOAD_LIMIT {
                        break;
                    }
                    let req = post_as(&who, case, EXPORT_PATH, &export_body(case, t * 1000 + i))
                        .timeout(Duration::from_secs(10));
                    let id = match req.send(addr) {
                        Ok(r) if r.status == 403 => {
                            r.json().ok().and_then(|d| d["approval_id"].as_str().map(str::to_string))
                        }
                        _ => None,
                    };
                    let Some(id) = id else {
                        thread::sleep(Duration::from_millis(30));
                        continue;
                    };
                    let via = &clients[usize::try_from(i % 2).unwrap_or(0)];
                    if matches!(via.approve(&id, &key_bob), Ok(r) if r.status == 200) {
                        if let Ok(mut s) = acked.lock() {
                            s.insert(id.clone());
                        }
                        let _ = req.header(APPROVAL_HEADER, &id).send(addr);
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));
    b.kill9().unwrap();
    thread::sleep(Duration::from_millis(1000));
    b.restart().unwrap();
    thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let ids: Vec<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    eprintln!("[e2e_replicas] kill -9 under load: {} approvals acknowledged", ids.len());
    assert!(!ids.is_empty(), "the load acknowledged some approvals");
    ids
}
