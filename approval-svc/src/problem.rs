//! One error type for every API answer that is a refusal or failure, rendered as RFC 9457
//! `application/problem+json`. Internal detail is logged, never sent.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::approvals::{CancelRefusal, Refusal};
use crate::store::{ReviewError, StoreError};

/// Every refusal or failure the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or bad credentials (reviewer bearer or gateway signature).
    #[error("{0}")]
    Unauthenticated(String),
    /// The reviewer is the agent, its owner, or someone the agent acts for.
    #[error("separation of duties")]
    SeparationOfDuties,
    /// The reviewer is in none of the approver groups.
    #[error("not an approver")]
    NotAnApprover,
    /// Only the agent's owner may cancel.
    #[error("not the owner")]
    NotTheOwner,
    /// The approval is no longer pending.
    #[error("already {0}")]
    AlreadyDecided(String),
    /// The reviewer already voted.
    #[error("duplicate vote")]
    DuplicateVote,
    /// The approval expired.
    #[error("approval expired")]
    Expired,
    /// Unknown id or route.
    #[error("not found")]
    NotFound,
    /// Malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// The policy behind a gateway call asks for what the service cannot honour (an
    /// impossible quorum, a reuse window past the configured maximum). The detail names
    /// the policy's fault and is sent: the filter shows it to the agent with its deny.
    #[error("{0}")]
    PolicyRefused(String),
    /// A dependency (store, identity provider) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The agent has too many approvals waiting for reviewers.
    #[error("too many pending approvals")]
    TooManyPending(u32),
    /// Anything else; detail is logged only.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        match self {
            ApiError::Unauthenticated(d) => (StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated", d.clone()),
            ApiError::SeparationOfDuties => (
                StatusCode::FORBIDDEN,
                "separation-of-duties",
                "Separation of duties",
                "The agent, its owner and identities it acts for cannot review its actions.".into(),
            ),
            ApiError::NotAnApprover => (
                StatusCode::FORBIDDEN,
                "not-an-approver",
                "Not an approver",
                "You are in none of the approver groups this policy names.".into(),
            ),
            ApiError::NotTheOwner => (
                StatusCode::FORBIDDEN,
                "not-the-owner",
                "Not the owner",
                "Only the agent's owner may cancel its approvals.".into(),
            ),
            ApiError::AlreadyDecided(s) => {
                (StatusCode::CONFLICT, "already-decided", "Already decided", format!("The approval is already {s}."))
            }
            ApiError::DuplicateVote => {
                (StatusCode::CONFLICT, "duplicate-vote", "Duplicate vote", "You already reviewed this approval.".into())
            }
            ApiError::Expired => {
                (StatusCode::GONE, "approval-expired", "Approval expired", "The approval passed its deadline.".into())
            }
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found", "No such resource.".into()),
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request", d.clone()),
            ApiError::PolicyRefused(d) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "policy-refused", "Policy refused", d.clone())
            }
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Unavailable",
                "A dependency of the service is unavailable; retry later.".into(),
            ),
            ApiError::TooManyPending(limit) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-pending",
                "Too many pending approvals",
                format!("This agent already has {limit} approvals waiting for reviewers; no new one is created until some are decided."),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "The service failed; see its log.".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title, detail) = self.parts();
        match &self {
            ApiError::Internal(d) | ApiError::Unavailable(d) => tracing::error!(error = %d, kind, "request failed"),
            ApiError::PolicyRefused(d) => tracing::warn!(detail = %d, kind, "policy refused"),
            _ => tracing::debug!(kind, "request refused"),
        }
        problem_response(status, kind, title, &detail)
    }
}

/// An RFC 9457 problem+json answer of `urn:airlock:problem:<kind>`.
pub fn problem_response(status: StatusCode, kind: &str, title: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("urn:airlock:problem:{kind}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

/// A problem+json answer whose kind follows from `status` alone (endpoints called by
/// other services, e.g. chat callbacks, whose refusals need no finer kinds).
pub fn status_problem(status: StatusCode, detail: &str) -> Response {
    let kind = match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "internal",
    };
    problem_response(status, kind, status.canonical_reason().unwrap_or("Error"), detail)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Closed => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::NotFound => ApiError::NotFound,
            ReviewError::AlreadyDecided(s) => ApiError::AlreadyDecided(s.to_string()),
            ReviewError::Expired => ApiError::Expired,
            ReviewError::DuplicateVote => ApiError::DuplicateVote,
            ReviewError::SeparationOfDuties => ApiError::SeparationOfDuties,
            ReviewError::Store(s) => s.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound => ApiError::NotFound,
            Refusal::SeparationOfDuties => ApiError::SeparationOfDuties,
            Refusal::NotAnApprover => ApiError::NotAnApprover,
            Refusal::AlreadyDecided(s) => ApiError::AlreadyDecided(s.to_string()),
            Refusal::Expired => ApiError::Expired,
            Refusal::DuplicateVote => ApiError::DuplicateVote,
            Refusal::Store(e) => e.into(),
        }
    }
}

impl From<CancelRefusal> for ApiError {
    fn from(r: CancelRefusal) -> Self {
        match r {
            CancelRefusal::NotFound => ApiError::NotFound,
            CancelRefusal::NotAllowed => ApiError::NotTheOwner,
            CancelRefusal::NoReason => ApiError::BadRequest("body: a cancel needs a non-empty `reason`".into()),
            CancelRefusal::AlreadyDecided(s) => ApiError::AlreadyDecided(s.to_string()),
            CancelRefusal::Expired => ApiError::Expired,
            CancelRefusal::Store(e) => e.into(),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("task failed: {e}"))
    }
}
