//! PLACEHOLDER — being built. Signed webhook channel.

use serde::Deserialize;

/// `[[webhooks]]` in airlock.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {}

/// One configured webhook.
pub struct Webhook {}

impl Webhook {
    /// From configuration (reads the signing secret).
    pub fn new(_config: &WebhookConfig) -> anyhow::Result<Webhook> {
        Ok(Webhook {})
    }
}

impl crate::channels::Notifier for Webhook {
    fn channel(&self) -> &'static str {
        "webhook"
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
