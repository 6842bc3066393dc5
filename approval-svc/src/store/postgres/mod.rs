//! The PostgreSQL store, for several `airlock serve` replicas on one database
//! (`[store] url = "postgres://…"`). The transitions are the same as SQLite's
//! (`transitions.rs`); this backend supplies rows that hold across replicas:
//! row locks for every decision, an advisory lock per agent for creates, one locked
//! chain head for the audit trail, leased outbox rows, and the replay guards in tables.
//! A transaction the database aborts to resolve a conflict (serialisation failure,
//! deadlock, a lost insert race) is run again, a bounded number of times.
//!
//! Writes go through one writer thread per store instance (`writer.rs`): the jobs
//! waiting are committed together, one transaction and one WAL flush per batch, each
//! job in its own savepoint (group commit). Reads use the connection pool.

mod ledger;
mod outbox;
mod writer;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use postgres::{Client, NoTls};
use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use serde_json::Value;

use super::writer::Sealing;
use super::{
    Approval, CreateLimits, Durability, Job, NotificationOutcome, OutboxItem, Output, Store, StoreError,
    DEFAULT_DENIED_RETRY_WINDOW,
};
use crate::lifecycle::Status;
use ledger::{approval_from_row, review_from_row, REVIEW_COLUMNS};
use writer::Writer;

const APPROVAL_COLUMNS: &str = "id, status, agent, digest, created_ms, expires_ms, decided_ms, usable_until_ms, \
     redeem_count, quorum, reuse, credential, create_json";

/// Schema versions, in order; version N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql")];

/// Runs of one job ending in a conflict before the conflict is its answer.
const ATTEMPTS: u32 = 8;

/// `application_name` of each store instance's writer connection.
const WRITER_APPLICATION_NAME: &str = "airlock-store-writer";

/// How long a replica holds the notifications it took before another may take them.
const OUTBOX_LEASE_MS: i64 = 60_000;

type Manager = PostgresConnectionManager<NoTls>;

/// PostgreSQL-backed [`super::Store`]. Every call blocks on the database: call it off
/// the async workers (`Approvals::blocking`, `spawn_blocking`), as with SQLite.
pub struct PostgresStore {
    pool: Pool<Manager>,
    writer: Writer,
    limits: CreateLimits,
}

pub(crate) fn db_error(e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Database(format!("{} ({})", db.message(), db.code().code())),
        None => StoreError::Database(e.to_string()),
    }
}

fn pool_error(e: r2d2::Error) -> StoreError {
    StoreError::Database(format!("no database connection: {e}"))
}

impl PostgresStore {
    /// Connects to `url` (a libpq-style URL or key=value string), applies the schema
    /// migrations, and seals the chain head with `checkpoint_key` every
    /// `checkpoint_every` records. Fails if the database cannot be reached.
    pub fn open(
        url: &str,
        checkpoint_key: Option<Vec<u8>>,
        checkpoint_every: u32,
    ) -> Result<PostgresStore, StoreError> {
        let config: postgres::Config =
            url.parse().map_err(|e| StoreError::Database(format!("store.url is not a PostgreSQL URL: {e}")))?;
        let pool = Pool::builder()
            .max_size(16)
            // A database that is down answers "unavailable" within seconds, not minutes.
            .connection_timeout(Duration::from_secs(3))
            .build(PostgresConnectionManager::new(config.clone(), NoTls))
            .map_err(pool_error)?;
        let mut client = pool.get().map_err(pool_error)?;
        migrate(&mut client)?;
        let mut writer_config = config;
        if writer_config.get_connect_timeout().is_none() {
            writer_config.connect_timeout(Duration::from_secs(3));
        }
        // Tells the writer's session apart in pg_stat_activity.
        writer_config.application_name(WRITER_APPLICATION_NAME);
        let sealing = Sealing { key: checkpoint_key.map(Arc::new), every: i64::from(checkpoint_every) };
        Ok(PostgresStore {
            pool,
            writer: Writer::start(writer_config, sealing)?,
            limits: CreateLimits {
                pending: u32::MAX,
                denied_retry_window_ms: crate::time::duration_ms(DEFAULT_DENIED_RETRY_WINDOW),
            },
        })
    }

    /// Caps the pending approvals of one agent (`approvals.max_pending_per_agent`).
    pub fn with_pending_limit(mut self, limit: u32) -> PostgresStore {
        self.limits.pending = limit.max(1);
        self
    }

    /// How long a denial answers identical creates (`approvals.denied_retry_window`).
    pub fn with_denied_retry_window(mut self, window: Duration) -> PostgresStore {
        self.limits.denied_retry_window_ms = crate::time::duration_ms(window);
        self
    }

    /// Batches this instance committed, and the jobs in them (how well group commit
    /// works: jobs per batch).
    pub fn batches(&self) -> (u64, u64) {
        let c = &self.writer.commits;
        let batches = c.durable.load(Ordering::Relaxed) + c.deferred.load(Ordering::Relaxed);
        (batches, c.jobs.load(Ordering::Relaxed))
    }

    fn client(&self) -> Result<PooledConnection<Manager>, StoreError> {
        self.pool.get().map_err(pool_error)
    }
}

/// Applies the migrations not yet applied, under an advisory lock (replicas starting
/// together), each in its own transaction.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('airlock-migrations', 0))", &[]).map_err(db_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS airlock_schema (version BIGINT NOT NULL)").map_err(db_error)?;
    let current: i64 = tx
        .query_opt("SELECT max(version) FROM airlock_schema", &[])
        .map_err(db_error)?
        .and_then(|r| r.get::<_, Option<i64>>(0))
        .unwrap_or(0);
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StoreError::Database(format!(
            "the database schema is version {current}, newer than this binary knows ({known}): upgrade airlock"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(current).unwrap_or(0)) {
        tx.batch_execute(sql).map_err(db_error)?;
        if index == 0 {
            tx.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, $1)", &[&crate::audit::GENESIS_HASH])
                .map_err(db_error)?;
        }
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        tx.execute("INSERT INTO airlock_schema (version) VALUES ($1)", &[&version]).map_err(db_error)?;
    }
    tx.commit().map_err(db_error)
}

impl Store for PostgresStore {
    fn transact(&self, durability: Durability, mut job: Job) -> Result<Output, StoreError> {
        // Answered once the batch it joined is committed (`writer.rs`).
        self.writer.submit(durability, Box::new(move |l: &mut ledger::PgLedger<'_, '_>| job(l)))
    }

    fn create_limits(&self) -> CreateLimits {
        self.limits
    }

    fn read(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let mut client = self.client()?;
        let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1");
        let Some(row) = client.query_opt(&sql, &[&id]).map_err(db_error)? else { return Ok(None) };
        let mut a = approval_from_row(&row)?;
        a.reviews = reviews(&mut client, &a.id)?;
        Ok(Some(a))
    }

    fn read_list(&self, status: Option<Status>, limit: u32) -> Result<Vec<Approval>, StoreError> {
        let mut client = self.client()?;
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE ($1::TEXT IS NULL OR status = $1) \
             ORDER BY created_ms DESC, created_seq DESC LIMIT $2"
        );
        let rows = client.query(&sql, &[&status.map(Status::as_str), &i64::from(limit)]).map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut a = approval_from_row(&row)?;
            a.reviews = reviews(&mut client, &a.id)?;
            out.push(a);
        }
        Ok(out)
    }

    fn past_deadline(&self, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        let mut client = self.client()?;
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE (status = 'pending' AND expires_ms <= $1) \
             OR (status = 'approved' AND COALESCE(usable_until_ms, expires_ms) <= $1)"
        );
        let rows = client.query(&sql, &[&now_ms]).map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut a = approval_from_row(&row)?;
            a.reviews = reviews(&mut client, &a.id)?;
            out.push(a);
        }
        Ok(out)
    }

    fn redeem_replayed(&self, signature: &str, now_ms: i64) -> Result<bool, StoreError> {
        let since = now_ms - super::REPLAY_HORIZON_MS;
        let row = self
            .client()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM redeem_replays WHERE signature = $1 AND seen_ms > $2)",
                &[&signature, &since],
            )
            .map_err(db_error)?;
        Ok(row.get(0))
    }

    fn save_conversation(&self, channel: &str, id: &str, reference: Value, now_ms: i64) -> Result<(), StoreError> {
        outbox::save_conversation(&mut *self.client()?, channel, id, &reference, now_ms)
    }

    fn conversations(&self, channel: &str) -> Result<Vec<(String, Value)>, StoreError> {
        outbox::conversations(&mut *self.client()?, channel)
    }

    fn due_notifications(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        outbox::lease_due(&mut *self.client()?, now_ms, limit, OUTBOX_LEASE_MS)
    }

    fn finish_notification(&self, item: &OutboxItem, outcome: NotificationOutcome) -> Result<(), StoreError> {
        // Through the writer: a given-up notification appends to the chain.
        let item = item.clone();
        let job = Box::new(move |l: &mut ledger::PgLedger<'_, '_>| {
            outbox::finish(l, &item, &outcome).map(|()| Box::new(()) as Output)
        });
        self.writer.submit(Durability::Durable, job).map(drop)
    }

    fn delivered(&self, approval_id: &str, target: &str) -> Result<Option<Value>, StoreError> {
        outbox::delivered(&mut *self.client()?, approval_id, target)
    }

    fn record_delivery(
        &self,
        approval_id: &str,
        target: &str,
        message: Option<Value>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        outbox::record_delivery(&mut *self.client()?, approval_id, target, message.as_ref(), now_ms)
    }

    fn notification_status(&self, approval_id: &str) -> Result<Value, StoreError> {
        outbox::status(&mut *self.client()?, approval_id)
    }

    fn ping(&self) -> Result<(), StoreError> {
        let row = self.client()?.query_one("SELECT pg_is_in_recovery()", &[]).map_err(db_error)?;
        if row.get::<_, bool>(0) {
            return Err(StoreError::Database("the database is a read-only standby".into()));
        }
        Ok(())
    }

    fn pending_count(&self) -> Result<u64, StoreError> {
        let row = self
            .client()?
            .query_one("SELECT count(*) FROM approvals WHERE status = 'pending'", &[])
            .map_err(db_error)?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    fn commits(&self) -> (u64, u64) {
        let commits = &self.writer.commits;
        (commits.durable.load(Ordering::Relaxed), commits.deferred.load(Ordering::Relaxed))
    }
}

fn is_conflict(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

fn reviews(client: &mut Client, id: &str) -> Result<Vec<super::ReviewRecord>, StoreError> {
    let sql = format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE approval_id = $1 ORDER BY time_ms, seq");
    client.query(&sql, &[&id]).map_err(db_error)?.iter().map(review_from_row).collect()
}

#[doc(hidden)]
pub mod testing;

#[cfg(test)]
mod tests;

/// `airlock audit export --store-url`: the same evidence bundle as from a SQLite file
/// (`crate::audit::export`), read from one read-only transaction and streamed, then
/// verified like `audit verify --store-url`.
pub fn export_audit(
    url: &str,
    out: &std::path::Path,
    key: Option<&[u8]>,
    every: i64,
) -> anyhow::Result<crate::audit::verify::Report> {
    use crate::audit::chain::Record;
    use crate::audit::checkpoint::Checkpoint;
    let mut client = Client::connect(url, NoTls).map_err(db_error)?;
    let mut tx = client.build_transaction().read_only(true).start().map_err(db_error)?;
    let checkpoints: Vec<Checkpoint> = tx
        .query("SELECT seq, head_hash, time, mac FROM audit_checkpoints ORDER BY seq", &[])
        .map_err(db_error)?
        .iter()
        .map(|r| Checkpoint { seq: r.get(0), head_hash: r.get(1), time: r.get(2), mac: r.get(3) })
        .collect();
    let rows = tx
        .query_raw::<_, &str, _>(
            "SELECT seq, time, kind, event, prev_hash, hash FROM audit_records ORDER BY seq",
            std::iter::empty(),
        )
        .map_err(db_error)?;
    let records = postgres::fallible_iterator::FallibleIterator::iterator(rows).map(|row| {
        row.map(|r| Record {
            seq: r.get(0),
            time: r.get(1),
            kind: r.get(2),
            event: r.get(3),
            prev_hash: r.get(4),
            hash: r.get(5),
        })
        .map_err(|e| anyhow::Error::from(db_error(e)))
    });
    crate::audit::export::write_bundle(out, records, &checkpoints, &without_credentials(url), || {
        verify_audit(url, key, every).map_err(Into::into)
    })
}

/// `url` without its user information (the password may be in it): what the evidence
/// names as its source.
fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}{}", &url[..scheme + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Verifies the audit trail in the database at `url` (read-only), like
/// [`crate::audit::verify::verify_database_expecting`] does for a SQLite file.
pub fn verify_audit(url: &str, key: Option<&[u8]>, every: i64) -> Result<crate::audit::verify::Report, StoreError> {
    use crate::audit::chain::Record;
    use crate::audit::checkpoint::Checkpoint;
    let mut client = Client::connect(url, NoTls).map_err(db_error)?;
    let mut tx = client.build_transaction().read_only(true).start().map_err(db_error)?;
    let checkpoints: Vec<Checkpoint> = tx
        .query("SELECT seq, head_hash, time, mac FROM audit_checkpoints ORDER BY seq", &[])
        .map_err(db_error)?
        .iter()
        .map(|r| Checkpoint { seq: r.get(0), head_hash: r.get(1), time: r.get(2), mac: r.get(3) })
        .collect();
    // Streamed in stored order: a trail of millions of records is never held at once.
    let rows = tx
        .query_raw::<_, &str, _>(
            "SELECT seq, time, kind, event, prev_hash, hash FROM audit_records ORDER BY seq",
            std::iter::empty(),
        )
        .map_err(db_error)?;
    let records = postgres::fallible_iterator::FallibleIterator::iterator(rows).map(|row| {
        row.map(|r| Record {
            seq: r.get(0),
            time: r.get(1),
            kind: r.get(2),
            event: r.get(3),
            prev_hash: r.get(4),
            hash: r.get(5),
        })
    });
    let mut report = crate::audit::verify::verify_chain(records, &checkpoints, key);
    crate::audit::verify::require_cadence(&mut report, &checkpoints, key, every);
    Ok(report)
}

#[cfg(test)]
mod export_source_tests {
    #[test]
    fn the_evidence_names_the_database_without_credentials() {
        let named = super::without_credentials("postgres://airlock:s3cret@db.internal:5432/airlock");
        assert_eq!(named, "postgres://db.internal:5432/airlock");
        assert_eq!(super::without_credentials("postgres://db:5432/a"), "postgres://db:5432/a");
        assert_eq!(super::without_credentials("postgres://u:p%40x@h/a"), "postgres://h/a");
    }
}
