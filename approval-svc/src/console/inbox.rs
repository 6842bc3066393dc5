//! The inbox: pending approvals the signed-in reviewer may decide (now, or after a
//! fresh sign-in), filtered by agent, rule and risk; with `all=1`, every pending approval,
//! those they may not decide marked (an owner follows their agent's requests there).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::eligibility::{standing, Standing};
use super::pages::{render, risk_of, rule_of, Choice, InboxPage, InboxRows, MessagePage, Row};
use super::session::Session;
use super::web::{session, to_login};
use super::Console;
use crate::approvals::Decisions;
use crate::lifecycle::Status;
use crate::store::Approval;
use crate::time::{now_ms, now_secs};

/// Most pending approvals read for one inbox.
const MAX_PENDING: u32 = 500;

/// The filters (empty: all).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Filters {
    /// Agent id.
    #[serde(default)]
    pub agent: String,
    /// Policy rule.
    #[serde(default)]
    pub rule: String,
    /// Risk.
    #[serde(default)]
    pub risk: String,
    /// `1`: every pending approval, also those this reviewer may not decide.
    #[serde(default)]
    pub all: String,
}

impl Filters {
    fn everyone(&self) -> bool {
        self.all == "1"
    }

    fn admits(&self, a: &Approval, standing: &Standing) -> bool {
        (self.everyone() || standing.in_inbox())
            && (self.agent.is_empty() || a.agent == self.agent)
            && (self.rule.is_empty() || rule_of(a) == self.rule)
            && (self.risk.is_empty() || risk_of(a) == self.risk)
    }

    fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("agent", &self.agent)
            .append_pair("rule", &self.rule)
            .append_pair("risk", &self.risk)
            .append_pair("all", &self.all)
            .finish()
    }
}

/// Every pending approval (newest first, at most [`MAX_PENDING`]) with where
/// `session`'s reviewer stands on it.
pub async fn pending(console: &Arc<Console>, session: &Session) -> Result<Vec<(Approval, Standing)>, String> {
    let now = now_ms();
    let pending = console
        .approvals
        .blocking(false, move |s| s.list(Some(Status::Pending), MAX_PENDING, now))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let age = session.auth_age(now_secs());
    Ok(pending
        .into_iter()
        .map(|a| {
            let s = standing(&session.reviewer, &a, age, &console.config, now);
            (a, s)
        })
        .collect())
}

fn choices(values: impl Iterator<Item = String>, chosen: &str) -> Vec<Choice> {
    let set: BTreeSet<String> =
        values.filter(|v| !v.is_empty()).chain((!chosen.is_empty()).then(|| chosen.to_string())).collect();
    set.into_iter().map(|value| Choice { selected: value == chosen, value }).collect()
}

fn rows_of(pending: &[(Approval, Standing)], filters: &Filters) -> Vec<Row> {
    let now = now_ms();
    pending
        .iter()
        .filter(|(a, s)| filters.admits(a, s))
        .map(|(a, s)| {
            let mut row = Row::of(a, now, matches!(s, Standing::StepUp { .. }));
            row.not_mine = !s.in_inbox();
            row
        })
        .collect()
}

fn unavailable(session: &Session, why: String) -> Response {
    tracing::error!(error = %why, "console: reading the inbox failed");
    let mut page = MessagePage::anonymous(
        "Inbox unavailable",
        "The approval service could not read the approvals. Try again shortly.",
        None,
    );
    page.who = session.reviewer.id.clone();
    page.csrf = session.csrf.clone();
    render(StatusCode::SERVICE_UNAVAILABLE, &page)
}

/// `GET /console/`.
pub async fn page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
    Query(filters): Query<Filters>,
) -> Response {
    let Some((_, session)) = session(&console, &headers) else {
        return to_login(uri.path_and_query().map_or("/console/", |p| p.as_str()));
    };
    let pending = match pending(&console, &session).await {
        Ok(x) => x,
        Err(why) => return unavailable(&session, why),
    };
    let hidden = pending.iter().filter(|(_, s)| !s.in_inbox()).count();
    let shown: Vec<&Approval> =
        pending.iter().filter(|(_, s)| filters.everyone() || s.in_inbox()).map(|(a, _)| a).collect();
    let mut other = filters.clone();
    other.all = if filters.everyone() { String::new() } else { "1".into() };
    let page = InboxPage {
        who: session.reviewer.id.clone(),
        csrf: session.csrf.clone(),
        agents: choices(shown.iter().map(|a| a.agent.clone()), &filters.agent),
        rules: choices(shown.iter().map(|a| rule_of(a)), &filters.rule),
        risks: choices(shown.iter().map(|a| risk_of(a)), &filters.risk),
        rows_url: format!("/console/inbox/rows?{}", filters.query()),
        rows: rows_of(&pending, &filters),
        hidden,
        everyone: filters.everyone(),
        all: filters.all.clone(),
        toggle_url: format!("/console/?{}", other.query()),
    };
    render(StatusCode::OK, &page)
}

/// `GET /console/inbox/rows`: the rows alone, for the script (401 when signed out).
pub async fn rows_fragment(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    let Some((_, session)) = session(&console, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match pending(&console, &session).await {
        Ok(pending) => render(StatusCode::OK, &InboxRows { rows: rows_of(&pending, &filters) }),
        Err(why) => unavailable(&session, why),
    }
}
