//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{ApiError, AppState};

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("../openapi.json");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state
        .blocking(false, |s| s.ping())
        .await?
        .map_err(|e| ApiError::Unavailable(format!("store not writable: {e}")))?;
    Ok(Json(json!({"status": "ready"})))
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let pending = state.blocking(false, |s| s.pending_count()).await?.ok();
    let commits = state.approvals.store.commits();
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.approvals.metrics.render(pending, commits),
    ))
}

/// Middleware: counts and times every request by method, matched route template and
/// status class (`airlock_http_requests_total`, `airlock_http_request_duration_seconds`),
/// runs it in an `http` span (so the handler's log lines carry method and route), and
/// writes one access-log line when it is answered — `debug` for probes and scrapes,
/// which would otherwise drown the rest.
pub async fn count_request(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let label = route.as_deref().unwrap_or("unmatched");
    let span = tracing::info_span!("http", method = %method, route = label);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.approvals.metrics.http_request(method.as_str(), route.as_deref(), status, elapsed);
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if matches!(label, "/healthz" | "/readyz" | "/metrics") {
            tracing::debug!(target: "airlock::access", status, elapsed_ms, "answered");
        } else {
            tracing::info!(target: "airlock::access", status, elapsed_ms, "answered");
        }
    });
    response
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::BTreeSet;

    use serde_json::Value;

    fn document() -> Value {
        serde_json::from_str(super::OPENAPI).unwrap()
    }

    #[test]
    fn every_operation_has_a_unique_id_and_a_declared_tag() {
        let doc = document();
        let declared: BTreeSet<&str> =
            doc["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        let mut ids = BTreeSet::new();
        for (path, methods) in doc["paths"].as_object().unwrap() {
            for (method, op) in methods.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                assert!(ids.insert(id), "operationId {id} is used twice");
                let tags = op["tags"].as_array().unwrap_or_else(|| panic!("{method} {path} has no tags"));
                assert!(!tags.is_empty(), "{method} {path} has no tags");
                for t in tags {
                    assert!(declared.contains(t.as_str().unwrap()), "{method} {path}: tag {t} is not declared");
                }
            }
        }
    }

    #[test]
    fn the_answers_the_handlers_give_are_documented() {
        let doc = document();
        let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
        // ApiError::TooManyPending from a create; ApiError::Internal from a failed mint.
        assert!(responses("/v1/gateway/approvals", "post")["429"].is_object());
        assert!(responses("/v1/gateway/approvals/{id}/redeem", "post")["500"].is_object());
        // api/reviewer.rs adds the notification status to the full approval.
        let notifications = &doc["components"]["schemas"]["Approval"]["properties"]["notifications"];
        assert_eq!(notifications["required"], serde_json::json!(["posted", "failing"]));
    }
}
