//! One conformance suite, run against every backend: SQLite on a real file and
//! PostgreSQL on the real server `scripts/postgres.sh` runs. Every lifecycle race the
//! SPEC names (double approve, approve vs deny, approve vs expire, double redeem, one
//! human under two names, self-approval) and the replay guards; for PostgreSQL also
//! across two store instances on one database (two replicas).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::Decisions;
use crate::lifecycle::{Reuse, Reviewer, Status, Vote};
use crate::store::ledger::{ReviewRow, RowRefusal};
use crate::store::*;

const KEY: [u8; 32] = [7; 32];
const NOW: i64 = 1_800_000_000_000;
/// Seals every this many records in the suite (small, so seals are exercised).
const EVERY: u32 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// A database and how to open stores on it.
struct Backend {
    kind: Kind,
    /// SQLite: the file; PostgreSQL: the URL.
    location: String,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn new(kind: Kind) -> Backend {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let location = dir.path().join("airlock.db").display().to_string();
                Backend { kind, location, _dir: Some(dir) }
            }
            Kind::Postgres => {
                let location = crate::store::postgres::testing::fresh_database().unwrap_or_else(|e| panic!("{e}"));
                Backend { kind, location, _dir: None }
            }
        }
    }

    /// A store on this database (a second call: a second replica, or a restart).
    fn open(&self) -> Arc<dyn Store> {
        self.open_with(u32::MAX, DEFAULT_DENIED_RETRY_WINDOW)
    }

    fn open_with(&self, pending: u32, window: Duration) -> Arc<dyn Store> {
        match self.kind {
            Kind::Sqlite => Arc::new(
                SqliteStore::open(std::path::Path::new(&self.location), Some(KEY.to_vec()), EVERY)
                    .unwrap()
                    .with_pending_limit(pending)
                    .with_denied_retry_window(window),
            ),
            Kind::Postgres => Arc::new(
                PostgresStore::open(&self.location, Some(KEY.to_vec()), EVERY)
                    .unwrap()
                    .with_pending_limit(pending)
                    .with_denied_retry_window(window),
            ),
        }
    }

    /// `SELECT count(*) …` straight from the database.
    fn count(&self, sql: &str) -> i64 {
        match self.kind {
            Kind::Sqlite => {
                rusqlite::Connection::open(&self.location).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
            }
            Kind::Postgres => {
                let mut c = ::postgres::Client::connect(&self.location, ::postgres::NoTls).unwrap();
                c.query_one(sql, &[]).unwrap().get(0)
            }
        }
    }

    /// Runs `sql` behind the store's back; the database's refusal, if any.
    fn direct(&self, sql: &str) -> Result<(), String> {
        match self.kind {
            Kind::Sqlite => {
                rusqlite::Connection::open(&self.location).unwrap().execute_batch(sql).map_err(|e| e.to_string())
            }
            Kind::Postgres => ::postgres::Client::connect(&self.location, ::postgres::NoTls)
                .unwrap()
                .batch_execute(sql)
                .map_err(|e| format!("{e:?}")),
        }
    }

    /// The events of the audit records of `kind`, in order.
    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        let sql = "SELECT event FROM audit_records WHERE kind = $1 ORDER BY seq";
        let texts: Vec<String> = match self.kind {
            Kind::Sqlite => {
                let c = rusqlite::Connection::open(&self.location).unwrap();
                let mut stmt = c.prepare(&sql.replace("$1", "?1")).unwrap();
                stmt.query_map([kind], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
            }
            Kind::Postgres => {
                let mut c = ::postgres::Client::connect(&self.location, ::postgres::NoTls).unwrap();
                c.query(sql, &[&kind]).unwrap().iter().map(|r| r.get(0)).collect()
            }
        };
        texts.iter().map(|t| serde_json::from_str(t).unwrap()).collect()
    }

    /// The audit trail verifies (hash chain, seals, sealing cadence).
    fn assert_chain_intact(&self) {
        let report = match self.kind {
            Kind::Sqlite => crate::audit::verify::verify_database_expecting(
                std::path::Path::new(&self.location),
                Some(&KEY),
                i64::from(EVERY),
            )
            .unwrap(),
            Kind::Postgres => {
                crate::store::postgres::verify_audit(&self.location, Some(&KEY), i64::from(EVERY)).unwrap()
            }
        };
        assert!(report.ok(), "{report:?}");
    }
}

/// A new approval of the test agent (owner alice, acting for carol), group `ops`.
pub(super) fn new(id: &str, digest_byte: &str, quorum: u32, reuse: Reuse) -> NewApproval {
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

/// A reviewer in group `ops`.
pub(super) fn reviewer(id: &str, aliases: &[&str]) -> Reviewer {
    Reviewer { id: id.into(), groups: vec!["ops".into()], aliases: aliases.iter().map(|s| s.to_string()).collect() }
}

fn created(store: &dyn Store, n: NewApproval) -> Approval {
    match store.create_or_find(n, None, NOW).unwrap() {
        CreateOutcome::Created(a) => a,
        other => panic!("expected created, got {other:?}"),
    }
}

fn vote(store: &dyn Store, id: &str, who: &str, v: Vote, at: i64) -> Result<Approval, ReviewError> {
    store.review(id, &reviewer(who, &[]), v, ReviewNote::api(None), at)
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

fn create_or_find_dedups_while_live_and_a_denial_answers_retries_for_its_window(kind: Kind) {
    let b = Backend::new(kind);
    let store = b.open();
    let a = created(&*store, new("apr_1", "a", 1, Reuse::Once));
    match store.create_or_find(new("apr_2", "a", 1, Reuse::Once), None, NOW).unwrap() {
        CreateOutcome::Found(f) => assert_eq!(f.id, a.id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.create_or_find(new("apr_3", "b", 1, Reuse::Once), Some("apr_1".into()), NOW).unwrap(),
        CreateOutcome::Mismatch
    ));
    store.review("apr_1", &reviewer("bob", &[]), Vote::Deny, ReviewNote::api(Some("no".into())), NOW).unwrap();
    let notified = b.count("SELECT count(*) FROM outbox");
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
    assert_eq!(b.count("SELECT count(*) FROM outbox"), notified, "no reviewer is notified again");
    assert_eq!(b.count("SELECT count(*) FROM approvals"), 1);
    let retries: Vec<i64> = b.events("approval.retry_refused").iter().map(|e| e["retries"].as_i64().unwrap()).collect();
    assert_eq!(retries, [1, 2, 4], "bounded evidence of the retries");
    let again = store.create_or_find(new("apr_4", "a", 1, Reuse::Once), None, NOW + window).unwrap();
    assert!(matches!(&again, CreateOutcome::Created(a) if a.id == "apr_4"), "{again:?}");
    assert!(b.count("SELECT count(*) FROM outbox") > notified, "the new approval is sent to reviewers");
    b.assert_chain_intact();
}

/// A find answers what create-or-find would, and where it would create, creates
/// nothing: no approval, no notification, no audit record.
fn find_answers_what_a_create_would_and_creates_nothing(kind: Kind) {
    let b = Backend::new(kind);
    let store = b.open();
    let counts = |b: &Backend| {
        (
            b.count("SELECT count(*) FROM approvals"),
            b.count("SELECT count(*) FROM outbox"),
            b.count("SELECT count(*) FROM audit_records"),
        )
    };
    let empty = counts(&b);
    assert!(matches!(store.find(new("apr_f0", "f", 1, Reuse::Once), None, NOW).unwrap(), CreateOutcome::Absent));
    assert_eq!(counts(&b), empty);
    let a = created(&*store, new("apr_f1", "f", 1, Reuse::Once));
    let before = counts(&b);
    match store.find(new("apr_f2", "f", 1, Reuse::Once), None, NOW).unwrap() {
        CreateOutcome::Found(f) => assert_eq!(f.id, a.id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.find(new("apr_f3", "other", 1, Reuse::Once), Some("apr_f1".into()), NOW).unwrap(),
        CreateOutcome::Mismatch
    ));
    assert!(matches!(store.find(new("apr_f4", "g", 1, Reuse::Once), None, NOW).unwrap(), CreateOutcome::Absent));
    assert_eq!(counts(&b), before, "nothing created, notified or audited");
    store.review("apr_f1", &reviewer("bob", &[]), Vote::Deny, ReviewNote::api(None), NOW).unwrap();
    assert!(matches!(
        store.find(new("apr_f5", "f", 1, Reuse::Once), None, NOW + 1).unwrap(),
        CreateOutcome::RecentlyDenied(d) if d.id == "apr_f1"
    ));
    let window = crate::time::duration_ms(DEFAULT_DENIED_RETRY_WINDOW);
    assert!(matches!(
        store.find(new("apr_f6", "f", 1, Reuse::Once), None, NOW + window).unwrap(),
        CreateOutcome::Absent
    ));
    assert_eq!(b.count("SELECT count(*) FROM approvals"), 1);
    b.assert_chain_intact();
}

fn expiry_is_not_a_no_and_a_zero_window_turns_the_denial_answer_off(kind: Kind) {
    let b = Backend::new(kind);
    let store = b.open();
    created(&*store, new("apr_e", "e", 1, Reuse::Once));
    store.expire_due(NOW + 60_000).unwrap();
    let renewed = store.create_or_find(new("apr_e2", "e", 1, Reuse::Once), None, NOW + 60_001).unwrap();
    assert!(matches!(&renewed, CreateOutcome::Created(a) if a.id == "apr_e2"), "{renewed:?}");

    let store = Backend::new(kind).open_with(u32::MAX, Duration::ZERO);
    created(&*store, new("apr_z", "z", 1, Reuse::Once));
    vote(&*store, "apr_z", "bob", Vote::Deny, NOW).unwrap();
    let renewed = store.create_or_find(new("apr_z2", "z", 1, Reuse::Once), None, NOW + 1).unwrap();
    assert!(matches!(&renewed, CreateOutcome::Created(a) if a.id == "apr_z2"), "{renewed:?}");
}

/// Approve vs deny, racing from 8 threads — over two store instances (replicas) when the
/// backend allows several.
fn concurrent_approve_and_deny_have_one_winner(kind: Kind) {
    for round in 0..3 {
        let b = Backend::new(kind);
        let stores = replicas(&b);
        created(&*stores[0], new("apr_r", "c", 1, Reuse::Once));
        let results: Vec<_> = (0..8)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                std::thread::spawn(move || {
                    let v = if (i + round) % 2 == 0 { Vote::Approve } else { Vote::Deny };
                    vote(&*store, "apr_r", &format!("r{i}"), v, NOW).map(|a| a.status)
                })
            })
            .map(|h| h.join().unwrap())
            .collect();
        let winners: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(ReviewError::AlreadyDecided(_)))));
        let status = stores[1 % stores.len()].get("apr_r", NOW).unwrap().unwrap().status;
        assert_eq!(Ok(&status), winners[0].as_ref().map_err(|_| ()));
        assert_eq!(b.events("review").len(), 1, "only the winning vote is recorded");
        b.assert_chain_intact();
    }
}

/// Two stores on the same database where the backend serves several replicas; one
/// otherwise (a SQLite file belongs to one process).
fn replicas(b: &Backend) -> Vec<Arc<dyn Store>> {
    match b.kind {
        Kind::Sqlite => vec![b.open()],
        Kind::Postgres => vec![b.open(), b.open()],
    }
}

fn double_approve_with_quorum_two_decides_once(kind: Kind) {
    let b = Backend::new(kind);
    let stores = replicas(&b);
    created(&*stores[0], new("apr_2q", "q", 2, Reuse::Once));
    let results: Vec<_> = (0..6)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            std::thread::spawn(move || vote(&*store, "apr_2q", &format!("r{i}"), Vote::Approve, NOW).map(|a| a.status))
        })
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(Status::Approved))).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(Status::Pending))).count(), 1, "{results:?}");
    assert_eq!(b.events("approval.approved").len(), 1);
    assert_eq!(b.events("approval.approved")[0]["approvers"].as_array().unwrap().len(), 2);
    b.assert_chain_intact();
}

fn double_redeem_has_one_winner(kind: Kind) {
    let b = Backend::new(kind);
    let stores = replicas(&b);
    created(&*stores[0], new("apr_d", "d", 1, Reuse::Once));
    vote(&*stores[0], "apr_d", "bob", Vote::Approve, NOW).unwrap();
    let results: Vec<_> = (0..8)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            std::thread::spawn(move || store.redeem(redeem_req("apr_d", "d"), NOW).unwrap())
        })
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(RedeemRefusal::Consumed))));
    assert_eq!(stores[0].get("apr_d", NOW).unwrap().unwrap().status, Status::Redeemed);
    assert_eq!(stores[0].redeem(redeem_req("apr_d", "e"), NOW).unwrap().unwrap_err(), RedeemRefusal::Mismatch);
    assert_eq!(b.events("credential.minted").len(), 1);
    b.assert_chain_intact();
}

fn concurrent_creates_of_one_action_make_one_approval(kind: Kind) {
    let b = Backend::new(kind);
    let stores = replicas(&b);
    let results: Vec<_> = (0..8)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            std::thread::spawn(move || store.create_or_find(new(&format!("apr_c{i}"), "k", 1, Reuse::Once), None, NOW))
        })
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    let created: Vec<_> = results.iter().filter(|r| matches!(r, CreateOutcome::Created(_))).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert_eq!(b.count("SELECT count(*) FROM approvals"), 1);
    assert_eq!(b.events("approval.created").len(), 1);
    b.assert_chain_intact();
}

fn reuse_window_allows_repeats_until_it_closes(kind: Kind) {
    let store = Backend::new(kind).open();
    created(&*store, new("apr_w", "f", 1, Reuse::Window(Duration::from_secs(600))));
    assert_eq!(store.redeem(redeem_req("apr_w", "f"), NOW).unwrap().unwrap_err(), RedeemRefusal::NotApproved);
    vote(&*store, "apr_w", "bob", Vote::Approve, NOW).unwrap();
    for _ in 0..3 {
        assert!(store.redeem(redeem_req("apr_w", "f"), NOW + 1000).unwrap().is_ok());
    }
    assert_eq!(store.redeem(redeem_req("apr_w", "f"), NOW + 600_001).unwrap().unwrap_err(), RedeemRefusal::Consumed);
    assert_eq!(store.get("apr_w", NOW + 600_001).unwrap().unwrap().status, Status::Redeemed);
}

fn a_redeem_signature_that_minted_is_refused_again_after_reopening(kind: Kind) {
    let b = Backend::new(kind);
    let store = b.open();
    created(&*store, new("apr_rp", "f", 1, Reuse::Window(Duration::from_secs(600))));
    vote(&*store, "apr_rp", "bob", Vote::Approve, NOW).unwrap();
    let mut req = redeem_req("apr_rp", "f");
    req.signature = "v1=captured".into();
    assert!(store.redeem(req.clone(), NOW + 1000).unwrap().is_ok());
    assert_eq!(store.redeem(req.clone(), NOW + 2000).unwrap().unwrap_err(), RedeemRefusal::Consumed);
    drop(store);
    let store = b.open();
    assert!(store.redeem_replayed("v1=captured", NOW + 3000).unwrap());
    assert_eq!(store.redeem(req.clone(), NOW + 3000).unwrap().unwrap_err(), RedeemRefusal::Consumed);
    assert!(!store.redeem_replayed("v1=captured", NOW + 1000 + REPLAY_HORIZON_MS).unwrap());
    assert!(store.redeem(redeem_req("apr_rp", "f"), NOW + 4000).unwrap().is_ok(), "a fresh signature redeems");
    b.assert_chain_intact();
}

fn a_decision_batch_is_appended_once_per_signature(kind: Kind) {
    let b = Backend::new(kind);
    let store = b.open();
    let records = vec![json!({"decision_id": "dec_a"}), json!({"decision_id": "dec_b"})];
    assert_eq!(store.append_decisions("v1=same", records.clone(), 1, NOW).unwrap(), Some(2));
    assert_eq!(store.append_decisions("v1=same", records.clone(), 1, NOW + 1000).unwrap(), None);
    drop(store);
    let store = b.open();
    assert_eq!(store.append_decisions("v1=same", records.clone(), 1, NOW + 2000).unwrap(), None);
    assert_eq!(store.append_decisions("v1=other", records, 0, NOW + 3000).unwrap(), Some(2));
    assert_eq!(b.count("SELECT count(*) FROM audit_records WHERE kind LIKE 'decision%'"), 5);
    b.assert_chain_intact();
}

fn separation_of_duties_is_refused_for_owner_alias_and_acts_for(kind: Kind) {
    let b = Backend::new(kind);
    let store = b.open();
    created(&*store, new("apr_s", "a", 1, Reuse::Once));
    for who in [
        reviewer("Alice@corp.example", &[]),
        reviewer("someone", &["alice@corp.example"]),
        reviewer("carol@corp.example", &[]),
        reviewer("spiffe://corp/agent/bot", &[]),
    ] {
        let r = store.review("apr_s", &who, Vote::Approve, ReviewNote::api(None), NOW);
        assert!(matches!(r, Err(ReviewError::SeparationOfDuties)), "{who:?}: {r:?}");
    }
    // The database refuses it even when the application does not check.
    let direct = b.direct(
        "INSERT INTO reviews (approval_id, reviewer, vote, channel, time_ms) \
         VALUES ('apr_s', 'ALICE@corp.example', 'approve', 'api', 0)",
    );
    assert!(direct.unwrap_err().contains("separation of duties"));
    // Through the ledger, skipping the transition's own checks: the refusal is named by
    // the rule the database enforces.
    let row = |who: &'static str| {
        move |l: &mut dyn Ledger| {
            let identities = vec![who.to_string()];
            l.insert_review(&ReviewRow {
                approval_id: "apr_s",
                reviewer: who,
                identities: &identities,
                vote: Vote::Approve,
                comment: None,
                channel: "api",
                time_ms: NOW,
            })
        }
    };
    assert_eq!(
        run(&*store, Durability::Durable, row("carol@corp.example")).unwrap(),
        Err(RowRefusal::SeparationOfDuties)
    );
    assert_eq!(store.get("apr_s", NOW).unwrap().unwrap().status, Status::Pending);
    vote(&*store, "apr_s", "bob", Vote::Deny, NOW).unwrap();
    assert_eq!(run(&*store, Durability::Durable, row("dave")).unwrap(), Err(RowRefusal::NotPending));
}

fn quorum_counts_distinct_humans_and_refuses_duplicate_votes(kind: Kind) {
    let store = Backend::new(kind).open();
    created(&*store, new("apr_q", "a", 2, Reuse::Once));
    assert_eq!(vote(&*store, "apr_q", "bob", Vote::Approve, NOW).unwrap().status, Status::Pending);
    assert!(matches!(vote(&*store, "apr_q", "BOB", Vote::Approve, NOW), Err(ReviewError::DuplicateVote)));
    let a = vote(&*store, "apr_q", "dave", Vote::Approve, NOW).unwrap();
    assert_eq!(a.status, Status::Approved);
    assert_eq!(a.approvers(), vec!["bob".to_string(), "dave".to_string()]);
}

fn one_human_under_two_names_counts_once_towards_quorum(kind: Kind) {
    let store = Backend::new(kind).open();
    created(&*store, new("apr_q", "q", 2, Reuse::Once));
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
    assert_eq!(vote(&*store, "apr_q", "dave@corp.example", Vote::Approve, NOW).unwrap().status, Status::Approved);
}

fn expiry_on_read_and_approve_versus_expire(kind: Kind) {
    let store = Backend::new(kind).open();
    created(&*store, new("apr_e", "a", 1, Reuse::Once));
    let later = NOW + 60_000;
    assert!(matches!(vote(&*store, "apr_e", "bob", Vote::Approve, later), Err(ReviewError::Expired)));
    assert_eq!(store.get("apr_e", later).unwrap().unwrap().status, Status::Expired);
    assert_eq!(store.redeem(redeem_req("apr_e", "a"), later).unwrap().unwrap_err(), RedeemRefusal::Expired);
    created(&*store, new("apr_f", "b", 1, Reuse::Once));
    assert_eq!(store.get("apr_f", later).unwrap().unwrap().status, Status::Expired);
    created(&*store, new("apr_g", "c", 1, Reuse::Once));
    assert_eq!(store.expire_due(later).unwrap(), vec!["apr_g".to_string()]);
    assert_eq!(store.pending_count().unwrap(), 0);
}

fn an_expiry_read_before_a_redeem_is_not_applied_after_it(kind: Kind) {
    let store = Backend::new(kind).open();
    created(&*store, new("apr_w", "w", 1, Reuse::Window(Duration::from_secs(1))));
    vote(&*store, "apr_w", "bob", Vote::Approve, NOW).unwrap();
    let closed = NOW + 1_000;
    let read = store.past_deadline(closed).unwrap();
    assert_eq!(read.len(), 1);
    let stale = Expiry { approval: read[0].clone(), to: Status::Expired };
    store.redeem(redeem_req("apr_w", "w"), NOW + 500).unwrap().unwrap();
    assert!(store.expire(vec![stale], closed).unwrap().is_empty(), "the approval changed since it was read");
    assert_eq!(store.get("apr_w", closed).unwrap().unwrap().status, Status::Redeemed);
}

fn an_agent_cannot_have_more_pending_approvals_than_the_limit(kind: Kind) {
    let b = Backend::new(kind);
    let stores: Vec<_> = (0..replicas(&b).len()).map(|_| b.open_with(2, DEFAULT_DENIED_RETRY_WINDOW)).collect();
    // Concurrent creates of different actions cannot overshoot the cap, across replicas.
    let results: Vec<_> = (0..6)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            std::thread::spawn(move || {
                store.create_or_find(new(&format!("apr_l{i}"), &format!("{i}"), 1, Reuse::Once), None, NOW).unwrap()
            })
        })
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| matches!(r, CreateOutcome::Created(_))).count(), 2, "{results:?}");
    assert!(results
        .iter()
        .all(|r| matches!(r, CreateOutcome::Created(_) | CreateOutcome::TooManyPending { limit: 2 })));
    let first = stores[0].list(Some(Status::Pending), 10, NOW).unwrap();
    let pending_digest = first[0].digest.clone();
    // An identical retry still finds its approval: the limit only stops new ones.
    let mut retry = new("apr_x", "0", 1, Reuse::Once);
    retry.digest = pending_digest;
    assert!(matches!(stores[0].create_or_find(retry, None, NOW).unwrap(), CreateOutcome::Found(_)));
    vote(&*stores[0], &first[0].id, "bob", Vote::Deny, NOW).unwrap();
    created(&*stores[0], new("apr_l9", "9", 1, Reuse::Once));
}

fn audit_records_are_append_only_in_the_store(kind: Kind) {
    let b = Backend::new(kind);
    let store = b.open();
    store.append_decisions("v1=b", vec![json!({"d": 1}), json!({"d": 2})], 0, NOW).unwrap();
    assert!(b.direct("DELETE FROM audit_records WHERE seq = 1").is_err());
    assert!(b.direct("UPDATE audit_records SET kind = 'x' WHERE seq = 1").is_err());
    b.assert_chain_intact();
}

/// Every replica appends to one chain: no gap, no fork, seals at the cadence.
fn appends_from_concurrent_writers_form_one_chain(kind: Kind) {
    let b = Backend::new(kind);
    let stores = replicas(&b);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            std::thread::spawn(move || {
                for j in 0..25 {
                    let batch = format!("v1=w{i}-{j}");
                    store.append_decisions(&batch, vec![json!({"w": i, "j": j})], 0, NOW).unwrap();
                    if j % 5 == 0 {
                        store
                            .create_or_find(new(&format!("apr_{i}_{j}"), &format!("{i}{j}"), 1, Reuse::Once), None, NOW)
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(b.count("SELECT count(*) FROM audit_records WHERE kind = 'decision'"), 100);
    b.assert_chain_intact();
}

/// A notification is handed to one replica at a time.
fn due_notifications_are_leased_to_one_replica(kind: Kind) {
    let b = Backend::new(kind);
    let stores = replicas(&b);
    for i in 0..4 {
        created(&*stores[0], new(&format!("apr_n{i}"), &format!("n{i}"), 1, Reuse::Once));
    }
    let first = stores[0].due_notifications(NOW, 10).unwrap();
    assert_eq!(first.len(), 4);
    if stores.len() > 1 {
        assert!(stores[1].due_notifications(NOW, 10).unwrap().is_empty(), "leased to the first replica");
        stores[0]
            .finish_notification(&first[0], NotificationOutcome::Retry { next_attempt_ms: NOW, error: "x".into() })
            .unwrap();
        let again = stores[1].due_notifications(NOW, 10).unwrap();
        assert_eq!(again.iter().map(|i| i.id).collect::<Vec<_>>(), vec![first[0].id], "a finished lease frees the row");
    }
    for item in &first {
        stores[0].finish_notification(item, NotificationOutcome::Done).unwrap();
    }
    assert!(stores[0].due_notifications(NOW, 10).unwrap().is_empty());
}

fn cancel_versus_approve_has_one_winner(kind: Kind) {
    let b = Backend::new(kind);
    let stores = replicas(&b);
    created(&*stores[0], new("apr_x", "x", 1, Reuse::Once));
    let owner = reviewer("owner@corp.example", &[]);
    let results: Vec<_> = (0..6)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let owner = owner.clone();
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    store.cancel("apr_x", &owner, "not needed", NOW).map(|a| a.status)
                } else {
                    vote(&*store, "apr_x", &format!("r{i}"), Vote::Approve, NOW).map(|a| a.status)
                }
            })
        })
        .map(|h| h.join().unwrap())
        .collect();
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let winner = *won[0];
    assert!(matches!(winner, Status::Approved | Status::Cancelled), "{results:?}");
    assert!(results
        .iter()
        .filter(|r| r.is_err())
        .all(|r| matches!(r, Err(ReviewError::AlreadyDecided(s)) if *s == winner)));
    assert_eq!(stores[0].get("apr_x", NOW).unwrap().unwrap().status, winner);
    let (cancelled, approved) = (b.events("approval.cancelled"), b.events("approval.approved"));
    assert_eq!(cancelled.len() + approved.len(), 1);
    b.assert_chain_intact();
}

fn a_cancel_is_audited_with_who_and_why_and_only_a_pending_one_moves(kind: Kind) {
    let b = Backend::new(kind);
    let store = b.open();
    created(&*store, new("apr_k", "k", 1, Reuse::Once));
    let owner = reviewer("Owner@Corp.Example", &[]);
    let before = b.count("SELECT count(*) FROM outbox");
    assert_eq!(store.cancel("apr_k", &owner, "asked by mistake", NOW).unwrap().status, Status::Cancelled);
    let events = b.events("approval.cancelled");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["by"], "owner@corp.example");
    assert_eq!(events[0]["reason"], "asked by mistake");
    assert_eq!(events[0]["approval_id"], "apr_k");
    assert!(b.count("SELECT count(*) FROM outbox") > before, "the cards are updated");
    assert!(matches!(store.cancel("apr_k", &owner, "again", NOW), Err(ReviewError::AlreadyDecided(Status::Cancelled))));
    assert!(matches!(
        vote(&*store, "apr_k", "bob", Vote::Approve, NOW),
        Err(ReviewError::AlreadyDecided(Status::Cancelled))
    ));
    assert_eq!(store.redeem(redeem_req("apr_k", "k"), NOW).unwrap().unwrap_err(), RedeemRefusal::NotApproved);
    assert!(matches!(store.cancel("apr_none", &owner, "x", NOW), Err(ReviewError::NotFound)));
    created(&*store, new("apr_k2", "l", 1, Reuse::Once));
    assert!(matches!(store.cancel("apr_k2", &owner, "late", NOW + 3_600_000), Err(ReviewError::Expired)));
    assert_eq!(b.events("approval.cancelled").len(), 1, "a refused cancel records nothing");
    b.assert_chain_intact();
}

/// `airlock audit export` from either backend: one evidence format, all of the trail,
/// verified with the seals.
fn the_evidence_bundle_has_one_format_on_every_backend(kind: Kind) {
    let b = Backend::new(kind);
    let store = b.open();
    for i in 0..12 {
        created(&*store, new(&format!("apr_b{i}"), &format!("{i}"), 1, Reuse::Once));
    }
    vote(&*store, "apr_b0", "bob", Vote::Approve, NOW).unwrap();
    store.cancel("apr_b1", &reviewer("owner@corp.example", &[]), "not needed", NOW).unwrap();
    store.checkpoint().unwrap();
    let out = tempfile::tempdir().unwrap();
    let report = match kind {
        Kind::Sqlite => {
            crate::audit::export::export(std::path::Path::new(&b.location), out.path(), Some(&KEY), i64::from(EVERY))
        }
        Kind::Postgres => crate::store::postgres::export_audit(&b.location, out.path(), Some(&KEY), i64::from(EVERY)),
    }
    .unwrap();
    assert!(report.ok() && report.seals_checked, "{report:?}");
    let lines = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(out.path().join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let records = lines("records.jsonl");
    assert_eq!(records.len() as i64, b.count("SELECT count(*) FROM audit_records"));
    for (i, r) in records.iter().enumerate() {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["event", "event_text", "hash", "kind", "prev_hash", "seq", "time"]);
        assert_eq!(r["seq"], json!(i + 1), "in stored order, all of it");
    }
    let checkpoints = lines("checkpoints.jsonl");
    assert!(!checkpoints.is_empty());
    assert_eq!(checkpoints.len() as i64, b.count("SELECT count(*) FROM audit_checkpoints"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["format"], "airlock-evidence-v1");
    assert_eq!(summary["records_by_kind"]["approval.cancelled"], 1);
    assert_eq!(summary["records_by_kind"]["approval.created"], 12);
    assert_eq!(summary["verification"]["records"], json!(records.len()));
    assert_eq!(summary["verification"]["problems"], json!([]));
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Kind::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Kind::Postgres) } )*
        }
    };
}

conformance!(
    create_or_find_dedups_while_live_and_a_denial_answers_retries_for_its_window,
    find_answers_what_a_create_would_and_creates_nothing,
    expiry_is_not_a_no_and_a_zero_window_turns_the_denial_answer_off,
    concurrent_approve_and_deny_have_one_winner,
    double_approve_with_quorum_two_decides_once,
    double_redeem_has_one_winner,
    concurrent_creates_of_one_action_make_one_approval,
    reuse_window_allows_repeats_until_it_closes,
    a_redeem_signature_that_minted_is_refused_again_after_reopening,
    a_decision_batch_is_appended_once_per_signature,
    separation_of_duties_is_refused_for_owner_alias_and_acts_for,
    quorum_counts_distinct_humans_and_refuses_duplicate_votes,
    one_human_under_two_names_counts_once_towards_quorum,
    expiry_on_read_and_approve_versus_expire,
    an_expiry_read_before_a_redeem_is_not_applied_after_it,
    an_agent_cannot_have_more_pending_approvals_than_the_limit,
    audit_records_are_append_only_in_the_store,
    appends_from_concurrent_writers_form_one_chain,
    due_notifications_are_leased_to_one_replica,
    cancel_versus_approve_has_one_winner,
    a_cancel_is_audited_with_who_and_why_and_only_a_pending_one_moves,
    the_evidence_bundle_has_one_format_on_every_backend,
);
