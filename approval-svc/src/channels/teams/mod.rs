//! PLACEHOLDER — being built. Teams channel.

use std::sync::Arc;

use axum::Router;
use serde::Deserialize;

use crate::api::AppState;
use crate::store::Store;

/// `[teams]` in airlock.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {}

/// The configured Teams channel.
pub struct Teams {}

impl Teams {
    /// From configuration (reads secrets).
    pub fn new(_config: &TeamsConfig, _store: Arc<dyn Store>) -> anyhow::Result<Teams> {
        Ok(Teams {})
    }
}

/// Inbound endpoints of the channel.
pub fn router() -> Router<AppState> {
    Router::new()
}

impl crate::channels::Notifier for Teams {
    fn channel(&self) -> &'static str {
        "teams"
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
