//! `GET /console/events`: server-sent events telling the inbox page to refresh. An
//! `inbox` event goes out when the pending approvals or where the reviewer stands on them
//! change (new, decided, expired, voted on). The stream wakes on every committed decision or expiry
//! (the use cases' change signal) and at least every [`POLL`] — approvals created by the
//! gateway do not ring that signal, and a console of a few reviewers re-reading pending
//! approvals every couple of seconds costs nothing next to the long-polls that ring it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::watch;

use super::inbox::pending;
use super::web::session;
use super::Console;

/// Longest time between two looks at the inbox.
const POLL: Duration = Duration::from_secs(2);

struct Watch {
    console: Arc<Console>,
    token: String,
    changes: watch::Receiver<u64>,
    last: Option<String>,
}

/// `GET /console/events` (401 when signed out).
pub async fn stream(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let Some((token, _)) = session(&console, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let changes = console.approvals.changes.subscribe();
    let start = Watch { console, token, changes, last: None };
    let events = stream::unfold(start, |mut w| async move {
        loop {
            // Signed out or expired: the stream ends (the page's script then stops).
            let session = w.console.sessions.get(&w.token)?;
            if let Ok(all) = pending(&w.console, &session).await {
                let fingerprint: String = all
                    .iter()
                    .map(|(a, s)| format!("{}:{}:{}:{s:?};", a.id, a.status.as_str(), a.reviews.len()))
                    .collect();
                // The first look is sent too: something may have changed between the
                // page's rendering and this stream's start.
                if w.last.as_ref() != Some(&fingerprint) {
                    w.last = Some(fingerprint);
                    let mine = all.iter().filter(|(_, s)| s.in_inbox()).count();
                    let event = Event::default().event("inbox").data(mine.to_string());
                    return Some((Ok::<_, Infallible>(event), w));
                }
            }
            tokio::select! {
                changed = w.changes.changed() => if changed.is_err() { tokio::time::sleep(POLL).await },
                () = tokio::time::sleep(POLL) => {},
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}
