//! `airlock audit verify`: recompute every record hash and checkpoint seal, and report the
//! first record that does not match (edit, deletion, reordering, truncation).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::chain::Record;
use super::checkpoint::Checkpoint;
use super::GENESIS_HASH;

/// What verification found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// Records read.
    pub records: u64,
    /// Checkpoints read.
    pub checkpoints: u64,
    /// Highest sequence number covered by a valid seal.
    pub sealed_through: Option<i64>,
    /// Whether checkpoint seals were checked (an audit key was given).
    pub seals_checked: bool,
    /// The first record that does not match, if any.
    pub first_bad_seq: Option<i64>,
    /// What is wrong, in order of discovery.
    pub problems: Vec<String>,
    /// Records after the last valid seal. Anyone who can write the file can append
    /// records with a correct hash chain (SHA-256 needs no key) or rewrite these: only a
    /// sealed record is protected. Reported, not counted as tampering.
    pub unsealed_records: u64,
}

impl Report {
    /// No tampering found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn fail(&mut self, seq: i64, what: String) {
        self.first_bad_seq = Some(self.first_bad_seq.map_or(seq, |s| s.min(seq)));
        self.problems.push(what);
    }
}

/// Verifies a chain given in stored order, against `checkpoints`, with `key` if known.
pub fn verify_chain<E: std::fmt::Display>(
    records: impl IntoIterator<Item = Result<Record, E>>,
    checkpoints: &[Checkpoint],
    key: Option<&[u8]>,
) -> Report {
    let mut report = Report { seals_checked: key.is_some(), ..Report::default() };
    let wanted: BTreeMap<i64, &Checkpoint> = checkpoints.iter().map(|c| (c.seq, c)).collect();
    let mut seen_at_checkpoint: BTreeMap<i64, String> = BTreeMap::new();
    let mut expected_seq = 1i64;
    let mut prev = GENESIS_HASH.to_string();
    let mut chain_broken = false;
    for item in records {
        let record = match item {
            Ok(r) => r,
            Err(e) => {
                report.fail(expected_seq, format!("record {expected_seq}: unreadable: {e}"));
                chain_broken = true;
                break;
            }
        };
        report.records += 1;
        if record.seq != expected_seq {
            report.fail(
                expected_seq.min(record.seq),
                format!("record {expected_seq} is missing or out of order (found seq {})", record.seq),
            );
            chain_broken = true;
            break;
        }
        if record.prev_hash != prev {
            report.fail(
                record.seq,
                format!("record {}: predecessor hash does not match record {}", record.seq, record.seq - 1),
            );
            chain_broken = true;
            break;
        }
        if !record.hash_ok() {
            report.fail(record.seq, format!("record {}: content does not match its hash (edited)", record.seq));
            chain_broken = true;
            break;
        }
        if wanted.contains_key(&record.seq) {
            seen_at_checkpoint.insert(record.seq, record.hash.clone());
        }
        prev = record.hash;
        expected_seq += 1;
    }
    let last_seq = expected_seq - 1;
    report.checkpoints = u64::try_from(checkpoints.len()).unwrap_or(u64::MAX);
    for cp in checkpoints {
        if let Some(key) = key {
            if !cp.seal_ok(key) {
                report
                    .fail(cp.seq, format!("checkpoint at record {}: seal does not verify under the audit key", cp.seq));
                continue;
            }
        }
        if chain_broken && cp.seq > last_seq {
            continue;
        }
        match seen_at_checkpoint.get(&cp.seq) {
            Some(hash) if *hash == cp.head_hash => {
                if key.is_some() {
                    report.sealed_through = Some(report.sealed_through.map_or(cp.seq, |s| s.max(cp.seq)));
                }
            }
            Some(_) => report.fail(cp.seq, format!("record {}: hash differs from the sealed checkpoint", cp.seq)),
            None => report.fail(
                last_seq + 1,
                format!("checkpoint seals record {} but the chain ends at {last_seq} (truncated)", cp.seq),
            ),
        }
    }
    report.unsealed_records = u64::try_from(last_seq - report.sealed_through.unwrap_or(0)).unwrap_or(0);
    report
}

/// With the audit key, requires a valid seal at every multiple of `every` up to the last
/// record (the service seals there: `audit.checkpoint_every`). Checkpoint rows are
/// only as durable as the file: someone editing it offline could delete every
/// checkpoint, rewrite records and recompute the whole hash chain, and `verify_chain`
/// alone — which checks only the checkpoints it finds — reported the forgery intact.
/// `every = 0` (or no key) disables the check.
pub fn require_cadence(report: &mut Report, checkpoints: &[Checkpoint], key: Option<&[u8]>, every: i64) {
    let Some(key) = key else { return };
    if every <= 0 || !report.ok() {
        return;
    }
    let last_seq = i64::try_from(report.records).unwrap_or(i64::MAX);
    let mut seq = every;
    while seq <= last_seq {
        if !checkpoints.iter().any(|c| c.seq == seq && c.seal_ok(key)) {
            report.fail(
                seq,
                format!("record {seq}: no sealed checkpoint although the service seals every {every} records (checkpoints deleted, chain rewritten?)"),
            );
            return;
        }
        seq += every;
    }
}

/// Opens `database` read-only and verifies its audit trail.
pub fn verify_database(database: &Path, key: Option<&[u8]>) -> anyhow::Result<Report> {
    verify_database_expecting(database, key, 0)
}

/// [`verify_database`], also requiring a seal every `every` records ([`require_cadence`]).
pub fn verify_database_expecting(database: &Path, key: Option<&[u8]>, every: i64) -> anyhow::Result<Report> {
    let conn = open_read_only(database)?;
    let checkpoints = load_checkpoints(&conn)?;
    let mut stmt = conn.prepare("SELECT seq, time, kind, event, prev_hash, hash FROM audit_records ORDER BY rowid")?;
    let rows = stmt.query_map([], row_to_record)?;
    let mut report = verify_chain(rows, &checkpoints, key);
    require_cadence(&mut report, &checkpoints, key, every);
    Ok(report)
}

/// Opens an existing database read-only (never creates one).
pub fn open_read_only(database: &Path) -> anyhow::Result<Connection> {
    if !database.exists() {
        anyhow::bail!("database {} does not exist", database.display());
    }
    Ok(Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?)
}

/// Maps an `audit_records` row.
pub fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        seq: row.get(0)?,
        time: row.get(1)?,
        kind: row.get(2)?,
        event: row.get(3)?,
        prev_hash: row.get(4)?,
        hash: row.get(5)?,
    })
}

/// Every checkpoint, by sequence number.
pub fn load_checkpoints(conn: &Connection) -> anyhow::Result<Vec<Checkpoint>> {
    let mut stmt = conn.prepare("SELECT seq, head_hash, time, mac FROM audit_checkpoints ORDER BY seq")?;
    let rows = stmt.query_map([], |row| {
        Ok(Checkpoint { seq: row.get(0)?, head_hash: row.get(1)?, time: row.get(2)?, mac: row.get(3)? })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::chain::record_hash;
    use crate::audit::checkpoint::seal;

    const KEY: [u8; 32] = [9; 32];

    fn chain(n: i64) -> Vec<Record> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let event = format!("{{\"n\":{seq}}}");
                let hash = record_hash(seq, "t", "decision", &event, &prev);
                let r = Record {
                    seq,
                    time: "t".into(),
                    kind: "decision".into(),
                    event,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    fn run(records: Vec<Record>, cps: &[Checkpoint]) -> Report {
        verify_chain(records.into_iter().map(Ok::<_, String>), cps, Some(&KEY))
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(10);
        let cp = seal(&KEY, 10, &c[9].hash, "t");
        let r = run(c, &[cp]);
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.sealed_through, Some(10));
    }

    #[test]
    fn edit_delete_reorder_truncate_are_caught() {
        let c = chain(10);
        let cp = seal(&KEY, 10, &c[9].hash, "t");
        let mut edited = c.clone();
        edited[4].event = "{\"n\":99}".into();
        assert_eq!(run(edited, std::slice::from_ref(&cp)).first_bad_seq, Some(5));
        let mut deleted = c.clone();
        deleted.remove(6);
        assert_eq!(run(deleted, std::slice::from_ref(&cp)).first_bad_seq, Some(7));
        let mut reordered = c.clone();
        reordered.swap(2, 3);
        assert_eq!(run(reordered, std::slice::from_ref(&cp)).first_bad_seq, Some(3));
        let truncated = c[..8].to_vec();
        assert_eq!(run(truncated, std::slice::from_ref(&cp)).first_bad_seq, Some(9));
        let mut forged = cp;
        forged.head_hash = "00".into();
        assert!(!run(c, &[forged]).ok());
    }

    #[test]
    fn a_rewritten_chain_with_its_checkpoints_deleted_is_caught() {
        // The attacker edits record 2, recomputes every hash after it and deletes the
        // checkpoints (seals at 5 and 10) they cannot forge without the key.
        let mut forged = chain(12);
        forged[1].event = "{\"n\":\"rewritten\"}".into();
        for i in 1..forged.len() {
            let prev = forged[i - 1].hash.clone();
            let r = &mut forged[i];
            r.prev_hash = prev;
            r.hash = record_hash(r.seq, &r.time, &r.kind, &r.event, &r.prev_hash);
        }
        let mut report = run(forged.clone(), &[]);
        require_cadence(&mut report, &[], Some(&KEY), 5);
        assert!(!report.ok(), "{report:?}");
        assert_eq!(report.first_bad_seq, Some(5));
        // The honest chain with its seals passes, and reports its unsealed tail.
        let honest = chain(12);
        let cps = [seal(&KEY, 5, &honest[4].hash, "t"), seal(&KEY, 10, &honest[9].hash, "t")];
        let mut report = run(honest, &cps);
        require_cadence(&mut report, &cps, Some(&KEY), 5);
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.unsealed_records, 2);
    }
}
