//! The approval page and the decision: everything the agent intends, the quorum so far,
//! the diff against the last approved action of the same agent and rule, the audit
//! records, and approve/deny — counted by the use case ([`crate::approvals`]), never by
//! the store directly. A step-up approval is refused here unless the sign-in is recent.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::eligibility::{standing, Standing};
use super::pages::{facts, render, ApprovalPage, MessagePage, Row, Vote as VoteView};
use super::session::Session;
use super::web::{form, refuse_post, see_other, session, to_login};
use super::{diff, Console};
use crate::approvals::attempts::Attempt;
use crate::approvals::cancel::may_cancel;
use crate::approvals::Decisions;
use crate::approvals::{Refusal, ReviewRequest};
use crate::lifecycle::{Status, Vote};
use crate::store::Approval;
use crate::time::{now_ms, now_secs, rfc3339};

/// Most approvals searched for the last approved action of the same agent and rule.
const DIFF_WINDOW: u32 = 1000;
/// Longest comment kept with a vote.
const MAX_COMMENT: usize = 2000;

/// A page that says one thing (a refusal, an error), with a link back.
pub(super) fn message(
    session: &Session,
    status: StatusCode,
    title: &str,
    text: &str,
    link: Option<(String, String)>,
) -> Response {
    let page = MessagePage {
        who: session.reviewer.id.clone(),
        csrf: session.csrf.clone(),
        title: title.into(),
        text: text.into(),
        link,
    };
    render(status, &page)
}

/// Where a step-up sign-in for approval `id` starts.
fn step_up_url(id: &str) -> String {
    let next: String = form_urlencoded::byte_serialize(format!("/console/approvals/{id}").as_bytes()).collect();
    format!("/console/login?step_up=1&next={next}")
}

/// What the approval page reads: the approval, recent approvals (for the diff) and
/// where its notifications stand.
type Loaded = (Option<Approval>, Vec<Approval>, serde_json::Value);

async fn load(console: &Arc<Console>, id: String) -> Result<Loaded, String> {
    let now = now_ms();
    console
        .approvals
        .blocking(false, move |s| {
            let a = s.get(&id, now)?;
            if a.is_none() {
                return Ok((None, Vec::new(), serde_json::Value::Null));
            }
            let recent = s.list(None, DIFF_WINDOW, now)?;
            let notifications = s.notification_status(&id)?;
            Ok::<_, crate::store::StoreError>((a, recent, notifications))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// `GET /console/approvals/{id}`.
pub async fn page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let Some((_, session)) = session(&console, &headers) else {
        return to_login(uri.path());
    };
    let (approval, recent, notifications) = match load(&console, id.clone()).await {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "console: reading an approval failed");
            return message(
                &session,
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The approval could not be read. Try again shortly.",
                None,
            );
        }
    };
    let Some(a) = approval else {
        return message(
            &session,
            StatusCode::NOT_FOUND,
            "No such approval",
            "There is no approval with this id.",
            Some(("/console/".into(), "Back to the inbox".into())),
        );
    };
    let now = now_ms();
    let stand = standing(&session.reviewer, &a, session.auth_age(now_secs()), &console.config, now);
    let audit_source = console.audit.clone();
    let audit_id = a.id.clone();
    let (audit, audit_error) = match tokio::task::spawn_blocking(move || audit_source.records_of(&audit_id)).await {
        Ok(Ok(rows)) => (rows, None),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "console: reading audit records failed");
            (Vec::new(), Some("The audit records could not be read.".to_string()))
        }
        Err(e) => {
            tracing::warn!(error = %e, "console: reading audit records failed");
            (Vec::new(), Some("The audit records could not be read.".to_string()))
        }
    };
    let page = ApprovalPage {
        who: session.reviewer.id.clone(),
        csrf: session.csrf.clone(),
        row: Row::of(&a, now, matches!(stand, Standing::StepUp { .. })),
        facts: facts(&a),
        votes: a
            .reviews
            .iter()
            .map(|r| VoteView {
                reviewer: r.reviewer.clone(),
                vote: r.vote.as_str().to_string(),
                channel: r.channel.clone(),
                time: rfc3339(r.time_ms),
                comment: r.comment.clone().unwrap_or_default(),
            })
            .collect(),
        approvals: a.approvers().len(),
        quorum: a.quorum,
        explanation: stand.explanation(),
        step_up_url: matches!(stand, Standing::StepUp { .. }).then(|| step_up_url(&a.id)),
        can_decide: stand == Standing::MayDecide,
        can_cancel: a.status == Status::Pending && may_cancel(&session.reviewer, &a.parties()),
        diff: diff::previous_approved(&recent, &a).map(|prev| diff::view(prev, &a)),
        notifications: serde_json::to_string_pretty(&notifications).unwrap_or_default(),
        audit,
        audit_error,
    };
    render(StatusCode::OK, &page)
}

/// `POST /console/approvals/{id}/decide`: `csrf`, `vote` (`approve` / `deny`), `comment`.
pub async fn decide(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some((_, session)) = session(&console, &headers) else {
        return to_login(&format!("/console/approvals/{id}"));
    };
    let fields = form(&body);
    if let Some(why) = refuse_post(&console, &headers, &session, &fields) {
        tracing::warn!(reviewer = %session.reviewer.id, approval_id = %id, "console: form refused: {why}");
        return message(
            &session,
            StatusCode::FORBIDDEN,
            "Form refused",
            why,
            Some((format!("/console/approvals/{id}"), "Back to the approval".into())),
        );
    }
    let Some(vote) = fields.get("vote").and_then(|v| Vote::parse(v)) else {
        return message(
            &session,
            StatusCode::BAD_REQUEST,
            "No decision",
            "The form did not say approve or deny.",
            None,
        );
    };
    let comment = fields.get("comment").map(|c| c.trim()).filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > MAX_COMMENT) {
        return message(
            &session,
            StatusCode::BAD_REQUEST,
            "Comment too long",
            &format!("A comment has at most {MAX_COMMENT} characters."),
            None,
        );
    }
    // The step-up rule is the console's: read the approval and check the sign-in's age
    // before the vote goes to the use case.
    let back = Some((format!("/console/approvals/{id}"), "Back to the approval".to_string()));
    let lookup = id.clone();
    let now = now_ms();
    let current = match console.approvals.blocking(false, move |s| s.get(&lookup, now)).await {
        Ok(Ok(Some(a))) => a,
        Ok(Ok(None)) => {
            return message(
                &session,
                StatusCode::NOT_FOUND,
                "No such approval",
                "There is no approval with this id.",
                None,
            );
        }
        Ok(Err(e)) | Err(e) => {
            tracing::error!(error = %e, "console: reading an approval failed");
            return message(
                &session,
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "Nothing was recorded. Try again shortly.",
                back,
            );
        }
    };
    let age = session.auth_age(now_secs());
    if let stand @ Standing::StepUp { .. } = standing(&session.reviewer, &current, age, &console.config, now) {
        tracing::warn!(reviewer = %session.reviewer.id, approval_id = %id, "console: decision refused: step-up sign-in needed");
        // Evidence like any refused review: who tried, with how old a sign-in.
        let evidence =
            json!({"auth_time": session.auth_time, "step_up_max_age_secs": console.config.step_up_max_age.as_secs()});
        let attempt = Attempt::review(&session.reviewer, &id, "console", vote, "step-up-required", evidence);
        console.approvals.record_refused(attempt).await;
        let text = stand.explanation().unwrap_or_default();
        return message(
            &session,
            StatusCode::FORBIDDEN,
            "Sign in again to decide",
            &text,
            Some((step_up_url(&id), "Sign in again".into())),
        );
    }
    let reviewer = session.reviewer.clone();
    let request = ReviewRequest {
        approval_id: id.clone(),
        vote,
        comment: comment.map(str::to_string),
        evidence: json!({"auth_time": session.auth_time, "step_up": super::requires_step_up(&current, &console.config)}),
        attempt_evidence: json!({"groups": reviewer.groups, "aliases": reviewer.aliases}),
        reviewer,
        channel: "console",
    };
    match console.approvals.review(request).await {
        Ok(_) => see_other(&format!("/console/approvals/{id}")),
        Err(refusal) => {
            let status = match &refusal {
                Refusal::NotFound => StatusCode::NOT_FOUND,
                Refusal::SeparationOfDuties | Refusal::NotAnApprover => StatusCode::FORBIDDEN,
                Refusal::AlreadyDecided(_) | Refusal::Expired | Refusal::DuplicateVote => StatusCode::CONFLICT,
                Refusal::Store(e) => {
                    tracing::error!(error = %e, "console: recording a decision failed");
                    StatusCode::SERVICE_UNAVAILABLE
                }
            };
            message(&session, status, "Not recorded", &format!("Your vote was not counted: {refusal}."), back)
        }
    }
}
