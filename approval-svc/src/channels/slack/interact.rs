//! `POST /slack/interactivity`: a reviewer clicked Approve or Deny.
//!
//! Order matters: the raw body is read (bounded) and its v0 signature and timestamp are
//! checked before any byte of it is parsed; then the payload must name our app and our
//! workspace. Failures there answer 401 and change nothing. A verified click is always
//! acknowledged with an empty 200 (Slack wants an answer within 3 s and shows an error
//! otherwise); what became of it — recorded, or refused and why — is told to the clicker
//! as an ephemeral message through the click's `response_url`, and in the
//! `x-airlock-slack-outcome` header of the 200 for operators and tests. A refusal is never
//! a 5xx: Slack would retry it and the reviewer would see a generic failure.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::blocks::{APPROVE_ACTION, DENY_ACTION};
use super::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::Slack;
use crate::approvals::attempts::Attempt;
use crate::approvals::Decisions;
use crate::approvals::{Refusal, ReviewRequest};
use crate::channels::Callbacks;
use crate::lifecycle::{Reviewer, Vote};
use crate::problem::ApiError;
use crate::time::now_secs;

/// Largest interactivity body accepted; a block_actions payload is a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Header telling what became of a verified click.
pub const OUTCOME_HEADER: &str = "x-airlock-slack-outcome";
/// Longest wait for the body of an interactivity request.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for `users.info`, so the acknowledgement stays within Slack's 3 s.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The parts of a `block_actions` payload we use (Slack adds fields freely).
#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    api_app_id: String,
    #[serde(default)]
    team: Option<Team>,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    response_url: Option<String>,
    #[serde(default)]
    container: Option<Container>,
}

#[derive(Debug, Deserialize)]
struct Team {
    #[serde(default)]
    id: String,
}

#[derive(Debug, Deserialize)]
struct User {
    #[serde(default)]
    id: String,
    #[serde(default)]
    team_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Action {
    #[serde(default)]
    action_id: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    action_ts: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Container {
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    message_ts: Option<String>,
}

/// What became of a verified click.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Recorded,
    Refused,
    Duplicate,
    Ignored,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Recorded => "recorded",
            Outcome::Refused => "refused",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
        }
    }
}

/// The handler.
pub async fn interactivity(State(state): State<Arc<Callbacks>>, headers: HeaderMap, body: Body) -> Response {
    let Some(slack) = state.slack.clone() else {
        return ApiError::NotFound.into_response();
    };
    // Bounded in size and time: the body is read before it can be verified, so anyone
    // reaching the port could otherwise pin memory and connections.
    let raw = match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(_)) => {
            return crate::problem::status_problem(StatusCode::PAYLOAD_TOO_LARGE, "interactivity body too large")
        }
        Err(_) => return ApiError::BadRequest("body not received in time".into()).into_response(),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request_ts = header(TIMESTAMP_HEADER).unwrap_or_default().to_string();
    let body_sha256 = hex::encode(Sha256::digest(&raw));
    let unverified = |error: String| {
        let evidence = json!({"error": error, "body_sha256": body_sha256, "timestamp": request_ts});
        state.approvals.record_refused(Attempt::unverified("slack", evidence))
    };
    if let Err(e) =
        signature::verify(&slack.signing_secret, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &raw, now_secs())
    {
        tracing::warn!(error = %e, "slack: interactivity request refused");
        unverified(e.to_string()).await;
        return ApiError::Unauthenticated(e.to_string()).into_response();
    }
    let payload = match parse(&raw) {
        Ok(p) => p,
        Err(e) => return ApiError::BadRequest(e).into_response(),
    };
    if let Err(e) = same_app_and_workspace(&slack, &payload) {
        tracing::warn!(error = %e, app = %payload.api_app_id, "slack: click from another app or workspace refused");
        unverified(e.clone()).await;
        return ApiError::Unauthenticated(e).into_response();
    }
    let (outcome, message) = handle(&state, &slack, &payload, &request_ts, &body_sha256).await;
    if let (Some(text), Some(url)) = (message, payload.response_url.as_deref()) {
        tell(&slack, url, &text);
    }
    (StatusCode::OK, [(OUTCOME_HEADER, outcome.as_str())]).into_response()
}

/// The JSON in the form field `payload`, read only after the signature matched.
fn parse(raw: &[u8]) -> Result<Payload, String> {
    let mut payloads = form_urlencoded::parse(raw).filter(|(k, _)| k == "payload").map(|(_, v)| v);
    let (Some(payload), None) = (payloads.next(), payloads.next()) else {
        return Err("expected exactly one form field `payload`".into());
    };
    serde_json::from_str(&payload).map_err(|e| format!("payload is not a Slack interaction: {e}"))
}

/// [`parse`] for the fuzz targets (`fuzz/`); not an API. The number of actions clicked.
#[doc(hidden)]
pub fn parse_payload(raw: &[u8]) -> Result<usize, String> {
    parse(raw).map(|p| p.actions.len())
}

/// The click must come from our app in our workspace, by one of its own members (a user
/// of another organisation in a shared channel is someone the directory does not vouch for).
fn same_app_and_workspace(slack: &Slack, p: &Payload) -> Result<(), String> {
    let config = slack.config();
    if p.api_app_id != config.app_id {
        return Err("request is for another Slack app".into());
    }
    let team = p.team.as_ref().map(|t| t.id.as_str()).unwrap_or_default();
    if team != config.team_id {
        return Err("request is from another Slack workspace".into());
    }
    if let Some(user_team) = p.user.as_ref().and_then(|u| u.team_id.as_deref()) {
        if user_team != config.team_id {
            return Err("the clicking user belongs to another Slack workspace".into());
        }
    }
    Ok(())
}

/// Decides a verified click; answers its outcome and what to tell the clicker.
async fn handle(
    state: &Arc<Callbacks>,
    slack: &Arc<Slack>,
    p: &Payload,
    request_ts: &str,
    body_sha256: &str,
) -> (Outcome, Option<String>) {
    if p.kind != "block_actions" {
        return (Outcome::Ignored, None);
    }
    let Some((action, vote)) = p.actions.iter().find_map(|a| vote_of(&a.action_id).map(|v| (a, v))) else {
        return (Outcome::Ignored, None);
    };
    let Some(approval_id) = action.value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
        return (Outcome::Ignored, None);
    };
    let user_id = p.user.as_ref().map(|u| u.id.trim()).unwrap_or_default();
    if user_id.is_empty() {
        return (Outcome::Refused, Some("Not recorded: Slack did not say who clicked.".into()));
    }
    let action_ts = action.action_ts.clone().unwrap_or_default();
    let click = format!("{action_ts}|{user_id}|{approval_id}|{}", action.action_id);
    if !slack.seen.first(&click, now_secs()) {
        return (Outcome::Duplicate, None);
    }
    let (reviewer, email) = match resolve(state, slack, user_id).await {
        Ok(found) => found,
        Err(why) => {
            if why.retryable {
                slack.seen.forget(&click);
            }
            return (Outcome::Refused, Some(format!("Not recorded: {}", why.message)));
        }
    };
    let container = p.container.as_ref();
    let evidence = json!({
        "slack_action_id": action.action_id,
        "slack_action_ts": action_ts,
        "slack_user_id": user_id,
        "slack_user_email": email,
        "slack_team_id": slack.config().team_id,
        "slack_api_app_id": p.api_app_id,
        "slack_channel_id": container.and_then(|c| c.channel_id.clone()),
        "slack_message_ts": container.and_then(|c| c.message_ts.clone()),
        "request_timestamp": request_ts,
        "body_sha256": body_sha256,
        "verified": "slack-v0-signature",
    });
    match step_up_check(state, slack, approval_id, &reviewer, vote, &evidence).await {
        StepUpCheck::Proceed => {}
        StepUpCheck::Refused(text) => return (Outcome::Refused, Some(text)),
        StepUpCheck::Unreadable => {
            // Nothing was recorded: Slack's retry must be tried again, not deduplicated.
            slack.seen.forget(&click);
            return (Outcome::Refused, Some("Not recorded: the approval could not be read; try again.".into()));
        }
    }
    let review = ReviewRequest {
        approval_id: approval_id.to_string(),
        vote,
        comment: None,
        reviewer: reviewer.clone(),
        channel: "slack",
        attempt_evidence: evidence.clone(),
        evidence,
    };
    match state.approvals.review(review).await {
        Ok(decided) => {
            let view = crate::channels::ApprovalView::of(&decided);
            tracing::info!(approval_id, reviewer = %reviewer.id, vote = vote.as_str(), "slack: review recorded");
            (
                Outcome::Recorded,
                Some(format!("Recorded your {} of `{approval_id}`: {}.", vote.as_str(), view.status_line())),
            )
        }
        Err(refusal) => {
            if matches!(refusal, Refusal::Store(_)) {
                // Nothing was recorded: Slack's retry must be tried again, not deduplicated.
                slack.seen.forget(&click);
                tracing::error!(approval_id, error = %refusal, "slack: review not recorded");
            } else {
                tracing::info!(approval_id, reviewer = %reviewer.id, refusal = %refusal, "slack: review refused");
            }
            (Outcome::Refused, Some(format!("Not recorded: {refusal}.")))
        }
    }
}

/// Whether a click may go on to the review.
enum StepUpCheck {
    Proceed,
    /// The approval needs step-up: told to the clicker.
    Refused(String),
    /// The approval could not be read; nothing was recorded.
    Unreadable,
}

/// An approval whose risk needs step-up is not decided in Slack, whoever clicks: the
/// attempt is recorded as refused and the clicker is sent to the console.
async fn step_up_check(
    state: &Arc<Callbacks>,
    slack: &Arc<Slack>,
    approval_id: &str,
    reviewer: &Reviewer,
    vote: Vote,
    evidence: &Value,
) -> StepUpCheck {
    let id = approval_id.to_string();
    let approval = match state.approvals.blocking(false, move |s| s.get(&id, crate::time::now_ms())).await {
        Ok(Ok(Some(a))) => a,
        // Unknown ids are refused by the review itself, with its own words.
        Ok(Ok(None)) => return StepUpCheck::Proceed,
        _ => return StepUpCheck::Unreadable,
    };
    let view = crate::channels::ApprovalView::of(&approval);
    if !slack.step_up_required(&view.risk) {
        return StepUpCheck::Proceed;
    }
    let attempt = Attempt::review(reviewer, approval_id, "slack", vote, "step-up-required", evidence.clone());
    state.approvals.record_refused(attempt).await;
    tracing::info!(approval_id, reviewer = %reviewer.id, risk = %view.risk,
        "slack: decision refused, the approval needs step-up in the console");
    let link = slack.console_link(&view);
    StepUpCheck::Refused(format!("Not recorded: {}", crate::channels::step_up::refusal_text(link.as_deref())))
}

fn vote_of(action_id: &str) -> Option<Vote> {
    match action_id {
        APPROVE_ACTION => Some(Vote::Approve),
        DENY_ACTION => Some(Vote::Deny),
        _ => None,
    }
}

/// Why a Slack user is not a reviewer.
struct Unresolved {
    message: String,
    /// A lookup failure (not a verdict): a retried click may succeed.
    retryable: bool,
}

/// The configured reviewer behind Slack user `user_id`: by user id (an alias in
/// `[[reviewers]]`), else by the e-mail `users.info` shows. The reviewer carries both
/// names as aliases, so separation of duties also matches an owner written either way.
async fn resolve(
    state: &Arc<Callbacks>,
    slack: &Arc<Slack>,
    user_id: &str,
) -> Result<(Reviewer, Option<String>), Unresolved> {
    if let Some(r) = state.reviewers.find(user_id) {
        return Ok((with_alias(r, user_id), None));
    }
    let lookup = {
        let (slack, user_id) = (slack.clone(), user_id.to_string());
        tokio::task::spawn_blocking(move || slack.api.user_email(&user_id))
    };
    let email = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(Ok(email))) => email,
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "slack: users.info failed");
            return Err(Unresolved {
                message: "your Slack profile could not be looked up; try again.".into(),
                retryable: true,
            });
        }
        Ok(Err(_)) | Err(_) => {
            return Err(Unresolved {
                message: "your Slack profile could not be looked up in time; try again.".into(),
                retryable: true,
            });
        }
    };
    let Some(email) = email else {
        return Err(Unresolved {
            message: "your Slack profile shows no e-mail to match a reviewer.".into(),
            retryable: false,
        });
    };
    match state.reviewers.find(&email) {
        Some(r) => Ok((with_alias(with_alias(r, user_id), &email), Some(email))),
        None => Err(Unresolved { message: "you are not a configured Airlock reviewer.".into(), retryable: false }),
    }
}

fn with_alias(mut r: Reviewer, alias: &str) -> Reviewer {
    let known = crate::lifecycle::normalize_identity(alias);
    if !r.identities().contains(&known) {
        r.aliases.push(alias.to_string());
    }
    r
}

/// Tells the clicker `text`, privately, through the click's `response_url` — only if it
/// is Slack's (the configured prefix): the payload is signed by Slack, but the service
/// must never be steered into POSTing elsewhere. Off the request: the 200 is not held.
fn tell(slack: &Arc<Slack>, response_url: &str, text: &str) {
    if !response_url.starts_with(&slack.config().response_url_prefix) {
        tracing::warn!("slack: response_url outside the configured prefix; not answered");
        return;
    }
    let (slack, url) = (slack.clone(), response_url.to_string());
    let message: Value = json!({"response_type": "ephemeral", "replace_original": false, "text": text});
    tokio::task::spawn_blocking(move || {
        if let Err(e) = slack.api.respond(&url, &message) {
            tracing::warn!(error = %e, "slack: could not answer the clicker");
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::channels::slack::SlackConfig;

    fn slack() -> (Slack, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "xoxb-test\n").unwrap();
        std::fs::write(dir.path().join("secret"), "signing-secret\n").unwrap();
        let config: SlackConfig = toml::from_str(&format!(
            "bot_token_file = {:?}\nsigning_secret_file = {:?}\napp_id = \"A1\"\nteam_id = \"T1\"\nchannels = [\"C1\"]\n",
            dir.path().join("token"),
            dir.path().join("secret")
        ))
        .unwrap();
        let store: Arc<dyn crate::store::Store> =
            Arc::new(crate::store::SqliteStore::open(&dir.path().join("db"), None, 100).unwrap());
        (Slack::new(&config, store).unwrap(), dir)
    }

    fn form(payload: &Value) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    fn click(app: &str, team: &str, user_team: &str) -> Value {
        json!({"type": "block_actions", "api_app_id": app, "team": {"id": team},
               "user": {"id": "U1", "team_id": user_team},
               "actions": [{"action_id": "approve", "value": "apr_1", "action_ts": "1.2"}]})
    }

    #[test]
    fn only_our_app_in_our_workspace_is_accepted() {
        let (slack, _dir) = slack();
        let ok = parse(&form(&click("A1", "T1", "T1"))).unwrap();
        assert!(same_app_and_workspace(&slack, &ok).is_ok());
        for (app, team, user_team) in [("A2", "T1", "T1"), ("A1", "T2", "T1"), ("A1", "T1", "T2"), ("", "", "")] {
            let p = parse(&form(&click(app, team, user_team))).unwrap();
            assert!(same_app_and_workspace(&slack, &p).is_err(), "{app} {team} {user_team}");
        }
    }

    #[test]
    fn exactly_one_payload_field_is_read() {
        assert!(parse(b"token=x").is_err());
        let mut two = form(&click("A1", "T1", "T1"));
        two.extend_from_slice(b"&");
        two.extend_from_slice(&form(&click("A2", "T1", "T1")));
        assert!(parse(&two).is_err(), "two payloads: which one was signed for what is ambiguous");
        assert!(parse(b"payload=not-json").is_err());
        assert_eq!(vote_of("approve"), Some(Vote::Approve));
        assert_eq!(vote_of("deny"), Some(Vote::Deny));
        assert_eq!(vote_of("other"), None);
    }

    #[test]
    fn with_alias_adds_a_name_once() {
        let r = Reviewer { id: "bob@corp.example".into(), groups: vec![], aliases: vec!["U1".into()] };
        assert_eq!(with_alias(r.clone(), "u1").aliases.len(), 1);
        assert_eq!(with_alias(r, "U2").aliases, vec!["U1".to_string(), "U2".to_string()]);
    }
}
