//! The store under the service's load, same run, for each backend: approvals created,
//! approved and redeemed per second (16 concurrent agents), durable audit appends per
//! second (64 concurrent callers), and the latency of a create (what an agent waits for
//! its `approval-pending` answer: the approval and its audit record durable), p50/p99.
//! Backends: SQLite (one process), PostgreSQL with one store instance, and with two
//! store instances on one database (two replicas, load split between them). The last
//! column is the store calls per commit (group commit: how many jobs a commit covers).
//!
//! Run: `eval "$(bash scripts/postgres.sh start)" && cargo bench -p airlock-approval-svc --bench store`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_approval_svc::approvals::Decisions;
use airlock_approval_svc::lifecycle::{Reuse, Reviewer, Vote};
use airlock_approval_svc::store::postgres::testing::fresh_database;
use airlock_approval_svc::store::{
    AgentRef, CreateOutcome, MintRecord, NewApproval, PostgresStore, RedeemRequest, ReviewNote, SqliteStore, Store,
};
use serde_json::json;

const AGENTS: usize = 16;
const CYCLES_PER_AGENT: usize = 60;
const APPEND_CALLERS: usize = 64;
const APPENDS_PER_CALLER: usize = 100;

fn new_approval(agent: usize, i: usize, now: i64) -> NewApproval {
    let agent_ref =
        AgentRef { id: format!("spiffe://bench/agent/{agent}"), source: "header".into(), ..AgentRef::default() };
    let digest = format!("{:064x}", agent * 1_000_000 + i);
    NewApproval {
        id: format!("apr_{agent}_{i}_{now}"),
        agent: agent_ref.clone(),
        digest: digest.clone(),
        quorum: 1,
        reuse: Reuse::Once,
        credential: Some("export-token".into()),
        expires_at_ms: now + 600_000,
        create: json!({"decision_id": format!("dec_{agent}_{i}"), "agent": agent_ref, "digest": digest,
                       "policy": {"approvers": {"groups": ["ops"], "quorum": 1}},
                       "request": {"method": "POST", "host": "api.example.com", "path": "/v1/exports",
                                   "body": {"format": "csv", "rows": i}}}),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Create → approve → redeem, `CYCLES_PER_AGENT` times per agent, agents spread over
/// `stores`. Answers (cycles/s, create latencies).
fn lifecycles(stores: &[Arc<dyn Store>]) -> (f64, Vec<Duration>) {
    let reviewer = Reviewer { id: "bob".into(), groups: vec!["ops".into()], aliases: vec![] };
    let started = Instant::now();
    let handles: Vec<_> = (0..AGENTS)
        .map(|agent| {
            let store = stores[agent % stores.len()].clone();
            let reviewer = reviewer.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::with_capacity(CYCLES_PER_AGENT);
                for i in 0..CYCLES_PER_AGENT {
                    let now = now_ms();
                    let new = new_approval(agent, i, now);
                    let (id, digest, agent_id) = (new.id.clone(), new.digest.clone(), new.agent.id.clone());
                    let t = Instant::now();
                    let outcome = store.create_or_find(new, None, now).unwrap();
                    latencies.push(t.elapsed());
                    assert!(matches!(outcome, CreateOutcome::Created(_)), "{outcome:?}");
                    store.review(&id, &reviewer, Vote::Approve, ReviewNote::api(None), now).unwrap();
                    let req = RedeemRequest {
                        signature: format!("v1=bench-{id}"),
                        approval_id: id.clone(),
                        decision_id: format!("dec_r_{id}"),
                        agent: agent_id,
                        digest,
                        mint: MintRecord {
                            profile: Some("export-token".into()),
                            details: json!({"kind": "jwt-hs256"}),
                        },
                    };
                    store.redeem(req, now).unwrap().unwrap();
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let rate = (AGENTS * CYCLES_PER_AGENT) as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

fn appends(stores: &[Arc<dyn Store>]) -> f64 {
    let started = Instant::now();
    let handles: Vec<_> = (0..APPEND_CALLERS)
        .map(|c| {
            let store = stores[c % stores.len()].clone();
            std::thread::spawn(move || {
                for i in 0..APPENDS_PER_CALLER {
                    store.append_event("bench", json!({"caller": c, "i": i})).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (APPEND_CALLERS * APPENDS_PER_CALLER) as f64 / started.elapsed().as_secs_f64()
}

/// Commits of every kind so far, over `stores`.
fn commits(stores: &[Arc<dyn Store>]) -> u64 {
    stores.iter().map(|s| s.commits()).map(|(durable, deferred)| durable + deferred).sum()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn main() {
    let key = Some(vec![7u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Vec<Arc<dyn Store>> =
        vec![Arc::new(SqliteStore::open(&dir.path().join("bench.db"), key.clone(), 100).unwrap())];
    let pg_one = fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let pg_two = fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let postgres_one: Vec<Arc<dyn Store>> = vec![Arc::new(PostgresStore::open(&pg_one, key.clone(), 100).unwrap())];
    let postgres_two: Vec<Arc<dyn Store>> = vec![
        Arc::new(PostgresStore::open(&pg_two, key.clone(), 100).unwrap()),
        Arc::new(PostgresStore::open(&pg_two, key.clone(), 100).unwrap()),
    ];
    println!(
        "| backend | lifecycles/s (create+approve+redeem, {AGENTS} agents) | create p50 ms | create p99 ms | durable audit appends/s ({APPEND_CALLERS} callers) | store calls per commit |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, stores) in
        [("SQLite", &sqlite), ("PostgreSQL, 1 replica", &postgres_one), ("PostgreSQL, 2 replicas", &postgres_two)]
    {
        let before = commits(stores);
        let (rate, lat) = lifecycles(stores);
        let appended = appends(stores);
        // create, approve, redeem: one transaction each; then one per append.
        let calls = (AGENTS * CYCLES_PER_AGENT * 3 + APPEND_CALLERS * APPENDS_PER_CALLER) as f64;
        let per_commit = calls / (commits(stores) - before).max(1) as f64;
        println!(
            "| {name} | {rate:.0} | {:.2} | {:.2} | {appended:.0} | {per_commit:.1} |",
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }
}
