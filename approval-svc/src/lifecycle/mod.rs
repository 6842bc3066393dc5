//! Pure approval rules: statuses, who may review, quorum, expiry and reuse. No I/O; the
//! store applies these inside its transactions and the API checks them first.

mod expiry;
mod review;
mod status;

pub use expiry::{due_transition, expires_at, reuse, usable_until, ExpiryLimits, Reuse};
pub use review::{
    forbidden_identities, may_review, normalize as normalize_identity, quorum, tally, Parties, ReviewRefusal, Reviewer,
    Tally, Vote,
};
pub use status::Status;
