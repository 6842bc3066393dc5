//! The Block Kit message of an approval: the same facts every channel shows (reason,
//! risk, agent, owner, the action with its redacted body, deadline, approvals against
//! quorum), Approve/Deny buttons while it is open, and who decided once it is closed.
//!
//! Everything that comes from the agent's request (host, path, query, body, agent id) is
//! escaped: Slack reads `<…>` in mrkdwn as links and mentions (`<!channel>`), and a
//! backtick would end a code span early.

use serde_json::{json, Value};

use crate::channels::notice::OwnerNotice;
use crate::channels::view::ReviewLine;
use crate::channels::ApprovalView;
use crate::lifecycle::Vote;

/// `action_id` of the Approve button.
pub const APPROVE_ACTION: &str = "approve";
/// `action_id` of the Deny button.
pub const DENY_ACTION: &str = "deny";
/// `action_id` of the link button of an approval that needs step-up. Slack still sends
/// an interaction for a URL button; it decides nothing.
pub const CONSOLE_ACTION: &str = "open_console";
/// Characters of the pretty-printed body shown (a section holds at most 3000).
const BODY_CHARS: usize = 2500;
/// Longest header text Slack accepts.
const HEADER_CHARS: usize = 150;
/// Longest mrkdwn in a section field.
const FIELD_CHARS: usize = 1900;

/// `&`, `<`, `>` as Slack requires in mrkdwn: no link, mention or `<!channel>` can be
/// smuggled in through a request's path or body.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Text inside a code span or block: escaped, and with no backtick that would end it.
fn code(text: &str) -> String {
    escape(text).replace('`', "ˋ")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A Slack date token (shown in the reader's time zone) with an RFC 3339 fallback.
fn date(ms: i64) -> String {
    format!("<!date^{}^{{date_short_pretty}} {{time_secs}}|{}>", ms / 1000, crate::time::rfc3339(ms))
}

fn field(label: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": cut(&format!("*{label}*\n{value}"), FIELD_CHARS)})
}

/// Notification text (push notifications, screen readers, clients without blocks).
pub fn fallback_text(view: &ApprovalView) -> String {
    let what = if view.is_open() { "Approval needed" } else { "Approval closed" };
    format!("{what}: {} — {}", escape(&view.title()), view.status_line())
}

/// The message blocks for `view`. With `console_link` (an approval that needs step-up),
/// an open message offers no decision, only a button opening the console page.
pub fn message(view: &ApprovalView, console_link: Option<&str>) -> Vec<Value> {
    let heading = if view.is_open() { "Approval needed" } else { "Approval closed" };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&format!("{heading}: {}", view.title()), HEADER_CHARS)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*Reason:* {}", escape(or_unset(&view.reason))), FIELD_CHARS)}}),
    ];
    let mut fields = vec![
        field("Risk", &escape(or_unset(&view.risk))),
        field("Agent", &format!("`{}`", code(&view.agent))),
        field("Owner", &escape(view.owner.as_deref().unwrap_or("(none)"))),
        field("Approvals", &format!("{}/{}", view.approvals(), view.quorum)),
        field("Expires", &date(view.expires_ms)),
    ];
    if !view.groups.is_empty() {
        fields.push(field("Approver groups", &escape(&view.groups.join(", "))));
    }
    blocks.push(json!({"type": "section", "fields": fields}));
    let mut action = format!("*Request*\n`{} {}{}`", code(&view.method), code(&view.host), code(&view.path));
    let query = view.query_text();
    if !query.is_empty() {
        action.push_str(&format!("\n*Query* `{}`", code(&query)));
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&action, FIELD_CHARS)}}));
    let body = view.body_text(BODY_CHARS);
    if !body.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("*Body* (redacted by policy)\n```{}```", code(&body))}}));
    }
    if let (true, Some(url)) = (view.is_open(), console_link) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": "*This approval needs a fresh sign-in:* review and decide it in the Airlock console."}}));
        blocks.push(json!({"type": "actions", "block_id": format!("airlock:{}", view.id), "elements": [
            {"type": "button", "action_id": CONSOLE_ACTION, "url": url, "value": view.id,
             "text": {"type": "plain_text", "text": "Review in the console"}},
        ]}));
    } else if view.is_open() {
        blocks.push(json!({"type": "actions", "block_id": format!("airlock:{}", view.id), "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": view.id,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": DENY_ACTION, "style": "danger", "value": view.id,
             "text": {"type": "plain_text", "text": "Deny"}},
        ]}));
    } else {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&outcome(view), FIELD_CHARS)}}));
    }
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("`{}` · {}", code(&view.id), escape(&view.status_line()))}
    ]}));
    blocks
}

/// The owner's notice: plain sections, every outside word escaped.
pub fn notice(notice: &OwnerNotice) -> Vec<Value> {
    let mut lines = notice.lines().into_iter().map(|l| escape(&l));
    let headline = lines.next().unwrap_or_default();
    let rest: Vec<String> = lines.collect();
    vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*{headline}*"), FIELD_CHARS)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&rest.join("\n"), FIELD_CHARS)}}),
    ]
}

fn or_unset(text: &str) -> &str {
    if text.is_empty() {
        "(not set)"
    } else {
        text
    }
}

/// "*Approved* by bob (slack) at …", one line per review, for a closed message.
fn outcome(view: &ApprovalView) -> String {
    let mut text = format!("*{}*", capitalised(view.status.as_str()));
    if let Some(ms) = view.decided_ms {
        text.push_str(&format!(" at {}", date(ms)));
    }
    for r in &view.reviews {
        text.push_str(&format!("\n{}", review_line(r)));
    }
    text
}

fn review_line(r: &ReviewLine) -> String {
    let vote = match r.vote {
        Vote::Approve => "approved",
        Vote::Deny => "denied",
    };
    let mut line = format!("• {} {vote} via {} at {}", escape(&r.reviewer), escape(&r.channel), date(r.time_ms));
    if let Some(c) = r.comment.as_deref().filter(|c| !c.is_empty()) {
        line.push_str(&format!(": “{}”", escape(c)));
    }
    line
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|f| f.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::lifecycle::Status;

    pub(crate) fn view() -> ApprovalView {
        ApprovalView {
            id: "apr_1".into(),
            status: Status::Pending,
            reason: "exports need a data owner".into(),
            risk: "high".into(),
            rule: "pii-export".into(),
            agent: "spiffe://corp/agent/bot".into(),
            owner: Some("alice@corp.example".into()),
            method: "POST".into(),
            host: "api.example.com".into(),
            path: "/v1/exports/<!channel>".into(),
            query: json!({"format": ["csv"]}),
            body: json!({"ssn": "[REDACTED]", "note": "```<https://evil.example|click>"}),
            digest: "ab".into(),
            expires_ms: 1_800_000_000_000,
            decided_ms: None,
            quorum: 2,
            groups: vec!["data-owners".into()],
            reviews: vec![],
        }
    }

    fn collect_mrkdwn(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("mrkdwn") {
                    out.extend(o.get("text").and_then(Value::as_str).map(str::to_string));
                }
                o.values().for_each(|c| collect_mrkdwn(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| collect_mrkdwn(c, out)),
            _ => {}
        }
    }

    fn text_of(blocks: &[Value]) -> String {
        serde_json::to_string(blocks).unwrap()
    }

    #[test]
    fn an_open_approval_shows_the_action_and_both_buttons() {
        let blocks = message(&view(), None);
        let text = text_of(&blocks);
        for needle in [
            "exports need a data owner",
            "high",
            "spiffe://corp/agent/bot",
            "alice@corp.example",
            "POST api.example.com/v1/exports",
            "format=csv",
            "[REDACTED]",
            "0/2",
            "<!date^1800000000^",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
        let buttons = actions["elements"].as_array().unwrap();
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0]["action_id"], "approve");
        assert_eq!(buttons[0]["style"], "primary");
        assert_eq!(buttons[0]["value"], "apr_1");
        assert_eq!(buttons[1]["action_id"], "deny");
        assert_eq!(buttons[1]["style"], "danger");
        assert_eq!(buttons[1]["value"], "apr_1");
    }

    #[test]
    fn request_text_cannot_mention_link_or_break_out_of_code() {
        // Only mrkdwn is parsed for links and mentions (the header is plain_text).
        let mut mrkdwn = Vec::new();
        collect_mrkdwn(&Value::Array(message(&view(), None)), &mut mrkdwn);
        let text = mrkdwn.join("\n");
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(!text.contains("<https://evil"), "{text}");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        // The body's own backticks cannot end the code block.
        let body = message(&view(), None)
            .into_iter()
            .find(|b| b["text"]["text"].as_str().is_some_and(|t| t.starts_with("*Body*")))
            .unwrap();
        assert_eq!(body["text"]["text"].as_str().unwrap().matches("```").count(), 2);
    }

    #[test]
    fn a_closed_approval_has_no_buttons_and_says_who_decided_when() {
        let mut v = view();
        v.status = Status::Approved;
        v.decided_ms = Some(1_700_000_000_000);
        v.reviews = vec![ReviewLine {
            reviewer: "bob@corp.example".into(),
            vote: Vote::Approve,
            comment: None,
            channel: "slack".into(),
            time_ms: 1_700_000_000_000,
        }];
        let blocks = message(&v, None);
        assert!(blocks.iter().all(|b| b["type"] != "actions"));
        let text = text_of(&blocks);
        assert!(text.contains("*Approved* at <!date^1700000000^"), "{text}");
        assert!(text.contains("bob@corp.example approved via slack"), "{text}");
        assert!(fallback_text(&v).starts_with("Approval closed"));
    }

    #[test]
    fn long_bodies_are_cut_within_slack_limits() {
        let mut v = view();
        v.body = json!({"blob": "x".repeat(10_000)});
        for b in message(&v, None) {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= 3000, "{} chars", t.chars().count());
            }
        }
    }

    #[test]
    fn a_step_up_message_only_links_to_the_console() {
        let blocks = message(&view(), Some("https://airlock.corp.example/console/approvals/apr_1"));
        let actions: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "actions").collect();
        assert_eq!(actions.len(), 1);
        let elements = actions[0]["elements"].as_array().unwrap();
        assert_eq!(elements.len(), 1);
        assert_eq!(elements[0]["action_id"], CONSOLE_ACTION);
        assert_eq!(elements[0]["url"], "https://airlock.corp.example/console/approvals/apr_1");
        assert!(!text_of(&blocks).contains(&format!("\"action_id\":\"{APPROVE_ACTION}\"")));
    }

    #[test]
    fn the_owner_notice_is_escaped_and_carries_the_comment() {
        let mut v = view();
        v.status = Status::Denied;
        v.reviews = vec![ReviewLine {
            reviewer: "carol@corp.example".into(),
            vote: Vote::Deny,
            comment: Some("no <!channel> exports".into()),
            channel: "slack".into(),
            time_ms: 1_700_000_000_000,
        }];
        let text = text_of(&notice(&OwnerNotice::of(&v).unwrap()));
        assert!(text.contains("denied by carol@corp.example"), "{text}");
        assert!(text.contains("no &lt;!channel&gt; exports"), "{text}");
        assert!(!text.contains("<!channel>"), "{text}");
    }
}
