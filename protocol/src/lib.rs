//! The protocol between the gateway filter and the approval service
//! (`docs/protocol.md`), written once for both ends: the bodies each side sends, the
//! HMAC signatures on requests and answers, and which minted headers the gateway will
//! inject. Small on purpose: it is linked into the wasm filter.

pub mod approval;
pub mod decisions;
pub mod redeem;
pub mod signing;

pub use approval::{AgentRef, ApprovalState, ApprovalStatus, Approvers, CreateApproval, PolicyAsk, RequestFacts};
pub use decisions::{DecisionBatch, DecisionRecord, Effect, Mode, Risk};
pub use redeem::{injectable_header_name, injectable_header_value, RedeemAnswer, RedeemRequest};

/// Create-or-find (`POST`).
pub const APPROVALS_PATH: &str = "/v1/gateway/approvals";
/// Decision-log batches (`POST`).
pub const DECISIONS_PATH: &str = "/v1/gateway/decisions";

/// Redeem (`POST`) of approval `id`.
pub fn redeem_path(id: &str) -> String {
    format!("{APPROVALS_PATH}/{id}/redeem")
}

/// Prefix of Airlock's own headers: never injected, never sent upstream.
pub const AIRLOCK_HEADER_PREFIX: &str = "x-airlock-";

/// `type` of the service's 422 problem: the policy asks what the service will not honour.
pub const PROBLEM_POLICY_REFUSED: &str = "urn:airlock:problem:policy-refused";

/// An error answer (problem+json, RFC 9457) as far as the gateway reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
}
