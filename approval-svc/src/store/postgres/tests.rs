//! Group commit on the real PostgreSQL (`scripts/postgres.sh`): jobs waiting together
//! share one transaction, a failing job fails alone, and the chain holds across two
//! store instances appending at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::testing::fresh_database;
use super::{verify_audit, PostgresStore};
use crate::lifecycle::Reuse;
use crate::store::{run, AgentRef, Durability, NewApproval, Store, StoreError};

const KEY: [u8; 32] = [9; 32];
const EVERY: u32 = 10;

fn open(url: &str) -> Arc<PostgresStore> {
    Arc::new(PostgresStore::open(url, Some(KEY.to_vec()), EVERY).unwrap())
}

fn count(url: &str, sql: &str) -> i64 {
    let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
    c.query_one(sql, &[]).unwrap().get(0)
}

fn approval(id: &str) -> NewApproval {
    let agent = AgentRef { id: "spiffe://corp/agent/bot".into(), source: "header".into(), ..AgentRef::default() };
    NewApproval {
        id: id.into(),
        agent,
        // One action per id: pending approvals of one (agent, digest) are unique.
        digest: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes())),
        quorum: 1,
        reuse: Reuse::Once,
        credential: None,
        expires_at_ms: 1_900_000_000_000,
        create: json!({}),
    }
}

fn assert_chain_intact(url: &str) {
    let report = verify_audit(url, Some(&KEY), i64::from(EVERY)).unwrap();
    assert!(report.ok(), "{report:?}");
}

/// Many callers at once: fewer commits than jobs, every append in one unbroken chain.
#[test]
fn concurrent_jobs_share_commits() {
    let url = fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&url);
    let (callers, each) = (32, 20);
    let handles: Vec<_> = (0..callers)
        .map(|c| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..each {
                    store.append_event("test", json!({"c": c, "i": i})).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let jobs = callers * each;
    let (durable, deferred) = store.commits();
    let (batches, batched) = store.batches();
    assert_eq!(deferred, 0);
    assert_eq!(batched, jobs as u64);
    assert_eq!(batches, durable);
    assert!(durable < jobs as u64, "{durable} commits for {jobs} jobs: no group commit");
    assert_eq!(count(&url, "SELECT count(*) FROM audit_records WHERE kind = 'test'"), jobs as i64);
    assert_eq!(count(&url, "SELECT seq FROM audit_head"), jobs as i64);
    assert_chain_intact(&url);
}

/// Jobs queued behind a busy writer commit together; the one that fails (after
/// appending and inserting) is rolled back alone and answered alone.
#[test]
fn one_failing_job_does_not_fail_its_batch() {
    let url = fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&url);
    // Hold the writer so the jobs below queue up and form one batch.
    let (started, writer_busy) = mpsc::channel();
    let blocker = {
        let store = store.clone();
        std::thread::spawn(move || {
            run(&*store, Durability::Durable, move |l| {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(1_000));
                l.append("test", &json!({"blocker": true})).map(|_| ())
            })
        })
    };
    writer_busy.recv().unwrap();
    let before = store.commits().0;
    let handles: Vec<_> = (0..9)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || match i {
                // A database error: the second insert of one id (a unique violation,
                // retried in place, then answered).
                3 => run(&*store, Durability::Durable, |l| {
                    l.append("test", &json!({"doomed": "sql"}))?;
                    l.insert_approval(&approval("apr_twice"), &[], 1)?;
                    l.insert_approval(&approval("apr_twice"), &[], 1)
                }),
                // The job's own refusal after writing.
                6 => run(&*store, Durability::Durable, |l| {
                    l.append("test", &json!({"doomed": "job"}))?;
                    l.insert_approval(&approval("apr_refused"), &[], 1)?;
                    Err(StoreError::Database("refused by the job".into()))
                }),
                _ => run(&*store, Durability::Durable, move |l| {
                    l.insert_approval(&approval(&format!("apr_ok_{i}")), &[], 1)?;
                    l.append("test", &json!({"ok": i})).map(|_| ())
                }),
            })
        })
        .collect();
    // Let every job reach the queue before the writer is free.
    std::thread::sleep(Duration::from_millis(500));
    blocker.join().unwrap().unwrap();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, r) in results.iter().enumerate() {
        match i {
            3 => assert!(matches!(r, Err(StoreError::Database(m)) if m.contains("23505")), "{r:?}"),
            6 => assert!(matches!(r, Err(StoreError::Database(m)) if m == "refused by the job"), "{r:?}"),
            _ => assert!(r.is_ok(), "job {i}: {r:?}"),
        }
    }
    // The blocker's batch, then one batch for the nine queued behind it.
    assert_eq!(store.commits().0 - before, 2, "the queued jobs were not committed together");
    assert_eq!(count(&url, "SELECT count(*) FROM audit_records WHERE event LIKE '%doomed%'"), 0);
    assert_eq!(count(&url, "SELECT count(*) FROM audit_records WHERE event LIKE '%\"ok\"%'"), 7);
    assert_eq!(count(&url, "SELECT count(*) FROM approvals"), 7);
    assert_eq!(count(&url, "SELECT count(*) FROM approvals WHERE id IN ('apr_twice', 'apr_refused')"), 0);
    assert_chain_intact(&url);
}

/// Two store instances (two replicas) appending and creating at once, both batching:
/// one chain, no gap or fork, seals at the cadence.
#[test]
fn two_instances_appending_at_once_keep_one_chain() {
    let url = fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let stores = [open(&url), open(&url)];
    let (callers, each) = (16, 25);
    let handles: Vec<_> = (0..callers)
        .map(|c| {
            let store = stores[c % 2].clone();
            std::thread::spawn(move || {
                for i in 0..each {
                    if i % 5 == 0 {
                        run(&*store, Durability::Durable, move |l| {
                            l.insert_approval(&approval(&format!("apr_{c}_{i}")), &[], 1)?;
                            l.append("approval.created", &json!({"c": c, "i": i})).map(|_| ())
                        })
                        .unwrap();
                    } else if i % 2 == 0 {
                        // A gateway decision-log batch: deferred, with its replay guard.
                        run(&*store, Durability::Deferred, move |l| {
                            assert!(l.remember_batch(&format!("v1=b{c}-{i}"), 1, 0)?);
                            l.append("decision", &json!({"c": c, "i": i})).map(|_| ())
                        })
                        .unwrap();
                    } else {
                        store.append_event("test", json!({"c": c, "i": i})).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let jobs = (callers * each) as u64;
    let commits: u64 = stores.iter().map(|s| s.commits().0 + s.commits().1).sum();
    assert!(commits < jobs, "{commits} commits for {jobs} jobs");
    assert_eq!(count(&url, "SELECT count(*) FROM audit_records"), count(&url, "SELECT seq FROM audit_head"));
    assert_eq!(count(&url, "SELECT count(*) FROM approvals"), (callers * each / 5) as i64);
    assert_chain_intact(&url);
}

/// The writer's connection dies between batches (the database restarted, a failover, an
/// administrator): the next job is run on a new connection, without a restart and
/// without failing.
#[test]
fn the_writer_reconnects_when_its_connection_is_gone() {
    let url = fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&url);
    store.append_event("test", json!({"n": 1})).unwrap();
    let killed = count(
        &url,
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = '{}'",
            super::WRITER_APPLICATION_NAME
        ),
    );
    assert_eq!(killed, 1, "one writer connection");
    std::thread::sleep(Duration::from_millis(100));
    store.append_event("test", json!({"n": 2})).unwrap();
    assert_eq!(count(&url, "SELECT count(*) FROM audit_records WHERE kind = 'test'"), 2);
    assert_chain_intact(&url);
}

/// `synchronous_commit` inside a job: what its batch commits with.
fn sync_commit(store: &PostgresStore, durability: Durability) -> String {
    let job = Box::new(|l: &mut super::ledger::PgLedger<'_, '_>| {
        let row = l.tx.query_one("SHOW synchronous_commit", &[]).map_err(super::db_error)?;
        Ok(Box::new(row.get::<_, String>(0)) as crate::store::Output)
    });
    *store.writer.submit(durability, job).unwrap().downcast::<String>().unwrap()
}

/// Runs jobs of `durabilities` as one batch (queued behind a job that holds the writer)
/// and answers the `synchronous_commit` each saw.
fn one_batch(store: &Arc<PostgresStore>, durabilities: &[Durability]) -> Vec<String> {
    let (started, is_started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let gate = {
        let store = store.clone();
        std::thread::spawn(move || {
            run(&*store, Durability::Durable, move |_| {
                let _ = started.send(());
                let _ = released.recv_timeout(Duration::from_secs(30));
                Ok(())
            })
        })
    };
    is_started.recv_timeout(Duration::from_secs(30)).unwrap();
    let before = store.commits();
    let jobs: Vec<_> = durabilities
        .iter()
        .map(|d| {
            let (store, d) = (store.clone(), *d);
            std::thread::spawn(move || sync_commit(&store, d))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    release.send(()).unwrap();
    gate.join().unwrap().unwrap();
    let seen: Vec<String> = jobs.into_iter().map(|j| j.join().unwrap()).collect();
    let after = store.commits();
    assert_eq!((after.0 - before.0) + (after.1 - before.1), 2, "the gate's batch, then one for the jobs");
    seen
}

/// Durable unless every job of the batch is deferred, as with SQLite.
#[test]
fn a_batch_commits_without_waiting_for_the_disk_only_when_every_job_is_deferred() {
    let url = fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&url);
    assert_eq!(sync_commit(&store, Durability::Durable), "on");
    assert_eq!(sync_commit(&store, Durability::Deferred), "off");
    let (deferred, durable) = (Durability::Deferred, Durability::Durable);
    assert_eq!(one_batch(&store, &[deferred, deferred, deferred]), ["off", "off", "off"]);
    assert_eq!(one_batch(&store, &[deferred, durable, deferred]), ["on", "on", "on"], "one durable job: all durable");
    assert_eq!(one_batch(&store, &[deferred]), ["off"], "and the next deferred batch is off again");
    // Durable: one alone, three gates, the mixed batch; deferred: one alone, two batches.
    assert_eq!(store.commits(), (5, 3));
}
