//! Record hashing: SHA-256 over a length-prefixed encoding of the record's fields and
//! its predecessor's hash, so no edit, deletion or reordering goes unnoticed.

use sha2::{Digest, Sha256};

/// One audit record as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// RFC 3339 UTC time of the append.
    pub time: String,
    /// `decision`, `approval.created`, `review`, ...
    pub kind: String,
    /// The event as compact JSON text (hashed as stored).
    pub event: String,
    /// Hash of record `seq - 1` (`GENESIS_HASH` for the first).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// Lower-case hex SHA-256 of the record's canonical encoding.
pub fn record_hash(seq: i64, time: &str, kind: &str, event: &str, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    for field in [
        "airlock-audit-v1".as_bytes(),
        seq.to_string().as_bytes(),
        time.as_bytes(),
        kind.as_bytes(),
        event.as_bytes(),
        prev_hash.as_bytes(),
    ] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(field);
    }
    hex::encode(h.finalize())
}

impl Record {
    /// Whether the stored hash matches the recomputed one.
    pub fn hash_ok(&self) -> bool {
        record_hash(self.seq, &self.time, &self.kind, &self.event, &self.prev_hash) == self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_cannot_shift_into_each_other() {
        let a = record_hash(1, "t", "ab", "c", "p");
        let b = record_hash(1, "t", "a", "bc", "p");
        assert_ne!(a, b);
        assert_eq!(a, record_hash(1, "t", "ab", "c", "p"));
        assert_eq!(a.len(), 64);
    }
}
