//! WAL maintenance off the writer thread.
//!
//! SQLite's automatic checkpoint (every 1000 WAL pages) runs inside the COMMIT that
//! crosses the threshold — here always on the single writer thread — and fsyncs the
//! database file there: every job queued behind that commit waited for it (p99 of a
//! pending answer: ~200 ms). So the writer connection turns it off
//! (`wal_autocheckpoint = 0`, see [`configure_writer`]) and this thread, on a connection
//! of its own, runs `PRAGMA wal_checkpoint(PASSIVE)` every interval. PASSIVE takes no
//! writer lock and waits for no reader: it copies what it can and leaves the rest for the
//! next round, so the writer never waits for it. Once everything is copied, the writer's
//! next transaction restarts the WAL from its beginning, and `journal_size_limit` cuts a
//! WAL that a burst grew beyond 64 MiB back down.
//!
//! A checkpoint syncs the WAL before copying it, which is also what puts the writer's
//! `synchronous = NORMAL` commits on disk within one interval (see `writer.rs`).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// Default time between checkpoints (`[store] checkpoint_interval`).
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Largest WAL file kept after a checkpoint.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Leaves checkpoints to the [`Checkpointer`] (call on the writer connection), and
/// keeps the writer's statement journals in memory.
///
/// Every job runs in a savepoint of the batch's transaction (`writer.rs`); SQLite keeps
/// the original of each page a savepoint changes in a statement journal, in memory up
/// to 64 KiB and in a temporary file beyond. One create changes ~16 pages (the approval,
/// its indexes, parties, audit record, outbox row, page 1), just over the limit: every
/// create opened, unlinked, wrote and closed a file in `/var/tmp` on the writer thread,
/// ahead of its commit (measured: `approval-svc/benches/pending.rs`). `temp_store =
/// MEMORY` keeps them in memory (the journal lives only until the job's savepoint is
/// released). This changes nothing on disk: the WAL and its syncs are the same.
pub fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// The checkpoint thread; dropping this stops it after one last checkpoint.
pub struct Checkpointer {
    /// Never sent on: dropping it disconnects the channel, which stops the thread.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Checkpoints that found every WAL frame copied back.
    #[cfg(test)]
    complete: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Opens a connection of its own to the database at `path` and checkpoints it every
    /// `interval`.
    pub fn start(path: &Path, interval: Duration) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        // For reading the schema only: PASSIVE never calls the busy handler.
        conn.busy_timeout(Duration::from_secs(5))?;
        // A checkpoint syncs the WAL, then the database file (at any level but OFF).
        conn.pragma_update(None, "synchronous", "FULL")?;
        let (stop, stopped) = mpsc::channel::<()>();
        let complete = Arc::new(AtomicU64::new(0));
        let counter = complete.clone();
        let thread = std::thread::Builder::new()
            .name("airlock-store-wal".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => checkpoint(&conn, &counter),
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        checkpoint(&conn, &counter);
                        break;
                    }
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start WAL checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            #[cfg(test)]
            complete,
        })
    }

    /// How many checkpoints so far found the whole WAL copied back.
    #[cfg(test)]
    pub fn complete(&self) -> u64 {
        self.complete.load(Ordering::SeqCst)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One PASSIVE checkpoint; failures are logged, the next round tries again.
fn checkpoint(conn: &Connection, complete: &AtomicU64) {
    // (busy, frames in the WAL, frames copied back); (0, -1, -1) when not in WAL mode.
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match result {
        Ok((0, log, copied)) if log >= 0 && log == copied => {
            complete.fetch_add(1, Ordering::SeqCst);
        }
        // Readers still on old frames, or another checkpoint running: next round.
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying next interval"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn the_writer_keeps_statement_journals_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        configure_writer(&conn).unwrap();
        let store: i64 = conn.query_row("PRAGMA temp_store", [], |r| r.get(0)).unwrap();
        assert_eq!(store, 2, "MEMORY");
    }

    #[test]
    fn dropping_the_checkpointer_checkpoints_once_more_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        configure_writer(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        for _ in 0..50 {
            conn.execute("INSERT INTO t VALUES (zeroblob(4000))", []).unwrap();
        }
        let db_before = file_len(&path);
        // An interval no test waits for: only the stop can make it checkpoint.
        let checkpointer = Checkpointer::start(&path, Duration::from_secs(3600)).unwrap();
        drop(checkpointer);
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let db_after = file_len(&path);
        assert!(db_after > db_before, "{db_before} -> {db_after}");
        assert_eq!(db_after, u64::try_from(pages * page_size).unwrap(), "the whole WAL was copied back");
    }
}
