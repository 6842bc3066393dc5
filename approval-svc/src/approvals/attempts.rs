//! Refused review attempts — the owner approving their own agent's action, a reviewer
//! outside the approver groups, a second vote, a chat callback that fails verification —
//! recorded in the audit chain as `review.refused`: compliance evidence needs the failed
//! attempts too. Recording is bounded, so nobody can flood the chain: at most
//! [`PER_SOURCE`] records per source (an authenticated reviewer, or a channel for
//! callbacks nobody could be identified from) and [`TOTAL`] in all per [`WINDOW_MS`].
//! Attempts past a bound are counted, and the next record of that source says how many
//! were left out (`suppressed_before`).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

/// Length of one counting window.
pub const WINDOW_MS: i64 = 10 * 60 * 1000;
/// Records per source per window.
pub const PER_SOURCE: u32 = 20;
/// Records per window in all.
pub const TOTAL: u32 = 500;
/// Sources tracked at once; attempts from further sources in a window are not recorded.
const MAX_SOURCES: usize = 10_000;

/// One refused attempt.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// Who or where it came from: the reviewer id, or `<channel>:unverified`.
    pub source: String,
    /// The approval it was about, when known.
    pub approval_id: Option<String>,
    /// The reviewer, when authenticated.
    pub reviewer: Option<String>,
    /// `api`, `teams`, `slack`.
    pub channel: &'static str,
    /// `approve` / `deny`, when known.
    pub vote: Option<&'static str>,
    /// `separation-of-duties`, `not-an-approver`, `duplicate-vote`, `unverified-callback`.
    pub reason: &'static str,
    /// What the channel can show of the request (body hash, claimed user, error).
    pub evidence: Value,
}

impl Attempt {
    /// An authenticated reviewer's vote on `approval_id`, refused for `reason`.
    pub fn review(
        reviewer: &crate::lifecycle::Reviewer,
        approval_id: &str,
        channel: &'static str,
        vote: crate::lifecycle::Vote,
        reason: &'static str,
        evidence: Value,
    ) -> Attempt {
        let id = crate::lifecycle::normalize_identity(&reviewer.id);
        Attempt {
            source: id.clone(),
            approval_id: Some(approval_id.to_string()),
            reviewer: Some(id),
            channel,
            vote: Some(vote.as_str()),
            reason,
            evidence,
        }
    }

    /// A callback of `channel` that failed verification: nobody can be named, so the
    /// channel itself is the source its bound applies to.
    pub fn unverified(channel: &'static str, evidence: Value) -> Attempt {
        Attempt {
            source: format!("{channel}:unverified"),
            approval_id: None,
            reviewer: None,
            channel,
            vote: None,
            reason: "unverified-callback",
            evidence,
        }
    }
}

/// The `reason` a review refusal is recorded under, for the refusals that are evidence
/// of someone trying what they may not (not expiry or a decision that came first).
pub fn reason_of(e: &crate::store::ReviewError) -> Option<&'static str> {
    use crate::store::ReviewError;
    match e {
        ReviewError::SeparationOfDuties => Some("separation-of-duties"),
        ReviewError::DuplicateVote => Some("duplicate-vote"),
        ReviewError::NotFound | ReviewError::AlreadyDecided(_) | ReviewError::Expired | ReviewError::Store(_) => None,
    }
}

/// The `reason` of a refusal by the approval rules before the store is asked.
pub fn rule_reason(r: crate::lifecycle::ReviewRefusal) -> &'static str {
    match r {
        crate::lifecycle::ReviewRefusal::SeparationOfDuties => "separation-of-duties",
        crate::lifecycle::ReviewRefusal::NotAnApprover => "not-an-approver",
    }
}

#[derive(Default)]
struct Counts {
    window: i64,
    total: u32,
    sources: HashMap<String, Source>,
}

#[derive(Default, Clone, Copy)]
struct Source {
    recorded: u32,
    suppressed: u64,
}

/// The per-window bounds.
#[derive(Default)]
pub struct RefusedAttempts {
    counts: Mutex<Counts>,
}

impl RefusedAttempts {
    /// Whether an attempt from `source` at `now_ms` is recorded; if so, how many of its
    /// attempts were left out before it.
    pub fn admit(&self, source: &str, now_ms: i64) -> Option<u64> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let window = now_ms.div_euclid(WINDOW_MS);
        if c.window != window {
            c.window = window;
            c.total = 0;
            // Only what is still owed a `suppressed_before` survives the window.
            c.sources.retain(|_, s| s.suppressed > 0);
            c.sources.values_mut().for_each(|s| s.recorded = 0);
        }
        if !c.sources.contains_key(source) && c.sources.len() >= MAX_SOURCES {
            return None;
        }
        let full = c.total >= TOTAL;
        let entry = c.sources.entry(source.to_string()).or_default();
        if full || entry.recorded >= PER_SOURCE {
            entry.suppressed = entry.suppressed.saturating_add(1);
            return None;
        }
        entry.recorded += 1;
        let before = std::mem::take(&mut entry.suppressed);
        c.total += 1;
        Some(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_per_source_and_in_all_and_the_gap_is_counted() {
        let a = RefusedAttempts::default();
        for _ in 0..PER_SOURCE {
            assert_eq!(a.admit("dave", 0), Some(0));
        }
        assert_eq!(a.admit("dave", 1), None);
        assert_eq!(a.admit("dave", 2), None);
        assert_eq!(a.admit("alice", 3), Some(0), "another source is still heard");
        assert_eq!(a.admit("dave", WINDOW_MS), Some(2), "the next window says what was left out");
        let b = RefusedAttempts::default();
        let mut recorded = 0;
        for i in 0..(TOTAL + 50) {
            if b.admit(&format!("r{}", i % 100), 0).is_some() {
                recorded += 1;
            }
        }
        assert_eq!(recorded, TOTAL);
    }
}
