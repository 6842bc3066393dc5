//! Whether the signed-in reviewer may decide an approval, and if not, why — in words a
//! reviewer understands. The use case ([`crate::approvals::review`]) decides again when
//! the vote arrives; this is what the pages show, and the step-up rule, which only the
//! console can enforce.

use crate::lifecycle::{may_review, normalize_identity, ReviewRefusal, Reviewer, Status};
use crate::store::Approval;

use super::config::ConsoleConfig;

/// Where a reviewer stands on one approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// They may approve or deny now.
    MayDecide,
    /// They may decide after signing in again (the approval's risk needs a sign-in no
    /// older than `max_age_secs`; theirs is `age_secs` old, or of unknown age).
    StepUp {
        /// The approval's risk.
        risk: String,
        /// How recent the sign-in must be.
        max_age_secs: u64,
        /// How old theirs is.
        age_secs: Option<i64>,
    },
    /// They may not decide it.
    Refused(String),
}

impl Standing {
    /// What the page says.
    pub fn explanation(&self) -> Option<String> {
        match self {
            Standing::MayDecide => None,
            Standing::StepUp { risk, max_age_secs, age_secs } => Some(format!(
                "This is a {risk}-risk action: deciding it needs a sign-in from the last {}. {} Sign in again to decide.",
                super::pages::span_secs(i64::try_from(*max_age_secs).unwrap_or(i64::MAX)),
                match age_secs {
                    Some(age) => format!("You signed in {} ago.", super::pages::span_secs(*age)),
                    None => "Your identity provider did not say when you signed in.".to_string(),
                }
            )),
            Standing::Refused(why) => Some(why.clone()),
        }
    }

    /// Whether it belongs in the reviewer's inbox (decidable now or after a step-up).
    pub fn in_inbox(&self) -> bool {
        !matches!(self, Standing::Refused(_))
    }
}

/// Where `reviewer`, whose sign-in is `auth_age_secs` old, stands on `approval` at `now_ms`.
pub fn standing(
    reviewer: &Reviewer,
    approval: &Approval,
    auth_age_secs: Option<i64>,
    config: &ConsoleConfig,
    now_ms: i64,
) -> Standing {
    if approval.status != Status::Pending {
        return Standing::Refused(format!(
            "This approval is {}: there is nothing left to decide.",
            approval.status.as_str()
        ));
    }
    if approval.expires_ms <= now_ms {
        return Standing::Refused("This approval has expired.".into());
    }
    if let Err(refusal) = may_review(reviewer, &approval.parties(), &approval.groups()) {
        return Standing::Refused(match refusal {
            ReviewRefusal::SeparationOfDuties => "You cannot decide this approval: it is an action of your own agent \
                (you are the agent, its owner or someone it acts for). Separation of duties needs another reviewer."
                .to_string(),
            ReviewRefusal::NotAnApprover => format!(
                "You cannot decide this approval: the policy asks for a reviewer in {}, and your groups are {}.",
                list(&approval.groups()),
                list(&reviewer.groups)
            ),
        });
    }
    let mine = reviewer.identities();
    if let Some(earlier) = approval.reviews.iter().find(|r| mine.contains(&normalize_identity(&r.reviewer))) {
        return Standing::Refused(format!(
            "You already voted on this approval ({}); the quorum needs other reviewers.",
            earlier.vote.as_str()
        ));
    }
    let risk = approval.create.pointer("/policy/risk").and_then(serde_json::Value::as_str).unwrap_or_default();
    if config.step_up_for(risk) {
        let max_age_secs = config.step_up_max_age.as_secs();
        let fresh = auth_age_secs.is_some_and(|age| u64::try_from(age).is_ok_and(|a| a <= max_age_secs));
        if !fresh {
            return Standing::StepUp { risk: risk.to_string(), max_age_secs, age_secs: auth_age_secs };
        }
    }
    Standing::MayDecide
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::lifecycle::Vote;
    use crate::store::ReviewRecord;
    use serde_json::json;

    fn config() -> ConsoleConfig {
        toml::from_str("public_url = \"https://a.example\"\nclient_id = \"c\"\nstep_up_max_age = \"5m\"").unwrap()
    }

    fn approval(risk: &str) -> Approval {
        Approval {
            id: "apr_1".into(),
            status: Status::Pending,
            agent: "agent-1".into(),
            digest: "d".into(),
            created_ms: 0,
            expires_ms: 10_000,
            decided_ms: None,
            usable_until_ms: None,
            redeem_count: 0,
            quorum: 2,
            reuse: "once".into(),
            credential: None,
            create: json!({"agent": {"id": "agent-1", "source": "header", "owner": "alice@corp.example"},
                           "policy": {"risk": risk, "approvers": {"groups": ["data-owners"]}}}),
            reviews: vec![],
        }
    }

    fn reviewer(id: &str, groups: &[&str]) -> Reviewer {
        Reviewer { id: id.into(), groups: groups.iter().map(|g| g.to_string()).collect(), aliases: vec![] }
    }

    #[test]
    fn owner_stranger_and_second_vote_are_refused_with_reasons() {
        let c = config();
        let a = approval("high");
        let owner = standing(&reviewer("Alice@corp.example", &["data-owners"]), &a, Some(0), &c, 0);
        assert!(owner.explanation().unwrap().contains("your own agent"), "{owner:?}");
        let stranger = standing(&reviewer("eve@corp.example", &["sre"]), &a, Some(0), &c, 0);
        assert!(stranger.explanation().unwrap().contains("data-owners"), "{stranger:?}");
        let mut voted = a.clone();
        voted.reviews.push(ReviewRecord {
            reviewer: "bob@corp.example".into(),
            vote: Vote::Approve,
            comment: None,
            channel: "console".into(),
            time_ms: 1,
        });
        let again = standing(&reviewer("bob@corp.example", &["data-owners"]), &voted, Some(0), &c, 0);
        assert!(again.explanation().unwrap().contains("already voted"), "{again:?}");
        assert_eq!(
            standing(&reviewer("carol@corp.example", &["data-owners"]), &voted, Some(0), &c, 0),
            Standing::MayDecide
        );
        assert!(
            !standing(&reviewer("carol@corp.example", &["data-owners"]), &a, Some(0), &c, 10_000).in_inbox(),
            "expired"
        );
    }

    #[test]
    fn critical_needs_a_recent_sign_in() {
        let c = config();
        let bob = reviewer("bob@corp.example", &["data-owners"]);
        let a = approval("critical");
        assert_eq!(standing(&bob, &a, Some(299), &c, 0), Standing::MayDecide);
        let stale = standing(&bob, &a, Some(301), &c, 0);
        assert!(matches!(stale, Standing::StepUp { age_secs: Some(301), .. }) && stale.in_inbox(), "{stale:?}");
        assert!(matches!(standing(&bob, &a, None, &c, 0), Standing::StepUp { age_secs: None, .. }), "unknown age");
        assert_eq!(standing(&bob, &approval("high"), None, &c, 0), Standing::MayDecide);
    }
}
