//! The notification outbox, posted-message index and chat conversations in PostgreSQL.
//! Unlike SQLite (one process owns the file), several replicas work the outbox: each
//! takes due rows with a lease (`FOR UPDATE SKIP LOCKED`), so a notification is posted by
//! one replica, and taken again only if that replica dies before finishing it.

use postgres::Client;
use serde_json::{json, Value};

use super::super::ledger::Ledger;
use super::super::{NotificationOutcome, OutboxItem, StoreError};
use super::db_error;
use super::ledger::PgLedger;

/// Leases up to `limit` due notifications for `lease_ms`: at most one per approval (its
/// oldest pending one, so an update never overtakes the post it updates), none leased
/// by another replica.
pub(super) fn lease_due(
    client: &mut Client,
    now_ms: i64,
    limit: u32,
    lease_ms: i64,
) -> Result<Vec<OutboxItem>, StoreError> {
    let rows = client
        .query(
            "UPDATE outbox SET lease_until_ms = $1 + $3 WHERE id IN ( \
                 SELECT o.id FROM outbox o \
                 WHERE o.state = 'pending' AND o.next_attempt_ms <= $1 \
                   AND (o.lease_until_ms IS NULL OR o.lease_until_ms <= $1) \
                   AND o.id = (SELECT min(id) FROM outbox WHERE approval_id = o.approval_id AND state = 'pending') \
                 ORDER BY o.id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id, approval_id, event, attempts",
            &[&now_ms, &i64::from(limit), &lease_ms],
        )
        .map_err(db_error)?;
    let mut items: Vec<OutboxItem> = rows
        .iter()
        .map(|r| OutboxItem {
            id: r.get(0),
            approval_id: r.get(1),
            event: r.get(2),
            attempts: u32::try_from(r.get::<_, i64>(3)).unwrap_or(u32::MAX),
        })
        .collect();
    items.sort_by_key(|i| i.id);
    Ok(items)
}

/// Records how an attempt ended and ends the lease (and, when given up, the audit event).
pub(super) fn finish(
    l: &mut PgLedger<'_, '_>,
    item: &OutboxItem,
    outcome: &NotificationOutcome,
) -> Result<(), StoreError> {
    let attempts = i64::from(item.attempts) + 1;
    match outcome {
        NotificationOutcome::Done => {
            l.execute(
                "UPDATE outbox SET state = 'done', attempts = $2, last_error = NULL, lease_until_ms = NULL WHERE id = $1",
                &[&item.id, &attempts],
            )?;
        }
        NotificationOutcome::Retry { next_attempt_ms, error } => {
            l.execute(
                "UPDATE outbox SET attempts = $2, next_attempt_ms = $3, last_error = $4, lease_until_ms = NULL \
                 WHERE id = $1",
                &[&item.id, &attempts, next_attempt_ms, error],
            )?;
        }
        NotificationOutcome::Failed { error } => {
            l.execute(
                "UPDATE outbox SET state = 'failed', attempts = $2, last_error = $3, lease_until_ms = NULL WHERE id = $1",
                &[&item.id, &attempts, error],
            )?;
            l.append(
                "notification.failed",
                &json!({"approval_id": item.approval_id, "event": item.event, "attempts": attempts, "error": error}),
            )?;
        }
    }
    Ok(())
}

/// The stored reference of the message posted for `approval_id` at `target`.
pub(super) fn delivered(client: &mut Client, approval_id: &str, target: &str) -> Result<Option<Value>, StoreError> {
    let row = client
        .query_opt("SELECT message FROM deliveries WHERE approval_id = $1 AND target = $2", &[&approval_id, &target])
        .map_err(db_error)?;
    row.map(|r| {
        serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StoreError::Corrupt(format!("delivery message: {e}")))
    })
    .transpose()
}

/// Remembers the message posted (first post wins), or marks it updated.
pub(super) fn record_delivery(
    client: &mut Client,
    approval_id: &str,
    target: &str,
    message: Option<&Value>,
    now_ms: i64,
) -> Result<(), StoreError> {
    match message {
        Some(m) => client.execute(
            "INSERT INTO deliveries (approval_id, target, message, posted_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            &[&approval_id, &target, &m.to_string(), &now_ms],
        ),
        None => client.execute(
            "UPDATE deliveries SET updated_ms = $3 WHERE approval_id = $1 AND target = $2",
            &[&approval_id, &target, &now_ms],
        ),
    }
    .map_err(db_error)?;
    Ok(())
}

/// Posted copies and failing notifications of one approval.
pub(super) fn status(client: &mut Client, approval_id: &str) -> Result<Value, StoreError> {
    let posted: Vec<Value> = client
        .query(
            "SELECT target, posted_ms, updated_ms FROM deliveries WHERE approval_id = $1 ORDER BY posted_ms, target",
            &[&approval_id],
        )
        .map_err(db_error)?
        .iter()
        .map(|r| {
            json!({"target": r.get::<_, String>(0),
                   "posted_at": crate::time::rfc3339(r.get(1)),
                   "updated_at": r.get::<_, Option<i64>>(2).map(crate::time::rfc3339)})
        })
        .collect();
    let failing: Vec<Value> = client
        .query(
            "SELECT event, state, attempts, last_error FROM outbox \
             WHERE approval_id = $1 AND last_error IS NOT NULL AND state != 'done' ORDER BY id",
            &[&approval_id],
        )
        .map_err(db_error)?
        .iter()
        .map(|r| {
            json!({"event": r.get::<_, String>(0), "state": r.get::<_, String>(1),
                   "attempts": r.get::<_, i64>(2), "error": r.get::<_, Option<String>>(3)})
        })
        .collect();
    Ok(json!({"posted": posted, "failing": failing}))
}

/// Remembers a conversation reference.
pub(super) fn save_conversation(
    client: &mut Client,
    channel: &str,
    id: &str,
    reference: &Value,
    now_ms: i64,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO conversations (channel, id, reference, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (channel, id) DO UPDATE SET reference = excluded.reference, updated_ms = excluded.updated_ms",
            &[&channel, &id, &reference.to_string(), &now_ms],
        )
        .map_err(db_error)?;
    Ok(())
}

/// Every conversation of `channel`.
pub(super) fn conversations(client: &mut Client, channel: &str) -> Result<Vec<(String, Value)>, StoreError> {
    let rows = client
        .query("SELECT id, reference FROM conversations WHERE channel = $1 ORDER BY id", &[&channel])
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let id: String = r.get(0);
            let reference = serde_json::from_str(r.get::<_, &str>(1))
                .map_err(|e| StoreError::Corrupt(format!("conversation {id}: {e}")))?;
            Ok((id, reference))
        })
        .collect()
}
