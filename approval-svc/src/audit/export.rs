//! `airlock audit export`: an evidence bundle of the audit trail: `records.jsonl`,
//! `checkpoints.jsonl` and `summary.json` (verification result, counts by kind, and the
//! controls the trail supports: SOC 2 CC6/CC7, NIST SP 800-53 AC-6, AU-9, AU-10).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{json, Value};

use super::chain::Record;
use super::checkpoint::Checkpoint;
use super::verify::{load_checkpoints, open_read_only, row_to_record, verify_database_expecting, Report};

/// Writes the bundle of the SQLite file `database` into `out` (created if missing);
/// returns the verification report.
pub fn export(database: &Path, out: &Path, key: Option<&[u8]>, every: i64) -> anyhow::Result<Report> {
    let conn = open_read_only(database)?;
    let checkpoints = load_checkpoints(&conn)?;
    let mut stmt = conn.prepare("SELECT seq, time, kind, event, prev_hash, hash FROM audit_records ORDER BY seq")?;
    let records = stmt.query_map([], row_to_record)?.map(|r| r.map_err(anyhow::Error::from));
    let source = database.display().to_string();
    write_bundle(out, records, &checkpoints, &source, || verify_database_expecting(database, key, every))
}

/// Writes the bundle of `records` (in stored order) and `checkpoints` into `out`
/// (created if missing), whatever backend they come from, so every backend's evidence
/// has one format; `verify` answers the verification report of the same trail. `source`
/// names where it came from (no credentials).
pub fn write_bundle(
    out: &Path,
    records: impl Iterator<Item = anyhow::Result<Record>>,
    checkpoints: &[Checkpoint],
    source: &str,
    verify: impl FnOnce() -> anyhow::Result<Report>,
) -> anyhow::Result<Report> {
    fs::create_dir_all(out)?;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let (mut first_time, mut last_time) = (None::<String>, None::<String>);
    {
        let mut w = BufWriter::new(File::create(out.join("records.jsonl"))?);
        for record in records {
            let r = record?;
            *kinds.entry(r.kind.clone()).or_default() += 1;
            if first_time.is_none() {
                first_time = Some(r.time.clone());
            }
            last_time = Some(r.time.clone());
            let event: Value = serde_json::from_str(&r.event).unwrap_or(Value::String(r.event.clone()));
            let line = json!({"seq": r.seq, "time": r.time, "kind": r.kind, "event": event,
                              "event_text": r.event, "prev_hash": r.prev_hash, "hash": r.hash});
            writeln!(w, "{line}")?;
        }
        w.flush()?;
    }
    {
        let mut w = BufWriter::new(File::create(out.join("checkpoints.jsonl"))?);
        for cp in checkpoints {
            writeln!(w, "{}", serde_json::to_string(cp)?)?;
        }
        w.flush()?;
    }
    let report = verify()?;
    let summary = json!({
        "format": "airlock-evidence-v1",
        "generated_at": crate::time::rfc3339(crate::time::now_ms()),
        "database": source,
        "period": {"from": first_time, "to": last_time},
        "records_by_kind": kinds,
        "verification": report,
        "hashing": "record hash = SHA-256 over length-prefixed (airlock-audit-v1, seq, time, kind, event_text, prev_hash); checkpoints = HMAC-SHA256 over \"airlock-checkpoint-v1\\n\" + seq + \"\\n\" + head_hash + \"\\n\" + time",
        "controls": [
            {"framework": "SOC 2", "id": "CC6.1", "title": "Logical access security",
             "evidence": "approval.created, review and approval.approved/denied records: every privileged agent action was approved by authenticated reviewers from the policy's approver groups; credential.minted records show just-in-time, action-bound credentials (never the secret)."},
            {"framework": "SOC 2", "id": "CC6.3", "title": "Role-based access, least privilege, separation of duties",
             "evidence": "review records name the reviewer; the service refuses the agent, its owner and identities it acts for, and counts a quorum of distinct humans."},
            {"framework": "SOC 2", "id": "CC7.2", "title": "Monitoring of system components",
             "evidence": "decision records: every allow/deny/approve decision of the gateway, with policy rule and revision; dropped counts."},
            {"framework": "SOC 2", "id": "CC7.3", "title": "Evaluation of security events",
             "evidence": "approval.denied and approval.expired records, redeem outcomes; approval.retry_refused records: identical retries of a denied action answered with the denial (the 1st, 2nd, 4th, 8th, ... per denial); review.refused records: review attempts the service refused (an agent's owner or acts-for identity, a reviewer outside the approver groups, a second vote, a chat callback that failed verification), at most 20 per source and 500 in all per 10 minutes, each saying how many of its source's attempts were left out before it."},
            {"framework": "NIST SP 800-53", "id": "AC-6", "title": "Least privilege",
             "evidence": "agents hold no standing credential: credential.minted records bind each credential to one approval, agent and action digest, with a short expiry."},
            {"framework": "NIST SP 800-53", "id": "AU-9", "title": "Protection of audit information",
             "evidence": "hash chain over every record plus HMAC-sealed checkpoints; see verification."},
            {"framework": "NIST SP 800-53", "id": "AU-10", "title": "Non-repudiation",
             "evidence": "review records bind authenticated reviewer identities to the approval id and action digest, inside the sealed chain."}
        ]
    });
    fs::write(out.join("summary.json"), serde_json::to_vec_pretty(&summary)?)?;
    Ok(report)
}
