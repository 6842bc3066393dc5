//! SQLite-only tests of the transitions over the store on a real file: audit-chain
//! verification against tampering of the file, durability classes of the group-commit writer and WAL checkpoints off
//! the writer. The lifecycle rules every backend must keep are in `conformance.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::conformance::{new, reviewer};
use super::Decisions;
use crate::audit::verify::verify_database;
use crate::lifecycle::{Reuse, Status, Vote};
use crate::store::writer::Tx;
use crate::store::*;

const KEY: [u8; 32] = [7; 32];
const NOW: i64 = 1_800_000_000_000;

fn open(dir: &tempfile::TempDir) -> (Arc<SqliteStore>, std::path::PathBuf) {
    let path = dir.path().join("airlock.db");
    (Arc::new(SqliteStore::open(&path, Some(KEY.to_vec()), 10).unwrap()), path)
}

fn created(store: &SqliteStore, n: NewApproval) -> Approval {
    match store.create_or_find(n, None, NOW).unwrap() {
        CreateOutcome::Created(a) => a,
        other => panic!("expected created, got {other:?}"),
    }
}

/// A fresh decision-batch id (the signature of the request carrying it, in the service).
fn batch_id() -> String {
    static SIGNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("v1=batch-{}", SIGNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn redeem_req(id: &str, digest: &str) -> RedeemRequest {
    static SIGNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    RedeemRequest {
        signature: format!("v1={}", SIGNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        approval_id: id.into(),
        decision_id: "dec_2".into(),
        agent: "spiffe://corp/agent/bot".into(),
        digest: digest.repeat(64),
        mint: MintRecord { profile: Some("p".into()), details: json!({"kind": "static"}) },
    }
}

fn tamper(path: &std::path::Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_records_no_update; DROP TRIGGER IF EXISTS audit_records_no_delete;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

fn filled(dir: &tempfile::TempDir, n: usize) -> std::path::PathBuf {
    let (store, path) = open(dir);
    let records = (0..n).map(|i| json!({"decision_id": format!("dec_{i}"), "effect": "allow"})).collect();
    store.append_decisions(&batch_id(), records, 0, NOW).unwrap();
    store.checkpoint().unwrap();
    path
}

#[test]
fn audit_verify_catches_edit_delete_reorder_truncate_on_a_real_file() {
    let cases: [(&str, Option<i64>); 5] = [
        ("", None),
        ("UPDATE audit_records SET event = '{\"effect\":\"deny\"}' WHERE seq = 5", Some(5)),
        ("DELETE FROM audit_records WHERE seq = 7", Some(7)),
        (
            "UPDATE audit_records SET seq = -3 WHERE seq = 3; UPDATE audit_records SET seq = 3 WHERE seq = 4; \
             UPDATE audit_records SET seq = 4 WHERE seq = -3;",
            Some(3),
        ),
        ("DELETE FROM audit_records WHERE seq > 20", Some(21)),
    ];
    for (sql, bad) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = filled(&dir, 25);
        if !sql.is_empty() {
            tamper(&path, sql);
        }
        let report = verify_database(&path, Some(&KEY)).unwrap();
        assert_eq!(report.first_bad_seq, bad, "{sql}: {report:?}");
        assert_eq!(report.ok(), bad.is_none());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = filled(&dir, 25);
    assert!(!verify_database(&path, Some(&[8; 32])).unwrap().ok(), "wrong key must fail the seals");
}

/// `PRAGMA synchronous` inside a job: the level its batch commits with (1 NORMAL, 2 FULL).
fn sync_level(tx: &mut Tx<'_>) -> Result<i64, StoreError> {
    Ok(tx.conn.pragma_query_value(None, "synchronous", |r| r.get(0))?)
}

fn open_with(path: &std::path::Path, interval: Duration) -> SqliteStore {
    SqliteStore::open_with(path, Some(KEY.to_vec()), 10, interval).unwrap()
}

/// Runs `jobs` (deferred?, job) as one batch: a gate job holds the writer until all are
/// queued behind it. Returns their answers in order.
fn one_batch(store: &SqliteStore, jobs: &[bool]) -> Vec<i64> {
    let (started, is_started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let gate = store
        .writer()
        .enqueue(true, move |_| {
            let _ = started.send(());
            let _ = released.recv_timeout(Duration::from_secs(30));
            Ok(())
        })
        .unwrap();
    is_started.recv_timeout(Duration::from_secs(30)).unwrap();
    let tickets: Vec<_> = jobs.iter().map(|deferred| store.writer().enqueue(*deferred, sync_level).unwrap()).collect();
    release.send(()).unwrap();
    gate.wait().unwrap();
    tickets.into_iter().map(|t| t.wait().unwrap()).collect()
}

#[test]
fn a_batch_commits_normal_only_when_every_job_in_it_is_deferred() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&dir.path().join("airlock.db"), Duration::from_secs(3600));
    assert_eq!(store.writer().submit(sync_level).unwrap(), 2);
    assert_eq!(store.writer().submit_deferred(sync_level).unwrap(), 1);
    assert_eq!(one_batch(&store, &[true, true, true]), vec![1, 1, 1]);
    assert_eq!(one_batch(&store, &[true, false, true]), vec![2, 2, 2], "one durable job makes the batch FULL");
    assert_eq!(one_batch(&store, &[true]), vec![1], "and the next deferred batch is NORMAL again");
    assert_eq!(store.writer().submit(sync_level).unwrap(), 2);
    // The writer checkpoints nothing itself.
    let auto: i64 =
        store.writer().submit(|tx| Ok(tx.conn.pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))?)).unwrap();
    assert_eq!(auto, 0);
    let limit: i64 =
        store.writer().submit(|tx| Ok(tx.conn.pragma_query_value(None, "journal_size_limit", |r| r.get(0))?)).unwrap();
    assert_eq!(limit, 64 * 1024 * 1024);
}

/// The SPEC's invariant: every approval, review and redeem is on disk before its answer;
/// only the gateway's decision-log batches may wait for the next sync.
#[test]
fn only_decision_logs_commit_without_an_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.db");
    let store = open_with(&path, Duration::from_secs(3600));
    let full_after = |store: &SqliteStore, what: &str, before: (u64, u64)| {
        let now = store.writer().commits();
        assert_eq!((now.0 - before.0, now.1 - before.1), (1, 0), "{what} must commit with an fsync");
    };
    let before = store.writer().commits();
    created(&store, new("apr_d", "d", 1, Reuse::Once));
    full_after(&store, "a new approval", before);
    let before = store.writer().commits();
    store.review("apr_d", &reviewer("bob", &[]), Vote::Approve, ReviewNote::api(None), NOW).unwrap();
    full_after(&store, "a review", before);
    let before = store.writer().commits();
    assert_eq!(store.append_decisions(&batch_id(), vec![json!({"decision_id": "dec_d"})], 0, NOW).unwrap(), Some(1));
    let now = store.writer().commits();
    assert_eq!((now.0 - before.0, now.1 - before.1), (0, 1), "a decision-log batch waits for the next sync");
    assert!(verify_database(&path, Some(&KEY)).unwrap().ok());
}

#[test]
fn deferred_commits_are_visible_at_once_and_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.db");
    let store = open_with(&path, Duration::from_secs(3600));
    created(&store, new("apr_v", "v", 1, Reuse::Once));
    assert_eq!(store.get("apr_v", NOW).unwrap().unwrap().status, Status::Pending, "the reader sees it at once");
    assert_eq!(store.pending_count().unwrap(), 1);
    let records = (0..30).map(|i| json!({"decision_id": format!("dec_{i}"), "effect": "allow"})).collect();
    assert_eq!(store.append_decisions(&batch_id(), records, 2, NOW).unwrap(), Some(30));
    assert!(matches!(store.due_notifications(NOW, 10).unwrap().as_slice(), [item] if item.approval_id == "apr_v"));
    drop(store);
    let store = open_with(&path, Duration::from_secs(3600));
    assert_eq!(store.get("apr_v", NOW).unwrap().unwrap().status, Status::Pending);
    let records: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM audit_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(records, 1 + 30 + 1, "approval.created, the decisions and decision.dropped");
    assert!(verify_database(&path, Some(&KEY)).unwrap().ok());
}

#[test]
fn the_audit_chain_verifies_after_a_mix_of_deferred_and_durable_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.db");
    let store = Arc::new(open_with(&path, Duration::from_millis(5)));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..15 {
                    let digest = format!("{:x}", (w * 16 + i) % 16);
                    let id = format!("apr_{w}_{i}");
                    // Deferred: a create (or a find of a live one) and a decision batch.
                    let a = match store.create_or_find(new(&id, &digest, 1, Reuse::Once), None, NOW).unwrap() {
                        CreateOutcome::Created(a) | CreateOutcome::Found(a) => a,
                        other => panic!("{other:?}"),
                    };
                    let records = (0..5).map(|k| json!({"decision_id": format!("dec_{w}_{i}_{k}")})).collect();
                    store.append_decisions(&batch_id(), records, 0, NOW).unwrap();
                    // Durable: a vote, a redeem, an event.
                    if store
                        .review(&a.id, &reviewer(&format!("r{w}"), &[]), Vote::Approve, ReviewNote::api(None), NOW)
                        .is_ok()
                    {
                        let _ = store.redeem(redeem_req(&a.id, &digest), NOW).unwrap();
                    }
                    store.append_event("test.event", json!({"worker": w, "i": i})).unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert!(verify_database(&path, Some(&KEY)).unwrap().ok());
    drop(store);
    let report = verify_database(&path, Some(&KEY)).unwrap();
    assert!(report.ok(), "{report:?}");
    let store = open_with(&path, Duration::from_secs(3600));
    store.append_decisions(&batch_id(), vec![json!({"decision_id": "after"})], 0, NOW).unwrap();
    store.checkpoint().unwrap();
    assert!(verify_database(&path, Some(&KEY)).unwrap().ok());
}

#[test]
fn the_wal_stays_bounded_with_the_checkpointer_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.db");
    let wal = dir.path().join("airlock.db-wal");
    let store = open_with(&path, Duration::from_millis(10));
    let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let append_round = |round: usize| {
        for batch in 0..5 {
            let records = (0..100)
                .map(|i| json!({"decision_id": format!("dec_{round}_{batch}_{i}"), "effect": "allow", "pad": "x".repeat(200)}))
                .collect();
            store.append_decisions(&batch_id(), records, 0, NOW).unwrap();
        }
    };
    // Two more complete checkpoints: the second one started after the round's last commit.
    let wait_for_checkpoint = || {
        let start = store.complete_checkpoints();
        for _ in 0..6000 {
            if store.complete_checkpoints() >= start + 2 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no WAL checkpoint within 30 s");
    };
    append_round(0);
    let first = wal_len();
    assert!(first > 0);
    wait_for_checkpoint();
    let mut largest = first;
    for round in 1..8 {
        append_round(round);
        largest = largest.max(wal_len());
        wait_for_checkpoint();
    }
    // Without checkpoints the WAL would hold all 8 rounds; with them each round starts
    // the WAL over.
    assert!(largest <= first * 2, "WAL grew from {first} to {largest} bytes");
    let records: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM audit_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(records, 8 * 5 * 100);
    drop(store);
    assert!(verify_database(&path, Some(&KEY)).unwrap().ok());
}
