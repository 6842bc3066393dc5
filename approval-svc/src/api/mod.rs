//! The HTTP API: `app(state)` builds the router; handlers live with their audience
//! (gateway, reviewer, ops).

pub mod bundles;
mod gateway;
pub mod ops;
mod reviewer;
mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::approvals::Approvals;
use crate::auth::gateway::GatewayKeys;
use crate::auth::reviewer::ReviewerDirectory;
use crate::credentials::Credentials;
use crate::lifecycle::ExpiryLimits;
use crate::store::Store;

pub use crate::config::DEFAULT_MAX_HOLDS;
pub use crate::problem::{self, ApiError};

/// Request bodies read as the handlers read them: entry points for the fuzz targets.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::gateway::bodies as gateway;
    pub use super::reviewer::review_comment;
}

/// `retry_after` (seconds) in pending answers.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Everything a handler needs.
pub struct State {
    /// The use cases (and the store, counters and change signal they share).
    pub approvals: Arc<Approvals>,
    /// Gateway HMAC keys.
    pub gateway_keys: GatewayKeys,
    /// Reviewer authentication.
    pub reviewers: ReviewerDirectory,
    /// Credential profiles.
    pub credentials: Credentials,
    /// Deadline and reuse-window bounds.
    pub limits: ExpiryLimits,
    /// Largest quorum a policy may ask for (`approvals.max_quorum`).
    pub max_quorum: u32,
    /// Longest long-poll.
    pub max_hold: Duration,
    /// Replay cache and long-poll bound for the gateway endpoints.
    pub guards: GatewayGuards,
    /// Teams, Slack and webhooks (none when not configured).
    pub channels: crate::channels::Channels,
    /// Where `GET /v1/bundles/{name}` serves policy bundles from (off when `None`).
    pub bundles_dir: Option<std::path::PathBuf>,
}

/// Per-process protections of the gateway endpoints.
pub struct GatewayGuards {
    /// Long-poll slots: every held create takes one. Without a bound, a flood of pending
    /// requests through the gateway kept unbounded tasks open, each re-reading the store
    /// on every committed change.
    pub holds: Arc<tokio::sync::Semaphore>,
    /// Redeem request signatures seen within the signature window (signature → seen at,
    /// Unix seconds): refuses a copy of a redeem still in flight. The store keeps the
    /// signatures of redeems that minted, which is what refuses a replay for good.
    pub seen_redeems: crate::auth::replay::RecentlySeen,
}

impl GatewayGuards {
    /// Guards allowing `max_holds` concurrent long-polls.
    pub fn new(max_holds: usize) -> GatewayGuards {
        GatewayGuards {
            holds: Arc::new(tokio::sync::Semaphore::new(max_holds)),
            // Twice the signature window: older requests fail the timestamp check anyway.
            seen_redeems: crate::auth::replay::RecentlySeen::exact(2 * crate::auth::gateway::MAX_SKEW_SECS, 1024),
        }
    }

    /// Records `signature`; false if it was already seen (a replay).
    pub fn first_use(&self, signature: &str, now_secs: i64) -> bool {
        self.seen_redeems.first(signature, now_secs)
    }

    /// Forgets `signature`: a redeem that minted nothing may be retried as sent.
    pub fn forget(&self, signature: &str) {
        self.seen_redeems.forget(signature);
    }
}

impl Default for GatewayGuards {
    fn default() -> Self {
        GatewayGuards::new(DEFAULT_MAX_HOLDS)
    }
}

/// Shared handler state.
pub type AppState = Arc<State>;

impl State {
    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.approvals.store
    }

    /// Runs a blocking store call off the async runtime, timing it as an audit append
    /// when `audited`.
    pub async fn blocking<T: Send + 'static>(
        &self,
        audited: bool,
        f: impl FnOnce(&dyn Store) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        Ok(self.approvals.blocking(audited, f).await?)
    }
}

/// Every routed (method, path), as documented in `src/openapi.json`.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/gateway/approvals"),
    ("post", "/v1/gateway/approvals/find"),
    ("post", "/v1/gateway/approvals/{id}/redeem"),
    ("post", "/v1/gateway/decisions"),
    ("get", "/v1/approvals"),
    ("get", "/v1/approvals/{id}"),
    ("post", "/v1/approvals/{id}/approve"),
    ("post", "/v1/approvals/{id}/deny"),
    ("post", "/v1/approvals/{id}/cancel"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// Chat callback endpoints, as documented in `src/openapi.json`; each answers 404 while
/// its channel is not configured.
pub const CHAT_ROUTES: &[(&str, &str)] = &[("post", "/teams/messages"), ("post", "/slack/interactivity")];

/// Routes that answer 404 until configured (`[bundles] directory`).
pub const OPTIONAL_ROUTES: &[(&str, &str)] = &[("get", "/v1/bundles/{name}")];

/// The whole API.
pub fn app(state: AppState) -> Router {
    // The chat callbacks reach the use cases, not this state.
    let callbacks = Arc::new(crate::channels::Callbacks {
        approvals: state.approvals.clone(),
        reviewers: state.reviewers.clone(),
        teams: state.channels.teams.clone(),
        slack: state.channels.slack.clone(),
    });
    Router::new()
        .merge(gateway::router(state.clone()))
        .merge(reviewer::router())
        .merge(ops::router())
        .merge(bundles::router())
        .merge(crate::channels::teams::router().with_state(callbacks.clone()))
        .merge(crate::channels::slack::router().with_state(callbacks))
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::count_request))
        .with_state(state)
}
