//! The single writer thread: jobs arrive on a channel and are applied in batches, one
//! transaction per batch (group commit), each job inside its own savepoint. Nobody hears
//! back before the batch — and so their audit records — is committed.
//!
//! Durability classes. A job is *durable* ([`WriterHandle::submit`]) or *deferred*
//! ([`WriterHandle::submit_deferred`]). A batch commits with `synchronous = NORMAL` only
//! if every job in it is deferred, otherwise with `FULL` (an fsync of the WAL before
//! anyone hears back). In WAL mode a NORMAL commit is in the WAL file, so it survives a
//! crash of the process (kill -9) at once; it reaches the disk with the next FULL commit
//! (the WAL is synced in order, so the audit chain on disk is always a prefix of the one
//! answered) or the next checkpoint of the WAL thread (`wal.rs`, within its interval),
//! whichever comes first. Only an OS crash or power failure inside that window loses it.
//! The SPEC requires every approval, review, redeem and credential to have an audit
//! record durable before the answer, so only the gateway's decision-log batches are
//! deferred: records of decisions already enforced, which the filter itself batches in
//! memory for a second. (A seal that a deferred append triggers every
//! `checkpoint_every` records shares that append's commit: on disk, never without the
//! records it seals.)

use std::any::Any;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

use rusqlite::Connection;
use serde_json::Value;

use super::StoreError;
use crate::audit::chain::record_hash;
use crate::audit::checkpoint::seal;
use crate::audit::GENESIS_HASH;
use crate::time::{now_ms, rfc3339_ms};

/// Most jobs committed together.
const MAX_BATCH: usize = 512;

type Output = Box<dyn Any + Send>;
type Op = Box<dyn FnOnce(&mut Tx<'_>) -> Result<Output, StoreError> + Send>;

struct Job {
    op: Op,
    reply: Reply,
    /// May commit with `synchronous = NORMAL` (see the module comment).
    deferred: bool,
}

/// Where a job's outcome goes once its batch is committed.
enum Reply {
    /// A thread blocked in [`Ticket::wait`].
    Blocking(SyncSender<Result<Output, StoreError>>),
    /// An async task awaiting [`WriterHandle::enqueue_async`]'s receiver: woken by the
    /// writer directly, with no blocking-pool thread in between.
    Async(tokio::sync::oneshot::Sender<Result<Output, StoreError>>),
}

impl Reply {
    /// Delivers `outcome`; a caller that stopped waiting is not an error.
    fn send(self, outcome: Result<Output, StoreError>) {
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Async(tx) => {
                let _ = tx.send(outcome);
            }
        }
    }
}

/// `PRAGMA synchronous` of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncLevel {
    Normal,
    Full,
}

impl SyncLevel {
    fn of(batch: &[Job]) -> SyncLevel {
        if batch.iter().all(|job| job.deferred) {
            SyncLevel::Normal
        } else {
            SyncLevel::Full
        }
    }
}

/// The head of the audit chain.
#[derive(Clone, Debug)]
struct Head {
    seq: i64,
    hash: String,
}

/// Audit sealing settings.
#[derive(Clone)]
pub struct Sealing {
    /// HMAC key for checkpoints (`None`: no checkpoints).
    pub key: Option<Arc<Vec<u8>>>,
    /// Records between checkpoints (0: only on request).
    pub every: i64,
}

/// A job's view of the open transaction.
pub struct Tx<'c> {
    /// The connection, inside the batch's transaction and the job's savepoint.
    pub conn: &'c Connection,
    head: Head,
    sealing: &'c Sealing,
}

impl Tx<'_> {
    /// Appends an audit record of `kind`; seals a checkpoint every `every` records.
    pub fn append(&mut self, kind: &str, event: &Value) -> Result<i64, StoreError> {
        let seq = self.head.seq + 1;
        let time = rfc3339_ms(now_ms());
        let text = event.to_string();
        let hash = record_hash(seq, &time, kind, &text, &self.head.hash);
        self.conn
            .prepare_cached(
                "INSERT INTO audit_records (seq, time, kind, event, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(rusqlite::params![seq, time, kind, text, self.head.hash, hash])?;
        self.head = Head { seq, hash };
        if self.sealing.every > 0 && seq % self.sealing.every == 0 {
            self.seal()?;
        }
        Ok(seq)
    }

    /// Seals the current head (no-op without a key or records, or if already sealed).
    pub fn seal(&mut self) -> Result<(), StoreError> {
        let Some(key) = &self.sealing.key else {
            return Ok(());
        };
        if self.head.seq == 0 {
            return Ok(());
        }
        let cp = seal(key, self.head.seq, &self.head.hash, &rfc3339_ms(now_ms()));
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO audit_checkpoints (seq, head_hash, time, mac) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(rusqlite::params![cp.seq, cp.head_hash, cp.time, cp.mac])?;
        Ok(())
    }
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct WriterHandle {
    jobs: SyncSender<Job>,
    commits: Arc<Commits>,
}

/// Batches committed so far, by `synchronous` level.
#[derive(Debug, Default)]
pub struct Commits {
    pub full: AtomicU64,
    pub normal: AtomicU64,
}

/// The answer to a queued job.
pub(crate) struct Ticket<T> {
    answer: Receiver<Result<Output, StoreError>>,
    kind: PhantomData<fn() -> T>,
}

impl<T: 'static> Ticket<T> {
    /// Waits until the job's batch is committed (blocking).
    pub(crate) fn wait(self) -> Result<T, StoreError> {
        let out = self.answer.recv().map_err(|_| StoreError::Closed)??;
        out.downcast::<T>().map(|b| *b).map_err(|_| StoreError::Corrupt("writer answered the wrong type".into()))
    }
}

impl WriterHandle {
    /// Starts the writer thread on `conn` (which is in `synchronous = FULL`).
    pub fn start(conn: Connection, sealing: Sealing) -> Result<WriterHandle, StoreError> {
        let head = load_head(&conn)?;
        let (jobs, rx) = mpsc::sync_channel::<Job>(4096);
        let commits = Arc::new(Commits::default());
        let counted = commits.clone();
        std::thread::Builder::new()
            .name("airlock-store-writer".into())
            .spawn(move || run(conn, rx, head, sealing, &counted))
            .map_err(|e| StoreError::Database(format!("cannot start writer thread: {e}")))?;
        Ok(WriterHandle { jobs, commits })
    }

    /// Batches committed so far, by `synchronous` level.
    pub fn commits(&self) -> (u64, u64) {
        (self.commits.full.load(Ordering::Relaxed), self.commits.normal.load(Ordering::Relaxed))
    }

    /// Runs `op` in the next batch; returns once its batch is committed and synced to
    /// disk (blocking).
    pub fn submit<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.enqueue(false, op)?.wait()
    }

    /// Like [`WriterHandle::submit`] for a job whose loss on an OS crash or power
    /// failure can never grant anything: returns once its batch is committed, which a
    /// crash of the process cannot undo; the disk may get it up to a checkpoint
    /// interval later (module comment).
    pub fn submit_deferred<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.enqueue(true, op)?.wait()
    }

    /// Queues `op` without waiting for it.
    pub(crate) fn enqueue<T: Send + 'static>(
        &self,
        deferred: bool,
        op: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Ticket<T>, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let op: Op = Box::new(move |tx| op(tx).map(|v| Box::new(v) as Output));
        self.jobs.send(Job { op, reply: Reply::Blocking(reply), deferred }).map_err(|_| StoreError::Closed)?;
        Ok(Ticket { answer, kind: PhantomData })
    }

    /// Queues `op` for an async caller: the receiver answers once its batch is committed
    /// (and, unless `deferred`, synced), exactly when [`WriterHandle::submit`] would
    /// return. The caller awaits it on its own task instead of holding a blocking-pool
    /// thread that waits for the writer and then wakes the task: two thread hand-offs
    /// fewer per store call. Queuing does not wait unless 4096 jobs are already queued.
    pub(crate) fn enqueue_async(
        &self,
        deferred: bool,
        op: impl FnOnce(&mut Tx<'_>) -> Result<Output, StoreError> + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<Output, StoreError>>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let op: Op = Box::new(op);
        self.jobs.send(Job { op, reply: Reply::Async(reply), deferred }).map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }
}

fn load_head(conn: &Connection) -> Result<Head, StoreError> {
    let head = conn
        .query_row("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1", [], |r| {
            Ok(Head { seq: r.get(0)?, hash: r.get(1)? })
        })
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(Head { seq: 0, hash: GENESIS_HASH.to_string() }),
            other => Err(other),
        })?;
    Ok(head)
}

fn run(conn: Connection, rx: Receiver<Job>, mut head: Head, sealing: Sealing, commits: &Commits) {
    let mut level = SyncLevel::Full;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // The level cannot change inside a transaction: set it before BEGIN, and only
        // when it changes.
        let wanted = SyncLevel::of(&batch);
        let begun = set_level(&conn, &mut level, wanted).and_then(|()| conn.execute_batch("BEGIN IMMEDIATE"));
        if let Err(e) = begun {
            let err = StoreError::from(e);
            for job in batch {
                job.reply.send(Err(err.clone()));
            }
            continue;
        }
        let start_head = head.clone();
        let mut results = Vec::with_capacity(batch.len());
        for job in batch {
            let outcome = run_one(&conn, &mut head, &sealing, job.op);
            results.push((job.reply, outcome));
        }
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                let counter = if level == SyncLevel::Full { &commits.full } else { &commits.normal };
                counter.fetch_add(1, Ordering::Relaxed);
                for (reply, outcome) in results {
                    reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; batch rolled back");
                let _ = conn.execute_batch("ROLLBACK");
                head = load_head(&conn).unwrap_or(start_head);
                let err = StoreError::from(e);
                for (reply, _) in results {
                    reply.send(Err(err.clone()));
                }
            }
        }
    }
}

fn set_level(conn: &Connection, level: &mut SyncLevel, wanted: SyncLevel) -> rusqlite::Result<()> {
    if *level != wanted {
        conn.pragma_update(None, "synchronous", if wanted == SyncLevel::Full { "FULL" } else { "NORMAL" })?;
        *level = wanted;
    }
    Ok(())
}

fn run_one(conn: &Connection, head: &mut Head, sealing: &Sealing, op: Op) -> Result<Output, StoreError> {
    conn.execute_batch("SAVEPOINT job")?;
    let mut tx = Tx { conn, head: head.clone(), sealing };
    match op(&mut tx) {
        Ok(out) => {
            conn.execute_batch("RELEASE job")?;
            *head = tx.head;
            Ok(out)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}
