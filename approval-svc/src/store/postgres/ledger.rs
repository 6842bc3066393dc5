//! The PostgreSQL rows of one transaction. Reads that a decision rests on lock what they
//! read (`FOR UPDATE`, an advisory lock per agent for creates); the audit chain head is
//! one row every batch locks first (`writer.rs`), so replicas append to one chain.

use std::collections::HashMap;

use postgres::error::SqlState;
use postgres::{Row, Statement, Transaction};
use serde_json::Value;

use super::super::ledger::{Ledger, ReviewRow, RowRefusal, StatusChange};
use super::super::writer::Sealing;
use super::super::{Approval, NewApproval, ReviewRecord, StoreError};
use super::{db_error, APPROVAL_COLUMNS};
use crate::audit::chain::record_hash;
use crate::audit::checkpoint::seal;
use crate::lifecycle::Vote;
use crate::time::{now_ms, rfc3339_ms};

/// The SQLSTATE the review guard raises for separation of duties (schema.sql).
const SEPARATION_OF_DUTIES: &str = "AL001";
/// The SQLSTATE the review guard raises for a review of a decided approval.
const NOT_PENDING: &str = "AL002";

/// The chain head: locked by the batch before any job runs (`writer.rs`), carried from
/// job to job in memory, written back once before the commit.
#[derive(Clone, Debug)]
pub(super) struct Head {
    pub(super) seq: i64,
    pub(super) hash: String,
}

/// Whether a failed job is worth running again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Retry {
    /// No: the failure is the job's answer.
    No,
    /// A lost insert race (unique violation): the other insert is committed, so the job
    /// runs again in the same transaction and sees it.
    Job,
    /// A serialisation failure or deadlock: the database aborted the transaction to
    /// resolve a conflict; the batch runs again in a new one.
    Batch,
}

/// Statements prepared on the writer's connection, by SQL text: each statement then
/// costs one round trip instead of two (parse, then execute). Kept for the life of the
/// connection (prepared statements are not undone by a rollback).
pub(super) type Statements = HashMap<String, Statement>;

/// One job's rows, inside its batch's transaction and its own savepoint.
pub(super) struct PgLedger<'t, 'c> {
    pub(super) tx: &'t mut Transaction<'c>,
    pub(super) sealing: &'t Sealing,
    statements: &'t mut Statements,
    head: Head,
    /// Set when a statement failed in a way worth running the job again.
    pub(super) retry: Retry,
}

impl<'t, 'c> PgLedger<'t, 'c> {
    /// The ledger of a job that starts at `head` (locked by the batch).
    pub(super) fn with_head(
        tx: &'t mut Transaction<'c>,
        sealing: &'t Sealing,
        statements: &'t mut Statements,
        head: Head,
    ) -> PgLedger<'t, 'c> {
        PgLedger { tx, sealing, statements, head, retry: Retry::No }
    }

    /// `sql`, prepared once per connection.
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        match self.tx.prepare(sql) {
            Ok(statement) => {
                self.statements.insert(sql.to_string(), statement.clone());
                Ok(statement)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The head after the job's appends.
    pub(super) fn into_head(self) -> Head {
        self.head
    }

    fn fail(&mut self, e: postgres::Error) -> StoreError {
        match e.code() {
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
                self.retry = Retry::Batch;
            }
            Some(c) if *c == SqlState::UNIQUE_VIOLATION && self.retry == Retry::No => self.retry = Retry::Job,
            _ => {}
        }
        db_error(e)
    }

    fn query(&mut self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        match self.tx.query(&statement, params) {
            Ok(rows) => Ok(rows),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql)?;
        match self.tx.query_opt(&statement, params) {
            Ok(row) => Ok(row),
            Err(e) => Err(self.fail(e)),
        }
    }

    pub(super) fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        match self.tx.execute(&statement, params) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// An approval row (without reviews) in [`APPROVAL_COLUMNS`] order.
pub(super) fn approval_from_row(row: &Row) -> Result<Approval, StoreError> {
    let status: String = row.get(1);
    let create: String = row.get(12);
    let quorum: i64 = row.get(9);
    Ok(Approval {
        id: row.get(0),
        status: status.parse().map_err(StoreError::Corrupt)?,
        agent: row.get(2),
        digest: row.get(3),
        created_ms: row.get(4),
        expires_ms: row.get(5),
        decided_ms: row.get(6),
        usable_until_ms: row.get(7),
        redeem_count: row.get(8),
        quorum: u32::try_from(quorum).unwrap_or(1),
        reuse: row.get(10),
        credential: row.get(11),
        create: serde_json::from_str(&create).unwrap_or(Value::Null),
        reviews: Vec::new(),
    })
}

/// A review row.
pub(super) fn review_from_row(row: &Row) -> Result<ReviewRecord, StoreError> {
    let vote: String = row.get(1);
    Ok(ReviewRecord {
        reviewer: row.get(0),
        vote: Vote::parse(&vote).ok_or_else(|| StoreError::Corrupt(format!("vote {vote:?}")))?,
        comment: row.get(2),
        channel: row.get(3),
        time_ms: row.get(4),
    })
}

pub(super) const REVIEW_COLUMNS: &str = "reviewer, vote, comment, channel, time_ms";

impl Ledger for PgLedger<'_, '_> {
    fn load(&mut self, id: &str) -> Result<Option<Approval>, StoreError> {
        let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1 FOR UPDATE");
        let Some(row) = self.query_opt(&sql, &[&id])? else { return Ok(None) };
        let mut a = approval_from_row(&row)?;
        let sql = format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE approval_id = $1 ORDER BY time_ms, seq");
        for row in self.query(&sql, &[&id])? {
            a.reviews.push(review_from_row(&row)?);
        }
        Ok(Some(a))
    }

    fn lock_agent(&mut self, agent: &str) -> Result<(), StoreError> {
        let key = format!("airlock-agent:{agent}");
        self.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&key])?;
        Ok(())
    }

    fn live_ids(&mut self, agent: &str, digest: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.query(
            "SELECT id FROM approvals WHERE agent = $1 AND digest = $2 AND status IN ('pending', 'approved') \
             ORDER BY created_ms DESC, created_seq DESC",
            &[&agent, &digest],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn denied_since(&mut self, agent: &str, digest: &str, since_ms: i64) -> Result<Option<String>, StoreError> {
        let row = self.query_opt(
            "SELECT id FROM approvals WHERE agent = $1 AND digest = $2 AND status IN ('denied', 'cancelled') \
             AND decided_ms > $3 ORDER BY decided_ms DESC, created_seq DESC LIMIT 1",
            &[&agent, &digest, &since_ms],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    fn count_refused_retry(&mut self, id: &str) -> Result<i64, StoreError> {
        let row = self
            .query_opt(
                "UPDATE approvals SET refused_retries = refused_retries + 1 WHERE id = $1 RETURNING refused_retries",
                &[&id],
            )?
            .ok_or_else(|| StoreError::Corrupt(format!("approval {id} vanished")))?;
        Ok(row.get(0))
    }

    fn pending_of(&mut self, agent: &str) -> Result<i64, StoreError> {
        let row = self
            .query_opt("SELECT count(*) FROM approvals WHERE agent = $1 AND status = 'pending'", &[&agent])?
            .ok_or(StoreError::Closed)?;
        Ok(row.get(0))
    }

    fn insert_approval(&mut self, new: &NewApproval, parties: &[String], now_ms: i64) -> Result<(), StoreError> {
        let quorum = i64::from(new.quorum.max(1));
        let (reuse, create) = (new.reuse.text(), new.create.to_string());
        self.execute(
            "INSERT INTO approvals (id, agent, digest, status, created_ms, expires_ms, quorum, reuse, credential, create_json) \
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9)",
            &[&new.id, &new.agent.id, &new.digest, &now_ms, &new.expires_at_ms, &quorum, &reuse, &new.credential, &create],
        )?;
        for identity in parties {
            self.execute(
                "INSERT INTO approval_parties (approval_id, identity) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&new.id, identity],
            )?;
        }
        Ok(())
    }

    fn reviewed_by(&mut self, id: &str, identity: &str) -> Result<bool, StoreError> {
        let row = self.query_opt(
            "SELECT EXISTS (SELECT 1 FROM review_identities WHERE approval_id = $1 AND identity = $2)",
            &[&id, &identity],
        )?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    fn is_party(&mut self, id: &str, identity: &str) -> Result<bool, StoreError> {
        let row = self.query_opt(
            "SELECT EXISTS (SELECT 1 FROM approval_parties WHERE approval_id = $1 AND identity = $2)",
            &[&id, &identity],
        )?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    fn insert_review(&mut self, row: &ReviewRow<'_>) -> Result<Result<(), RowRefusal>, StoreError> {
        // A refused insert aborts what it ran in: a savepoint keeps the rest of the
        // transaction (an expiry found on the way, say) alive.
        let mut identities: Vec<&String> = row.identities.iter().collect();
        identities.sort();
        identities.dedup();
        let insert_identity =
            self.statement("INSERT INTO review_identities (approval_id, reviewer, identity) VALUES ($1, $2, $3)")?;
        let insert_review = self.statement(
            "INSERT INTO reviews (approval_id, reviewer, vote, comment, channel, time_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )?;
        let inserted = (|| -> Result<(), postgres::Error> {
            let mut sp = self.tx.savepoint("review")?;
            for identity in identities {
                sp.execute(&insert_identity, &[&row.approval_id, &row.reviewer, identity])?;
            }
            sp.execute(
                &insert_review,
                &[&row.approval_id, &row.reviewer, &row.vote.as_str(), &row.comment, &row.channel, &row.time_ms],
            )?;
            sp.commit()
        })();
        let Err(e) = inserted else { return Ok(Ok(())) };
        let refusal = match e.code().map(SqlState::code) {
            Some(SEPARATION_OF_DUTIES) => RowRefusal::SeparationOfDuties,
            Some(NOT_PENDING) => RowRefusal::NotPending,
            Some(c) if c == SqlState::UNIQUE_VIOLATION.code() => RowRefusal::Duplicate,
            _ => return Err(self.fail(e)),
        };
        Ok(Err(refusal))
    }

    fn change_status(&mut self, c: &StatusChange<'_>) -> Result<bool, StoreError> {
        let changed = self.execute(
            "UPDATE approvals SET status = $1, decided_ms = COALESCE(decided_ms, $2), \
             usable_until_ms = COALESCE($3, usable_until_ms) \
             WHERE id = $4 AND status = $5 AND redeem_count = $6",
            &[&c.to.as_str(), &c.decided_ms, &c.usable_until_ms, &c.id, &c.from.as_str(), &c.redeem_count],
        )?;
        Ok(changed == 1)
    }

    fn count_redeem(&mut self, id: &str, once: bool, now_ms: i64) -> Result<bool, StoreError> {
        let changed = if once {
            self.execute(
                "UPDATE approvals SET status = 'redeemed', redeem_count = redeem_count + 1 \
                 WHERE id = $1 AND status = 'approved' AND redeem_count = 0",
                &[&id],
            )?
        } else {
            self.execute(
                "UPDATE approvals SET redeem_count = redeem_count + 1 \
                 WHERE id = $1 AND status = 'approved' AND usable_until_ms > $2",
                &[&id, &now_ms],
            )?
        };
        Ok(changed == 1)
    }

    fn redeem_seen(&mut self, signature: &str, since_ms: i64) -> Result<bool, StoreError> {
        let row = self.query_opt(
            "SELECT EXISTS (SELECT 1 FROM redeem_replays WHERE signature = $1 AND seen_ms > $2)",
            &[&signature, &since_ms],
        )?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    fn remember_redeem(&mut self, signature: &str, now_ms: i64, forget_before_ms: i64) -> Result<(), StoreError> {
        self.execute("DELETE FROM redeem_replays WHERE seen_ms <= $1", &[&forget_before_ms])?;
        self.execute(
            "INSERT INTO redeem_replays (signature, seen_ms) VALUES ($1, $2) \
             ON CONFLICT (signature) DO UPDATE SET seen_ms = excluded.seen_ms",
            &[&signature, &now_ms],
        )?;
        Ok(())
    }

    fn remember_batch(&mut self, signature: &str, now_ms: i64, forget_before_ms: i64) -> Result<bool, StoreError> {
        self.execute("DELETE FROM decision_batches WHERE received_ms <= $1", &[&forget_before_ms])?;
        let fresh = self.execute(
            "INSERT INTO decision_batches (signature, received_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&signature, &now_ms],
        )?;
        Ok(fresh == 1)
    }

    fn past_deadline(&mut self, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE (status = 'pending' AND expires_ms <= $1) \
             OR (status = 'approved' AND COALESCE(usable_until_ms, expires_ms) <= $1)"
        );
        self.query(&sql, &[&now_ms])?.iter().map(approval_from_row).collect()
    }

    fn append(&mut self, kind: &str, event: &Value) -> Result<i64, StoreError> {
        let prev_hash = self.head.hash.clone();
        let seq = self.head.seq + 1;
        let time = rfc3339_ms(now_ms());
        let text = event.to_string();
        let hash = record_hash(seq, &time, kind, &text, &prev_hash);
        self.execute(
            "INSERT INTO audit_records (seq, time, kind, event, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&seq, &time, &kind, &text, &prev_hash, &hash],
        )?;
        self.head = Head { seq, hash };
        if self.sealing.every > 0 && seq % self.sealing.every == 0 {
            self.seal()?;
        }
        Ok(seq)
    }

    fn seal(&mut self) -> Result<(), StoreError> {
        let Some(key) = self.sealing.key.clone() else { return Ok(()) };
        let Head { seq, hash } = self.head.clone();
        if seq == 0 {
            return Ok(());
        }
        let cp = seal(&key, seq, &hash, &rfc3339_ms(now_ms()));
        self.execute(
            "INSERT INTO audit_checkpoints (seq, head_hash, time, mac) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&cp.seq, &cp.head_hash, &cp.time, &cp.mac],
        )?;
        Ok(())
    }

    fn enqueue(&mut self, approval_id: &str, event: &str, now_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO outbox (approval_id, event, next_attempt_ms, created_ms) VALUES ($1, $2, $3, $3)",
            &[&approval_id, &event, &now_ms],
        )?;
        Ok(())
    }
}
