//! The embedded store: SQLite in WAL mode. Writes go through the group-commit writer
//! thread (`synchronous = FULL`, or NORMAL for batches of deferred jobs only: see
//! `writer.rs`); reads use their own connection; WAL checkpoints run on a thread of
//! their own (`wal.rs`).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Value};

use super::wal::{self, Checkpointer, DEFAULT_CHECKPOINT_INTERVAL};
use super::writer::{Sealing, Tx, WriterHandle};
use super::{
    Approval, CreateOutcome, Expiry, NewApproval, NotificationOutcome, OutboxItem, RedeemRefusal, RedeemRequest,
    ReviewError, ReviewNote, ReviewRecord, Store, StoreError,
};
use crate::lifecycle::{self, due_transition, forbidden_identities, Reuse, Reviewer, Status, Tally, Vote};

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
    pub(super) fn writer(&self) -> &WriterHandle {
        &self.writer
    }

    /// Checkpoints so far that found the whole WAL copied back.
    #[cfg(test)]
    pub(super) fn complete_checkpoints(&self) -> u64 {
        self._wal.complete()
    }

    fn read(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expire_one(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        let id = id.to_string();
        self.writer.submit(move |tx| {
            if let Some(a) = load(tx.conn, &id)? {
                expire_if_due(tx, &a, now_ms)?;
            }
            Ok(())
        })
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

fn is_due(a: &Approval, now_ms: i64) -> bool {
    due_transition(a.status, a.expires_ms, a.usable_until_ms, a.redeem_count, now_ms).is_some()
}

/// Moves `a` to its due status if its time is up (the reads that find it so).
fn expire_if_due(tx: &mut Tx<'_>, a: &Approval, now_ms: i64) -> Result<Option<Status>, StoreError> {
    let Some(next) = due_transition(a.status, a.expires_ms, a.usable_until_ms, a.redeem_count, now_ms) else {
        return Ok(None);
    };
    Ok(expire_to(tx, a, next, now_ms)?.then_some(next))
}

/// CAS: moves `a` to `next` if it is still as read (status, redeem count), with an
/// audit record; cards still asking for a decision must say it expired.
fn expire_to(tx: &mut Tx<'_>, a: &Approval, next: Status, now_ms: i64) -> Result<bool, StoreError> {
    let changed = tx
        .conn
        .prepare_cached(
            "UPDATE approvals SET status = ?1, decided_ms = COALESCE(decided_ms, ?2) \
             WHERE id = ?3 AND status = ?4 AND redeem_count = ?5",
        )?
        .execute(params![next.as_str(), now_ms, a.id, a.status.as_str(), a.redeem_count])?;
    if changed != 1 {
        return Ok(false);
    }
    tx.append(
        "approval.expired",
        &json!({"approval_id": a.id, "agent": a.agent, "digest": a.digest, "from": a.status.as_str(),
                "to": next.as_str(), "redeem_count": a.redeem_count}),
    )?;
    if a.status == Status::Pending {
        super::outbox::enqueue(tx.conn, &a.id, "updated", now_ms)?;
    }
    Ok(true)
}

fn insert_approval(tx: &mut Tx<'_>, new: &NewApproval, now_ms: i64) -> Result<(), StoreError> {
    tx.conn
        .prepare_cached(
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
    let parties = lifecycle::Parties {
        agent: new.agent.id.clone(),
        owner: new.agent.owner.clone(),
        acts_for: new.agent.acts_for.clone(),
    };
    for identity in forbidden_identities(&parties) {
        tx.conn
            .prepare_cached("INSERT OR IGNORE INTO approval_parties (approval_id, identity) VALUES (?1, ?2)")?
            .execute(params![new.id, identity])?;
    }
    let mut event = new.create.clone();
    if let Some(obj) = event.as_object_mut() {
        obj.insert("approval_id".into(), json!(new.id));
        obj.insert("expires_at".into(), json!(crate::time::rfc3339(new.expires_at_ms)));
    }
    tx.append("approval.created", &event)?;
    super::outbox::enqueue(tx.conn, &new.id, "requested", now_ms)?;
    Ok(())
}

/// The bounds a create is checked against.
#[derive(Clone, Copy)]
struct CreateLimits {
    pending: u32,
    denied_retry_window_ms: i64,
}

fn create_or_find(
    tx: &mut Tx<'_>,
    new: NewApproval,
    asked_id: Option<String>,
    limits: CreateLimits,
    now_ms: i64,
) -> Result<CreateOutcome, StoreError> {
    if let Some(id) = asked_id {
        return match load(tx.conn, &id)? {
            Some(a) if a.agent == new.agent.id && a.digest == new.digest => {
                if expire_if_due(tx, &a, now_ms)?.is_some() {
                    return Ok(CreateOutcome::Found(reload(tx.conn, &id)?));
                }
                Ok(CreateOutcome::Found(a))
            }
            _ => Ok(CreateOutcome::Mismatch),
        };
    }
    let ids: Vec<String> = {
        let mut stmt = tx.conn.prepare_cached(
            "SELECT id FROM approvals WHERE agent = ?1 AND digest = ?2 AND status IN ('pending', 'approved') \
             ORDER BY created_ms DESC",
        )?;
        let rows = stmt.query_map(params![new.agent.id, new.digest], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for id in ids {
        let Some(a) = load(tx.conn, &id)? else { continue };
        if expire_if_due(tx, &a, now_ms)?.is_some() {
            continue;
        }
        return Ok(CreateOutcome::Found(a));
    }
    if let Some(denied) = recent_denial(tx, &new, limits.denied_retry_window_ms, now_ms)? {
        return Ok(CreateOutcome::RecentlyDenied(denied));
    }
    // Counted in the creating transaction, so concurrent creates cannot overshoot.
    let pending: i64 = tx
        .conn
        .prepare_cached("SELECT COUNT(*) FROM approvals WHERE agent = ?1 AND status = 'pending'")?
        .query_row([&new.agent.id], |r| r.get(0))?;
    if pending >= i64::from(limits.pending) {
        return Ok(CreateOutcome::TooManyPending { limit: limits.pending });
    }
    let id = new.id.clone();
    insert_approval(tx, &new, now_ms)?;
    Ok(CreateOutcome::Created(reload(tx.conn, &id)?))
}

/// The approval of this (agent, digest) denied or cancelled within the last `window_ms`,
/// if any, with the retry counted on it. A human's "no" stands for the window: the
/// agent is told so on every identical retry, and reviewers are not asked again. (An
/// expired or redeemed approval does not answer a retry: expiry is not a "no", and a
/// used approval was a "yes" for one use.)
fn recent_denial(
    tx: &mut Tx<'_>,
    new: &NewApproval,
    window_ms: i64,
    now_ms: i64,
) -> Result<Option<Approval>, StoreError> {
    if window_ms <= 0 {
        return Ok(None);
    }
    let found: Option<String> = tx
        .conn
        .prepare_cached(
            "SELECT id FROM approvals WHERE agent = ?1 AND digest = ?2 AND status IN ('denied', 'cancelled') \
             AND decided_ms > ?3 ORDER BY decided_ms DESC, rowid DESC LIMIT 1",
        )?
        .query_row(params![new.agent.id, new.digest, now_ms.saturating_sub(window_ms)], |r| r.get(0))
        .optional()?;
    let Some(id) = found else { return Ok(None) };
    tx.conn
        .prepare_cached("UPDATE approvals SET refused_retries = refused_retries + 1 WHERE id = ?1")?
        .execute([&id])?;
    let retries: i64 = tx
        .conn
        .prepare_cached("SELECT refused_retries FROM approvals WHERE id = ?1")?
        .query_row([&id], |r| r.get(0))?;
    let a = reload(tx.conn, &id)?;
    // Bounded evidence: the 1st, 2nd, 4th, 8th, ... retry.
    if retries > 0 && retries & (retries - 1) == 0 {
        tx.append(
            "approval.retry_refused",
            &json!({"approval_id": a.id, "agent": a.agent, "digest": a.digest, "status": a.status.as_str(),
                    "decision_id": new.create.get("decision_id"), "retries": retries}),
        )?;
    }
    Ok(Some(a))
}

fn reload(conn: &Connection, id: &str) -> Result<Approval, StoreError> {
    load(conn, id)?.ok_or_else(|| StoreError::Corrupt(format!("approval {id} vanished")))
}

fn review(
    tx: &mut Tx<'_>,
    id: &str,
    reviewer: &Reviewer,
    vote: Vote,
    note: &ReviewNote,
    now_ms: i64,
) -> Result<Approval, ReviewError> {
    let ReviewNote { comment, channel, evidence } = note;
    let a = load(tx.conn, id)?.ok_or(ReviewError::NotFound)?;
    if let Some(next) = expire_if_due(tx, &a, now_ms)? {
        return Err(if next == Status::Expired { ReviewError::Expired } else { ReviewError::AlreadyDecided(next) });
    }
    match a.status {
        Status::Pending => {}
        Status::Expired => return Err(ReviewError::Expired),
        other => return Err(ReviewError::AlreadyDecided(other)),
    }
    let reviewer_id = lifecycle::normalize_identity(&reviewer.id);
    if a.reviews.iter().any(|r| r.reviewer == reviewer_id) {
        return Err(ReviewError::DuplicateVote);
    }
    let identities = reviewer.identities();
    // Quorum counts distinct *humans*: a reviewer sharing any identity (id or alias)
    // with an earlier review of this approval is the same person under another name
    // (an API key and an OIDC login, say). Without this, one human reached a quorum of
    // two by voting once per name.
    for identity in &identities {
        let seen: bool = tx
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM review_identities WHERE approval_id = ?1 AND identity = ?2)")?
            .query_row(params![id, identity], |r| r.get(0))?;
        if seen {
            return Err(ReviewError::DuplicateVote);
        }
    }
    // Separation of duties: refused here, and by the store's triggers whatever happens.
    for identity in &identities {
        let forbidden: bool = tx
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM approval_parties WHERE approval_id = ?1 AND identity = ?2)")?
            .query_row(params![id, identity], |r| r.get(0))?;
        if forbidden {
            return Err(ReviewError::SeparationOfDuties);
        }
    }
    for identity in &identities {
        tx.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO review_identities (approval_id, reviewer, identity) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, reviewer_id, identity])
            .map_err(|e| refused_by_trigger(tx.conn, id, &identities, e))?;
    }
    tx.conn
        .prepare_cached(
            "INSERT INTO reviews (approval_id, reviewer, vote, comment, channel, time_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, reviewer_id, vote.as_str(), comment, channel, now_ms])
        .map_err(|e| refused_by_trigger(tx.conn, id, &identities, e))?;
    tx.append(
        "review",
        &json!({"approval_id": id, "reviewer": reviewer_id, "aliases": reviewer.aliases, "groups": reviewer.groups,
                "vote": vote.as_str(), "comment": comment, "channel": channel, "evidence": evidence,
                "agent": a.agent, "digest": a.digest}),
    )?;
    let reviews = load_reviews(tx.conn, id)?;
    let decided = match lifecycle::tally(reviews.iter().map(|r| (r.reviewer.as_str(), r.vote)), a.quorum) {
        Tally::Open => None,
        Tally::Approved => Some(Status::Approved),
        Tally::Denied => Some(Status::Denied),
    };
    if let Some(next) = decided {
        let reuse = Reuse::parse(Some(&a.reuse)).unwrap_or(Reuse::Once);
        let usable = (next == Status::Approved).then(|| lifecycle::usable_until(reuse, now_ms, a.expires_ms));
        let changed = tx
            .conn
            .prepare_cached(
                "UPDATE approvals SET status = ?1, decided_ms = ?2, usable_until_ms = ?3 WHERE id = ?4 AND status = 'pending'",
            )?
            .execute(params![next.as_str(), now_ms, usable, id])?;
        if changed != 1 {
            return Err(ReviewError::AlreadyDecided(next));
        }
        let approvers: Vec<&str> =
            reviews.iter().filter(|r| r.vote == Vote::Approve).map(|r| r.reviewer.as_str()).collect();
        let kind = if next == Status::Approved { "approval.approved" } else { "approval.denied" };
        tx.append(
            kind,
            &json!({"approval_id": id, "agent": a.agent, "digest": a.digest, "approvers": approvers,
                    "decided_by": reviewer_id, "quorum": a.quorum,
                    "usable_until": usable.map(crate::time::rfc3339)}),
        )?;
    }
    super::outbox::enqueue(tx.conn, id, "updated", now_ms)?;
    Ok(reload(tx.conn, id)?)
}

/// An insert of a review that failed: when a constraint (one of the triggers) refused
/// it, the rule it broke, asked of the database in the same transaction rather than read
/// from the trigger's message.
pub(super) fn refused_by_trigger(
    conn: &Connection,
    id: &str,
    identities: &[String],
    e: rusqlite::Error,
) -> ReviewError {
    if e.sqlite_error_code() != Some(rusqlite::ErrorCode::ConstraintViolation) {
        return ReviewError::Store(e.into());
    }
    let rule = || -> Result<Option<ReviewError>, StoreError> {
        for identity in identities {
            let forbidden: bool = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM approval_parties WHERE approval_id = ?1 AND identity = ?2)",
                )?
                .query_row(params![id, identity], |r| r.get(0))?;
            if forbidden {
                return Ok(Some(ReviewError::SeparationOfDuties));
            }
        }
        let status: Option<String> = conn
            .prepare_cached("SELECT status FROM approvals WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        Ok(status
            .and_then(|s| s.parse::<Status>().ok())
            .filter(|s| *s != Status::Pending)
            .map(ReviewError::AlreadyDecided))
    };
    match rule() {
        Ok(Some(refusal)) => refusal,
        Ok(None) => ReviewError::Store(e.into()),
        Err(lookup) => ReviewError::Store(lookup),
    }
}

fn redeem_replayed(conn: &Connection, signature: &str, now_ms: i64) -> Result<bool, StoreError> {
    let seen: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM redeem_replays WHERE signature = ?1 AND seen_ms > ?2)")?
        .query_row(params![signature, now_ms - super::REPLAY_HORIZON_MS], |r| r.get(0))?;
    Ok(seen)
}

fn redeem(tx: &mut Tx<'_>, req: RedeemRequest, now_ms: i64) -> Result<Result<Approval, RedeemRefusal>, StoreError> {
    if redeem_replayed(tx.conn, &req.signature, now_ms)? {
        return Ok(Err(RedeemRefusal::Consumed));
    }
    let Some(a) = load(tx.conn, &req.approval_id)? else {
        return Ok(Err(RedeemRefusal::Mismatch));
    };
    if a.agent != req.agent || a.digest != req.digest {
        return Ok(Err(RedeemRefusal::Mismatch));
    }
    let status = expire_if_due(tx, &a, now_ms)?.unwrap_or(a.status);
    if let Some(refusal) = RedeemRefusal::of_status(status) {
        return Ok(Err(refusal));
    }
    let reuse = Reuse::parse(Some(&a.reuse)).unwrap_or(Reuse::Once);
    let changed = match reuse {
        Reuse::Once => tx
            .conn
            .prepare_cached(
                "UPDATE approvals SET status = 'redeemed', redeem_count = redeem_count + 1 \
                 WHERE id = ?1 AND status = 'approved' AND redeem_count = 0",
            )?
            .execute([&a.id])?,
        Reuse::Window(_) => tx
            .conn
            .prepare_cached(
                "UPDATE approvals SET redeem_count = redeem_count + 1 \
                 WHERE id = ?1 AND status = 'approved' AND usable_until_ms > ?2",
            )?
            .execute(params![a.id, now_ms])?,
    };
    if changed != 1 {
        return Ok(Err(RedeemRefusal::Consumed));
    }
    // Remembered with the consumption it guards, in the same transaction.
    tx.conn
        .prepare_cached("DELETE FROM redeem_replays WHERE seen_ms <= ?1")?
        .execute([now_ms - super::REPLAY_HORIZON_MS])?;
    tx.conn
        .prepare_cached("INSERT OR REPLACE INTO redeem_replays (signature, seen_ms) VALUES (?1, ?2)")?
        .execute(params![req.signature, now_ms])?;
    tx.append(
        "approval.redeemed",
        &json!({"approval_id": a.id, "decision_id": req.decision_id, "agent": a.agent, "digest": a.digest,
                "redeem": a.redeem_count + 1, "reuse": a.reuse, "approvers": a.approvers()}),
    )?;
    if let Some(profile) = &req.mint.profile {
        tx.append(
            "credential.minted",
            &json!({"approval_id": a.id, "decision_id": req.decision_id, "agent": a.agent, "digest": a.digest,
                    "profile": profile, "details": req.mint.details}),
        )?;
    }
    Ok(Ok(reload(tx.conn, &a.id)?))
}

/// Live approvals whose deadline or reuse window has passed ([`due_transition`]'s
/// cases, as a query).
fn past_deadline(conn: &Connection, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE (status = 'pending' AND expires_ms <= ?1) \
         OR (status = 'approved' AND COALESCE(usable_until_ms, expires_ms) <= ?1)"
    ))?;
    let rows = stmt.query_map([now_ms], approval_from_row)?;
    let rows: Vec<_> = rows.collect::<Result<_, _>>()?;
    rows.into_iter().map(|r| finish(conn, r)).collect()
}

/// Expires every approval whose time is up, read and moved in one transaction (the
/// listing path, and tests).
fn expire_due(tx: &mut Tx<'_>, now_ms: i64) -> Result<Vec<String>, StoreError> {
    let mut done = Vec::new();
    for a in past_deadline(tx.conn, now_ms)? {
        if expire_if_due(tx, &a, now_ms)?.is_some() {
            done.push(a.id);
        }
    }
    Ok(done)
}

impl SqliteStore {
    /// Expires every approval whose time is up; returns their ids.
    pub fn expire_due(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.writer.submit(move |tx| expire_due(tx, now_ms))
    }
}

impl Store for SqliteStore {
    fn create_or_find(
        &self,
        new: NewApproval,
        asked_id: Option<String>,
        now_ms: i64,
    ) -> Result<CreateOutcome, StoreError> {
        let limits = CreateLimits {
            pending: self.pending_limit,
            denied_retry_window_ms: crate::time::duration_ms(self.denied_retry_window),
        };
        self.writer.submit(move |tx| create_or_find(tx, new, asked_id, limits, now_ms))
    }

    fn denied_retry_window(&self) -> Duration {
        self.denied_retry_window
    }

    fn get(&self, id: &str, now_ms: i64) -> Result<Option<Approval>, StoreError> {
        let found = load(&self.read(), id)?;
        match found {
            Some(a) if is_due(&a, now_ms) => {
                self.expire_one(id, now_ms)?;
                load(&self.read(), id)
            }
            other => Ok(other),
        }
    }

    fn list(&self, status: Option<Status>, limit: u32, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        let load_all = |conn: &Connection| -> Result<Vec<Approval>, StoreError> {
            let sql = format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE (?1 IS NULL OR status = ?1) ORDER BY created_ms DESC, rowid DESC LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![status.map(Status::as_str), limit], approval_from_row)?;
            let rows: Vec<_> = rows.collect::<Result<_, _>>()?;
            rows.into_iter().map(|r| finish(conn, r)).collect()
        };
        let first = load_all(&self.read())?;
        if first.iter().any(|a| is_due(a, now_ms)) {
            self.writer.submit(move |tx| expire_due(tx, now_ms))?;
            return load_all(&self.read());
        }
        Ok(first)
    }

    fn review(
        &self,
        id: &str,
        reviewer: &Reviewer,
        vote: Vote,
        note: ReviewNote,
        now_ms: i64,
    ) -> Result<Approval, ReviewError> {
        let (id, reviewer) = (id.to_string(), reviewer.clone());
        self.writer.submit(move |tx| {
            // Refusals are answers, not failures: keep them out of the Err path so the
            // savepoint is not rolled back for nothing.
            match review(tx, &id, &reviewer, vote, &note, now_ms) {
                Ok(a) => Ok(Ok(a)),
                Err(ReviewError::Store(e)) => Err(e),
                Err(refusal) => Ok(Err(refusal)),
            }
        })?
    }

    fn redeem_replayed(&self, signature: &str, now_ms: i64) -> Result<bool, StoreError> {
        redeem_replayed(&self.read(), signature, now_ms)
    }

    fn redeem(&self, req: RedeemRequest, now_ms: i64) -> Result<Result<Approval, RedeemRefusal>, StoreError> {
        self.writer.submit(move |tx| redeem(tx, req, now_ms))
    }

    fn past_deadline(&self, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        past_deadline(&self.read(), now_ms)
    }

    fn expire(&self, expiries: Vec<Expiry>, now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.writer.submit(move |tx| {
            let mut done = Vec::new();
            for Expiry { approval, to } in expiries {
                if expire_to(tx, &approval, to, now_ms)? {
                    done.push(approval.id);
                }
            }
            Ok(done)
        })
    }

    fn append_decisions(
        &self,
        batch: &str,
        records: Vec<Value>,
        dropped: u64,
        now_ms: i64,
    ) -> Result<Option<usize>, StoreError> {
        let batch = batch.to_string();
        // Deferred: a log of decisions already taken grants nothing. The batch's mark
        // shares its commit, so the two are lost (or kept) together.
        self.writer.submit_deferred(move |tx| {
            tx.conn
                .prepare_cached("DELETE FROM decision_batches WHERE received_ms <= ?1")?
                .execute([now_ms - super::REPLAY_HORIZON_MS])?;
            let fresh = tx
                .conn
                .prepare_cached("INSERT OR IGNORE INTO decision_batches (signature, received_ms) VALUES (?1, ?2)")?
                .execute(params![batch, now_ms])?;
            if fresh == 0 {
                return Ok(None);
            }
            let n = records.len();
            for record in &records {
                tx.append("decision", record)?;
            }
            if dropped > 0 {
                tx.append("decision.dropped", &json!({"dropped": dropped}))?;
            }
            Ok(Some(n))
        })
    }

    fn append_event(&self, kind: &str, event: Value) -> Result<(), StoreError> {
        let kind = kind.to_string();
        self.writer.submit(move |tx| tx.append(&kind, &event).map(|_| ()))
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        self.writer.submit(|tx| tx.seal())
    }

    fn save_conversation(&self, channel: &str, id: &str, reference: Value, now_ms: i64) -> Result<(), StoreError> {
        let (channel, id) = (channel.to_string(), id.to_string());
        self.writer.submit(move |tx| super::outbox::save_conversation(tx.conn, &channel, &id, &reference, now_ms))
    }

    fn conversations(&self, channel: &str) -> Result<Vec<(String, Value)>, StoreError> {
        super::outbox::conversations(&self.read(), channel)
    }

    fn due_notifications(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        super::outbox::due(&self.read(), now_ms, limit)
    }

    fn finish_notification(&self, item: &OutboxItem, outcome: NotificationOutcome) -> Result<(), StoreError> {
        let item = item.clone();
        self.writer.submit(move |tx| super::outbox::finish(tx, &item, &outcome))
    }

    fn delivered(&self, approval_id: &str, target: &str) -> Result<Option<Value>, StoreError> {
        super::outbox::delivered(&self.read(), approval_id, target)
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
        super::outbox::status(&self.read(), approval_id)
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
            self.read().query_row("SELECT count(*) FROM approvals WHERE status = 'pending'", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
