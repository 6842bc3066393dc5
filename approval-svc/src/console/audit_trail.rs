//! Reading the audit trail for the console: the records that name one approval, and the
//! evidence export ([`crate::audit::export`]) packed as one tar download. Both read the
//! database file read-only, like `airlock audit verify|export`, never through the writer.

use std::path::PathBuf;

use crate::audit::verify::{open_read_only, row_to_record};

use super::pages::AuditRow;

/// Most records shown for one approval.
const MAX_RECORDS: usize = 200;

/// The audit trail's file and what verifies its seals.
#[derive(Clone)]
pub struct AuditSource {
    /// The SQLite file.
    pub database: PathBuf,
    /// The checkpoint key (`[audit]`), if configured.
    pub key: Option<Vec<u8>>,
    /// Records between checkpoints.
    pub every: i64,
}

impl AuditSource {
    /// Records whose event names `approval_id`, oldest first.
    pub fn records_of(&self, approval_id: &str) -> anyhow::Result<Vec<AuditRow>> {
        let conn = open_read_only(&self.database)?;
        let mut stmt = conn.prepare(
            "SELECT seq, time, kind, event, prev_hash, hash FROM audit_records \
             WHERE instr(event, ?1) > 0 ORDER BY seq LIMIT ?2",
        )?;
        // The id as a JSON string, quotes included: `apr_1` does not match `apr_10`.
        let needle = serde_json::to_string(approval_id)?;
        let limit = i64::try_from(MAX_RECORDS).unwrap_or(i64::MAX);
        let rows = stmt.query_map(rusqlite::params![needle, limit], row_to_record)?;
        let mut out = Vec::new();
        for r in rows {
            let r = r?;
            out.push(AuditRow { seq: r.seq, time: r.time, kind: r.kind, event: r.event });
        }
        Ok(out)
    }

    /// The evidence bundle (`records.jsonl`, `checkpoints.jsonl`, `summary.json`) as an
    /// uncompressed tar under `evidence/`.
    pub fn evidence_tar(&self) -> anyhow::Result<Vec<u8>> {
        let dir = std::env::temp_dir().join(format!("airlock-evidence-{}", super::session::random_token()?));
        let result = (|| {
            crate::audit::export::export(&self.database, &dir, self.key.as_deref(), self.every)?;
            let mut tar = tar::Builder::new(Vec::new());
            tar.mode(tar::HeaderMode::Deterministic);
            for name in ["records.jsonl", "checkpoints.jsonl", "summary.json"] {
                tar.append_path_with_name(dir.join(name), format!("evidence/{name}"))?;
            }
            Ok(tar.into_inner()?)
        })();
        let _ = std::fs::remove_dir_all(&dir);
        result
    }
}
