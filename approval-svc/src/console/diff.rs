//! The approval-fatigue aid: what changed since a reviewer last approved this agent under
//! this rule. The action is written as text (method, host, path, query, redacted body,
//! pretty JSON) and compared line by line.

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::lifecycle::Status;
use crate::store::Approval;

use super::pages::{rule_of, DiffLine, DiffView};

/// Whether `a` was approved by its reviewers (used or not, even if its time ran out).
fn was_approved(a: &Approval) -> bool {
    match a.status {
        Status::Approved | Status::Redeemed => true,
        Status::Expired => a.decided_ms.is_some() && a.usable_until_ms.is_some(),
        Status::Pending | Status::Denied | Status::Cancelled => false,
    }
}

/// The newest approved action of the same agent and rule as `current`, requested before
/// it, among `candidates`.
pub fn previous_approved<'a>(candidates: &'a [Approval], current: &Approval) -> Option<&'a Approval> {
    let rule = rule_of(current);
    candidates
        .iter()
        .filter(|a| a.id != current.id && a.agent == current.agent && rule_of(a) == rule)
        .filter(|a| a.created_ms <= current.created_ms && was_approved(a))
        .max_by_key(|a| (a.decided_ms.unwrap_or(a.created_ms), a.created_ms))
}

/// The action of `a` as comparable lines.
pub fn action_text(a: &Approval) -> String {
    let get = |p: &str| a.create.pointer(p).cloned().unwrap_or(Value::Null);
    let line = |v: Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    };
    let pretty = |v: Value| match v {
        Value::Null => "(none)".to_string(),
        v => serde_json::to_string_pretty(&v).unwrap_or_default(),
    };
    format!(
        "method {}\nhost {}\npath {}\nquery {}\nbody {}\n",
        line(get("/request/method")),
        line(get("/request/host")),
        line(get("/request/path")),
        pretty(get("/request/query")),
        pretty(get("/request/body")),
    )
}

/// `current` compared with `previous`.
pub fn view(previous: &Approval, current: &Approval) -> DiffView {
    let (old, new) = (action_text(previous), action_text(current));
    let diff = TextDiff::from_lines(&old, &new);
    let lines = diff
        .iter_all_changes()
        .map(|c| {
            let (sign, class) = match c.tag() {
                ChangeTag::Delete => ('-', "del"),
                ChangeTag::Insert => ('+', "add"),
                ChangeTag::Equal => (' ', "same"),
            };
            DiffLine { sign, class, text: c.value().trim_end_matches('\n').to_string() }
        })
        .collect();
    DiffView {
        previous_id: previous.id.clone(),
        previous_time: previous.decided_ms.map(crate::time::rfc3339).unwrap_or_default(),
        same: old == new,
        lines,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn approval(id: &str, agent: &str, rule: &str, status: Status, created: i64, rows: u64) -> Approval {
        Approval {
            id: id.into(),
            status,
            agent: agent.into(),
            digest: "d".into(),
            created_ms: created,
            expires_ms: created + 1000,
            decided_ms: (status != Status::Pending).then_some(created + 1),
            usable_until_ms: matches!(status, Status::Approved | Status::Redeemed).then_some(created + 2),
            redeem_count: 0,
            quorum: 1,
            reuse: "once".into(),
            credential: None,
            create: json!({"policy": {"rule": rule}, "request": {"method": "POST", "host": "api.example",
                           "path": "/v1/exports", "body": {"rows": rows}}}),
            reviews: vec![],
        }
    }

    #[test]
    fn picks_the_newest_earlier_approval_of_the_same_agent_and_rule() {
        let current = approval("apr_now", "a", "exports", Status::Pending, 100, 5000);
        let all = vec![
            approval("apr_old", "a", "exports", Status::Redeemed, 10, 10),
            approval("apr_newer", "a", "exports", Status::Approved, 50, 20),
            approval("apr_denied", "a", "exports", Status::Denied, 60, 30),
            approval("apr_other_rule", "a", "iam", Status::Approved, 70, 40),
            approval("apr_other_agent", "b", "exports", Status::Approved, 80, 50),
            approval("apr_later", "a", "exports", Status::Approved, 200, 60),
            current.clone(),
        ];
        assert_eq!(previous_approved(&all, &current).unwrap().id, "apr_newer");
        assert!(previous_approved(&all[2..5], &current).is_none());
    }

    #[test]
    fn the_diff_shows_what_changed() {
        let before = approval("apr_1", "a", "exports", Status::Approved, 1, 10);
        let now = approval("apr_2", "a", "exports", Status::Pending, 2, 5000);
        let v = view(&before, &now);
        assert!(!v.same);
        let changed: Vec<String> =
            v.lines.iter().filter(|l| l.class != "same").map(|l| format!("{}{}", l.sign, l.text.trim())).collect();
        assert_eq!(changed, vec!["-\"rows\": 10", "+\"rows\": 5000"]);
        assert!(view(&before, &before).same);
    }
}
