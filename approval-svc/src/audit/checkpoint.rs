//! Checkpoints: an HMAC-SHA256 seal over the chain head, under the audit key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A sealed chain head.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Sequence number of the sealed head record.
    pub seq: i64,
    /// Hash of that record.
    pub head_hash: String,
    /// RFC 3339 UTC time of sealing.
    pub time: String,
    /// Lower-case hex HMAC-SHA256 over [`seal_message`].
    pub mac: String,
}

/// The string a checkpoint seal covers.
pub fn seal_message(seq: i64, head_hash: &str, time: &str) -> String {
    format!("airlock-checkpoint-v1\n{seq}\n{head_hash}\n{time}")
}

/// Seals `(seq, head_hash, time)` with `key`.
pub fn seal(key: &[u8], seq: i64, head_hash: &str, time: &str) -> Checkpoint {
    let mac = match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            m.update(seal_message(seq, head_hash, time).as_bytes());
            hex::encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    Checkpoint { seq, head_hash: head_hash.to_string(), time: time.to_string(), mac }
}

impl Checkpoint {
    /// Constant-time check of the seal under `key`.
    pub fn seal_ok(&self, key: &[u8]) -> bool {
        let Ok(expected) = hex::decode(&self.mac) else {
            return false;
        };
        let Ok(mut m) = HmacSha256::new_from_slice(key) else {
            return false;
        };
        m.update(seal_message(self.seq, &self.head_hash, &self.time).as_bytes());
        m.verify_slice(&expected).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_verify_only_under_their_key_and_content() {
        let cp = seal(&[1; 32], 100, "ab", "2026-01-01T00:00:00Z");
        assert!(cp.seal_ok(&[1; 32]));
        assert!(!cp.seal_ok(&[2; 32]));
        let mut moved = cp.clone();
        moved.seq = 99;
        assert!(!moved.seal_ok(&[1; 32]));
    }
}
