//! The reviewers' web console, served by `airlock serve` under `/console/`: sign-in with
//! OpenID Connect (code + PKCE) against the `[oidc]` issuer, an inbox of the approvals
//! the reviewer may decide (live over server-sent events), the approval page (exactly
//! what the agent intends, quorum, a diff against the last approved action of the same
//! agent and rule, approve/deny), step-up sign-in for risky approvals, and history with
//! the audit records and the evidence export.
//!
//! Pages are rendered on the server (askama templates in `approval-svc/templates/
//! console/`); the only script is a static file that refreshes the inbox. Decisions go
//! through the use cases ([`crate::approvals`]) like the API's and the chat channels'.

pub mod assets;
pub mod audit_trail;
pub mod cancel;
pub mod config;
pub mod diff;
pub mod eligibility;
pub mod events;
pub mod history;
pub mod inbox;
pub mod login;
pub mod pages;
pub mod review;
pub mod session;
pub mod signin;
pub mod web;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::approvals::Approvals;
use crate::auth::reviewer::ReviewerDirectory;
use crate::store::Approval;
pub use audit_trail::AuditSource;
pub use config::ConsoleConfig;
use session::Sessions;
use signin::SignIn;

/// Everything the console's handlers need.
pub struct Console {
    /// The use cases (and the store they read).
    pub approvals: Arc<Approvals>,
    /// `[console]`.
    pub config: ConsoleConfig,
    /// The OIDC client.
    pub signin: SignIn,
    /// Sessions and sign-ins in progress.
    pub sessions: Sessions,
    /// Where the audit trail is read and exported from.
    pub audit: AuditSource,
}

impl Console {
    /// The console of `config`, or `None` when it is turned off. Fails when it is on
    /// but `[oidc]` is missing.
    pub fn new(
        config: &ConsoleConfig,
        approvals: Arc<Approvals>,
        reviewers: ReviewerDirectory,
        client_secret: Option<String>,
        audit: AuditSource,
    ) -> anyhow::Result<Option<Arc<Console>>> {
        if !config.enabled {
            return Ok(None);
        }
        let signin = SignIn::new(config, reviewers, client_secret)
            .ok_or_else(|| anyhow::anyhow!("console: needs an [oidc] section (the issuer reviewers sign in at)"))?;
        Ok(Some(Arc::new(Console {
            approvals,
            config: config.clone(),
            signin,
            sessions: Sessions::new(config.session_ttl),
            audit,
        })))
    }
}

/// Whether deciding `approval` needs a recent sign-in (its risk is one of
/// `step_up_risks`): chat channels open the console ([`approval_url`]) for these
/// instead of deciding in chat, where no fresh sign-in can be asked for.
pub fn requires_step_up(approval: &Approval, config: &ConsoleConfig) -> bool {
    let risk = approval.create.pointer("/policy/risk").and_then(serde_json::Value::as_str).unwrap_or_default();
    config.enabled && config.step_up_for(risk)
}

/// The console page of approval `approval_id`, as a browser reaches it.
pub fn approval_url(config: &ConsoleConfig, approval_id: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(approval_id.as_bytes()).collect();
    format!("{}/console/approvals/{id}", config.base_url())
}

/// The console's routes, with their security headers.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/console", get(inbox::page))
        .route("/console/", get(inbox::page))
        .route("/console/inbox/rows", get(inbox::rows_fragment))
        .route("/console/events", get(events::stream))
        .route("/console/approvals/{id}", get(review::page))
        .route("/console/approvals/{id}/decide", post(review::decide))
        .route("/console/approvals/{id}/cancel", post(cancel::cancel))
        .route("/console/history", get(history::page))
        .route("/console/history/evidence.tar", get(history::evidence))
        .route("/console/login", get(login::start))
        .route("/console/callback", get(login::callback))
        .route("/console/logout", post(login::logout))
        .route("/console/static/{file}", get(assets::serve))
        .layer(axum::middleware::map_response(web::security_headers))
        .with_state(console)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::lifecycle::Status;
    use serde_json::json;

    fn approval(risk: &str) -> Approval {
        Approval {
            id: "apr_1".into(),
            status: Status::Pending,
            agent: "a".into(),
            digest: "d".into(),
            created_ms: 0,
            expires_ms: 1,
            decided_ms: None,
            usable_until_ms: None,
            redeem_count: 0,
            quorum: 1,
            reuse: "once".into(),
            credential: None,
            create: json!({"policy": {"risk": risk}}),
            reviews: vec![],
        }
    }

    #[test]
    fn step_up_follows_the_configured_risks_and_the_url_names_the_approval() {
        let mut c: ConsoleConfig = toml::from_str(
            "public_url = \"https://airlock.example/\"\nclient_id = \"c\"\nstep_up_risks = [\"critical\", \"high\"]",
        )
        .unwrap();
        assert!(requires_step_up(&approval("critical"), &c));
        assert!(requires_step_up(&approval("HIGH"), &c));
        assert!(!requires_step_up(&approval("low"), &c));
        assert!(!requires_step_up(&approval(""), &c));
        assert_eq!(approval_url(&c, "apr_1"), "https://airlock.example/console/approvals/apr_1");
        c.enabled = false;
        assert!(!requires_step_up(&approval("critical"), &c), "no console: nothing to send reviewers to");
    }
}
