//! History: decided approvals (each page shows its audit records), and the evidence
//! export as a download for auditors.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::pages::{render, HistoryPage, MessagePage, Row};
use super::web::{session, to_login};
use super::Console;
use crate::approvals::Decisions;
use crate::lifecycle::Status;
use crate::time::now_ms;

/// Most approvals read for the history page.
const MAX_HISTORY: u32 = 500;

/// `GET /console/history`.
pub async fn page(State(console): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    let Some((_, session)) = session(&console, &headers) else {
        return to_login(uri.path());
    };
    let now = now_ms();
    let listed = console.approvals.blocking(false, move |s| s.list(None, MAX_HISTORY, now)).await;
    let approvals = match listed {
        Ok(Ok(a)) => a,
        Ok(Err(e)) | Err(e) => {
            tracing::error!(error = %e, "console: reading the history failed");
            let mut page = MessagePage::anonymous(
                "History unavailable",
                "The approvals could not be read. Try again shortly.",
                None,
            );
            page.who = session.reviewer.id.clone();
            page.csrf = session.csrf.clone();
            return render(StatusCode::SERVICE_UNAVAILABLE, &page);
        }
    };
    let mut rows: Vec<_> = approvals.iter().filter(|a| a.status != Status::Pending).collect();
    rows.sort_by_key(|a| std::cmp::Reverse(a.decided_ms.unwrap_or(a.created_ms)));
    let page = HistoryPage {
        who: session.reviewer.id.clone(),
        csrf: session.csrf.clone(),
        rows: rows.into_iter().map(|a| Row::of(a, now, false)).collect(),
    };
    render(StatusCode::OK, &page)
}

/// `GET /console/history/evidence.tar`: `airlock audit export` as one download.
pub async fn evidence(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session(&console, &headers) else {
        return to_login("/console/history");
    };
    let source = console.audit.clone();
    match tokio::task::spawn_blocking(move || source.evidence_tar()).await {
        Ok(Ok(tar)) => {
            tracing::info!(reviewer = %session.reviewer.id, bytes = tar.len(), "console: evidence export downloaded");
            let name = format!("attachment; filename=\"airlock-evidence-{}.tar\"", crate::time::now_secs());
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-tar".to_string()), (header::CONTENT_DISPOSITION, name)],
                tar,
            )
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "console: evidence export failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "console: evidence export failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
