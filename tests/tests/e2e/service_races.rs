//! Races and crash recovery with the REAL approval service behind real Envoy: approve vs
//! deny, approve vs expire, double redeem, and `kill -9` during a load of approvals and
//! redeems followed by a restart on the same SQLite file. Every loop is bounded in count
//! and time.
//!
//! Needs `bash scripts/setup.sh` (Envoy), the filter
//! (`cargo build -p airlock-filter-wasm --target wasm32-wasip1 --release`) and the service
//! (`cargo build -p airlock-approval-svc`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use airlock_tests::e2e::cases::{self, Case};
use airlock_tests::e2e::client::Response;
use airlock_tests::e2e::gateway::Gateway;
use airlock_tests::e2e::plugin::APPROVAL_HEADER;
use airlock_tests::e2e::service::{self, status_of, AirlockService};
use airlock_tests::e2e::upstream::RecordingUpstream;
use e2e_support::real::*;
use e2e_support::*;

struct Fixture {
    upstream: RecordingUpstream,
    svc: Mutex<AirlockService>,
    gw: Gateway,
}

impl Fixture {
    fn svc(&self) -> MutexGuard<'_, AirlockService> {
        self.svc.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[test]
fn service_races() {
    let started = Instant::now();
    let wasm = filter_module();
    let svc = start_service("races");
    let upstream = RecordingUpstream::http("upstream").unwrap();
    let mut gws =
        start_gateways(vec![("svc-races", "demo.yaml", real_vars(&wasm, &plugin(0), upstream.port(), svc.port()))]);
    eprintln!("[e2e_service_races] setup {:.1?}", started.elapsed());
    let fx = Fixture { upstream, svc: Mutex::new(svc), gw: gws.pop().unwrap() };
    let all: &[Case<Fixture>] = &[
        ("approve_vs_deny", approve_vs_deny),
        ("approve_vs_expire", approve_vs_expire),
        ("double_redeem", double_redeem),
        ("kill9_during_load", kill9_during_load),
    ];
    let outcome = cases::run("e2e_service_races", &fx, all, |_| {});
    eprintln!("[e2e_service_races] total {:.1?}", started.elapsed());
    outcome.unwrap();
}

fn approve_vs_deny(fx: &Fixture) {
    const ROUNDS: u64 = 8;
    let case = "race-approve-deny";
    let who = agent(case);
    let (client, bob, carol) = {
        let svc = fx.svc();
        (svc.client(), key(&svc, BOB), key(&svc, CAROL))
    };
    let mut winners: BTreeMap<String, (&str, u64)> = BTreeMap::new();
    for round in 0..ROUNDS {
        let id = pending(&fx.gw, &post_as(&who, case, EXPORT_PATH, &export_body(case, round)));
        let barrier = Arc::new(Barrier::new(2));
        let spawn = |approve: bool, key: String| {
            let (barrier, id) = (barrier.clone(), id.clone());
            thread::spawn(move || {
                barrier.wait();
                if approve {
                    client.approve(&id, &key)
                } else {
                    client.deny(&id, &key)
                }
            })
        };
        let a = spawn(true, bob.clone());
        let d = spawn(false, carol.clone());
        let a = a.join().unwrap().unwrap();
        let d = d.join().unwrap().unwrap();
        let ok = [a.status == 200, d.status == 200];
        assert_eq!(
            ok.iter().filter(|x| **x).count(),
            1,
            "round {round}: exactly one decision wins: approve {} {}, deny {} {}",
            a.status,
            a.text(),
            d.status,
            d.text()
        );
        let loser = if ok[0] { &d } else { &a };
        expect_api_problem(loser, 409, "already-decided", "the losing decision");
        let winner = if ok[0] { "approved" } else { "denied" };
        let shown = client.show(&id, &bob).unwrap();
        assert_eq!(status_of(&shown), Some(winner), "round {round}: store agrees: {shown}");
        winners.insert(id, (winner, round));
    }
    let approved = winners.values().filter(|(w, _)| *w == "approved").count();
    eprintln!(
        "[e2e_service_races] approve vs deny: {approved} approve wins, {} deny wins of {ROUNDS}",
        winners.len() - approved
    );
    let svc = fx.svc();
    let records = audit_until(&svc, "every decision", Duration::from_secs(10), |r| {
        winners.keys().all(|id| {
            service::records_mentioning(r, "approval.approved", id).len()
                + service::records_mentioning(r, "approval.denied", id).len()
                >= 1
        })
    });
    drop(svc);
    for (id, (winner, round)) in &winners {
        let a = service::records_mentioning(&records, "approval.approved", id).len();
        let d = service::records_mentioning(&records, "approval.denied", id).len();
        let want = if *winner == "approved" { (1, 0) } else { (0, 1) };
        assert_eq!((a, d), want, "audit of {id} agrees with the store ({winner})");
        // And the gateway agrees.
        let req = post_as(&who, case, EXPORT_PATH, &export_body(case, *round));
        if *winner == "approved" {
            let resp = send(&fx.gw, &req);
            assert_eq!(resp.status, 200, "{id} approved: {}", resp.text());
        } else {
            let resp = send(&fx.gw, &req.header(APPROVAL_HEADER, id));
            expect_problem(&resp, 403, "approval-denied");
        }
    }
    assert_eq!(fx.upstream.heads_for(case).len(), approved);
}

fn approve_vs_expire(fx: &Fixture) {
    let case = "race-approve-expire";
    let who = agent(case);
    let offsets_ms: [i64; 8] = [-400, -150, -60, -20, 0, 20, 60, 400];
    let (client, bob) = {
        let svc = fx.svc();
        (svc.client(), key(&svc, BOB))
    };
    let mut created = Vec::new();
    for (i, _) in offsets_ms.iter().enumerate() {
        let before = Instant::now();
        let id = pending(&fx.gw, &post_as(&who, case, SHORT_PATH, &export_body(case, i as u64)));
        // The service's deadline lies between `before` + 2 s and now + 2 s: approvals
        // aimed before it count from the earliest, after it from the latest.
        created.push((id, before + SHORT_EXPIRY, Instant::now() + SHORT_EXPIRY));
    }
    let handles: Vec<_> = created
        .iter()
        .zip(offsets_ms)
        .map(|((id, earliest, latest), off)| {
            let (id, earliest, latest, bob) = (id.clone(), *earliest, *latest, bob.clone());
            thread::spawn(move || {
                let at = if off >= 0 {
                    latest + Duration::from_millis(off as u64)
                } else {
                    earliest - Duration::from_millis((-off) as u64)
                };
                thread::sleep(at.saturating_duration_since(Instant::now()));
                {
                    let r = client.approve(&id, &bob);
                    (id, off, r)
                }
            })
        })
        .collect();
    let mut outcome = Vec::new();
    for h in handles {
        let (id, off, resp) = h.join().unwrap();
        let resp = resp.unwrap();
        match resp.status {
            200 => {}
            410 => expect_api_problem(&resp, 410, "approval-expired", "approve after expiry"),
            other => panic!("approve at {off:+} ms: want 200 or 410, got {other} {}", resp.text()),
        }
        let shown = client.show(&id, &bob).unwrap();
        if resp.status == 410 {
            assert_eq!(status_of(&shown), Some("expired"), "{id}: 410 but {shown}");
        }
        outcome.push((id, off, resp.status));
    }
    eprintln!(
        "[e2e_service_races] approve vs expire (offset ms → status): {:?}",
        outcome.iter().map(|(_, o, s)| (*o, *s)).collect::<Vec<_>>()
    );
    assert_eq!(outcome[0].2, 200, "400 ms before the deadline the approval wins");
    assert_eq!(outcome[offsets_ms.len() - 1].2, 410, "400 ms after it, expiry wins");
    let svc = fx.svc();
    let records = svc.audit_export().unwrap();
    drop(svc);
    for (id, off, status) in &outcome {
        let approved = service::records_mentioning(&records, "approval.approved", id).len();
        assert_eq!(
            approved,
            usize::from(*status == 200),
            "{id} (approve at {off:+} ms answered {status}): approval.approved records"
        );
    }
    // None of them lets anything through now.
    for (i, (id, _, _)) in outcome.iter().enumerate() {
        let req = post_as(&who, case, SHORT_PATH, &export_body(case, i as u64));
        let resp = send(&fx.gw, &req.header(APPROVAL_HEADER, id));
        expect_problem(&resp, 403, "approval-expired");
    }
    expect_nothing_reached(&fx.upstream, case);
}

fn double_redeem(fx: &Fixture) {
    const ROUNDS: u64 = 6;
    let case = "race-double-redeem";
    let who = agent(case);
    let mut ids = Vec::new();
    for round in 0..ROUNDS {
        let tag = format!("{case}-{round}");
        let req = post_as(&who, &tag, EXPORT_PATH, &export_body(case, round));
        let id = pending(&fx.gw, &req);
        {
            let svc = fx.svc();
            approve_ok(&svc, &id, BOB);
        }
        let barrier = Arc::new(Barrier::new(2));
        let addr = fx.gw.addr;
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (barrier, req) = (barrier.clone(), req.clone());
                thread::spawn(move || {
                    barrier.wait();
                    req.send(addr)
                })
            })
            .collect();
        let answers: Vec<Response> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        let wins = answers.iter().filter(|r| r.status == 200).count();
        assert_eq!(
            wins,
            1,
            "round {round}: exactly one of two identical retries gets through: {:?}",
            answers.iter().map(|r| (r.status, r.text())).collect::<Vec<_>>()
        );
        for r in answers.iter().filter(|r| r.status != 200) {
            assert!(
                r.status == 403
                    && matches!(
                        r.problem_type().as_deref(),
                        Some("urn:airlock:problem:denied" | "urn:airlock:problem:approval-pending")
                    ),
                "the loser is refused: {} {}",
                r.status,
                r.text()
            );
        }
        assert_eq!(fx.upstream.heads_for(&tag).len(), 1, "round {round}: one upstream request");
        ids.push(id);
    }
    let svc = fx.svc();
    let records = audit_until(&svc, "every redeem", Duration::from_secs(10), |r| {
        ids.iter().all(|id| !service::records_mentioning(r, "approval.redeemed", id).is_empty())
    });
    for id in &ids {
        assert_eq!(service::records_mentioning(&records, "approval.redeemed", id).len(), 1, "{id}");
        assert_eq!(service::records_mentioning(&records, "credential.minted", id).len(), 1, "{id}");
    }
}

/// What the service answered during the load, per approval.
#[derive(Default, Debug)]
struct Answers {
    /// approval id → request body rows (to replay it).
    created: BTreeMap<String, u64>,
    /// Approvals the API said 200 to.
    approved: Vec<String>,
    /// Approvals whose retry reached the upstream (redeemed).
    redeemed: Vec<String>,
    /// Requests sent, and how many failed (connection error, 503, 5xx).
    sent: usize,
    failed: usize,
}

fn kill9_during_load(fx: &Fixture) {
    const THREADS: u64 = 4;
    /// Upper bound per thread; the load normally ends earlier, 1 s after the restart.
    const PER_THREAD: u64 = 150;
    const LOAD_LIMIT: Duration = Duration::from_secs(20);
    let case = "race-kill9";
    let who = agent(case);
    let (client, keys) = {
        let svc = fx.svc();
        (svc.client(), [key(&svc, BOB), key(&svc, CAROL)])
    };
    let answers = Arc::new(Mutex::new(Answers::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let addr = fx.gw.addr;
    let started = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (answers, who, keys, stop) = (answers.clone(), who.clone(), keys.clone(), stop.clone());
            thread::spawn(move || {
                let note = |f: &dyn Fn(&mut Answers)| {
                    if let Ok(mut a) = answers.lock() {
                        f(&mut a);
                    }
                };
                for i in 0..PER_THREAD {
                    if started.elapsed() > LOAD_LIMIT || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let rows = t * 1000 + i;
                    let req =
                        post_as(&who, case, EXPORT_PATH, &export_body(case, rows)).timeout(Duration::from_secs(10));
                    // 1. create
                    let created = req.send(addr);
                    note(&|a| a.sent += 1);
                    let id = match &created {
                        Ok(r) if r.status == 403 => {
                            r.json().ok().and_then(|d| d["approval_id"].as_str().map(str::to_string))
                        }
                        _ => None,
                    };
                    let Some(id) = id else {
                        note(&|a| a.failed += 1);
                        thread::sleep(Duration::from_millis(40));
                        continue;
                    };
                    note(&|a| {
                        a.created.insert(id.clone(), rows);
                    });
                    // 2. approve (bounded retries across the outage)
                    let mut approved = false;
                    for _ in 0..20 {
                        let r = client.approve(&id, &keys[(i % 2) as usize]);
                        note(&|a| a.sent += 1);
                        match r {
                            Ok(r) if r.status == 200 => {
                                approved = true;
                                break;
                            }
                            Ok(r) if r.status == 409 => break, // already decided before a crash
                            _ => {
                                note(&|a| a.failed += 1);
                                thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    if !approved {
                        continue;
                    }
                    note(&|a| a.approved.push(id.clone()));
                    // 3. redeem through the gateway
                    let r = req.send(addr);
                    note(&|a| a.sent += 1);
                    match r {
                        Ok(r) if r.status == 200 => note(&|a| a.redeemed.push(id.clone())),
                        _ => note(&|a| a.failed += 1),
                    }
                }
            })
        })
        .collect();

    // Let the load run, kill -9 in the middle of it, restart on the same database.
    thread::sleep(Duration::from_millis(600));
    let killed_at = Instant::now();
    fx.svc().kill9().unwrap();
    let before_kill = answers.lock().unwrap().sent;
    thread::sleep(Duration::from_millis(400));
    fx.svc().restart().unwrap();
    let down = killed_at.elapsed();
    let after_restart = answers.lock().unwrap().sent;
    thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let took = started.elapsed();
    let a = std::mem::take(&mut *answers.lock().unwrap());
    eprintln!(
        "[e2e_service_races] kill -9 under load: {} requests in {took:.1?} ({before_kill} before the kill, \
         down {down:.1?}, {after_restart} by the restart), {} failed during the outage; {} approvals created, {} approved, {} redeemed",
        a.sent,
        a.failed,
        a.created.len(),
        a.approved.len(),
        a.redeemed.len()
    );
    assert!(a.sent >= 100, "a real load: {} requests", a.sent);
    assert!(
        before_kill > 0 && a.sent > after_restart,
        "the kill came in the middle of the load ({before_kill} before, {} in all)",
        a.sent
    );
    assert!(!a.redeemed.is_empty(), "some approvals were redeemed");

    // Every answer the service gave is reflected in the store.
    let svc = fx.svc();
    let bob = key(&svc, BOB);
    for id in &a.approved {
        let shown = svc.show(id, &bob).unwrap();
        let st = status_of(&shown).unwrap_or("");
        assert!(
            st == "approved" || st == "redeemed" || is_redeemed(&shown),
            "{id} was approved (200) but the store says {shown}"
        );
    }
    for id in &a.redeemed {
        let shown = svc.show(id, &bob).unwrap();
        assert!(is_redeemed(&shown), "{id} was redeemed but the store says {shown}");
    }
    let records = svc.audit_export().unwrap();
    drop(svc);
    for id in &a.approved {
        assert!(
            !service::records_mentioning(&records, "approval.approved", id).is_empty(),
            "{id}: approved (200) but no approval.approved audit record"
        );
    }
    for id in &a.redeemed {
        assert_eq!(
            service::records_mentioning(&records, "approval.redeemed", id).len(),
            1,
            "{id}: reached the upstream, one approval.redeemed audit record"
        );
    }
    // Redeemed ones stay consumed: naming them again is refused.
    for id in a.redeemed.iter().take(8) {
        let rows = a.created[id];
        let req = post_as(&who, "race-kill9-replay", EXPORT_PATH, &export_body(case, rows)).header(APPROVAL_HEADER, id);
        expect_problem(&send(&fx.gw, &req), 403, "denied");
    }
    expect_nothing_reached(&fx.upstream, "race-kill9-replay");
    // Approved-but-unused ones survived the crash: they redeem now. (One whose redeem
    // committed but whose answer died with the process is consumed: skipped.)
    let unused: Vec<&String> = a.approved.iter().filter(|id| !a.redeemed.contains(id)).collect();
    let client = fx.svc().client();
    for id in unused.iter().take(8) {
        let shown = client.show(id, &bob).unwrap();
        if is_redeemed(&shown) || status_of(&shown) == Some("redeemed") {
            eprintln!("[e2e_service_races] {id}: redeemed in the store, answer lost in the crash");
            continue;
        }
        let rows = a.created[*id];
        let tag = format!("race-kill9-late-{rows}");
        let req = post_as(&who, &tag, EXPORT_PATH, &export_body(case, rows));
        let resp = send(&fx.gw, &req);
        assert_eq!(resp.status, 200, "{id} approved before the crash redeems after it: {}", resp.text());
    }
    let redeemed_upstream = fx.upstream.heads_for(case).len();
    assert_eq!(redeemed_upstream, a.redeemed.len(), "exactly the redeemed ones reached the upstream during the load");
    let mut svc = fx.svc();
    svc.stop().unwrap();
    let verify = svc.audit_verify().unwrap();
    assert!(verify.success(), "audit verify after kill -9 and restart: {verify}");
    svc.restart().unwrap();
}
