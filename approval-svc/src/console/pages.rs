//! The console's pages: one askama template each (`approval-svc/templates/console/`,
//! HTML-escaped by default), and the view structs they read. Views hold display text
//! only; handlers build them.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::web::html;
use crate::store::Approval;
use crate::time::rfc3339;

/// Renders `page` with `status`; a template failure answers 500 with nothing of it.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "console: a page failed to render");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into(),
            )
        }
    }
}

/// `secs` as a short span: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn span_secs(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn text(a: &Approval, pointer: &str) -> String {
    match a.create.pointer(pointer) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The policy's risk of `a` (empty when it names none).
pub fn risk_of(a: &Approval) -> String {
    text(a, "/policy/risk")
}

/// The policy rule of `a`.
pub fn rule_of(a: &Approval) -> String {
    text(a, "/policy/rule")
}

/// A CSS class for a risk word (letters only).
fn risk_class(risk: &str) -> String {
    let word: String = risk.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    format!("risk risk-{}", if word.is_empty() { "none" } else { &word })
}

/// One inbox or history row.
pub struct Row {
    /// `apr_…`.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// Upstream host.
    pub host: String,
    /// Path (and query as sent).
    pub path: String,
    /// The policy's reason.
    pub reason: String,
    /// Agent id.
    pub agent: String,
    /// Policy rule.
    pub rule: String,
    /// Risk word.
    pub risk: String,
    /// Its CSS class.
    pub risk_class: String,
    /// `3m` since it was requested.
    pub age: String,
    /// `in 12m` / `expired`.
    pub expires: String,
    /// `1/2` approvals.
    pub progress: String,
    /// Status word.
    pub status: String,
    /// When it was decided (history).
    pub decided: String,
    /// Who voted (history).
    pub voters: String,
    /// Needs a fresh sign-in to decide.
    pub step_up: bool,
    /// This reviewer may not decide it (shown in the inbox's "all pending" view).
    pub not_mine: bool,
}

impl Row {
    /// The row of `a` at `now_ms`.
    pub fn of(a: &Approval, now_ms: i64, step_up: bool) -> Row {
        let risk = risk_of(a);
        let left = (a.expires_ms - now_ms) / 1000;
        Row {
            id: a.id.clone(),
            method: text(a, "/request/method"),
            host: text(a, "/request/host"),
            path: text(a, "/request/path"),
            reason: text(a, "/policy/reason"),
            agent: a.agent.clone(),
            rule: rule_of(a),
            risk_class: risk_class(&risk),
            risk,
            age: span_secs((now_ms - a.created_ms) / 1000),
            expires: if left > 0 { format!("in {}", span_secs(left)) } else { "expired".into() },
            progress: format!("{}/{}", a.approvers().len(), a.quorum),
            status: a.status.as_str().to_string(),
            decided: a.decided_ms.map(rfc3339).unwrap_or_default(),
            voters: a
                .reviews
                .iter()
                .map(|r| format!("{} ({})", r.reviewer, r.vote.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            step_up,
            not_mine: false,
        }
    }
}

/// One choice of a filter.
pub struct Choice {
    /// The value.
    pub value: String,
    /// Currently chosen.
    pub selected: bool,
}

/// The inbox.
#[derive(Template)]
#[template(path = "console/inbox.html")]
pub struct InboxPage {
    /// Signed-in reviewer.
    pub who: String,
    /// Form token.
    pub csrf: String,
    /// Filter choices.
    pub agents: Vec<Choice>,
    /// Filter choices.
    pub rules: Vec<Choice>,
    /// Filter choices.
    pub risks: Vec<Choice>,
    /// Where the script re-reads the rows (same filters).
    pub rows_url: String,
    /// The rows.
    pub rows: Vec<Row>,
    /// Pending approvals this reviewer may not decide.
    pub hidden: usize,
    /// Showing every pending approval.
    pub everyone: bool,
    /// The `all` filter as given (kept by the filter form).
    pub all: String,
    /// The same filters with the other view.
    pub toggle_url: String,
}

/// The inbox rows alone (what the script swaps in).
#[derive(Template)]
#[template(path = "console/inbox_rows.html")]
pub struct InboxRows {
    /// The rows.
    pub rows: Vec<Row>,
}

/// A labelled fact of the approval page.
pub struct Fact {
    /// Label.
    pub label: &'static str,
    /// Element id (tests and deep links).
    pub id: &'static str,
    /// Value.
    pub value: String,
    /// Shown preformatted (bodies, queries).
    pub pre: bool,
}

/// One vote.
pub struct Vote {
    /// Reviewer id.
    pub reviewer: String,
    /// `approve` / `deny`.
    pub vote: String,
    /// Through which channel.
    pub channel: String,
    /// When.
    pub time: String,
    /// Their comment.
    pub comment: String,
}

/// One line of the diff.
pub struct DiffLine {
    /// `+`, `-` or a space.
    pub sign: char,
    /// CSS class: `add`, `del`, `same`.
    pub class: &'static str,
    /// The line.
    pub text: String,
}

/// The diff against the last approved action.
pub struct DiffView {
    /// That approval.
    pub previous_id: String,
    /// When it was decided.
    pub previous_time: String,
    /// Nothing differs.
    pub same: bool,
    /// The lines.
    pub lines: Vec<DiffLine>,
}

/// One audit record.
pub struct AuditRow {
    /// Sequence number.
    pub seq: i64,
    /// When.
    pub time: String,
    /// Record kind.
    pub kind: String,
    /// The event, as stored.
    pub event: String,
}

/// The approval page.
#[derive(Template)]
#[template(path = "console/approval.html")]
pub struct ApprovalPage {
    /// Signed-in reviewer.
    pub who: String,
    /// Form token.
    pub csrf: String,
    /// The row view (headline, status, risk).
    pub row: Row,
    /// Everything the agent intends, labelled.
    pub facts: Vec<Fact>,
    /// Votes so far.
    pub votes: Vec<Vote>,
    /// Approvals so far.
    pub approvals: usize,
    /// Needed.
    pub quorum: u32,
    /// Why this reviewer may not decide now.
    pub explanation: Option<String>,
    /// Where to sign in again (step-up).
    pub step_up_url: Option<String>,
    /// Show approve/deny.
    pub can_decide: bool,
    /// Show the owner's cancel form (pending, and this is the agent's owner).
    pub can_cancel: bool,
    /// The diff, when there is an earlier approved action.
    pub diff: Option<DiffView>,
    /// Where the reviewer notifications stand (posted copies, failing channels), as JSON.
    pub notifications: String,
    /// Audit records naming this approval.
    pub audit: Vec<AuditRow>,
    /// Why the audit records could not be read.
    pub audit_error: Option<String>,
}

/// History.
#[derive(Template)]
#[template(path = "console/history.html")]
pub struct HistoryPage {
    /// Signed-in reviewer.
    pub who: String,
    /// Form token.
    pub csrf: String,
    /// Decided approvals, newest first.
    pub rows: Vec<Row>,
}

/// A message: signed out, refused, failed.
#[derive(Template)]
#[template(path = "console/message.html")]
pub struct MessagePage {
    /// Signed-in reviewer, if any.
    pub who: String,
    /// Form token, if signed in.
    pub csrf: String,
    /// Heading.
    pub title: String,
    /// What happened.
    pub text: String,
    /// Where to go next: (href, label).
    pub link: Option<(String, String)>,
}

impl MessagePage {
    /// A message to someone not signed in.
    pub fn anonymous(title: &str, text: &str, link: Option<(&str, &str)>) -> MessagePage {
        MessagePage {
            who: String::new(),
            csrf: String::new(),
            title: title.into(),
            text: text.into(),
            link: link.map(|(h, l)| (h.to_string(), l.to_string())),
        }
    }
}

/// The facts of `a`, in the order a reviewer reads them.
pub fn facts(a: &Approval) -> Vec<Fact> {
    let pretty = |pointer: &str| match a.create.pointer(pointer) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
    };
    let fact = |label, id, value: String| Fact { label, id, value, pre: false };
    let body = match pretty("/request/body") {
        b if !b.is_empty() => b,
        _ => match text(a, "/request/body_sha256") {
            h if !h.is_empty() => format!("(not shown; {} bytes, sha256 {h})", text(a, "/request/body_size")),
            _ => "(none)".to_string(),
        },
    };
    vec![
        fact("Method", "fact-method", text(a, "/request/method")),
        fact("Host", "fact-host", text(a, "/request/host")),
        fact("Path", "fact-path", text(a, "/request/path")),
        Fact { label: "Query", id: "fact-query", value: pretty("/request/query"), pre: true },
        Fact { label: "Body (redacted)", id: "fact-body", value: body, pre: true },
        fact("Action digest", "fact-digest", a.digest.clone()),
        fact("Rule", "fact-rule", rule_of(a)),
        fact("Reason", "fact-reason", text(a, "/policy/reason")),
        fact("Risk", "fact-risk", risk_of(a)),
        fact("Agent", "fact-agent", a.agent.clone()),
        fact("Owner", "fact-owner", text(a, "/agent/owner")),
        fact("Approver groups", "fact-groups", a.groups().join(", ")),
        fact("Requested", "fact-requested", rfc3339(a.created_ms)),
        fact("Expires", "fact-expires", rfc3339(a.expires_ms)),
        fact("Status", "fact-status", a.status.as_str().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_short() {
        assert_eq!(span_secs(-5), "0s");
        assert_eq!(span_secs(45), "45s");
        assert_eq!(span_secs(12 * 60 + 5), "12m");
        assert_eq!(span_secs(3 * 3600 + 5 * 60), "3h 5m");
        assert_eq!(span_secs(2 * 86_400 + 4 * 3600), "2d 4h");
    }

    #[test]
    fn risk_classes_are_letters_only() {
        assert_eq!(risk_class("Critical"), "risk risk-critical");
        assert_eq!(risk_class("\" onmouseover=x"), "risk risk-onmouseoverx");
        assert_eq!(risk_class(""), "risk risk-none");
    }

    #[test]
    fn pages_escape_what_the_agent_sent() {
        let rows = InboxRows {
            rows: vec![Row {
                id: "apr_1".into(),
                method: "POST".into(),
                host: "<script>alert(1)</script>".into(),
                path: "/".into(),
                reason: String::new(),
                agent: String::new(),
                rule: String::new(),
                risk: String::new(),
                risk_class: String::new(),
                age: String::new(),
                expires: String::new(),
                progress: String::new(),
                status: String::new(),
                decided: String::new(),
                voters: String::new(),
                step_up: false,
                not_mine: false,
            }],
        };
        let html = rows.render().unwrap_or_default();
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}
