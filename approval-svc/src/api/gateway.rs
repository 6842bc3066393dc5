//! The gateway-facing endpoints of `docs/protocol.md`: create-or-find (with long-poll
//! hold), redeem, and decision-log batches. Every request must carry a valid HMAC
//! signature; every answer to a signed request is signed, bound to it.

use std::time::Duration;

use airlock_protocol::approval::MAX_COMMENT_CHARS;
use airlock_protocol::decisions::{is_digest, MAX_DECISION_RECORDS};
use airlock_protocol::{ApprovalState, ApprovalStatus, CreateApproval, DecisionBatch, RedeemAnswer, RedeemRequest};
use axum::body::Bytes;
use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::{ApiError, AppState, RETRY_AFTER_SECS};
use crate::approvals::transitions::Mode;
use crate::approvals::Decisions;
use crate::approvals::{NotRedeemed, Redeem};
use crate::auth::gateway::{KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::credentials::MintContext;
use crate::lifecycle::{expires_at, Status};
use crate::problem::problem_response;
use crate::store::{AgentRef, Approval, CreateOutcome, NewApproval, RedeemRefusal};
use crate::time::{now_ms, now_secs, rfc3339};

/// Largest gateway request body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Longest a signed request may take to deliver its body (its timestamp is only good
/// for `MAX_SKEW_SECS` anyway).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/gateway/approvals", post(create_or_find))
        .route("/v1/gateway/approvals/find", post(find))
        .route("/v1/gateway/approvals/{id}/redeem", post(redeem))
        .route("/v1/gateway/decisions", post(decisions))
        .route_layer(middleware::from_fn_with_state(state, signed))
}

/// Verifies the request signature, runs the handler, signs the answer.
async fn signed(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str()).to_string();
    let refuse = |e: crate::auth::gateway::SignatureError| {
        state.approvals.metrics.gateway_auth_failed();
        tracing::warn!(reason = %e, path, "gateway request refused");
        ApiError::Unauthenticated(format!("gateway signature: {e}")).into_response()
    };
    // Header checks first: the body was read (up to 4 MiB, for as long as the sender
    // dribbled it) before anything was checked, so anyone reaching the port could pin
    // memory and connections without a key.
    if let Err(e) = state.gateway_keys.precheck(&parts.headers, now_secs()) {
        return refuse(e);
    }
    // A signed request still has to arrive within the signature window.
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return ApiError::BadRequest("body too large or unreadable".into()).into_response(),
        Err(_) => return ApiError::BadRequest("body not received in time".into()).into_response(),
    };
    let request_signature =
        match state.gateway_keys.verify(&parts.headers, parts.method.as_str(), &path, &bytes, now_secs()) {
            Ok(sig) => sig,
            Err(e) => return refuse(e),
        };
    // A redeem answer carries a credential: the same signed redeem replayed inside the
    // timestamp window (by anyone who saw it on the wire) must not mint another one under
    // a `window:` reuse rule. Creates are idempotent and decision batches harmless.
    // The store remembers the signature of every redeem that minted, in the redeem's own
    // transaction, so a replay is refused after a restart or at another replica too; it
    // is asked here so that a replay mints nothing, not even a credential thrown away.
    // The memory in `guards` refuses a concurrent copy still in flight: marked on entry,
    // forgotten again when the redeem minted nothing (a failed mint may be retried).
    let is_redeem = path.ends_with("/redeem");
    if is_redeem {
        let first = state.guards.first_use(&request_signature, now_secs());
        let key = request_signature.clone();
        let replayed = state
            .blocking(false, move |s| s.redeem_replayed(&key, now_ms()))
            .await
            .and_then(|r| r.map_err(ApiError::from));
        let refusal = match replayed {
            Ok(seen) if first && !seen => None,
            Ok(_) => {
                state.approvals.metrics.redeem_failed();
                tracing::warn!(path, "replayed redeem request refused");
                Some((StatusCode::CONFLICT, Json(RedeemAnswer::refused("consumed"))).into_response())
            }
            // Fail closed: without the store's word the redeem is not attempted.
            Err(e) => Some(e.into_response()),
        };
        if let Some(answer) = refusal {
            if first {
                state.guards.forget(&request_signature);
            }
            return sign_answer(&state, &request_signature, answer).await;
        }
    }
    parts.extensions.insert(RequestSignature(request_signature.clone()));
    let answer = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if is_redeem && answer.status() != StatusCode::OK {
        state.guards.forget(&request_signature);
    }
    sign_answer(&state, &request_signature, answer).await
}

/// The verified signature of the request being handled (the redeem's replay key).
#[derive(Clone)]
struct RequestSignature(String);

/// Signs `answer`, bound to the request's signature.
async fn sign_answer(state: &AppState, request_signature: &str, answer: Response) -> Response {
    let (mut parts, body) = answer.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_else(|_| Bytes::new());
    if let Some(sig) = state.gateway_keys.sign_answer(parts.status.as_u16(), request_signature, &body, now_secs()) {
        for (name, value) in
            [(KEY_ID_HEADER, sig.key_id), (TIMESTAMP_HEADER, sig.timestamp), (SIGNATURE_HEADER, sig.signature)]
        {
            if let Ok(v) = HeaderValue::from_str(&value) {
                parts.headers.insert(name, v);
            }
        }
    }
    Response::from_parts(parts, Body::from(body))
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

/// A fresh approval id: `apr_` + 24 lower-case hex characters.
pub fn new_approval_id() -> Result<String, ApiError> {
    let mut buf = [0u8; 12];
    getrandom::getrandom(&mut buf).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(format!("apr_{}", hex::encode(buf)))
}

async fn create_or_find(State(state): State<AppState>, bytes: Bytes) -> Result<Response, ApiError> {
    answer_create(state, bytes, Mode::CreateOrFind).await
}

/// A find: the create-or-find body without `request.body`, checked exactly as a create
/// is, answered as a create would be when an approval answers the action, and 404
/// (`approval-not-found`) where a create would create: the gateway then sends the full
/// create, whose body is what reviewers are shown. So a repeated request does not carry
/// its body again (`docs/protocol.md`, "Finding an existing approval").
async fn find(State(state): State<AppState>, bytes: Bytes) -> Result<Response, ApiError> {
    answer_create(state, bytes, Mode::FindOnly).await
}

async fn answer_create(state: AppState, bytes: Bytes, mode: Mode) -> Result<Response, ApiError> {
    let raw: Value = parse(&bytes)?;
    let body: CreateApproval = parse(&bytes)?;
    if body.decision_id.is_empty() || body.agent.id.is_empty() {
        return Err(ApiError::BadRequest("decision_id and agent.id are required".into()));
    }
    if !is_digest(&body.digest) {
        return Err(ApiError::BadRequest("digest must be lower-case hex SHA-256".into()));
    }
    let now = now_ms();
    let reuse = crate::lifecycle::reuse(body.policy.reuse.as_deref(), state.limits).map_err(ApiError::PolicyRefused)?;
    let deadline = expires_at(now, body.policy.expires_in.as_deref(), state.limits).map_err(ApiError::BadRequest)?;
    if let Some(name) = &body.policy.credential {
        let request = serde_json::from_value(body.request.clone()).ok();
        match state.credentials.check(name, request.as_ref()) {
            Ok(()) => {}
            Err(None) => {
                return Err(ApiError::BadRequest(format!(
                    "policy names credential profile {name:?}, which is not configured"
                )))
            }
            Err(Some(why)) => return Err(ApiError::PolicyRefused(why)),
        }
    }
    let (groups, asked_quorum) = body
        .policy
        .approvers
        .as_ref()
        .map_or((&[][..], None), |a| (&a.groups[..], a.quorum.map(|q| u32::try_from(q).unwrap_or(u32::MAX))));
    let quorum = crate::lifecycle::quorum(asked_quorum, state.max_quorum, state.reviewers.known_members(groups))
        .map_err(ApiError::PolicyRefused)?;
    let agent = body.agent;
    let new = NewApproval {
        id: new_approval_id()?,
        agent: AgentRef { id: agent.id, source: agent.source, owner: agent.owner, acts_for: agent.acts_for },
        digest: body.digest,
        quorum,
        reuse,
        credential: body.policy.credential,
        expires_at_ms: deadline,
        create: raw,
    };
    let asked = body.approval_id.clone();
    let body_agent = new.agent.id.clone();
    let outcome = match mode {
        Mode::CreateOrFind => state.approvals.create_or_find(new, asked, now).await?,
        // A find writes nothing; it reads through the blocking pool like other lookups.
        Mode::FindOnly => state.blocking(true, move |s| s.find(new, asked, now)).await??,
    };
    let approval = match outcome {
        CreateOutcome::Mismatch => {
            let mut answer = ApprovalState::new(ApprovalStatus::Mismatch);
            answer.approval_id = body.approval_id;
            answer.detail = Some("the approval does not belong to this agent and action".into());
            return Ok((StatusCode::OK, Json(answer)).into_response());
        }
        CreateOutcome::Created(a) => {
            state.approvals.metrics.created();
            tracing::info!(approval_id = %a.id, agent = %a.agent, "approval created");
            a
        }
        CreateOutcome::Found(a) => a,
        CreateOutcome::Absent => {
            return Ok(problem_response(
                StatusCode::NOT_FOUND,
                "approval-not-found",
                "No approval for this action",
                "No approval answers this agent and action; send the full create-or-find.",
            ))
        }
        CreateOutcome::RecentlyDenied(a) => {
            state.approvals.metrics.retry_denied();
            tracing::info!(approval_id = %a.id, agent = %a.agent, "identical retry answered from a recent denial");
            a
        }
        CreateOutcome::TooManyPending { limit } => {
            state.approvals.metrics.create_refused();
            tracing::warn!(agent = %body_agent, limit, "approval refused: agent has too many pending approvals");
            return Err(ApiError::TooManyPending(limit));
        }
    };
    let hold = Duration::from_millis(body.hold_ms).min(state.max_hold);
    // Long-polls are bounded (`gateway.max_concurrent_holds`): with every slot taken the
    // create answers at once and the filter replies `approval-pending` (retry later).
    let permit = if approval.status == Status::Pending && !hold.is_zero() {
        state.guards.holds.clone().try_acquire_owned().ok()
    } else {
        None
    };
    let approval = match permit {
        Some(_permit) => hold_until_decided(&state, &approval.id, hold).await?,
        None => approval,
    };
    let window = state.approvals.store.denied_retry_window();
    Ok((StatusCode::OK, Json(create_answer(&approval, window, now_ms()))).into_response())
}

/// The create-or-find answer. A denied or cancelled one also says why (the denying
/// reviewer's comment) and until when an identical retry gets this same answer
/// (`denied_until`, absent once the retry would ask reviewers again).
fn create_answer(a: &Approval, denied_retry_window: Duration, now_ms: i64) -> ApprovalState {
    let detail = match a.status {
        Status::Pending => "Waiting for reviewers.",
        Status::Approved | Status::Redeemed => "Approved.",
        Status::Denied => "Denied by a reviewer.",
        Status::Expired => "The approval passed its deadline.",
        Status::Cancelled => "The approval was cancelled.",
    };
    let status = match a.status {
        Status::Pending => ApprovalStatus::Pending,
        Status::Approved | Status::Redeemed => ApprovalStatus::Approved,
        Status::Denied => ApprovalStatus::Denied,
        Status::Expired => ApprovalStatus::Expired,
        Status::Cancelled => ApprovalStatus::Cancelled,
    };
    let mut answer = ApprovalState::new(status);
    answer.approval_id = Some(a.id.clone());
    answer.retry_after = Some(RETRY_AFTER_SECS);
    answer.expires_at = Some(rfc3339(a.expires_ms));
    answer.detail = Some(detail.to_string());
    if matches!(a.status, Status::Denied | Status::Cancelled) {
        let comment = a
            .reviews
            .iter()
            .rev()
            .filter(|r| r.vote == crate::lifecycle::Vote::Deny)
            .find_map(|r| r.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()));
        let until = a
            .decided_ms
            .map(|d| d.saturating_add(crate::time::duration_ms(denied_retry_window)))
            .filter(|u| !denied_retry_window.is_zero() && *u > now_ms);
        answer.comment = comment.map(|c| c.chars().take(MAX_COMMENT_CHARS).collect());
        answer.denied_until = until.map(rfc3339);
    }
    answer
}

/// Long-poll: re-reads the approval whenever something changes, until it is no longer
/// pending or `hold` passes (its own deadline wakes it too).
async fn hold_until_decided(state: &AppState, id: &str, hold: Duration) -> Result<Approval, ApiError> {
    let give_up = tokio::time::Instant::now() + hold;
    let mut changes = state.approvals.changes.subscribe();
    loop {
        changes.borrow_and_update();
        let owned = id.to_string();
        let current = state.blocking(false, move |s| s.get(&owned, now_ms())).await??.ok_or(ApiError::NotFound)?;
        let now = tokio::time::Instant::now();
        if current.status != Status::Pending || now >= give_up {
            if current.status == Status::Expired {
                state.approvals.metrics.outcome("expired");
            }
            return Ok(current);
        }
        let to_deadline = u64::try_from(current.expires_ms - now_ms()).unwrap_or(0).max(5);
        let wake = give_up.min(now + Duration::from_millis(to_deadline));
        let _ = tokio::time::timeout_at(wake, changes.changed()).await;
    }
}

fn refusal(r: RedeemRefusal) -> Response {
    let status = if r == RedeemRefusal::Expired { StatusCode::GONE } else { StatusCode::CONFLICT };
    (status, Json(RedeemAnswer::refused(r.as_str()))).into_response()
}

async fn redeem(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(RequestSignature(signature)): Extension<RequestSignature>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let body: RedeemRequest = parse(&bytes)?;
    let ask =
        Redeem { approval_id: id, decision_id: body.decision_id, agent: body.agent, digest: body.digest, signature };
    let credentials = state.credentials.clone();
    let mint = move |a: &Approval| {
        let ctx = MintContext {
            approval_id: a.id.clone(),
            agent: a.agent.clone(),
            host: a.host(),
            digest: a.digest.clone(),
            approvers: a.approvers(),
            request: a.create.get("request").cloned().and_then(|r| serde_json::from_value(r).ok()),
        };
        let minted = credentials.mint(a.credential.as_deref(), &ctx, now_ms()).map_err(|e| e.to_string())?;
        let audit = minted.audit.clone();
        Ok((minted, audit))
    };
    match state.approvals.redeem(ask, mint).await {
        Ok((a, minted)) => {
            let expires = minted.expires_at_ms.or(a.usable_until_ms).unwrap_or(a.expires_ms);
            Ok((StatusCode::OK, Json(RedeemAnswer::redeemed(a.id, minted.headers, rfc3339(expires)))).into_response())
        }
        Err(NotRedeemed::Refused(r)) => Ok(refusal(r)),
        Err(NotRedeemed::Mint(e)) => Err(ApiError::Internal(e)),
        Err(NotRedeemed::Store(e)) => Err(e.into()),
    }
}

/// Appends a batch once: the request's signature is its id (the filter sends none), so
/// a replay of the signed request — within the signature window, across restarts —
/// appends nothing and is answered as accepted. A batch the filter re-signs to retry
/// is a new request and is appended again (at-least-once delivery).
async fn decisions(
    State(state): State<AppState>,
    Extension(RequestSignature(signature)): Extension<RequestSignature>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let batch: DecisionBatch = parse(&bytes)?;
    if batch.records.len() > MAX_DECISION_RECORDS {
        return Err(ApiError::BadRequest(format!(
            "a batch carries at most {MAX_DECISION_RECORDS} records, this one {}",
            batch.records.len()
        )));
    }
    let mut records = Vec::with_capacity(batch.records.len());
    for (i, r) in batch.records.iter().enumerate() {
        r.check().map_err(|e| ApiError::BadRequest(format!("records[{i}]: {e}")))?;
        records.push(serde_json::to_value(r).map_err(|e| ApiError::Internal(e.to_string()))?);
    }
    let dropped = batch.dropped;
    let appended = state.blocking(true, move |s| s.append_decisions(&signature, records, dropped, now_ms())).await??;
    let Some(accepted) = appended else {
        tracing::warn!("replayed decision batch: nothing appended");
        return Ok((StatusCode::ACCEPTED, Json(json!({"accepted": 0, "dropped": 0, "replayed": true}))).into_response());
    };
    for r in &batch.records {
        state.approvals.metrics.decision(r.effect.as_str());
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": accepted, "dropped": dropped}))).into_response())
}

/// The gateway endpoints' request bodies read as the handlers read them, for the fuzz
/// targets (`fuzz/`); not an API.
#[doc(hidden)]
pub mod bodies {
    use super::*;

    /// A create-or-find body, read into the handler's types.
    pub fn create(bytes: &[u8]) -> Result<(), String> {
        let bytes = Bytes::copy_from_slice(bytes);
        parse::<Value>(&bytes).map_err(|e| e.to_string())?;
        let body: CreateApproval = parse(&bytes).map_err(|e| e.to_string())?;
        if !is_digest(&body.digest) {
            return Err("digest must be lower-case hex SHA-256".into());
        }
        Ok(())
    }

    /// A redeem body.
    pub fn redeem(bytes: &[u8]) -> Result<(), String> {
        parse::<RedeemRequest>(&Bytes::copy_from_slice(bytes)).map(|_| ()).map_err(|e| e.to_string())
    }

    /// A decision-log batch checked record by record; the records as the audit trail
    /// stores them.
    pub fn decisions(bytes: &[u8]) -> Result<Vec<Value>, String> {
        let batch: DecisionBatch = parse(&Bytes::copy_from_slice(bytes)).map_err(|e| e.to_string())?;
        if batch.records.len() > MAX_DECISION_RECORDS {
            return Err("too many records".into());
        }
        let mut out = Vec::with_capacity(batch.records.len());
        for r in &batch.records {
            r.check()?;
            out.push(serde_json::to_value(r).map_err(|e| e.to_string())?);
        }
        Ok(out)
    }
}
