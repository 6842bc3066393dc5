//! Who the agent is, from the one source the deployment trusts.
//!
//! Identity never comes from anything the agent can freely set: the mTLS peer
//! certificate, claims Envoy's `jwt_authn` already verified, or a header the
//! deployment strips from downstream. No identity, or an ambiguous one, is refused
//! before any policy runs.

use crate::config::{IdentityConfig, IdentitySource, IdentitySourceKind};
use crate::source::RequestSource;
use std::collections::BTreeMap;

const MAX_ID_LEN: usize = 512;

/// The calling agent as the policy and the approval service see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub source: IdentitySourceKind,
    pub owner: Option<String>,
    pub acts_for: Vec<String>,
    /// Verified JWT claims named in the configuration (empty for other sources).
    pub claims: BTreeMap<String, String>,
}

/// Why no identity could be established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoIdentity(pub String);

/// Establish the agent's identity or refuse.
pub fn resolve(cfg: &IdentityConfig, req: &dyn RequestSource) -> Result<Agent, NoIdentity> {
    let mut claims = BTreeMap::new();
    let mut claimed_owner = None;
    let id = match &cfg.source {
        IdentitySource::Header(name) => req.header(name).ok_or_else(|| NoIdentity(format!("no `{name}` header")))?,
        IdentitySource::Mtls => {
            let raw = req
                .property(&["connection", "uri_san_peer_certificate"])
                .ok_or_else(|| NoIdentity("no URI SAN in the peer certificate".into()))?;
            String::from_utf8(raw).map_err(|_| NoIdentity("peer URI SAN is not UTF-8".into()))?
        }
        IdentitySource::Jwt(jwt) => {
            let claim = |name: &str| -> Option<String> {
                let path = ["metadata", "filter_metadata", &jwt.metadata_namespace, &jwt.payload_key, name];
                req.property(&path).and_then(|v| String::from_utf8(v).ok())
            };
            let id =
                claim(&jwt.id_claim).ok_or_else(|| NoIdentity(format!("no verified JWT claim `{}`", jwt.id_claim)))?;
            claimed_owner = jwt.owner_claim.as_deref().and_then(claim);
            for name in &jwt.claims {
                if let Some(v) = claim(name) {
                    claims.insert(name.clone(), v);
                }
            }
            id
        }
    };
    check_id(&id)?;
    let profile = cfg.agents.get(&id);
    Ok(Agent {
        owner: profile.and_then(|p| p.owner.clone()).or(claimed_owner),
        acts_for: profile.map(|p| p.acts_for.clone()).unwrap_or_default(),
        source: cfg.source.kind(),
        claims,
        id,
    })
}

fn check_id(id: &str) -> Result<(), NoIdentity> {
    if id.is_empty() {
        return Err(NoIdentity("empty agent identity".into()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(NoIdentity("agent identity longer than 512 bytes".into()));
    }
    // A comma means the header was repeated (the request source joins repeats): two identities
    // in one request is a spoofing attempt, never a choice to make.
    if id.contains(',') {
        return Err(NoIdentity("more than one agent identity in the request".into()));
    }
    if !id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(NoIdentity("agent identity has spaces, control or non-ASCII bytes".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::config::{AgentProfile, JwtSource};
    use crate::source::fake::FakeRequest;

    fn cfg(source: IdentitySource) -> IdentityConfig {
        let mut agents = BTreeMap::new();
        agents.insert(
            "bot".to_string(),
            AgentProfile { owner: Some("alice@corp.example".into()), acts_for: vec!["bob@corp.example".into()] },
        );
        IdentityConfig { source, agents }
    }

    #[test]
    fn header_identity_with_profile() {
        let c = cfg(IdentitySource::Header("x-airlock-agent".into()));
        let a = resolve(&c, &FakeRequest::new("GET", "h", "/").with("x-airlock-agent", "bot")).unwrap();
        assert_eq!(a.id, "bot");
        assert_eq!(a.owner.as_deref(), Some("alice@corp.example"));
        assert_eq!(a.acts_for, vec!["bob@corp.example".to_string()]);
    }

    #[test]
    fn missing_duplicate_or_odd_header_identity_is_refused() {
        let c = cfg(IdentitySource::Header("x-airlock-agent".into()));
        assert!(resolve(&c, &FakeRequest::new("GET", "h", "/")).is_err());
        let dup = FakeRequest::new("GET", "h", "/").with("x-airlock-agent", "bot").with("x-airlock-agent", "root");
        assert!(resolve(&c, &dup).is_err());
        for bad in ["", "a b", "bot\u{0}", "bøt"] {
            assert!(resolve(&c, &FakeRequest::new("GET", "h", "/").with("x-airlock-agent", bad)).is_err());
        }
    }

    #[test]
    fn mtls_identity_ignores_headers() {
        let c = cfg(IdentitySource::Mtls);
        let spoof = FakeRequest::new("GET", "h", "/").with("x-airlock-agent", "bot");
        assert!(resolve(&c, &spoof).is_err());
        let ok = spoof.with_property(&["connection", "uri_san_peer_certificate"], b"spiffe://corp/agent/x");
        assert_eq!(resolve(&c, &ok).unwrap().id, "spiffe://corp/agent/x");
    }

    #[test]
    fn jwt_identity_reads_verified_claims() {
        let c = cfg(IdentitySource::Jwt(JwtSource {
            metadata_namespace: "envoy.filters.http.jwt_authn".into(),
            payload_key: "jwt_payload".into(),
            id_claim: "sub".into(),
            owner_claim: Some("owner".into()),
            claims: vec!["scope".into()],
        }));
        let base = ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "jwt_payload"];
        let req = FakeRequest::new("GET", "h", "/")
            .with_property(&[base[0], base[1], base[2], base[3], "sub"], b"agent-7")
            .with_property(&[base[0], base[1], base[2], base[3], "owner"], b"carol@corp.example")
            .with_property(&[base[0], base[1], base[2], base[3], "scope"], b"exports");
        let a = resolve(&c, &req).unwrap();
        assert_eq!(a.id, "agent-7");
        assert_eq!(a.owner.as_deref(), Some("carol@corp.example"));
        assert_eq!(a.claims.get("scope").map(String::as_str), Some("exports"));
        assert!(resolve(&c, &FakeRequest::new("GET", "h", "/")).is_err());
    }
}
