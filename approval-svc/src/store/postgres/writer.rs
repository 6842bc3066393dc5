//! Group commit for PostgreSQL: each store instance (each replica) has one writer thread
//! with its own connection. Jobs arrive on a channel; the writer takes the jobs waiting
//! (at most [`MAX_BATCH`], never waiting for more; once it holds the chain head, also
//! those that came meanwhile), runs them in one transaction, each in its own savepoint,
//! commits once and only then answers every job of the batch. Statements are prepared
//! once per connection. One
//! lock of the chain head and one commit (one WAL flush) cover the whole batch instead of
//! one job — what `store/writer.rs` does for SQLite.
//!
//! Guarantees, as with one transaction per job:
//! - Nobody hears back before the commit of their batch. A job's error rolls back its
//!   savepoint only and is answered to that job alone, after the commit.
//! - A batch commits with `synchronous_commit = off` only if every job in it is
//!   [`Durability::Deferred`].
//! - Lock order: a batch locks the `audit_head` row first, before any job runs, so the
//!   batches of all replicas run one after another in chain order and cannot deadlock
//!   on each other's rows (a batch waiting for the head holds nothing yet).
//! - A conflict the database resolves by aborting (serialisation failure, deadlock)
//!   aborts the whole transaction: the batch's jobs run again in a new one, and the job
//!   that hit it is charged an attempt (every job, when the commit itself conflicts);
//!   a job out of attempts is answered with the conflict. A lost insert race (unique
//!   violation) only reruns its job, inside the same transaction.
//! - A failed commit that is not a conflict answers every job of the batch with the
//!   error (fail closed), and a broken connection is replaced for the next batch.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

use postgres::{Client, Config, NoTls, Transaction};

use super::super::writer::Sealing;
use super::super::{Durability, Output, StoreError};
use super::ledger::{Head, PgLedger, Retry, Statements};
use super::{db_error, is_conflict, ATTEMPTS};

/// Most jobs committed together. Bounded so that a batch waiting for another replica's
/// head lock, and the jobs queued behind it, stay small.
pub(super) const MAX_BATCH: usize = 256;

/// A unit of work on one transaction's rows (may run more than once).
pub(super) type PgJob = Box<dyn FnMut(&mut PgLedger<'_, '_>) -> Result<Output, StoreError> + Send>;

type Answer = SyncSender<Result<Output, StoreError>>;

struct Queued {
    job: PgJob,
    durability: Durability,
    reply: Answer,
    /// Runs of this job that ended in a conflict.
    attempts: u32,
}

impl Queued {
    fn answer(self, result: Result<Output, StoreError>) {
        // The caller may have gone (its thread ended): nobody to tell.
        let _ = self.reply.send(result);
    }
}

/// Batches committed so far, by durability, and the jobs in them.
#[derive(Debug, Default)]
pub(super) struct Commits {
    pub(super) durable: AtomicU64,
    pub(super) deferred: AtomicU64,
    pub(super) jobs: AtomicU64,
}

/// Handle to one store's writer thread; the thread ends when the handle is dropped.
pub(super) struct Writer {
    jobs: SyncSender<Queued>,
    pub(super) commits: Arc<Commits>,
}

impl Writer {
    /// Connects (so that an unreachable database fails the open) and starts the thread.
    pub(super) fn start(config: Config, sealing: Sealing) -> Result<Writer, StoreError> {
        let client = config.connect(NoTls).map_err(db_error)?;
        let (jobs, rx) = mpsc::sync_channel::<Queued>(4096);
        let commits = Arc::new(Commits::default());
        let counted = commits.clone();
        std::thread::Builder::new()
            .name("airlock-pg-writer".into())
            .spawn(move || run(config, Some(client), &rx, &sealing, &counted))
            .map_err(|e| StoreError::Database(format!("cannot start writer thread: {e}")))?;
        Ok(Writer { jobs, commits })
    }

    /// Runs `job` in the next batch; answers once that batch is committed (blocking).
    pub(super) fn submit(&self, durability: Durability, job: PgJob) -> Result<Output, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs.send(Queued { job, durability, reply, attempts: 0 }).map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }
}

/// The writer's connection and what is prepared on it.
struct Connection {
    client: Option<Client>,
    statements: Statements,
}

fn run(config: Config, client: Option<Client>, rx: &Receiver<Queued>, sealing: &Sealing, commits: &Commits) {
    let mut conn = Connection { client, statements: Statements::new() };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        take_waiting(rx, &mut batch);
        commit_batch(&config, &mut conn, rx, batch, sealing, commits);
    }
}

/// Adds the jobs waiting to `batch`, up to [`MAX_BATCH`]; never waits for more.
fn take_waiting(rx: &Receiver<Queued>, batch: &mut Vec<Queued>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// How one try at a batch ended.
enum Try {
    /// Committed: each job's answer, in batch order; whether with `synchronous_commit`
    /// off.
    Committed(Vec<Result<Output, StoreError>>, bool),
    /// Aborted by a conflict: run the (remaining) jobs again.
    Again,
    /// Failed as a whole: every job is answered with this.
    Failed(StoreError),
    /// The transaction could not even begin: nothing ran.
    NotBegun(StoreError),
}

fn commit_batch(
    config: &Config,
    conn: &mut Connection,
    rx: &Receiver<Queued>,
    mut batch: Vec<Queued>,
    sealing: &Sealing,
    commits: &Commits,
) {
    // A connection found broken before anything ran (the database restarted since the
    // last batch) is replaced once, and the batch tried on the new one.
    let mut reconnected = false;
    loop {
        if batch.is_empty() {
            return;
        }
        if conn.client.as_ref().is_none_or(Client::is_closed) {
            conn.statements.clear();
            match config.connect(NoTls) {
                Ok(c) => {
                    conn.client = Some(c);
                    reconnected = true;
                }
                Err(e) => {
                    conn.client = None;
                    let err = db_error(e);
                    tracing::error!(error = %err, "store writer cannot reach the database");
                    batch.into_iter().for_each(|q| q.answer(Err(err.clone())));
                    return;
                }
            }
        }
        match try_batch(conn, rx, &mut batch, sealing) {
            Try::Committed(results, deferred) => {
                let counter = if deferred { &commits.deferred } else { &commits.durable };
                counter.fetch_add(1, Ordering::Relaxed);
                commits.jobs.fetch_add(results.len() as u64, Ordering::Relaxed);
                for (q, result) in batch.into_iter().zip(results) {
                    q.answer(result);
                }
                return;
            }
            Try::Again => continue,
            Try::NotBegun(_) if !reconnected => {
                conn.client = None;
                continue;
            }
            Try::NotBegun(err) | Try::Failed(err) => {
                // Whatever failed, start the next batch from a clean slate.
                conn.statements.clear();
                tracing::error!(error = %err, jobs = batch.len(), "store commit failed; batch rolled back");
                batch.into_iter().for_each(|q| q.answer(Err(err.clone())));
                return;
            }
        }
    }
}

/// Charges `batch[i]` a conflict; out of attempts, it is answered with `err` and leaves
/// the batch.
fn charge(batch: &mut Vec<Queued>, i: usize, err: StoreError) {
    batch[i].attempts += 1;
    if batch[i].attempts >= ATTEMPTS {
        batch.remove(i).answer(Err(err));
    }
}

/// Charges every job of `batch` a conflict (one that is nobody's in particular).
fn charge_all(batch: &mut Vec<Queued>, err: &StoreError) {
    for i in (0..batch.len()).rev() {
        charge(batch, i, err.clone());
    }
}

/// One transaction over `batch`. Jobs answered or dropped on the way (out of attempts)
/// are removed from `batch`; on [`Try::Committed`] the results match `batch` one to one.
fn try_batch(conn: &mut Connection, rx: &Receiver<Queued>, batch: &mut Vec<Queued>, sealing: &Sealing) -> Try {
    let Connection { client: Some(client), statements } = conn else {
        return Try::NotBegun(StoreError::Closed);
    };
    let mut tx = match client.transaction() {
        Ok(tx) => tx,
        Err(e) => return Try::NotBegun(db_error(e)),
    };
    // The head first, for every batch: the lock order that keeps replicas apart.
    let start = match tx.query_one("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE", &[]) {
        Ok(row) => Head { seq: row.get(0), hash: row.get(1) },
        Err(e) if is_conflict(&e) => {
            // Nobody's fault in particular: every job is charged, so this ends.
            charge_all(batch, &db_error(e));
            return Try::Again;
        }
        Err(e) => return Try::Failed(db_error(e)),
    };
    // Jobs that arrived while another replica held the head join this batch: the
    // lock is ours now, so they cost no extra wait (and no extra commit).
    take_waiting(rx, batch);
    // Read at commit, so it may be set now that the batch is complete.
    let deferred = batch.iter().all(|q| q.durability == Durability::Deferred);
    if deferred {
        // Committed (visible to every replica, and kept by PostgreSQL whatever happens
        // to this process) before the answer; on disk within wal_writer_delay. Only the
        // gateway's decision log takes this path.
        if let Err(e) = tx.batch_execute("SET LOCAL synchronous_commit = off") {
            return Try::Failed(db_error(e));
        }
    }
    let mut head = start.clone();
    let mut results = Vec::with_capacity(batch.len());
    let mut i = 0;
    while i < batch.len() {
        match run_one(&mut tx, statements, &mut batch[i], &mut head, sealing) {
            Ok(result) => {
                results.push(result);
                i += 1;
            }
            Err(Abort::Conflict(err)) => {
                charge(batch, i, err);
                return Try::Again;
            }
            Err(Abort::Broken(err)) => return Try::Failed(err),
        }
    }
    if head.seq != start.seq {
        if let Err(e) = tx.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", &[&head.seq, &head.hash]) {
            return Try::Failed(db_error(e));
        }
    }
    match tx.commit() {
        Ok(()) => Try::Committed(results, deferred),
        Err(e) if is_conflict(&e) => {
            charge_all(batch, &db_error(e));
            Try::Again
        }
        Err(e) => Try::Failed(db_error(e)),
    }
}

/// Why a batch's transaction cannot go on.
enum Abort {
    /// The job hit a conflict the database resolved by aborting: rerun the batch.
    Conflict(StoreError),
    /// The transaction is unusable (a savepoint could not be released or rolled back).
    Broken(StoreError),
}

/// Runs one job in its own savepoint: its result (`Ok(Err)`: the job failed, its
/// savepoint is rolled back) or why the whole batch must stop.
fn run_one(
    tx: &mut Transaction<'_>,
    statements: &mut Statements,
    q: &mut Queued,
    head: &mut Head,
    sealing: &Sealing,
) -> Result<Result<Output, StoreError>, Abort> {
    loop {
        tx.batch_execute("SAVEPOINT job").map_err(|e| Abort::Broken(db_error(e)))?;
        let mut ledger = PgLedger::with_head(tx, sealing, statements, head.clone());
        let out = catch_unwind(AssertUnwindSafe(|| (q.job)(&mut ledger)))
            .unwrap_or_else(|_| Err(StoreError::Database("a store job panicked".into())));
        let (retry, moved) = (ledger.retry, ledger.into_head());
        let failed = match out {
            Ok(out) => match tx.batch_execute("RELEASE SAVEPOINT job") {
                Ok(()) => {
                    *head = moved;
                    return Ok(Ok(out));
                }
                // The job swallowed an error and left its savepoint aborted.
                Err(e) if is_conflict(&e) => return Err(Abort::Conflict(db_error(e))),
                Err(e) => db_error(e),
            },
            Err(e) => e,
        };
        if retry == Retry::Batch {
            return Err(Abort::Conflict(failed));
        }
        tx.batch_execute("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job").map_err(|e| Abort::Broken(db_error(e)))?;
        if retry == Retry::Job && q.attempts + 1 < ATTEMPTS {
            q.attempts += 1;
            continue;
        }
        return Ok(Err(failed));
    }
}
