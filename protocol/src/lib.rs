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
/// Find only (`POST`): the create-or-find body without `request.body`; answered as
/// create-or-find answers when an approval answers the action, and `404`
/// ([`PROBLEM_APPROVAL_NOT_FOUND`]) when create-or-find would have created one
/// (`docs/protocol.md`, "Finding an existing approval").
pub const APPROVALS_FIND_PATH: &str = "/v1/gateway/approvals/find";
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

/// `type` of the service's 404 to a find: no approval answers this action; the gateway
/// sends the full create-or-find.
pub const PROBLEM_APPROVAL_NOT_FOUND: &str = "urn:airlock:problem:approval-not-found";

/// An error answer (problem+json, RFC 9457) as far as the gateway reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
}
