//! The reviewer API: list, show, approve, deny, cancel. Authenticated by `Authorization: Bearer`
//! (API key or OIDC token).

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{views, ApiError, AppState};
use crate::approvals::Decisions;
use crate::approvals::ReviewRequest;
use crate::auth::reviewer::AuthError;
use crate::lifecycle::{Reviewer, Status, Vote};
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/approvals", get(list))
        .route("/v1/approvals/{id}", get(show))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/deny", post(deny))
        .route("/v1/approvals/{id}/cancel", post(cancel))
}

/// The authenticated reviewer of a request.
pub struct Authenticated(pub Reviewer);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        match state.reviewers.authenticate(header).await {
            Ok(r) => Ok(Authenticated(r)),
            Err(AuthError::Unavailable(e)) => Err(ApiError::Unavailable(e)),
            Err(e) => Err(ApiError::Unauthenticated(e.to_string())),
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    _who: Authenticated,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(s.parse::<Status>().map_err(ApiError::BadRequest)?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let approvals = state.blocking(false, move |s| s.list(status, limit, now_ms())).await??;
    Ok(Json(json!({"approvals": approvals.iter().map(views::summary).collect::<Vec<_>>()})))
}

async fn show(
    State(state): State<AppState>,
    _who: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (a, notifications) = state
        .blocking(false, move |s| {
            let a = s.get(&id, now_ms())?;
            let notifications = s.notification_status(&id)?;
            Ok::<_, crate::store::StoreError>((a, notifications))
        })
        .await??;
    let mut view = views::detail(&a.ok_or(ApiError::NotFound)?);
    // Where the reviewer notifications stand: a failing channel is visible here, not
    // only in logs.
    view["notifications"] = notifications;
    Ok(Json(view))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    #[serde(default)]
    comment: Option<String>,
}

async fn approve(
    state: State<AppState>,
    who: Authenticated,
    id: Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    review(state, who, id, body, Vote::Approve).await
}

async fn deny(
    state: State<AppState>,
    who: Authenticated,
    id: Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    review(state, who, id, body, Vote::Deny).await
}

async fn review(
    State(state): State<AppState>,
    Authenticated(reviewer): Authenticated,
    Path(id): Path<String>,
    body: Bytes,
    vote: Vote,
) -> Result<Json<Value>, ApiError> {
    let body: ReviewBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReviewBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))?
    };
    let attempt_evidence = json!({"groups": reviewer.groups, "aliases": reviewer.aliases});
    let request = ReviewRequest {
        approval_id: id,
        vote,
        comment: body.comment,
        reviewer,
        channel: "api",
        evidence: Value::Null,
        attempt_evidence,
    };
    let decided = state.approvals.review(request).await?;
    Ok(Json(views::detail(&decided)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: String,
}

/// The agent's owner calls off a pending approval, saying why.
async fn cancel(
    State(state): State<AppState>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: CancelBody = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
    let cancelled = state.approvals.cancel(id, who, body.reason).await?;
    Ok(Json(views::detail(&cancelled)))
}

/// An approve/deny body read as [`review`] reads it, for the fuzz targets (`fuzz/`); not
/// an API. The comment it carries.
#[doc(hidden)]
pub fn review_comment(body: &[u8]) -> Result<Option<String>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<ReviewBody>(body).map(|b| b.comment).map_err(|e| e.to_string())
}
