//! Who clicked: the activity's `from.aadObjectId`, confirmed and completed by the
//! conversation member profile the Bot Connector serves (e-mail, UPN, role, tenant),
//! mapped to a configured reviewer through the directory.
//!
//! The reviewer is then given every name the profile carries as an alias, so separation
//! of duties compares the agent's owner against the object id, the e-mail and the UPN,
//! whichever of them the owner was recorded as.

use crate::auth::reviewer::ReviewerDirectory;
use crate::lifecycle::Reviewer;

use super::connector::MemberProfile;

/// Why a clicker is not accepted as a reviewer (told to the clicker).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityRefusal {
    /// No Entra object id: an anonymous or federated user.
    #[error("anonymous users cannot review approvals")]
    Anonymous,
    /// The profile says the user is from another tenant, or its object id differs.
    #[error("your account is not one this approval service accepts")]
    ForeignUser,
    /// Nobody in the reviewer directory has any of the user's names.
    #[error("you are not a configured reviewer")]
    Unknown,
    /// The user's names belong to different configured reviewers.
    #[error("your account matches more than one reviewer; ask an administrator to fix the reviewer aliases")]
    Ambiguous,
}

/// The configured reviewer behind `object_id` with `profile`.
pub fn resolve(
    directory: &ReviewerDirectory,
    object_id: &str,
    profile: &MemberProfile,
    tenant_id: &str,
) -> Result<Reviewer, IdentityRefusal> {
    if object_id.trim().is_empty() {
        return Err(IdentityRefusal::Anonymous);
    }
    if profile.user_role.as_deref().is_some_and(|r| r.eq_ignore_ascii_case("anonymous")) {
        return Err(IdentityRefusal::Anonymous);
    }
    if profile.tenant_id.as_deref().is_some_and(|t| !t.trim().eq_ignore_ascii_case(tenant_id.trim())) {
        return Err(IdentityRefusal::ForeignUser);
    }
    if profile.aad_object_id.as_deref().is_some_and(|o| !o.trim().eq_ignore_ascii_case(object_id.trim())) {
        return Err(IdentityRefusal::ForeignUser);
    }
    let names: Vec<&str> = [Some(object_id), profile.email.as_deref(), profile.user_principal_name.as_deref()]
        .into_iter()
        .flatten()
        .filter(|n| !n.trim().is_empty())
        .collect();
    let mut found: Option<Reviewer> = None;
    for name in &names {
        if let Some(r) = directory.find(name) {
            match &found {
                Some(f) if f.id != r.id => return Err(IdentityRefusal::Ambiguous),
                Some(_) => {}
                None => found = Some(r),
            }
        }
    }
    let mut reviewer = found.ok_or(IdentityRefusal::Unknown)?;
    for name in names {
        if !reviewer.identities().contains(&crate::lifecycle::normalize_identity(name)) {
            reviewer.aliases.push(name.to_string());
        }
    }
    Ok(reviewer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::reviewer::ReviewerConfig;

    fn dir() -> ReviewerDirectory {
        let r = |id: &str, aliases: &[&str]| ReviewerConfig {
            id: id.into(),
            groups: vec!["sre".into()],
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            api_key_sha256: None,
        };
        ReviewerDirectory::new(&[r("bob@corp.example", &["oid-bob"]), r("carol@corp.example", &[])], None)
    }

    fn profile(email: &str) -> MemberProfile {
        MemberProfile {
            aad_object_id: None,
            email: Some(email.into()),
            user_principal_name: None,
            user_role: Some("user".into()),
            tenant_id: Some("t1".into()),
        }
    }

    #[test]
    fn maps_by_object_id_or_email_and_keeps_every_name() {
        let bob = resolve(&dir(), "oid-bob", &profile("bob@corp.example"), "t1").unwrap();
        assert_eq!(bob.id, "bob@corp.example");
        let carol = resolve(&dir(), "oid-carol", &profile("Carol@Corp.Example"), "t1").unwrap();
        assert_eq!(carol.id, "carol@corp.example");
        assert!(carol.identities().contains(&"oid-carol".to_string()), "object id joins the aliases");
    }

    #[test]
    fn refuses_anonymous_foreign_unknown_and_ambiguous() {
        assert_eq!(resolve(&dir(), "", &profile("bob@corp.example"), "t1"), Err(IdentityRefusal::Anonymous));
        let mut anon = profile("bob@corp.example");
        anon.user_role = Some("anonymous".into());
        assert_eq!(resolve(&dir(), "oid-bob", &anon, "t1"), Err(IdentityRefusal::Anonymous));
        let mut foreign = profile("bob@corp.example");
        foreign.tenant_id = Some("t2".into());
        assert_eq!(resolve(&dir(), "oid-bob", &foreign, "t1"), Err(IdentityRefusal::ForeignUser));
        let mut other = profile("bob@corp.example");
        other.aad_object_id = Some("oid-someone-else".into());
        assert_eq!(resolve(&dir(), "oid-bob", &other, "t1"), Err(IdentityRefusal::ForeignUser));
        assert_eq!(resolve(&dir(), "oid-x", &profile("mallory@corp.example"), "t1"), Err(IdentityRefusal::Unknown));
        assert_eq!(resolve(&dir(), "oid-bob", &profile("carol@corp.example"), "t1"), Err(IdentityRefusal::Ambiguous));
    }
}
