//! The embedded store: SQLite in WAL mode. Writes go through the group-commit writer
//! thread (`synchronous = FULL`, or NORMAL for batches of deferred jobs only: see
//! `writer.rs`); reads use their own connection; WAL checkpoints run on a thread of
//! their own (`wal.rs`).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};

use serde_json::Value;

use super::ledger::{Ledger, ReviewRow, RowRefusal, StatusChange};
use super::wal::{self, Checkpointer, DEFAULT_CHECKPOINT_INTERVAL};
use super::writer::{Sealing, Tx, WriterHandle};
use super::{
    Approval, CreateLimits, Durability, Job, NewApproval, NotificationOutcome, OutboxItem, Output, ReviewRecord, Store,
    StoreError, Submitted,
};
use crate::lifecycle::{Status, Vote};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

const APPROVAL_COLUMNS: &str = "id, status, agent, digest, created_ms, expires_ms, decided_ms, usable_until_ms, \
     redeem_count, quorum, reuse, credential, create_json";

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: WriterHandle,
    reader: Mutex<Connection>,
    /// Most pending approvals one agent may have (`approvals.max_pending_per_agent`).
    pending_limit: u32,
    /// How long a denial answers identical creates (`approvals.denied_retry_window`).
    denied_retry_window: Duration,
    /// Held for its drop: stops (after one last checkpoint) with the store.
    _wal: Checkpointer,
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`, checkpointing its WAL every
    /// [`DEFAULT_CHECKPOINT_INTERVAL`]. `checkpoint_key` seals the chain head every
    /// `checkpoint_every` records.
    pub fn open(
        path: &Path,
        checkpoint_key: Option<Vec<u8>>,
        checkpoint_every: u32,
    ) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, checkpoint_key, checkpoint_every, DEFAULT_CHECKPOINT_INTERVAL)
    }

    /// [`SqliteStore::open`] with the time between WAL checkpoints, which is also the
    /// longest a deferred commit (decision-log batches) waits for the disk.
    pub fn open_with(
        path: &Path,
        checkpoint_key: Option<Vec<u8>>,
        checkpoint_every: u32,
        checkpoint_interval: Duration,
    ) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        wal::configure_writer(&conn)?;
        super::migrations::migrate(&mut conn)?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        reader.pragma_update(None, "query_only", true)?;
        let sealing = Sealing { key: checkpoint_key.map(Arc::new), every: i64::from(checkpoint_every) };
        Ok(SqliteStore {
            writer: WriterHandle::start(conn, sealing)?,
            reader: Mutex::new(reader),
            pending_limit: u32::MAX,
            denied_retry_window: super::DEFAULT_DENIED_RETRY_WINDOW,
            _wal: Checkpointer::start(path, checkpoint_interval)?,
        })
    }

    /// Caps the pending approvals of one agent: an agent (or an attacker driving one)
    /// cannot flood reviewers; further new actions are refused until some are decided.
    pub fn with_pending_limit(mut self, limit: u32) -> SqliteStore {
        self.pending_limit = limit.max(1);
        self
    }

    /// How long after a denial (or cancellation) an identical create is answered with it
    /// instead of asking reviewers again; zero turns this off.
    pub fn with_denied_retry_window(mut self, window: Duration) -> SqliteStore {
        self.denied_retry_window = window;
        self
    }

    /// The writer, for tests that queue jobs directly.
    #[cfg(test)]
    pub(crate) fn writer(&self) -> &WriterHandle {
        &self.writer
    }

    /// Checkpoints so far that found the whole WAL copied back.
    #[cfg(test)]
    pub(crate) fn complete_checkpoints(&self) -> u64 {
        self._wal.complete()
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

fn approval_from_row(row: &Row<'_>) -> rusqlite::Result<(Approval, String)> {
    let status: String = row.get(1)?;
    let create_text: String = row.get(12)?;
    let quorum: i64 = row.get(9)?;
    Ok((
        Approval {
            id: row.get(0)?,
            status: Status::Pending,
            agent: row.get(2)?,
            digest: row.get(3)?,
            created_ms: row.get(4)?,
            expires_ms: row.get(5)?,
            decided_ms: row.get(6)?,
            usable_until_ms: row.get(7)?,
            redeem_count: row.get(8)?,
            quorum: u32::try_from(quorum).unwrap_or(1),
            reuse: row.get(10)?,
            credential: row.get(11)?,
            create: serde_json::from_str(&create_text).unwrap_or(Value::Null),
            reviews: Vec::new(),
        },
        status,
    ))
}

fn finish(conn: &Connection, (mut a, status): (Approval, String)) -> Result<Approval, StoreError> {
    a.status = status.parse().map_err(StoreError::Corrupt)?;
    a.reviews = load_reviews(conn, &a.id)?;
    Ok(a)
}

fn load(conn: &Connection, id: &str) -> Result<Option<Approval>, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"))?
        .query_row([id], approval_from_row)
        .optional()?;
    row.map(|r| finish(conn, r)).transpose()
}

fn load_reviews(conn: &Connection, id: &str) -> Result<Vec<ReviewRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT reviewer, vote, comment, channel, time_ms FROM reviews WHERE approval_id = ?1 ORDER BY time_ms, rowid",
    )?;
    let rows = stmt
        .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (reviewer, vote, comment, channel, time_ms) = row?;
        let vote = Vote::parse(&vote).ok_or_else(|| StoreError::Corrupt(format!("vote {vote:?}")))?;
        out.push(ReviewRecord { reviewer, vote, comment, channel, time_ms });
    }
    Ok(out)
}

/// The SQLite rows of one job in the writer's batch transaction (the single writer makes
/// every read a locked read).
struct SqliteLedger<'t, 'c> {
    tx: &'t mut Tx<'c>,
}

impl Ledger for SqliteLedger<'_, '_> {
    fn load(&mut self, id: &str) -> Result<Option<Approval>, StoreError> {
        load(self.tx.conn, id)
    }

    fn lock_agent(&mut self, _agent: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn live_ids(&mut self, agent: &str, digest: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.tx.conn.prepare_cached(
            "SELECT id FROM approvals WHERE agent = ?1 AND digest = ?2 AND status IN ('pending', 'approved') \
             ORDER BY created_ms DESC",
        )?;
        let rows = stmt.query_map(params![agent, digest], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn denied_since(&mut self, agent: &str, digest: &str, since_ms: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .tx
            .conn
            .prepare_cached(
                "SELECT id FROM approvals WHERE agent = ?1 AND digest = ?2 AND status IN ('denied', 'cancelled') \
                 AND decided_ms > ?3 ORDER BY decided_ms DESC, rowid DESC LIMIT 1",
            )?
            .query_row(params![agent, digest, since_ms], |r| r.get(0))
            .optional()?)
    }

    fn count_refused_retry(&mut self, id: &str) -> Result<i64, StoreError> {
        Ok(self
            .tx
            .conn
            .prepare_cached(
                "UPDATE approvals SET refused_retries = refused_retries + 1 WHERE id = ?1 RETURNING refused_retries",
            )?
            .query_row([id], |r| r.get(0))?)
    }

    fn pending_of(&mut self, agent: &str) -> Result<i64, StoreError> {
        Ok(self
            .tx
            .conn
            .prepare_cached("SELECT COUNT(*) FROM approvals WHERE agent = ?1 AND status = 'pending'")?
            .query_row([agent], |r| r.get(0))?)
    }

    fn insert_approval(&mut self, new: &NewApproval, parties: &[String], now_ms: i64) -> Result<(), StoreError> {
        let conn = self.tx.conn;
        conn.prepare_cached(
            "INSERT INTO approvals (id, agent, digest, status, created_ms, expires_ms, quorum, reuse, credential, create_json) \
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            new.id,
            new.agent.id,
            new.digest,
            now_ms,
            new.expires_at_ms,
            i64::from(new.quorum.max(1)),
            new.reuse.text(),
            new.credential,
            new.create.to_string()
        ])?;
        for identity in parties {
            conn.prepare_cached("INSERT OR IGNORE INTO approval_parties (approval_id, identity) VALUES (?1, ?2)")?
                .execute(params![new.id, identity])?;
        }
        Ok(())
    }

    fn reviewed_by(&mut self, id: &str, identity: &str) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM review_identities WHERE approval_id = ?1 AND identity = ?2)")?
            .query_row(params![id, identity], |r| r.get(0))?)
    }

    fn is_party(&mut self, id: &str, identity: &str) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM approval_parties WHERE approval_id = ?1 AND identity = ?2)")?
            .query_row(params![id, identity], |r| r.get(0))?)
    }

    fn insert_review(&mut self, row: &ReviewRow<'_>) -> Result<Result<(), RowRefusal>, StoreError> {
        let conn = self.tx.conn;
        for identity in row.identities {
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO review_identities (approval_id, reviewer, identity) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![row.approval_id, row.reviewer, identity]);
            if let Err(e) = inserted {
                return refused_by_constraint(self, row, e);
            }
        }
        let inserted = conn
            .prepare_cached(
                "INSERT INTO reviews (approval_id, reviewer, vote, comment, channel, time_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![row.approval_id, row.reviewer, row.vote.as_str(), row.comment, row.channel, row.time_ms]);
        match inserted {
            Ok(_) => Ok(Ok(())),
            Err(e) => refused_by_constraint(self, row, e),
        }
    }

    fn change_status(&mut self, c: &StatusChange<'_>) -> Result<bool, StoreError> {
        let changed = self
            .tx
            .conn
            .prepare_cached(
                "UPDATE approvals SET status = ?1, decided_ms = COALESCE(decided_ms, ?2), \
                 usable_until_ms = COALESCE(?3, usable_until_ms) \
                 WHERE id = ?4 AND status = ?5 AND redeem_count = ?6",
            )?
            .execute(params![c.to.as_str(), c.decided_ms, c.usable_until_ms, c.id, c.from.as_str(), c.redeem_count])?;
        Ok(changed == 1)
    }

    fn count_redeem(&mut self, id: &str, once: bool, now_ms: i64) -> Result<bool, StoreError> {
        let conn = self.tx.conn;
        let changed = if once {
            conn.prepare_cached(
                "UPDATE approvals SET status = 'redeemed', redeem_count = redeem_count + 1 \
                 WHERE id = ?1 AND status = 'approved' AND redeem_count = 0",
            )?
            .execute([id])?
        } else {
            conn.prepare_cached(
                "UPDATE approvals SET redeem_count = redeem_count + 1 \
                 WHERE id = ?1 AND status = 'approved' AND usable_until_ms > ?2",
            )?
            .execute(params![id, now_ms])?
        };
        Ok(changed == 1)
    }

    fn redeem_seen(&mut self, signature: &str, since_ms: i64) -> Result<bool, StoreError> {
        redeem_seen(self.tx.conn, signature, since_ms)
    }

    fn remember_redeem(&mut self, signature: &str, now_ms: i64, forget_before_ms: i64) -> Result<(), StoreError> {
        let conn = self.tx.conn;
        conn.prepare_cached("DELETE FROM redeem_replays WHERE seen_ms <= ?1")?.execute([forget_before_ms])?;
        conn.prepare_cached("INSERT OR REPLACE INTO redeem_replays (signature, seen_ms) VALUES (?1, ?2)")?
            .execute(params![signature, now_ms])?;
        Ok(())
    }

    fn remember_batch(&mut self, signature: &str, now_ms: i64, forget_before_ms: i64) -> Result<bool, StoreError> {
        let conn = self.tx.conn;
        conn.prepare_cached("DELETE FROM decision_batches WHERE received_ms <= ?1")?.execute([forget_before_ms])?;
        let fresh = conn
            .prepare_cached("INSERT OR IGNORE INTO decision_batches (signature, received_ms) VALUES (?1, ?2)")?
            .execute(params![signature, now_ms])?;
        Ok(fresh == 1)
    }

    fn past_deadline(&mut self, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        past_deadline(self.tx.conn, now_ms)
    }

    fn append(&mut self, kind: &str, event: &Value) -> Result<i64, StoreError> {
        self.tx.append(kind, event)
    }

    fn seal(&mut self) -> Result<(), StoreError> {
        self.tx.seal()
    }

    fn enqueue(&mut self, approval_id: &str, event: &str, now_ms: i64) -> Result<(), StoreError> {
        super::outbox::enqueue(self.tx.conn, approval_id, event, now_ms)
    }
}

/// A review row refused by a constraint (one of the triggers, or a key): the rule it
/// broke, asked of the database in the same transaction rather than read from the
/// trigger's message.
fn refused_by_constraint(
    l: &mut SqliteLedger<'_, '_>,
    row: &ReviewRow<'_>,
    e: rusqlite::Error,
) -> Result<Result<(), RowRefusal>, StoreError> {
    if e.sqlite_error_code() != Some(rusqlite::ErrorCode::ConstraintViolation) {
        return Err(e.into());
    }
    for identity in row.identities {
        if l.is_party(row.approval_id, identity)? {
            return Ok(Err(RowRefusal::SeparationOfDuties));
        }
    }
    let status: Option<String> =
        l.tx.conn
            .prepare_cached("SELECT status FROM approvals WHERE id = ?1")?
            .query_row([row.approval_id], |r| r.get(0))
            .optional()?;
    if status.as_deref() != Some(Status::Pending.as_str()) {
        return Ok(Err(RowRefusal::NotPending));
    }
    Ok(Err(RowRefusal::Duplicate))
}

fn redeem_seen(conn: &Connection, signature: &str, since_ms: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM redeem_replays WHERE signature = ?1 AND seen_ms > ?2)")?
        .query_row(params![signature, since_ms], |r| r.get(0))?)
}

/// Live approvals whose deadline or reuse window has passed
/// ([`crate::lifecycle::due_transition`]'s cases, as a query).
fn past_deadline(conn: &Connection, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE (status = 'pending' AND expires_ms <= ?1) \
         OR (status = 'approved' AND COALESCE(usable_until_ms, expires_ms) <= ?1)"
    ))?;
    let rows = stmt.query_map([now_ms], approval_from_row)?;
    let rows: Vec<_> = rows.collect::<Result<_, _>>()?;
    rows.into_iter().map(|r| finish(conn, r)).collect()
}

impl Store for SqliteStore {
    fn transact(&self, durability: Durability, mut job: Job) -> Result<Output, StoreError> {
        let op = move |tx: &mut Tx<'_>| job(&mut SqliteLedger { tx });
        match durability {
            Durability::Durable => self.writer.submit(op),
            Durability::Deferred => self.writer.submit_deferred(op),
        }
    }

    fn submit(&self, durability: Durability, mut job: Job) -> Result<Submitted, StoreError> {
        let op = move |tx: &mut Tx<'_>| job(&mut SqliteLedger { tx });
        let rx = self.writer.enqueue_async(durability == Durability::Deferred, op)?;
        Ok(Submitted::Queued(rx))
    }

    fn create_limits(&self) -> CreateLimits {
        CreateLimits {
            pending: self.pending_limit,
            denied_retry_window_ms: crate::time::duration_ms(self.denied_retry_window),
        }
    }

    fn read(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        load(&self.reader(), id)
    }

    fn read_list(&self, status: Option<Status>, limit: u32) -> Result<Vec<Approval>, StoreError> {
        let conn = self.reader();
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE (?1 IS NULL OR status = ?1) ORDER BY created_ms DESC, rowid DESC LIMIT ?2"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![status.map(Status::as_str), limit], approval_from_row)?;
        let rows: Vec<_> = rows.collect::<Result<_, _>>()?;
        rows.into_iter().map(|r| finish(&conn, r)).collect()
    }

    fn redeem_replayed(&self, signature: &str, now_ms: i64) -> Result<bool, StoreError> {
        redeem_seen(&self.reader(), signature, now_ms - super::REPLAY_HORIZON_MS)
    }

    fn past_deadline(&self, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        past_deadline(&self.reader(), now_ms)
    }

    fn save_conversation(&self, channel: &str, id: &str, reference: Value, now_ms: i64) -> Result<(), StoreError> {
        let (channel, id) = (channel.to_string(), id.to_string());
        self.writer.submit(move |tx| super::outbox::save_conversation(tx.conn, &channel, &id, &reference, now_ms))
    }

    fn conversations(&self, channel: &str) -> Result<Vec<(String, Value)>, StoreError> {
        super::outbox::conversations(&self.reader(), channel)
    }

    fn due_notifications(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        // One process owns the file: nothing to lease.
        super::outbox::due(&self.reader(), now_ms, limit)
    }

    fn finish_notification(&self, item: &OutboxItem, outcome: NotificationOutcome) -> Result<(), StoreError> {
        let item = item.clone();
        self.writer.submit(move |tx| super::outbox::finish(tx, &item, &outcome))
    }

    fn delivered(&self, approval_id: &str, target: &str) -> Result<Option<Value>, StoreError> {
        super::outbox::delivered(&self.reader(), approval_id, target)
    }

    fn record_delivery(
        &self,
        approval_id: &str,
        target: &str,
        message: Option<Value>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (approval_id, target) = (approval_id.to_string(), target.to_string());
        self.writer
            .submit(move |tx| super::outbox::record_delivery(tx.conn, &approval_id, &target, message.as_ref(), now_ms))
    }

    fn notification_status(&self, approval_id: &str) -> Result<Value, StoreError> {
        super::outbox::status(&self.reader(), approval_id)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.writer.submit(|tx| {
            tx.conn.query_row("SELECT count(*) FROM approvals WHERE 0", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
    }

    fn commits(&self) -> (u64, u64) {
        self.writer.commits()
    }

    fn pending_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            self.reader().query_row("SELECT count(*) FROM approvals WHERE status = 'pending'", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
