//! 1:1 chats: who an approval is messaged to directly (the reviewers `[teams] reviewers`
//! lists for the approval's groups, never its owner), who hears the outcome
//! (`[teams] owners`), and the target keys that name them.
//!
//! The personal conversation with each user is created proactively once and its
//! reference kept in the store's conversation table under [`PERSONAL`], keyed by the
//! user's object id; a personal install of the app stores the same reference, so no
//! creation is needed for those users.

use crate::channels::{ApprovalView, Target};
use crate::lifecycle::normalize_identity;

use super::TeamsConfig;

/// The conversation-table channel of personal (1:1) conversation references.
pub const PERSONAL: &str = "teams.personal";
/// Target key prefix of a reviewer's 1:1 copy of the approval card.
pub const REVIEWER_PREFIX: &str = "teams:dm:";
/// Target key prefix of the owner's notice.
pub const OWNER_PREFIX: &str = "teams:owner:";

/// An object id as stored and compared (Entra prints them in either case).
pub fn object_key(object_id: &str) -> String {
    object_id.trim().to_ascii_lowercase()
}

/// The Entra object id the owner of `view` is told at, if configured.
pub fn owner_object_id(config: &TeamsConfig, view: &ApprovalView) -> Option<String> {
    let owner = normalize_identity(view.owner.as_deref()?);
    config.owners.iter().find(|(name, _)| normalize_identity(name) == owner).map(|(_, id)| object_key(id))
}

/// The reviewers messaged 1:1 about `view`: the object ids listed for any of its groups
/// (for every group when it names none), deduplicated, without its owner — by name or
/// by the owner's mapped object id — who may not approve their own agent's action.
pub fn reviewer_object_ids(config: &TeamsConfig, view: &ApprovalView) -> Vec<String> {
    let owner_name = view.owner.as_deref().map(normalize_identity);
    let owner_id = owner_object_id(config, view);
    let mut ids: Vec<String> = Vec::new();
    for (group, members) in &config.reviewers {
        if !view.groups.is_empty() && !view.groups.iter().any(|g| g == group) {
            continue;
        }
        for id in members.iter().map(|m| object_key(m)) {
            let is_owner = owner_id.as_deref() == Some(id.as_str()) || owner_name.as_deref() == Some(id.as_str());
            if !is_owner && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// The 1:1 targets of `view`: each eligible reviewer's card, and the owner's notice.
pub fn targets(config: &TeamsConfig, view: &ApprovalView) -> Vec<Target> {
    let mut targets: Vec<Target> = reviewer_object_ids(config, view)
        .into_iter()
        .map(|id| Target::reviewers(format!("{REVIEWER_PREFIX}{id}")))
        .collect();
    if let Some(id) = owner_object_id(config, view) {
        targets.push(Target::owner(format!("{OWNER_PREFIX}{id}")));
    }
    targets
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::channels::Audience;
    use crate::lifecycle::Status;
    use serde_json::json;

    fn config() -> TeamsConfig {
        toml::from_str(
            r#"app_id = "app"
            tenant_id = "t1"
            reviewers = { "data-owners" = ["OID-BOB", "oid-carol", "oid-alice"], "sre" = ["oid-dan", "oid-bob"] }
            owners = { "Alice@corp.example" = "oid-alice" }"#,
        )
        .unwrap()
    }

    fn view(groups: &[&str], owner: Option<&str>) -> ApprovalView {
        ApprovalView {
            id: "apr_1".into(),
            status: Status::Pending,
            reason: String::new(),
            risk: String::new(),
            rule: String::new(),
            agent: "a".into(),
            owner: owner.map(str::to_string),
            method: "GET".into(),
            host: "h".into(),
            path: "/".into(),
            query: json!(null),
            body: json!(null),
            digest: "d".into(),
            expires_ms: 0,
            decided_ms: None,
            quorum: 1,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            reviews: vec![],
        }
    }

    #[test]
    fn the_named_groups_members_are_messaged_but_never_the_owner() {
        let ids = reviewer_object_ids(&config(), &view(&["data-owners"], Some("alice@corp.example")));
        assert_eq!(ids, vec!["oid-bob".to_string(), "oid-carol".to_string()], "alice owns the agent");
        let ids = reviewer_object_ids(&config(), &view(&["sre"], Some("oid-dan")));
        assert_eq!(ids, vec!["oid-bob".to_string()], "an owner recorded by object id is left out too");
        let all = reviewer_object_ids(&config(), &view(&[], None));
        assert_eq!(all.len(), 4, "no group named: every listed reviewer, once: {all:?}");
        assert!(reviewer_object_ids(&config(), &view(&["finance"], None)).is_empty());
    }

    #[test]
    fn the_owner_gets_a_notice_target_when_mapped() {
        let t = targets(&config(), &view(&["data-owners"], Some("ALICE@corp.example ")));
        assert_eq!(t.last().unwrap(), &Target::owner("teams:owner:oid-alice"));
        assert!(t.iter().filter(|t| t.audience == Audience::Reviewers).all(|t| t.key.starts_with(REVIEWER_PREFIX)));
        assert!(targets(&config(), &view(&["data-owners"], Some("mallory@corp.example")))
            .iter()
            .all(|t| t.audience == Audience::Reviewers));
    }
}
