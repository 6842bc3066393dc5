//! The Adaptive Card (schema 1.5) of one approval: what the agent intends, why it is
//! held, where the review stands and, while it is open, Approve / Deny.
//!
//! The buttons are Universal Actions (`Action.Execute`, verb `approve`/`deny`, data
//! `{approvalId}`), answered synchronously by the messaging endpoint with the refreshed
//! card. Clients without Universal Actions take each button's `fallback`, an
//! `Action.Submit` with the same data, which arrives as a `message` activity.
//!
//! No `refresh` section: a refresh makes every viewer's client send automatic
//! `adaptiveCard/action` invokes, which would turn card views into authenticated calls
//! for no gain. Every posted copy is instead brought up to date by the outbox (`PUT` of
//! the activity) after each decision, and the clicker gets the new card in the answer.

use serde_json::{json, Value};

use crate::channels::notice::OwnerNotice;
use crate::channels::ApprovalView;
use crate::lifecycle::{Status, Vote};
use crate::time::rfc3339;

/// The attachment content type of an Adaptive Card.
pub const CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// Verb of the Approve button.
pub const VERB_APPROVE: &str = "approve";
/// Verb of the Deny button.
pub const VERB_DENY: &str = "deny";
/// Id of the comment input (its value arrives in the action data under this name).
pub const COMMENT_INPUT: &str = "comment";
/// Longest body excerpt on a card: Teams caps a message at about 28 KB.
const BODY_CHARS: usize = 4000;

/// The card for `view`. With `console_link` (an approval that needs step-up), an open
/// card offers no decision, only a button opening the console page.
pub fn render(view: &ApprovalView, console_link: Option<&str>) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": format!("Approval needed: {}", view.title()), "weight": "Bolder",
               "size": "Medium", "wrap": true}),
        json!({"type": "TextBlock", "text": status_text(view), "wrap": true, "color": status_color(view.status),
               "weight": "Bolder"}),
        json!({"type": "FactSet", "facts": facts(view)}),
    ];
    let body_text = view.body_text(BODY_CHARS);
    if !body_text.is_empty() {
        body.push(json!({"type": "TextBlock", "text": "Request body (redacted)", "weight": "Bolder", "wrap": true,
                         "spacing": "Medium"}));
        // A TextRun, not a TextBlock: TextRuns render no markdown, and the body is the
        // agent's text, which must not show links or formatting a reviewer could take for
        // the service's own words.
        body.push(json!({"type": "RichTextBlock",
                         "inlines": [{"type": "TextRun", "text": body_text, "fontType": "Monospace"}]}));
    }
    for line in &view.reviews {
        let verb = if line.vote == Vote::Approve { "approved" } else { "denied" };
        let mut text = format!("{} {verb} via {} at {}", line.reviewer, line.channel, rfc3339(line.time_ms));
        if let Some(c) = line.comment.as_deref().filter(|c| !c.trim().is_empty()) {
            text.push_str(&format!(": \"{c}\""));
        }
        body.push(json!({"type": "TextBlock", "text": text, "wrap": true, "isSubtle": true, "size": "Small"}));
    }
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
    });
    if let (true, Some(url), Some(obj)) = (view.is_open(), console_link, card.as_object_mut()) {
        if let Some(Value::Array(items)) = obj.get_mut("body") {
            items.push(json!({"type": "TextBlock", "wrap": true, "weight": "Bolder",
                              "text": "This approval needs a fresh sign-in: review and decide it in the Airlock console."}));
        }
        obj.insert("actions".into(), json!([{"type": "Action.OpenUrl", "title": "Review in the console", "url": url}]));
    } else if view.is_open() {
        if let Some(obj) = card.as_object_mut() {
            if let Some(Value::Array(items)) = obj.get_mut("body") {
                items.push(json!({"type": "Input.Text", "id": COMMENT_INPUT, "placeholder": "Comment (optional)",
                                  "isMultiline": true, "maxLength": 500}));
            }
            obj.insert(
                "actions".into(),
                json!([
                    action(view, VERB_APPROVE, "Approve", "positive"),
                    action(view, VERB_DENY, "Deny", "destructive")
                ]),
            );
        }
    }
    card
}

/// The message activity that carries the card (post and update).
pub fn activity(view: &ApprovalView, console_link: Option<&str>) -> Value {
    json!({
        "type": "message",
        "summary": format!("Approval needed: {}", view.title()),
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": render(view, console_link)}],
    })
}

/// The owner's notice as a message activity: a card without inputs or actions.
pub fn notice_activity(notice: &OwnerNotice) -> Value {
    let mut facts = vec![
        json!({"title": "Action", "value": notice.action}),
        json!({"title": "Agent", "value": notice.agent}),
        json!({"title": "Outcome", "value": notice.outcome}),
    ];
    if !notice.reason.is_empty() {
        facts.push(json!({"title": "Policy reason", "value": notice.reason}));
    }
    if let Some(at) = &notice.decided_at {
        facts.push(json!({"title": "Decided at", "value": at}));
    }
    facts.push(json!({"title": "Approval id", "value": notice.approval_id}));
    let mut body = vec![
        json!({"type": "TextBlock", "text": notice.headline(), "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    for comment in &notice.comments {
        // A TextRun: the reviewer's words render no markdown.
        body.push(json!({"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": format!("Comment from {comment}")}]}));
    }
    let card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
    });
    json!({
        "type": "message",
        "summary": notice.headline(),
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}],
    })
}

fn action(view: &ApprovalView, verb: &str, title: &str, style: &str) -> Value {
    let data = json!({"approvalId": view.id});
    json!({
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "style": style,
        "data": data,
        "associatedInputs": "auto",
        // Clients without Universal Actions send a `message` activity with `value` =
        // this data (plus the inputs); the verb travels in the data there.
        "fallback": {"type": "Action.Submit", "title": title, "style": style,
                     "data": {"approvalId": view.id, "verb": verb}},
    })
}

fn facts(view: &ApprovalView) -> Vec<Value> {
    let mut facts = Vec::new();
    let mut fact = |title: &str, value: String| {
        if !value.is_empty() {
            facts.push(json!({"title": title, "value": value}));
        }
    };
    fact("Reason", view.reason.clone());
    fact("Risk", view.risk.clone());
    fact("Agent", view.agent.clone());
    fact("Owner", view.owner.clone().unwrap_or_else(|| "(none)".into()));
    fact("Method", view.method.clone());
    fact("Host", view.host.clone());
    fact("Path", view.path.clone());
    fact("Query", view.query_text());
    fact("Approvals", format!("{}/{}", view.approvals(), view.quorum));
    fact("Expires", rfc3339(view.expires_ms));
    fact("Approval id", view.id.clone());
    facts
}

/// `pending (1/2 approvals)`; closed: who decided and when.
fn status_text(view: &ApprovalView) -> String {
    let line = view.status_line();
    match (view.status, view.decided_ms) {
        (Status::Pending, _) => format!("Status: {line}"),
        (_, Some(at)) => format!("Status: {line} at {}", rfc3339(at)),
        (_, None) => format!("Status: {line}"),
    }
}

fn status_color(status: Status) -> &'static str {
    match status {
        Status::Pending => "Warning",
        Status::Approved | Status::Redeemed => "Good",
        _ => "Attention",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::channels::view::ReviewLine;

    pub(crate) fn view(status: Status) -> ApprovalView {
        ApprovalView {
            id: "apr_1".into(),
            status,
            reason: "bulk export of customer data".into(),
            risk: "high".into(),
            rule: "exports".into(),
            agent: "spiffe://corp/agent/bot".into(),
            owner: Some("alice@corp.example".into()),
            method: "POST".into(),
            host: "api.example.com".into(),
            path: "/v1/exports".into(),
            query: json!({"format": ["csv"]}),
            body: json!({"ssn": "[REDACTED]", "rows": 10}),
            digest: "ab".into(),
            expires_ms: 1_800_000_000_000,
            decided_ms: None,
            quorum: 2,
            groups: vec!["sre".into()],
            reviews: vec![],
        }
    }

    fn texts(card: &Value) -> String {
        card.to_string()
    }

    #[test]
    fn open_card_shows_the_action_and_offers_approve_and_deny() {
        let card = render(&view(Status::Pending), None);
        assert_eq!(card["version"], "1.5");
        assert!(card.get("refresh").is_none());
        let t = texts(&card);
        for needle in [
            "POST api.example.com/v1/exports",
            "bulk export of customer data",
            "high",
            "spiffe://corp/agent/bot",
            "alice@corp.example",
            "format=csv",
            "[REDACTED]",
            "0/2",
            "pending (0/2 approvals)",
            "2027-01-15T08:00:00Z",
        ] {
            assert!(t.contains(needle), "card shows {needle}: {t}");
        }
        let actions = card["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 2);
        assert_eq!(actions[0]["type"], "Action.Execute");
        assert_eq!(actions[0]["verb"], "approve");
        assert_eq!(actions[1]["verb"], "deny");
        assert_eq!(actions[0]["data"]["approvalId"], "apr_1");
        assert_eq!(actions[0]["fallback"]["type"], "Action.Submit");
        assert_eq!(actions[1]["fallback"]["data"], json!({"approvalId": "apr_1", "verb": "deny"}));
        assert!(card["body"].as_array().unwrap().iter().any(|b| b["type"] == "Input.Text" && b["id"] == "comment"));
    }

    #[test]
    fn closed_card_has_no_actions_and_says_who_and_when() {
        let mut v = view(Status::Approved);
        v.decided_ms = Some(1_700_000_000_000);
        v.reviews = vec![ReviewLine {
            reviewer: "bob@corp.example".into(),
            vote: Vote::Approve,
            comment: Some("ok".into()),
            channel: "teams".into(),
            time_ms: 1_700_000_000_000,
        }];
        let card = render(&v, None);
        assert!(card.get("actions").is_none());
        let t = texts(&card);
        assert!(!t.contains("Input.Text"));
        assert!(t.contains("approved by bob@corp.example at 2023-11-14T22:13:20Z"), "{t}");
        assert!(t.contains("via teams"));
        for status in [Status::Denied, Status::Expired] {
            assert!(render(&view(status), None).get("actions").is_none(), "{status:?}");
        }
    }

    #[test]
    fn activity_wraps_the_card_as_an_attachment() {
        let a = activity(&view(Status::Pending), None);
        assert_eq!(a["type"], "message");
        assert_eq!(a["attachments"][0]["contentType"], CARD_CONTENT_TYPE);
        assert_eq!(a["attachments"][0]["content"]["type"], "AdaptiveCard");
    }

    #[test]
    fn a_step_up_card_links_to_the_console_and_cannot_decide() {
        let card = render(&view(Status::Pending), Some("https://airlock.corp.example/console/approvals/apr_1"));
        let actions = card["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0]["type"], "Action.OpenUrl");
        assert_eq!(actions[0]["url"], "https://airlock.corp.example/console/approvals/apr_1");
        let t = texts(&card);
        assert!(!t.contains("Action.Execute") && !t.contains("Action.Submit") && !t.contains("Input.Text"), "{t}");
        assert!(t.contains("fresh sign-in"));
        let mut closed = view(Status::Denied);
        closed.decided_ms = Some(1);
        assert!(render(&closed, Some("https://x.example/c")).get("actions").is_none());
    }

    #[test]
    fn the_owner_notice_says_outcome_reviewer_comment_and_reason() {
        let mut v = view(Status::Denied);
        v.decided_ms = Some(1_700_000_000_000);
        v.reviews = vec![ReviewLine {
            reviewer: "carol@corp.example".into(),
            vote: Vote::Deny,
            comment: Some("not without a ticket".into()),
            channel: "teams".into(),
            time_ms: 1_700_000_000_000,
        }];
        let a = notice_activity(&OwnerNotice::of(&v).unwrap());
        let t = a.to_string();
        for needle in ["denied by carol@corp.example", "not without a ticket", "bulk export of customer data", "apr_1"]
        {
            assert!(t.contains(needle), "{needle}: {t}");
        }
        assert!(a["attachments"][0]["content"].get("actions").is_none());
    }
}
