//! Store tests on a real SQLite file: dedup, CAS races, separation of duties, quorum,
//! expiry, audit-chain verification against tampering, durability classes and WAL
//! checkpoints off the writer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::writer::Tx;
use super::*;
use crate::audit::verify::verify_database;
use crate::lifecycle::{Reuse, Reviewer, Status, Vote};

const KEY: [u8; 32] = [7; 32];
const NOW: i64 = 1_800_000_000_000;

fn open(dir: &tempfile::TempDir) -> (Arc<SqliteStore>, std::path::PathBuf) {
    let path = dir.path().join("airlock.db");
    (Arc::new(SqliteStore::open(&path, Some(KEY.to_vec()), 10).unwrap()), path)
}

fn new(id: &str, digest_byte: &str, quorum: u32, reuse: Reuse) -> NewApproval {
    let agent = AgentRef {
        id: "spiffe://corp/agent/bot".into(),
        source: "header".into(),
        owner: Some("alice@corp.example".into()),
        acts_for: vec!["carol@corp.example".into()],
    };
    NewApproval {
        id: id.into(),
        agent: agent.clone(),
        digest: digest_byte.repeat(64),
        quorum,
        reuse,
        credential: None,
        expires_at_ms: NOW + 60_000,
        create: json!({"decision_id": "dec_1", "agent": agent, "digest": digest_byte.repeat(64),
                       "policy": {"approvers": {"groups": ["ops"], "quorum": quorum}},
                       "request": {"host": "api.example.com"}}),
    }
}

/// A review inserted behind the store's back, refused by a trigger.
fn direct_review(conn: &rusqlite::Connection, id: &str, who: &str) -> rusqlite::Error {
    conn.execute(
        "INSERT INTO reviews (approval_id, reviewer, vote, channel, time_ms) VALUES (?1, ?2, 'approve', 'api', 0)",
        [id, who],
    )
    .unwrap_err()
}

fn reviewer(id: &str, aliases: &[&str]) -> Reviewer {
    Reviewer { id: id.into(), groups: vec!["ops".into()], aliases: aliases.iter().map(|s| s.to_string()).collect() }
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

#[test]
fn create_or_find_dedups_while_live_and_a_denial_answers_retries_for_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = open(&dir);
    let a = created(&store, new("apr_1", "a", 1, Reuse::Once));
    match store.create_or_find(new("apr_2", "a", 1, Reuse::Once), None, NOW).unwrap() {
        CreateOutcome::Found(f) => assert_eq!(f.id, a.id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.create_or_find(new("apr_3", "b", 1, Reuse::Once), Some("apr_1".into()), NOW).unwrap(),
        CreateOutcome::Mismatch
    ));
    store.review("apr_1", &reviewer("bob", &[]), Vote::Deny, ReviewNote::api(Some("no".into())), NOW).unwrap();
    let outbox = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0)).unwrap()
    };
    let conn = rusqlite::Connection::open(&path).unwrap();
    let notified = outbox(&conn);
    // Inside the window every identical retry gets the denial; nothing new is created
    // or sent to reviewers. A different action is not affected.
    let window = crate::time::duration_ms(DEFAULT_DENIED_RETRY_WINDOW);
    for (i, at) in [NOW + 1, NOW + 2, NOW + 3, NOW + 4, NOW + 5, NOW + window - 1].into_iter().enumerate() {
        match store.create_or_find(new(&format!("apr_r{i}"), "a", 1, Reuse::Once), None, at).unwrap() {
            CreateOutcome::RecentlyDenied(d) => {
                assert_eq!((d.id.as_str(), d.status), ("apr_1", Status::Denied));
                assert_eq!(d.reviews[0].comment.as_deref(), Some("no"));
            }
            other => panic!("retry {i}: {other:?}"),
        }
    }
    assert_eq!(outbox(&conn), notified, "no reviewer is notified again");
    let approvals: i64 = conn.query_row("SELECT count(*) FROM approvals", [], |r| r.get(0)).unwrap();
    assert_eq!(approvals, 1);
    // Bounded evidence of the retries: the 1st, 2nd and 4th of six.
    let retries: Vec<i64> = conn
        .prepare("SELECT json_extract(event, '$.retries') FROM audit_records WHERE kind = 'approval.retry_refused' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(retries, [1, 2, 4]);
    // After the window the retry asks the reviewers again.
    let again = store.create_or_find(new("apr_4", "a", 1, Reuse::Once), None, NOW + window).unwrap();
    assert!(matches!(&again, CreateOutcome::Created(a) if a.id == "apr_4"), "{again:?}");
    assert!(outbox(&conn) > notified, "the new approval is sent to reviewers");
    verify_database(&path, Some(&KEY)).unwrap();
}

#[test]
fn expiry_is_not_a_no_and_a_zero_window_turns_the_denial_answer_off() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir);
    created(&store, new("apr_e", "e", 1, Reuse::Once));
    store.expire_due(NOW + 60_000).unwrap();
    let renewed = store.create_or_find(new("apr_e2", "e", 1, Reuse::Once), None, NOW + 60_001).unwrap();
    assert!(matches!(&renewed, CreateOutcome::Created(a) if a.id == "apr_e2"), "{renewed:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.db");
    let store = SqliteStore::open(&path, Some(KEY.to_vec()), 10).unwrap().with_denied_retry_window(Duration::ZERO);
    created(&store, new("apr_z", "z", 1, Reuse::Once));
    store.review("apr_z", &reviewer("bob", &[]), Vote::Deny, ReviewNote::api(None), NOW).unwrap();
    let renewed = store.create_or_find(new("apr_z2", "z", 1, Reuse::Once), None, NOW + 1).unwrap();
    assert!(matches!(&renewed, CreateOutcome::Created(a) if a.id == "apr_z2"), "{renewed:?}");
}

#[test]
fn concurrent_approve_and_deny_have_one_winner() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let (store, path) = open(&dir);
        created(&store, new("apr_r", "c", 1, Reuse::Once));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let vote = if (i + round) % 2 == 0 { Vote::Approve } else { Vote::Deny };
                    store
                        .review("apr_r", &reviewer(&format!("r{i}"), &[]), vote, ReviewNote::api(None), NOW)
                        .map(|a| a.status)
                })
            })
            .map(|h| h.join().unwrap())
            .collect();
        let winners: Vec<_> = handles.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(winners.len(), 1, "{handles:?}");
        assert!(handles.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(ReviewError::AlreadyDecided(_)))));
        let final_status = store.get("apr_r", NOW).unwrap().unwrap().status;
        assert_eq!(Ok(&final_status), winners[0].as_ref().map_err(|_| ()));
        assert!(verify_database(&path, Some(&KEY)).unwrap().ok());
    }
}

#[test]
fn double_redeem_has_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = open(&dir);
    created(&store, new("apr_d", "d", 1, Reuse::Once));
    store.review("apr_d", &reviewer("bob", &[]), Vote::Approve, ReviewNote::api(None), NOW).unwrap();
    let results: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || store.redeem(redeem_req("apr_d", "d"), NOW).unwrap())
        })
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(RedeemRefusal::Consumed))));
    assert_eq!(store.get("apr_d", NOW).unwrap().unwrap().status, Status::Redeemed);
    assert_eq!(store.redeem(redeem_req("apr_d", "e"), NOW).unwrap().unwrap_err(), RedeemRefusal::Mismatch);
    assert!(verify_database(&path, Some(&KEY)).unwrap().ok());
}

#[test]
fn reuse_window_allows_repeats_until_it_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir);
    created(&store, new("apr_w", "f", 1, Reuse::Window(Duration::from_secs(600))));
    assert_eq!(store.redeem(redeem_req("apr_w", "f"), NOW).unwrap().unwrap_err(), RedeemRefusal::NotApproved);
    store.review("apr_w", &reviewer("bob", &[]), Vote::Approve, ReviewNote::api(None), NOW).unwrap();
    for _ in 0..3 {
        assert!(store.redeem(redeem_req("apr_w", "f"), NOW + 1000).unwrap().is_ok());
    }
    assert_eq!(store.redeem(redeem_req("apr_w", "f"), NOW + 600_001).unwrap().unwrap_err(), RedeemRefusal::Consumed);
    assert_eq!(store.get("apr_w", NOW + 600_001).unwrap().unwrap().status, Status::Redeemed);
}

#[test]
fn a_redeem_signature_that_minted_is_refused_again_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = open(&dir);
    created(&store, new("apr_rp", "f", 1, Reuse::Window(Duration::from_secs(600))));
    store.review("apr_rp", &reviewer("bob", &[]), Vote::Approve, ReviewNote::api(None), NOW).unwrap();
    let mut req = redeem_req("apr_rp", "f");
    req.signature = "v1=captured".into();
    assert!(store.redeem(req.clone(), NOW + 1000).unwrap().is_ok());
    assert_eq!(store.redeem(req.clone(), NOW + 2000).unwrap().unwrap_err(), RedeemRefusal::Consumed);
    drop(store);
    let store = SqliteStore::open(&path, Some(KEY.to_vec()), 10).unwrap();
    assert!(store.redeem_replayed("v1=captured", NOW + 3000).unwrap());
    assert_eq!(store.redeem(req.clone(), NOW + 3000).unwrap().unwrap_err(), RedeemRefusal::Consumed);
    // Past the horizon the signature is stale anyway (the timestamp check refuses it).
    assert!(!store.redeem_replayed("v1=captured", NOW + 1000 + REPLAY_HORIZON_MS).unwrap());
    assert!(store.redeem(redeem_req("apr_rp", "f"), NOW + 4000).unwrap().is_ok(), "a fresh signature redeems");
    assert!(verify_database(&path, Some(&KEY)).unwrap().ok());
}

#[test]
fn a_decision_batch_is_appended_once_per_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = open(&dir);
    let records = vec![json!({"decision_id": "dec_a"}), json!({"decision_id": "dec_b"})];
    assert_eq!(store.append_decisions("v1=same", records.clone(), 1, NOW).unwrap(), Some(2));
    assert_eq!(store.append_decisions("v1=same", records.clone(), 1, NOW + 1000).unwrap(), None);
    drop(store);
    let store = SqliteStore::open(&path, Some(KEY.to_vec()), 10).unwrap();
    assert_eq!(store.append_decisions("v1=same", records.clone(), 1, NOW + 2000).unwrap(), None);
    assert_eq!(store.append_decisions("v1=other", records, 0, NOW + 3000).unwrap(), Some(2));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 =
        conn.query_row("SELECT count(*) FROM audit_records WHERE kind LIKE 'decision%'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 5, "two batches of two, one drop count");
}

#[test]
fn separation_of_duties_is_refused_for_owner_alias_and_acts_for() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = open(&dir);
    created(&store, new("apr_s", "a", 1, Reuse::Once));
    for who in [
        reviewer("Alice@corp.example", &[]),
        reviewer("someone", &["alice@corp.example"]),
        reviewer("carol@corp.example", &[]),
        reviewer("spiffe://corp/agent/bot", &[]),
    ] {
        let r = store.review("apr_s", &who, Vote::Approve, ReviewNote::api(None), NOW);
        assert!(matches!(r, Err(ReviewError::SeparationOfDuties)), "{who:?}: {r:?}");
    }
    // The store refuses it even when the application does not check.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let direct = conn.execute(
        "INSERT INTO reviews (approval_id, reviewer, vote, channel, time_ms) VALUES ('apr_s', 'ALICE@corp.example', 'approve', 'api', 0)",
        [],
    );
    assert!(direct.unwrap_err().to_string().contains("separation of duties"));
    assert_eq!(store.get("apr_s", NOW).unwrap().unwrap().status, Status::Pending);
    // A trigger's refusal is named by the rule it enforces, asked of the database, not
    // by its message.
    let err = direct_review(&conn, "apr_s", "carol@corp.example");
    let r = sqlite::refused_by_trigger(&conn, "apr_s", &["carol@corp.example".into()], err);
    assert!(matches!(r, ReviewError::SeparationOfDuties), "{r:?}");
    store.review("apr_s", &reviewer("bob", &[]), Vote::Deny, ReviewNote::api(None), NOW).unwrap();
    let err = direct_review(&conn, "apr_s", "dave");
    let r = sqlite::refused_by_trigger(&conn, "apr_s", &["dave".into()], err);
    assert!(matches!(r, ReviewError::AlreadyDecided(Status::Denied)), "{r:?}");
}

#[test]
fn quorum_counts_distinct_humans_and_refuses_duplicate_votes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir);
    created(&store, new("apr_q", "a", 2, Reuse::Once));
    let a = store.review("apr_q", &reviewer("bob", &[]), Vote::Approve, ReviewNote::api(None), NOW).unwrap();
    assert_eq!(a.status, Status::Pending);
    assert!(matches!(
        store.review("apr_q", &reviewer("BOB", &[]), Vote::Approve, ReviewNote::api(None), NOW),
        Err(ReviewError::DuplicateVote)
    ));
    let a = store.review("apr_q", &reviewer("dave", &[]), Vote::Approve, ReviewNote::api(None), NOW).unwrap();
    assert_eq!(a.status, Status::Approved);
    assert_eq!(a.approvers(), vec!["bob".to_string(), "dave".to_string()]);
}

#[test]
fn expiry_on_read_and_approve_versus_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir);
    created(&store, new("apr_e", "a", 1, Reuse::Once));
    let later = NOW + 60_000;
    assert!(matches!(
        store.review("apr_e", &reviewer("bob", &[]), Vote::Approve, ReviewNote::api(None), later),
        Err(ReviewError::Expired)
    ));
    assert_eq!(store.get("apr_e", later).unwrap().unwrap().status, Status::Expired);
    assert_eq!(store.redeem(redeem_req("apr_e", "a"), later).unwrap().unwrap_err(), RedeemRefusal::Expired);
    created(&store, new("apr_f", "b", 1, Reuse::Once));
    assert_eq!(store.get("apr_f", later).unwrap().unwrap().status, Status::Expired);
    created(&store, new("apr_g", "c", 1, Reuse::Once));
    assert_eq!(store.expire_due(later).unwrap(), vec!["apr_g".to_string()]);
    assert_eq!(store.pending_count().unwrap(), 0);
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

#[test]
fn audit_records_are_append_only_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(&dir, 3);
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert!(conn.execute("DELETE FROM audit_records WHERE seq = 1", []).is_err());
    assert!(conn.execute("UPDATE audit_records SET kind = 'x' WHERE seq = 1", []).is_err());
}

#[test]
fn one_human_under_two_names_counts_once_towards_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir);
    created(&store, new("apr_q", "q", 2, Reuse::Once));
    // Bob by API key, then Bob by an OIDC login whose id claim differs but whose `sub`
    // is one of his configured aliases.
    store
        .review("apr_q", &reviewer("bob@corp.example", &["OID-BOB"]), Vote::Approve, ReviewNote::api(None), NOW)
        .unwrap();
    let again = store.review(
        "apr_q",
        &reviewer("robert@corp.example", &["oid-bob"]),
        Vote::Approve,
        ReviewNote::api(None),
        NOW,
    );
    assert!(matches!(again, Err(ReviewError::DuplicateVote)), "{again:?}");
    assert_eq!(store.get("apr_q", NOW).unwrap().unwrap().status, Status::Pending);
    let dave =
        store.review("apr_q", &reviewer("dave@corp.example", &[]), Vote::Approve, ReviewNote::api(None), NOW).unwrap();
    assert_eq!(dave.status, Status::Approved);
}

#[test]
fn an_agent_cannot_have_more_pending_approvals_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(&dir.path().join("airlock.db"), Some(KEY.to_vec()), 10).unwrap().with_pending_limit(2);
    created(&store, new("apr_l1", "a", 1, Reuse::Once));
    created(&store, new("apr_l2", "b", 1, Reuse::Once));
    assert!(matches!(
        store.create_or_find(new("apr_l3", "c", 1, Reuse::Once), None, NOW).unwrap(),
        CreateOutcome::TooManyPending { limit: 2 }
    ));
    // An identical retry still finds its approval: the limit only stops new ones.
    assert!(matches!(
        store.create_or_find(new("apr_x", "a", 1, Reuse::Once), None, NOW).unwrap(),
        CreateOutcome::Found(_)
    ));
    store.review("apr_l1", &reviewer("bob", &[]), Vote::Deny, ReviewNote::api(None), NOW).unwrap();
    created(&store, new("apr_l3", "c", 1, Reuse::Once));
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

#[test]
fn an_expiry_read_before_a_redeem_is_not_applied_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir);
    created(&store, new("apr_w", "w", 1, Reuse::Window(Duration::from_secs(1))));
    store.review("apr_w", &reviewer("bob", &[]), Vote::Approve, ReviewNote::api(None), NOW).unwrap();
    let closed = NOW + 1_000;
    let read = store.past_deadline(closed).unwrap();
    assert_eq!(read.len(), 1);
    let stale = Expiry { approval: read[0].clone(), to: Status::Expired };
    store.redeem(redeem_req("apr_w", "w"), NOW + 500).unwrap().unwrap();
    assert!(store.expire(vec![stale], closed).unwrap().is_empty(), "the approval changed since it was read");
    assert_eq!(store.get("apr_w", closed).unwrap().unwrap().status, Status::Redeemed);
}
