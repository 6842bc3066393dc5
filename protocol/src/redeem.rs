//! `POST /v1/gateway/approvals/{id}/redeem`: the gateway redeems an approved approval
//! and is given the credential headers to inject.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::AIRLOCK_HEADER_PREFIX;

/// The redeem body (fields in alphabetical order, see [`crate::approval`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemRequest {
    /// The agent's id.
    pub agent: String,
    pub decision_id: String,
    pub digest: String,
}

/// `status` of a 200 redeem answer.
pub const REDEEMED: &str = "redeemed";

/// The redeem answer: 200 `redeemed` with the minted headers, or a refusal, 409
/// (`consumed`, `mismatch`, `not_approved`) or 410 (`expired`), with only `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// RFC 3339: until when the credential (or else the approval) is good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Headers to inject, each passing [`injectable_header_name`] and
    /// [`injectable_header_value`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    pub status: String,
}

impl RedeemAnswer {
    /// 200: redeemed, with the headers to inject.
    pub fn redeemed(approval_id: String, headers: BTreeMap<String, String>, expires_at: String) -> RedeemAnswer {
        RedeemAnswer {
            approval_id: Some(approval_id),
            expires_at: Some(expires_at),
            headers: Some(headers),
            status: REDEEMED.to_string(),
        }
    }

    /// 409 or 410: refused, saying why.
    pub fn refused(status: &str) -> RedeemAnswer {
        RedeemAnswer { approval_id: None, expires_at: None, headers: None, status: status.to_string() }
    }
}

/// A minted header name the gateway will inject: an ordinary lower-case name, never a
/// pseudo-header, a routing or framing header, or an Airlock header. The service
/// applies it before it consumes an approval, the gateway before it injects.
pub fn injectable_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with(AIRLOCK_HEADER_PREFIX)
        && !matches!(name, "host" | "content-length" | "transfer-encoding" | "connection" | "te" | "upgrade")
}

/// A minted header value the gateway will inject: printable ASCII and tab only (no
/// CR/LF, so no header splitting).
pub fn injectable_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}
