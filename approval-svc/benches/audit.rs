//! Durable audit appends per second (group commit, `synchronous = FULL`) and the time
//! `audit verify` takes for 100k records. Run: `cargo bench -p airlock-approval-svc --bench audit`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use airlock_approval_svc::approvals::Decisions;
use airlock_approval_svc::audit::verify::verify_database;
use airlock_approval_svc::store::{SqliteStore, Store};
use serde_json::json;

fn event(i: usize) -> serde_json::Value {
    json!({"decision_id": format!("dec_{i}"), "time_ms": 1_795_000_000_000u64 + i as u64, "effect": "allow",
           "enforced": "allow", "mode": "enforce", "rule": "read-only", "reason": "reads are fine", "risk": "low",
           "policy_revision": "r42", "agent": "spiffe://corp/agent/report-bot",
           "digest": "5d41402abc4b2a76b9719d911017c592aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "method": "GET",
           "host": "api.example.com", "path": "/v1/things"})
}

fn main() {
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tempfile::tempdir_in(&base).unwrap();
    let key = Some(vec![7u8; 32]);

    // 1. One caller at a time: every append is its own transaction and fsync.
    let store = SqliteStore::open(&dir.path().join("serial.db"), key.clone(), 100).unwrap();
    let n = 300;
    let t = Instant::now();
    for i in 0..n {
        store.append_event("decision", event(i)).unwrap();
    }
    let serial = n as f64 / t.elapsed().as_secs_f64();
    println!("serial durable appends:        {serial:>10.0} events/s ({n} events, one caller)");

    // 2. Many concurrent callers: the writer commits them in groups.
    for callers in [16usize, 64, 256] {
        let store =
            Arc::new(SqliteStore::open(&dir.path().join(format!("group{callers}.db")), key.clone(), 100).unwrap());
        let per = 40_000 / callers;
        let t = Instant::now();
        let handles: Vec<_> = (0..callers)
            .map(|c| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..per {
                        store.append_event("decision", event(c * per + i)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let rate = (callers * per) as f64 / t.elapsed().as_secs_f64();
        println!("group-commit durable appends:  {rate:>10.0} events/s ({} events, {callers} concurrent callers, one append each)", callers * per);
    }

    // 3. Decision batches (the gateway's shape): 100 records per call.
    let store = Arc::new(SqliteStore::open(&dir.path().join("batches.db"), key.clone(), 100).unwrap());
    let t = Instant::now();
    for b in 0..1000 {
        store.append_decisions(&format!("v1=batch-{b}"), (0..100).map(|i| event(b * 100 + i)).collect(), 0, 0).unwrap();
    }
    store.checkpoint().unwrap();
    let rate = 100_000.0 / t.elapsed().as_secs_f64();
    println!("decision batches of 100:       {rate:>10.0} events/s (100000 events, one caller)");

    // 4. Verify the 100k-record chain (hashes + 1000 checkpoint seals).
    let t = Instant::now();
    let report = verify_database(&dir.path().join("batches.db"), Some(&[7u8; 32])).unwrap();
    let took = t.elapsed();
    assert!(report.ok(), "{report:?}");
    println!(
        "audit verify, {} records, {} checkpoints: {:.3} s",
        report.records,
        report.checkpoints,
        took.as_secs_f64()
    );
}
