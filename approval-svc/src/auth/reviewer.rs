//! Reviewer authentication: `Authorization: Bearer <api key | OIDC JWT>`. API keys are
//! compared by SHA-256 in constant time against every configured reviewer.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use serde::Deserialize;

use super::oidc::Oidc;
use crate::lifecycle::Reviewer;

/// `[[reviewers]]` in airlock.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewerConfig {
    /// Identity used for separation of duties.
    pub id: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Other names of the same human.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Lower-case hex SHA-256 of the reviewer's API key.
    #[serde(default)]
    pub api_key_sha256: Option<String>,
}

/// Known reviewers and how to recognise them.
#[derive(Clone)]
pub struct ReviewerDirectory {
    reviewers: Vec<(Reviewer, Option<[u8; 32]>)>,
    oidc: Option<Oidc>,
}

/// Why a bearer was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// The token matches no reviewer.
    #[error("invalid credentials")]
    Invalid,
    /// The IdP's keys could not be fetched (logged; answered as 401/503).
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
}

impl ReviewerDirectory {
    /// From configuration.
    pub fn new(config: &[ReviewerConfig], oidc: Option<Oidc>) -> ReviewerDirectory {
        let reviewers = config
            .iter()
            .map(|r| {
                let hash = r
                    .api_key_sha256
                    .as_deref()
                    .and_then(|h| hex::decode(h.trim()).ok())
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                (Reviewer { id: r.id.clone(), groups: r.groups.clone(), aliases: r.aliases.clone() }, hash)
            })
            .collect();
        ReviewerDirectory { reviewers, oidc }
    }

    /// The reviewer behind an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Reviewer, AuthError> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if let Some(r) = self.by_api_key(token) {
            return Ok(r);
        }
        match &self.oidc {
            Some(oidc) if token.split('.').count() == 3 => {
                let identity = oidc.verify(token).await?;
                Ok(self.merge(identity))
            }
            _ => Err(AuthError::Invalid),
        }
    }

    /// The configured reviewer one of whose names (id or alias: e-mail, Entra object id,
    /// Slack user id, ...) is `name`, compared trimmed and case-insensitively. Chat
    /// channels map their users through this, so a human is the same identity — for
    /// separation of duties and quorum — in Teams, Slack, OIDC and the API.
    pub fn find(&self, name: &str) -> Option<Reviewer> {
        let wanted = crate::lifecycle::normalize_identity(name);
        if wanted.is_empty() {
            return None;
        }
        self.reviewers.iter().map(|(r, _)| r).find(|r| r.identities().contains(&wanted)).cloned()
    }

    /// How many configured reviewers may approve for `groups` (any of them when `groups`
    /// is empty), or `None` when OIDC may bring reviewers and groups nobody configured.
    pub fn known_members(&self, groups: &[String]) -> Option<usize> {
        if self.oidc.is_some() {
            return None;
        }
        Some(
            self.reviewers
                .iter()
                .filter(|(r, _)| groups.is_empty() || r.groups.iter().any(|g| groups.contains(g)))
                .count(),
        )
    }

    /// Constant-time comparison of sha256(token) against every reviewer's hash.
    fn by_api_key(&self, token: &str) -> Option<Reviewer> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (reviewer, hash) in &self.reviewers {
            if let Some(hash) = hash {
                if bool::from(hash.ct_eq(&presented)) && found.is_none() {
                    found = Some(reviewer.clone());
                }
            }
        }
        found
    }

    /// The OIDC verifier, when `[oidc]` is configured (the web console signs in with it).
    pub fn oidc(&self) -> Option<&Oidc> {
        self.oidc.as_ref()
    }

    /// An OIDC identity joined with the configured reviewer of the same id or alias.
    pub fn merge(&self, mut identity: Reviewer) -> Reviewer {
        // Join on *every* name the token carries (the id claim and `sub`), not the id
        // claim alone: a human whose id claim differs from the configured id (another
        // mailbox, a UPN) but whose `sub` / object id is a configured alias was treated
        // as a stranger — escaping separation of duties for their own agent and counting
        // twice towards a quorum.
        let presented = identity.identities();
        if let Some((known, _)) =
            self.reviewers.iter().find(|(r, _)| r.identities().iter().any(|i| presented.contains(i)))
        {
            // Keep the token's own id as an alias: separation of duties compares it too.
            let token_id = std::mem::replace(&mut identity.id, known.id.clone());
            identity.aliases.push(token_id);
            identity.aliases.extend(known.aliases.iter().cloned());
            for g in &known.groups {
                if !identity.groups.contains(g) {
                    identity.groups.push(g.clone());
                }
            }
        }
        identity
    }
}

/// Lower-case hex SHA-256 of an API key (`airlock keys hash-api-key`).
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dir() -> ReviewerDirectory {
        ReviewerDirectory::new(
            &[ReviewerConfig {
                id: "bob@corp.example".into(),
                groups: vec!["sre".into()],
                aliases: vec![],
                api_key_sha256: Some(hash_api_key("bob-key")),
            }],
            None,
        )
    }

    #[tokio::test]
    async fn api_keys_authenticate_by_hash() {
        let d = dir();
        assert_eq!(d.authenticate(Some("Bearer bob-key")).await.unwrap().id, "bob@corp.example");
        assert!(matches!(d.authenticate(Some("Bearer nope")).await, Err(AuthError::Invalid)));
        assert!(matches!(d.authenticate(None).await, Err(AuthError::Missing)));
        assert!(matches!(d.authenticate(Some("Basic Ym9i")).await, Err(AuthError::Missing)));
    }

    #[test]
    fn find_matches_any_name_of_a_reviewer() {
        let d = ReviewerDirectory::new(
            &[ReviewerConfig {
                id: "bob@corp.example".into(),
                groups: vec!["sre".into()],
                aliases: vec!["00000000-aaaa-0002".into(), "U0BOB".into()],
                api_key_sha256: None,
            }],
            None,
        );
        assert_eq!(d.find(" BOB@corp.example").unwrap().id, "bob@corp.example");
        assert_eq!(d.find("00000000-AAAA-0002").unwrap().id, "bob@corp.example");
        assert_eq!(d.find("u0bob").unwrap().id, "bob@corp.example");
        assert!(d.find("").is_none());
        assert!(d.find("mallory@corp.example").is_none());
    }

    #[test]
    fn oidc_identity_joins_its_configured_reviewer_by_alias_too() {
        let d = ReviewerDirectory::new(
            &[ReviewerConfig {
                id: "bob@corp.example".into(),
                groups: vec!["sre".into()],
                aliases: vec!["00000000-AAAA-0002".into()],
                api_key_sha256: None,
            }],
            None,
        );
        // Same human, id claim is another mailbox; `sub` is his configured object id.
        let token =
            Reviewer { id: "Robert@Corp.Example".into(), groups: vec![], aliases: vec!["00000000-aaaa-0002".into()] };
        let merged = d.merge(token);
        assert_eq!(merged.id, "bob@corp.example");
        assert!(merged.identities().contains(&"robert@corp.example".to_string()));
        assert!(merged.groups.contains(&"sre".to_string()));
    }
}
