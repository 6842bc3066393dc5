//! The tamper-evident audit trail: hash-chained records, HMAC-sealed checkpoints,
//! offline verification and evidence export. Appends happen inside the store's
//! transactions (`store::sqlite`); this module owns the formats.

pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod verify;

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
