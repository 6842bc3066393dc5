//! SQL of the notification outbox, the posted-message index and chat conversations
//! (schema: `migrations/0002_outbox.sql`). Queued inside the transaction of the change
//! being announced; worked off by `channels::outbox`.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::writer::Tx;
use super::StoreError;

/// A queued notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// The approval to announce.
    pub approval_id: String,
    /// `requested` (post to every target) or `updated` (bring posted copies up to date).
    pub event: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// How an attempt at a notification ended.
#[derive(Clone, Debug)]
pub enum NotificationOutcome {
    /// Every target has it.
    Done,
    /// Some target failed; try again at `next_attempt_ms`.
    Retry {
        /// When.
        next_attempt_ms: i64,
        /// What failed (targets and errors, never secrets).
        error: String,
    },
    /// Given up: recorded in the audit trail as `notification.failed`.
    Failed {
        /// What failed.
        error: String,
    },
}

/// Queues `event` for `approval_id`.
pub fn enqueue(conn: &Connection, approval_id: &str, event: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO outbox (approval_id, event, next_attempt_ms, created_ms) VALUES (?1, ?2, ?3, ?3)",
    )?
    .execute(params![approval_id, event, now_ms])?;
    Ok(())
}

/// Up to `limit` due notifications, at most one per approval (its oldest pending one),
/// so an update never overtakes the post it updates.
pub fn due(conn: &Connection, now_ms: i64, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.approval_id, o.event, o.attempts FROM outbox o \
         WHERE o.state = 'pending' AND o.next_attempt_ms <= ?1 \
           AND o.id = (SELECT MIN(id) FROM outbox WHERE approval_id = o.approval_id AND state = 'pending') \
         ORDER BY o.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now_ms, limit], |r| {
        Ok(OutboxItem {
            id: r.get(0)?,
            approval_id: r.get(1)?,
            event: r.get(2)?,
            attempts: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records how an attempt ended (and, when given up, the audit event).
pub fn finish(tx: &mut Tx<'_>, item: &OutboxItem, outcome: &NotificationOutcome) -> Result<(), StoreError> {
    let attempts = i64::from(item.attempts) + 1;
    match outcome {
        NotificationOutcome::Done => {
            tx.conn
                .prepare_cached("UPDATE outbox SET state = 'done', attempts = ?2, last_error = NULL WHERE id = ?1")?
                .execute(params![item.id, attempts])?;
        }
        NotificationOutcome::Retry { next_attempt_ms, error } => {
            tx.conn
                .prepare_cached("UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1")?
                .execute(params![item.id, attempts, next_attempt_ms, error])?;
        }
        NotificationOutcome::Failed { error } => {
            tx.conn
                .prepare_cached("UPDATE outbox SET state = 'failed', attempts = ?2, last_error = ?3 WHERE id = ?1")?
                .execute(params![item.id, attempts, error])?;
            tx.append(
                "notification.failed",
                &json!({"approval_id": item.approval_id, "event": item.event, "attempts": attempts, "error": error}),
            )?;
        }
    }
    Ok(())
}

/// The stored reference of the message posted for `approval_id` at `target`.
pub fn delivered(conn: &Connection, approval_id: &str, target: &str) -> Result<Option<Value>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT message FROM deliveries WHERE approval_id = ?1 AND target = ?2")?
        .query_row(params![approval_id, target], |r| r.get(0))
        .optional()?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("delivery message: {e}"))))
        .transpose()
}

/// Remembers the message posted for `approval_id` at `target` (first post wins), or
/// marks it updated.
pub fn record_delivery(
    conn: &Connection,
    approval_id: &str,
    target: &str,
    message: Option<&Value>,
    now_ms: i64,
) -> Result<(), StoreError> {
    match message {
        Some(m) => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO deliveries (approval_id, target, message, posted_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![approval_id, target, m.to_string(), now_ms])?,
        None => conn
            .prepare_cached("UPDATE deliveries SET updated_ms = ?3 WHERE approval_id = ?1 AND target = ?2")?
            .execute(params![approval_id, target, now_ms])?,
    };
    Ok(())
}

/// Where an approval's notifications stand, for the reviewer API: posted copies and any
/// notification still retrying or given up.
pub fn status(conn: &Connection, approval_id: &str) -> Result<Value, StoreError> {
    let mut posted = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT target, posted_ms, updated_ms FROM deliveries WHERE approval_id = ?1 ORDER BY posted_ms, target",
    )?;
    let rows = stmt.query_map([approval_id], |r| {
        Ok(json!({"target": r.get::<_, String>(0)?,
                  "posted_at": crate::time::rfc3339(r.get(1)?),
                  "updated_at": r.get::<_, Option<i64>>(2)?.map(crate::time::rfc3339)}))
    })?;
    for row in rows {
        posted.push(row?);
    }
    let mut problems = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT event, state, attempts, last_error FROM outbox \
         WHERE approval_id = ?1 AND last_error IS NOT NULL AND state != 'done' ORDER BY id",
    )?;
    let rows = stmt.query_map([approval_id], |r| {
        Ok(json!({"event": r.get::<_, String>(0)?, "state": r.get::<_, String>(1)?,
                  "attempts": r.get::<_, i64>(2)?, "error": r.get::<_, Option<String>>(3)?}))
    })?;
    for row in rows {
        problems.push(row?);
    }
    Ok(json!({"posted": posted, "failing": problems}))
}

/// Remembers a conversation reference.
pub fn save_conversation(
    conn: &Connection,
    channel: &str,
    id: &str,
    reference: &Value,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO conversations (channel, id, reference, updated_ms) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (channel, id) DO UPDATE SET reference = excluded.reference, updated_ms = excluded.updated_ms",
    )?
    .execute(params![channel, id, reference.to_string(), now_ms])?;
    Ok(())
}

/// Every conversation of `channel`.
pub fn conversations(conn: &Connection, channel: &str) -> Result<Vec<(String, Value)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, reference FROM conversations WHERE channel = ?1 ORDER BY id")?;
    let rows = stmt.query_map([channel], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, text) = row?;
        let reference =
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("conversation {id}: {e}")))?;
        out.push((id, reference));
    }
    Ok(out)
}
