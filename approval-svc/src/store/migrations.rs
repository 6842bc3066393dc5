//! Versioned schema migrations (`migrations/NNNN_*.sql`), tracked in `PRAGMA user_version`.

use rusqlite::Connection;

/// Every migration, in order; version N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_outbox.sql"),
    include_str!("migrations/0003_redeem_replays.sql"),
    include_str!("migrations/0004_decision_batches.sql"),
    include_str!("migrations/0005_refused_retries.sql"),
];

/// Brings the schema up to date, one transaction per migration.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).map(|v| usize::try_from(v).unwrap_or(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i64::try_from(index + 1).unwrap_or(i64::MAX))?;
        tx.commit()?;
    }
    Ok(())
}
