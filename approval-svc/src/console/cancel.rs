//! The agent's owner calls off a pending approval from its page, saying why. The rule
//! (owner only, reason required, first decision wins) is the use case's
//! ([`crate::approvals::cancel`]), the same one `POST /v1/approvals/{id}/cancel` calls;
//! here only the form is checked.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::review::message;
use super::web::{form, refuse_post, see_other, session, to_login};
use super::Console;
use crate::approvals::CancelRefusal;

/// Longest reason kept with a cancel.
const MAX_REASON: usize = 2000;

/// `POST /console/approvals/{id}/cancel`: `csrf`, `reason`.
pub async fn cancel(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let page = format!("/console/approvals/{id}");
    let Some((_, session)) = session(&console, &headers) else {
        return to_login(&page);
    };
    let back = Some((page.clone(), "Back to the approval".to_string()));
    let fields = form(&body);
    if let Some(why) = refuse_post(&console, &headers, &session, &fields) {
        tracing::warn!(who = %session.reviewer.id, approval_id = %id, "console: cancel form refused: {why}");
        return message(&session, StatusCode::FORBIDDEN, "Form refused", why, back);
    }
    let reason = fields.get("reason").map(|r| r.trim().to_string()).unwrap_or_default();
    if reason.chars().count() > MAX_REASON {
        return message(
            &session,
            StatusCode::BAD_REQUEST,
            "Reason too long",
            &format!("A reason has at most {MAX_REASON} characters."),
            back,
        );
    }
    match console.approvals.cancel(id, session.reviewer.clone(), reason).await {
        Ok(_) => see_other(&page),
        Err(refusal) => {
            let status = match &refusal {
                CancelRefusal::NotFound => StatusCode::NOT_FOUND,
                CancelRefusal::NotAllowed => StatusCode::FORBIDDEN,
                CancelRefusal::NoReason => StatusCode::BAD_REQUEST,
                CancelRefusal::AlreadyDecided(_) | CancelRefusal::Expired => StatusCode::CONFLICT,
                CancelRefusal::Store(e) => {
                    tracing::error!(error = %e, "console: recording a cancel failed");
                    StatusCode::SERVICE_UNAVAILABLE
                }
            };
            message(&session, status, "Not cancelled", &format!("The approval was not cancelled: {refusal}."), back)
        }
    }
}
