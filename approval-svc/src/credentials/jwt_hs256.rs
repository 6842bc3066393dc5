//! `kind = "jwt-hs256"`: a short-lived JWT for the upstream: `sub` agent, `aud` host,
//! `act` approvers, `airlock_digest`, `airlock_approval`, `jti`, `iat`, `exp` (≤ 5 min).

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use super::{random_hex, MintContext, MintError, Minted, MAX_CREDENTIAL_TTL};
use crate::time::duration_ms;

/// An HS256 JWT minter.
#[derive(Clone)]
pub struct JwtHs256 {
    key: EncodingKey,
    ttl: Duration,
    header: String,
    issuer: String,
}

impl JwtHs256 {
    /// A minter with `key` (≥ 32 bytes), lifetime `ttl` (capped at 5 minutes).
    pub fn new(key: Vec<u8>, ttl: Duration, header: String, issuer: String) -> JwtHs256 {
        JwtHs256 { key: EncodingKey::from_secret(&key), ttl: ttl.min(MAX_CREDENTIAL_TTL), header, issuer }
    }

    /// Mints a JWT for `ctx`.
    pub fn mint(&self, ctx: &MintContext, now_ms: i64) -> Result<Minted, MintError> {
        let iat = now_ms / 1000;
        let exp_ms = now_ms.saturating_add(duration_ms(self.ttl));
        let exp = exp_ms / 1000;
        let jti = random_hex(16)?;
        let claims = json!({
            "iss": self.issuer,
            "sub": ctx.agent,
            "aud": ctx.host,
            "act": {"sub": ctx.approvers.first(), "approvers": ctx.approvers},
            "airlock_digest": ctx.digest,
            "airlock_approval": ctx.approval_id,
            "jti": jti,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
        });
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| MintError::Failed(format!("jwt: {e}")))?;
        let headers = BTreeMap::from([(self.header.clone(), format!("Bearer {token}"))]);
        Ok(Minted {
            headers,
            expires_at_ms: Some(exp * 1000),
            audit: json!({"kind": "jwt-hs256", "jti": jti, "iat": iat, "exp": exp, "sub": ctx.agent,
                          "aud": ctx.host, "header": self.header}),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};

    #[test]
    fn claims_bind_agent_host_digest_and_approvers() {
        let m = JwtHs256::new(vec![3; 32], Duration::from_secs(600), "authorization".into(), "airlock".into());
        let ctx = MintContext {
            approval_id: "apr_1".into(),
            agent: "spiffe://a".into(),
            host: "api.example.com".into(),
            digest: "ab".repeat(32),
            approvers: vec!["bob@corp.example".into()],
            request: None,
        };
        let now = crate::time::now_ms();
        let minted = m.mint(&ctx, now).unwrap();
        let token = minted.headers["authorization"].strip_prefix("Bearer ").unwrap().to_string();
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&["api.example.com"]);
        let data = decode::<serde_json::Value>(&token, &DecodingKey::from_secret(&[3; 32]), &v).unwrap();
        let c = data.claims;
        assert_eq!(c["sub"], "spiffe://a");
        assert_eq!(c["airlock_digest"], ctx.digest);
        assert_eq!(c["act"]["approvers"][0], "bob@corp.example");
        assert!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap() <= 300);
        assert!(!minted.audit.to_string().contains(&token));
    }
}
