//! The bot's messaging endpoint, `POST /teams/messages`.
//!
//! Order matters: the bearer token is verified (signature, RS256, issuer, audience,
//! time) before the body is even read; then the activity is parsed and checked against
//! the token (`serviceurl`, endorsements), the `serviceUrl` host allow-list and the
//! tenant. Only then is anything acted on: a click (`invoke` `adaptiveCard/action`, or
//! the `Action.Submit` fallback's `message`) becomes a review through
//! [`crate::approvals`]; an install (`conversationUpdate`/`installationUpdate`)
//! becomes a conversation later approvals are posted to. Failures answer 400/401/403/503
//! and change nothing; refusals of a verified click answer 200 with the reason.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::card::{self, CARD_CONTENT_TYPE, COMMENT_INPUT, VERB_APPROVE, VERB_DENY};
use super::identity::{self, IdentityRefusal};
use super::token::{TokenError, VerifiedToken};
use super::{Teams, CHANNEL};
use crate::approvals::attempts::Attempt;
use crate::approvals::Decisions;
use crate::approvals::{Refusal, ReviewRequest};
use crate::channels::{ApprovalView, Callbacks, DeliveryError};
use crate::lifecycle::Vote;
use crate::time::now_ms;

/// Largest activity accepted (a card action is a few KiB).
const MAX_BODY: usize = 256 * 1024;
/// Longest a verified sender may take to deliver the body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The refused-attempt reason of a chat decision on an approval that needs step-up.
const STEP_UP_REQUIRED: &str = "step-up-required";
/// Invoke answer type of a message shown to the clicker.
const MESSAGE_TYPE: &str = "application/vnd.microsoft.activity.message";

/// An activity whose token and origin were verified.
struct Verified {
    teams: Arc<Teams>,
    token: VerifiedToken,
    activity: Value,
    service_url: String,
    tenant: String,
    body_sha256: String,
}

impl Verified {
    fn text(&self, pointer: &str) -> &str {
        self.activity.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
    }
}

/// Refusals of the endpoint itself (not of a click) are problem+json, like the API's.
fn problem(status: StatusCode, detail: &str) -> Response {
    crate::problem::status_problem(status, detail)
}

/// `POST /teams/messages`.
pub async fn messages(State(state): State<Arc<Callbacks>>, headers: HeaderMap, body: Body) -> Response {
    let Some(teams) = state.teams.clone() else {
        return problem(StatusCode::NOT_FOUND, "the Teams channel is not configured");
    };
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = match teams.verifier.verify(authorization).await {
        Ok(t) => t,
        Err(e) => return refuse_token(&state, &e, None).await,
    };
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return problem(StatusCode::PAYLOAD_TOO_LARGE, "activity too large or unreadable (limit 256 KiB)")
        }
        Err(_) => return problem(StatusCode::BAD_REQUEST, "activity not received in time"),
    };
    let activity: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return problem(StatusCode::BAD_REQUEST, "activity must be a JSON object"),
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("activity is not valid JSON: {e}")),
    };
    let text = |p: &str| activity.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    let (service_url, channel_id) = (text("/serviceUrl"), text("/channelId"));
    let body_sha256 = hex::encode(Sha256::digest(&bytes));
    if let Err(e) = token.check_activity(&service_url, &channel_id) {
        return refuse_token(&state, &e, Some(&body_sha256)).await;
    }
    if let Err(e) = teams.config.service_url_allowed(&service_url) {
        tracing::warn!(error = %e, "teams: activity refused");
        unverified(&state, &e.to_string(), Some(&body_sha256)).await;
        return problem(StatusCode::FORBIDDEN, "serviceUrl is not allowed");
    }
    let tenant = match tenant_of(&activity, &teams.config.tenant_id) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "teams: activity refused");
            unverified(&state, &e, Some(&body_sha256)).await;
            return problem(StatusCode::FORBIDDEN, "activity is not from the configured tenant");
        }
    };
    let v = Verified { teams, token, activity, service_url, tenant, body_sha256 };
    match v.text("/type") {
        "invoke" if v.text("/name") == "adaptiveCard/action" => invoke(&state, &v).await,
        "message" if v.activity.get("value").is_some_and(Value::is_object) => submit(&state, &v).await,
        "conversationUpdate" | "installationUpdate" => remember_conversation(&state, &v).await,
        // Typed messages, reactions, other invokes: nothing to do, and no error either
        // (Teams would retry and show the user a failure).
        _ => StatusCode::OK.into_response(),
    }
}

async fn refuse_token(state: &Arc<Callbacks>, e: &TokenError, body_sha256: Option<&str>) -> Response {
    tracing::warn!(error = %e, "teams: activity token refused");
    match e {
        TokenError::Unavailable(_) => problem(StatusCode::SERVICE_UNAVAILABLE, "cannot verify the token now; retry"),
        _ => {
            unverified(state, &e.to_string(), body_sha256).await;
            problem(StatusCode::UNAUTHORIZED, "the Bot Framework token is missing or invalid")
        }
    }
}

/// Records an activity that failed verification (`approvals::attempts`, bounded).
async fn unverified(state: &Arc<Callbacks>, error: &str, body_sha256: Option<&str>) {
    let evidence = serde_json::json!({"error": error, "body_sha256": body_sha256});
    state.approvals.record_refused(Attempt::unverified("teams", evidence)).await;
}

/// The activity's tenant: `channelData.tenant.id` and `conversation.tenantId` (whichever
/// are present must agree), equal to the configured one.
fn tenant_of(activity: &Value, configured: &str) -> Result<String, String> {
    let named: Vec<&str> = ["/channelData/tenant/id", "/conversation/tenantId"]
        .iter()
        .filter_map(|p| activity.pointer(p).and_then(Value::as_str))
        .collect();
    if named.is_empty() {
        return Err("activity names no tenant".into());
    }
    if let Some(other) = named.iter().find(|t| !t.trim().eq_ignore_ascii_case(configured.trim())) {
        return Err(format!("tenant {other:?} is not the configured tenant"));
    }
    Ok(configured.to_string())
}

/// A click: which approval, which way, the comment.
struct Click {
    approval_id: String,
    verb: String,
    comment: Option<String>,
    via: &'static str,
}

fn click_of(data: &Value, verb: Option<&str>, via: &'static str) -> Option<Click> {
    let approval_id = data.get("approvalId").and_then(Value::as_str).filter(|s| !s.is_empty())?.to_string();
    let verb = verb.or_else(|| data.get("verb").and_then(Value::as_str))?.to_string();
    let comment = data
        .get(COMMENT_INPUT)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.chars().take(1000).collect());
    Some(Click { approval_id, verb, comment, via })
}

/// `invoke` `adaptiveCard/action`: answered with the card (or why not).
async fn invoke(state: &Arc<Callbacks>, v: &Verified) -> Response {
    let action = v.activity.pointer("/value/action").cloned().unwrap_or(Value::Null);
    let data = action.get("data").cloned().unwrap_or(Value::Null);
    let Some(click) = click_of(&data, action.get("verb").and_then(Value::as_str), "Action.Execute") else {
        return message_answer("This card action is not one the approval service knows.");
    };
    match handle_click(state, v, &click).await {
        Outcome::Card(view) => card_answer(&v.teams, &view),
        Outcome::Refused(text) => message_answer(&text),
    }
}

/// A `message` with `value`: the `Action.Submit` fallback. Message activities take no
/// card in their answer; every posted copy is updated by the outbox after a decision.
async fn submit(state: &Arc<Callbacks>, v: &Verified) -> Response {
    let data = v.activity.get("value").cloned().unwrap_or(Value::Null);
    let Some(click) = click_of(&data, None, "Action.Submit") else {
        return StatusCode::OK.into_response();
    };
    if let Outcome::Refused(text) = handle_click(state, v, &click).await {
        tracing::info!(approval_id = %click.approval_id, reason = %text, "teams: submitted action refused");
    }
    StatusCode::OK.into_response()
}

enum Outcome {
    /// The approval as it now stands.
    Card(Box<ApprovalView>),
    /// Why nothing was recorded, for the clicker.
    Refused(String),
}

async fn handle_click(state: &Arc<Callbacks>, v: &Verified, click: &Click) -> Outcome {
    let vote = match click.verb.as_str() {
        VERB_APPROVE => Vote::Approve,
        VERB_DENY => Vote::Deny,
        _ => return Outcome::Refused("This card action is not one the approval service knows.".into()),
    };
    let activity_id = v.text("/id").to_string();
    // A retried invoke: nothing is recorded again; the clicker sees the card as it is.
    if !activity_id.is_empty() && !v.teams.replays.first(&activity_id, crate::time::now_secs()) {
        tracing::info!(activity_id, "teams: retried activity answered with the current card");
        return current(state, &click.approval_id).await;
    }
    let outcome = decide_click(state, v, click, vote, &activity_id).await;
    if let Err(retry) = &outcome {
        if *retry && !activity_id.is_empty() {
            v.teams.replays.forget(&activity_id);
        }
    }
    match outcome {
        Ok(o) => o,
        Err(_) => Outcome::Refused("The approval service could not record your decision; please try again.".into()),
    }
}

/// Resolves the clicker and records the decision. `Err(true)`: a failure worth a retry
/// (nothing was recorded).
async fn decide_click(
    state: &Arc<Callbacks>,
    v: &Verified,
    click: &Click,
    vote: Vote,
    activity_id: &str,
) -> Result<Outcome, bool> {
    let object_id = v.text("/from/aadObjectId").to_string();
    if object_id.trim().is_empty() {
        return Ok(Outcome::Refused(IdentityRefusal::Anonymous.to_string()));
    }
    let (teams, service_url) = (v.teams.clone(), v.service_url.clone());
    let (conversation_id, member_id) = (v.text("/conversation/id").to_string(), v.text("/from/id").to_string());
    let profile =
        tokio::task::spawn_blocking(move || teams.connector.member(&service_url, &conversation_id, &member_id)).await;
    let profile = match profile {
        Ok(Ok(p)) => p,
        Ok(Err(DeliveryError::Permanent(e))) => {
            // Not a member of the conversation (or no such conversation): no identity.
            tracing::warn!(error = %e, "teams: member profile refused; click not recorded");
            return Ok(Outcome::Refused("Your Teams profile could not be confirmed in this conversation.".into()));
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "teams: member profile lookup failed; click not recorded");
            return Err(true);
        }
        Err(_) => return Err(true),
    };
    let reviewer = match identity::resolve(&state.reviewers, &object_id, &profile, &v.tenant) {
        Ok(r) => r,
        Err(refusal) => {
            tracing::warn!(approval_id = %click.approval_id, object_id, reason = %refusal, "teams: clicker refused");
            return Ok(Outcome::Refused(refusal.to_string()));
        }
    };
    if let Some(refused) = step_up_refusal(state, v, click, &reviewer, vote).await? {
        return Ok(refused);
    }
    let evidence = json!({
        "activity_id": activity_id,
        "body_sha256": v.body_sha256,
        "kid": v.token.kid,
        "tenant": v.tenant,
        "service_url": v.service_url,
        "conversation_id": v.text("/conversation/id"),
        "from_id": v.text("/from/id"),
        "aad_object_id": object_id,
        "action": click.via,
        "verb": click.verb,
    });
    let review = ReviewRequest {
        approval_id: click.approval_id.clone(),
        vote,
        comment: click.comment.clone(),
        reviewer,
        channel: CHANNEL,
        attempt_evidence: evidence.clone(),
        evidence,
    };
    match state.approvals.review(review).await {
        Ok(approval) => Ok(Outcome::Card(Box::new(ApprovalView::of(&approval)))),
        Err(Refusal::Store(e)) => {
            tracing::error!(error = %e, "teams: recording a decision failed");
            Err(true)
        }
        Err(refusal) => Ok(Outcome::Refused(refusal_text(&refusal))),
    }
}

/// An approval whose risk needs step-up is not decided in chat, whoever clicks: the
/// refusal is recorded as a refused attempt and the clicker is sent to the console.
/// `Err(true)`: the approval could not be read (nothing was recorded; retry).
async fn step_up_refusal(
    state: &Arc<Callbacks>,
    v: &Verified,
    click: &Click,
    reviewer: &crate::lifecycle::Reviewer,
    vote: Vote,
) -> Result<Option<Outcome>, bool> {
    let id = click.approval_id.clone();
    let approval = match state.approvals.blocking(false, move |s| s.get(&id, now_ms())).await {
        Ok(Ok(Some(a))) => a,
        // Unknown ids are refused by the review itself, with its own words.
        Ok(Ok(None)) => return Ok(None),
        _ => return Err(true),
    };
    let view = ApprovalView::of(&approval);
    if !v.teams.step_up_required(&view.risk) {
        return Ok(None);
    }
    let evidence = json!({"activity_id": v.text("/id"), "body_sha256": v.body_sha256, "risk": view.risk,
                          "aad_object_id": v.text("/from/aadObjectId"), "action": click.via});
    let attempt = Attempt::review(reviewer, &click.approval_id, CHANNEL, vote, STEP_UP_REQUIRED, evidence);
    state.approvals.record_refused(attempt).await;
    tracing::info!(approval_id = %click.approval_id, reviewer = %reviewer.id, risk = %view.risk,
        "teams: decision refused, the approval needs step-up in the console");
    Ok(Some(Outcome::Refused(crate::channels::step_up::refusal_text(v.teams.console_link(&view).as_deref()))))
}

fn refusal_text(refusal: &Refusal) -> String {
    let text = refusal.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => text,
    }
}

/// The card of `approval_id` as it stands (for retries).
async fn current(state: &Arc<Callbacks>, approval_id: &str) -> Outcome {
    let id = approval_id.to_string();
    match state.approvals.blocking(false, move |s| s.get(&id, now_ms())).await {
        Ok(Ok(Some(a))) => Outcome::Card(Box::new(ApprovalView::of(&a))),
        Ok(Ok(None)) => Outcome::Refused(refusal_text(&Refusal::NotFound)),
        _ => Outcome::Refused("The approval service could not read the approval; please try again.".into()),
    }
}

fn card_answer(teams: &Teams, view: &ApprovalView) -> Response {
    let card = card::render(view, teams.console_link(view).as_deref());
    (StatusCode::OK, Json(json!({"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}))).into_response()
}

fn message_answer(text: &str) -> Response {
    (StatusCode::OK, Json(json!({"statusCode": 200, "type": MESSAGE_TYPE, "value": text}))).into_response()
}

/// An install or membership change: remember where the bot can post.
async fn remember_conversation(state: &Arc<Callbacks>, v: &Verified) -> Response {
    let conversation_id = v.text("/conversation/id").to_string();
    if conversation_id.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "activity has no conversation.id");
    }
    // Uninstalls keep the reference: posting there then fails with
    // BotNotInConversationRoster, which the outbox reports, and a reinstall restores it.
    if v.text("/action").starts_with("remove") {
        return StatusCode::OK.into_response();
    }
    let conversation_type = v.text("/conversation/conversationType").to_string();
    let mut reference = json!({
        "service_url": v.service_url,
        "conversation_id": conversation_id,
        "tenant_id": v.tenant,
        "conversation_type": conversation_type,
        "learnt_from": v.text("/type"),
    });
    // A personal install is one user's chat with the bot: it receives only what is meant
    // for that user (their 1:1 cards and notices), not every approval, or anyone in the
    // tenant could install the app and read every request.
    let (channel, id) = if conversation_type == "personal" {
        let object_id = super::direct::object_key(v.text("/from/aadObjectId"));
        if object_id.is_empty() {
            return StatusCode::OK.into_response();
        }
        reference["aad_object_id"] = json!(object_id);
        (super::direct::PERSONAL, object_id)
    } else {
        (CHANNEL, conversation_id.clone())
    };
    match state.approvals.blocking(false, move |s| s.save_conversation(channel, &id, reference, now_ms())).await {
        Ok(Ok(())) => {
            tracing::info!(conversation_id, "teams: conversation remembered");
            StatusCode::OK.into_response()
        }
        _ => problem(StatusCode::SERVICE_UNAVAILABLE, "could not store the conversation; retry"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tenant_must_be_named_and_match() {
        let a = json!({"channelData": {"tenant": {"id": "T1"}}, "conversation": {"tenantId": "t1"}});
        assert_eq!(tenant_of(&a, "t1").unwrap(), "t1");
        assert!(tenant_of(&json!({"conversation": {"tenantId": "t2"}}), "t1").is_err());
        assert!(tenant_of(&json!({"channelData": {"tenant": {"id": "t1"}}, "conversation": {"tenantId": "t2"}}), "t1")
            .is_err());
        assert!(tenant_of(&json!({}), "t1").is_err(), "no tenant named");
    }

    #[test]
    fn clicks_carry_approval_verb_and_comment() {
        let c =
            click_of(&json!({"approvalId": "apr_1", "comment": " fine "}), Some("approve"), "Action.Execute").unwrap();
        assert_eq!((c.approval_id.as_str(), c.verb.as_str(), c.comment.as_deref()), ("apr_1", "approve", Some("fine")));
        let s = click_of(&json!({"approvalId": "apr_1", "verb": "deny"}), None, "Action.Submit").unwrap();
        assert_eq!(s.verb, "deny");
        assert!(click_of(&json!({"verb": "deny"}), None, "Action.Submit").is_none());
    }
}
