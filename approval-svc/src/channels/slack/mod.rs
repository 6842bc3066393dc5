//! PLACEHOLDER — being built. Slack channel.

use std::sync::Arc;

use axum::Router;
use serde::Deserialize;

use crate::api::AppState;
use crate::store::Store;

/// `[slack]` in airlock.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {}

/// The configured Slack channel.
pub struct Slack {}

impl Slack {
    /// From configuration (reads secrets).
    pub fn new(_config: &SlackConfig, _store: Arc<dyn Store>) -> anyhow::Result<Slack> {
        Ok(Slack {})
    }
}

/// Inbound endpoints of the channel.
pub fn router() -> Router<AppState> {
    Router::new()
}

impl crate::channels::Notifier for Slack {
    fn channel(&self) -> &'static str {
        "slack"
    }
    fn targets(&self) -> Vec<String> {
        Vec::new()
    }
    fn post(
        &self,
        _target: &str,
        _view: &crate::channels::ApprovalView,
    ) -> Result<serde_json::Value, crate::channels::DeliveryError> {
        Err(crate::channels::DeliveryError::Permanent("not built".into()))
    }
    fn update(
        &self,
        _target: &str,
        _posted: &serde_json::Value,
        _view: &crate::channels::ApprovalView,
    ) -> Result<(), crate::channels::DeliveryError> {
        Err(crate::channels::DeliveryError::Permanent("not built".into()))
    }
}
