//! Who may review an approval, and when the reviews decide it.

use std::collections::BTreeSet;

/// An authenticated human reviewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reviewer {
    /// The identity used for separation of duties and quorum.
    pub id: String,
    /// Groups the reviewer belongs to.
    pub groups: Vec<String>,
    /// Other names of the same human (IdP object id, chat user id, ...).
    pub aliases: Vec<String>,
}

impl Reviewer {
    /// The id and every alias, lower-cased.
    pub fn identities(&self) -> Vec<String> {
        std::iter::once(&self.id).chain(self.aliases.iter()).map(|s| normalize(s)).filter(|s| !s.is_empty()).collect()
    }
}

/// The parties of an action, none of whom may review it.
#[derive(Clone, Debug, Default)]
pub struct Parties {
    /// The requesting agent.
    pub agent: String,
    /// The agent's owner.
    pub owner: Option<String>,
    /// Identities the agent acts for.
    pub acts_for: Vec<String>,
}

/// A reviewer's vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vote {
    /// Approve.
    Approve,
    /// Deny.
    Deny,
}

impl Vote {
    /// `approve` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Deny => "deny",
        }
    }

    /// Parses `approve` / `deny`.
    pub fn parse(s: &str) -> Option<Vote> {
        match s {
            "approve" => Some(Vote::Approve),
            "deny" => Some(Vote::Deny),
            _ => None,
        }
    }
}

/// Why a review is refused before it is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewRefusal {
    /// The reviewer is the agent, its owner, or someone it acts for.
    SeparationOfDuties,
    /// The reviewer is in none of the policy's approver groups.
    NotAnApprover,
}

/// Identities that may never review an action of `parties`, lower-cased.
pub fn forbidden_identities(parties: &Parties) -> BTreeSet<String> {
    std::iter::once(&parties.agent)
        .chain(parties.owner.iter())
        .chain(parties.acts_for.iter())
        .map(|s| normalize(s))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether `reviewer` may review an action of `parties` gated on `groups` (any
/// authenticated reviewer when `groups` is empty).
pub fn may_review(reviewer: &Reviewer, parties: &Parties, groups: &[String]) -> Result<(), ReviewRefusal> {
    let forbidden = forbidden_identities(parties);
    if reviewer.identities().iter().any(|id| forbidden.contains(id)) {
        return Err(ReviewRefusal::SeparationOfDuties);
    }
    if !groups.is_empty() && !reviewer.groups.iter().any(|g| groups.contains(g)) {
        return Err(ReviewRefusal::NotAnApprover);
    }
    Ok(())
}

/// The quorum a policy asks for (`None`: 1), refused when it can never be met: zero,
/// more than `max`, or more than the `known_members` of its groups when every possible
/// reviewer is known (no OIDC, whose tokens bring their own groups).
pub fn quorum(asked: Option<u32>, max: u32, known_members: Option<usize>) -> Result<u32, String> {
    let q = asked.unwrap_or(1);
    if q == 0 {
        return Err("quorum 0 can never be met: a quorum counts at least one human".into());
    }
    if q > max {
        return Err(format!("quorum {q} is more than this service allows ({max}, approvals.max_quorum)"));
    }
    if let Some(members) = known_members {
        if usize::try_from(q).map_or(true, |q| q > members) {
            return Err(format!("quorum {q} can never be met: the approver groups have {members} known reviewers"));
        }
    }
    Ok(q)
}

/// What a set of reviews adds up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tally {
    /// Not decided yet.
    Open,
    /// Quorum reached.
    Approved,
    /// Someone denied (the first deny decides).
    Denied,
}

/// Tallies `(reviewer id, vote)` pairs against `quorum`: any deny decides; otherwise
/// approvals from `quorum` distinct reviewer ids (case-insensitive) approve.
pub fn tally<'a>(votes: impl IntoIterator<Item = (&'a str, Vote)>, quorum: u32) -> Tally {
    let mut approvers = BTreeSet::new();
    for (who, vote) in votes {
        match vote {
            Vote::Deny => return Tally::Denied,
            Vote::Approve => {
                approvers.insert(normalize(who));
            }
        }
    }
    if approvers.len() >= usize::try_from(quorum.max(1)).unwrap_or(usize::MAX) {
        Tally::Approved
    } else {
        Tally::Open
    }
}

/// Identity comparison form: trimmed, lower-case.
pub fn normalize(s: &str) -> String {
    s.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bob() -> Reviewer {
        Reviewer { id: "bob@corp.example".into(), groups: vec!["data-owners".into()], aliases: vec!["U-BOB".into()] }
    }

    fn parties(owner: &str, acts_for: &[&str]) -> Parties {
        Parties {
            agent: "spiffe://corp/agent/report-bot".into(),
            owner: Some(owner.into()),
            acts_for: acts_for.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn owner_alias_and_acts_for_are_refused() {
        let groups = vec!["data-owners".to_string()];
        assert_eq!(may_review(&bob(), &parties("alice@corp.example", &[]), &groups), Ok(()));
        assert_eq!(
            may_review(&bob(), &parties("BOB@corp.example", &[]), &groups),
            Err(ReviewRefusal::SeparationOfDuties)
        );
        assert_eq!(
            may_review(&bob(), &parties("alice@corp.example", &["u-bob"]), &groups),
            Err(ReviewRefusal::SeparationOfDuties)
        );
        let mut agent_itself = bob();
        agent_itself.id = "spiffe://corp/agent/report-bot".into();
        assert_eq!(
            may_review(&agent_itself, &parties("alice@corp.example", &[]), &groups),
            Err(ReviewRefusal::SeparationOfDuties)
        );
    }

    #[test]
    fn groups_gate_reviewers_unless_none_named() {
        let p = parties("alice@corp.example", &[]);
        assert_eq!(may_review(&bob(), &p, &["sre".to_string()]), Err(ReviewRefusal::NotAnApprover));
        assert_eq!(may_review(&bob(), &p, &[]), Ok(()));
    }

    #[test]
    fn impossible_quorums_are_refused() {
        assert_eq!(quorum(None, 10, None), Ok(1));
        assert_eq!(quorum(Some(3), 10, Some(3)), Ok(3));
        assert!(quorum(Some(0), 10, None).is_err());
        assert!(quorum(Some(11), 10, None).unwrap_err().contains("max_quorum"));
        assert!(quorum(Some(1_000_000_000), 10, None).is_err());
        assert!(quorum(Some(4), 10, Some(3)).unwrap_err().contains("3 known reviewers"));
    }

    #[test]
    fn quorum_counts_distinct_humans_and_first_deny_wins() {
        use Vote::*;
        assert_eq!(tally([("bob", Approve)], 1), Tally::Approved);
        assert_eq!(tally([("bob", Approve), ("BOB", Approve)], 2), Tally::Open);
        assert_eq!(tally([("bob", Approve), ("carol", Approve)], 2), Tally::Approved);
        assert_eq!(tally([("bob", Approve), ("carol", Deny)], 1), Tally::Denied);
        assert_eq!(tally([], 0), Tally::Open);
    }
}
