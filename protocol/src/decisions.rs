//! `POST /v1/gateway/decisions`: allow and deny decisions, shipped in batches.

use serde::{Deserialize, Serialize};

/// Most records one batch may carry.
pub const MAX_DECISION_RECORDS: usize = 1000;
/// Longest `decision_id` accepted (a request id, or one the filter made up).
pub const MAX_DECISION_ID: usize = 256;

/// A batch. `dropped` counts records lost to a full queue since the last batch the
/// service accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionBatch {
    #[serde(default)]
    pub dropped: u64,
    pub records: Vec<DecisionRecord>,
}

/// One decision. Only these fields reach the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub time_ms: u64,
    /// What the policy decided.
    pub effect: Effect,
    /// What the gateway did (`allow` for a shadow-mode deny).
    pub enforced: Effect,
    pub mode: Mode,
    pub rule: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    pub policy_revision: String,
    /// The agent's id.
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub method: String,
    pub host: String,
    pub path: String,
}

impl DecisionRecord {
    /// The protocol's bounds beyond the types: `decision_id` of 1 to
    /// [`MAX_DECISION_ID`] bytes, `digest` lower-case hex SHA-256.
    pub fn check(&self) -> Result<(), String> {
        if self.decision_id.is_empty() || self.decision_id.len() > MAX_DECISION_ID {
            return Err(format!("decision_id must be 1 to {MAX_DECISION_ID} bytes"));
        }
        if self.digest.as_deref().is_some_and(|d| !is_digest(d)) {
            return Err("digest must be lower-case hex SHA-256".into());
        }
        Ok(())
    }
}

/// 64 lower-case hex characters.
pub fn is_digest(d: &str) -> bool {
    d.len() == 64 && d.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A policy's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
    Approve,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
            Effect::Approve => "approve",
        }
    }
}

/// Whether the decision was enforced or only logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Shadow,
}

/// A policy's risk rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}
