//! OIDC bearer tokens: RS256/ES256 JWTs verified against the IdP's JWKS (fetched from
//! `jwks_url`, cached, refetched when a token names an unknown `kid`), with issuer,
//! audience, `exp`/`nbf` (30 s leeway), and the configured id and groups claims.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

use super::reviewer::AuthError;
use crate::config::OidcConfig;
use crate::lifecycle::Reviewer;

/// Clock leeway for `exp` / `nbf`.
const LEEWAY_SECS: u64 = 30;
/// Least time between two JWKS fetches triggered by unknown key ids.
const MIN_REFETCH: Duration = Duration::from_secs(30);

/// An OIDC verifier with a JWKS cache.
#[derive(Clone)]
pub struct Oidc {
    config: Arc<OidcConfig>,
    cache: Arc<Mutex<Cache>>,
    min_refetch: Duration,
}

#[derive(Default)]
struct Cache {
    keys: Option<JwkSet>,
    fetched: Option<Instant>,
}

impl Oidc {
    /// A verifier for `config` (keys fetched on first use).
    pub fn new(config: OidcConfig) -> Oidc {
        Oidc { config: Arc::new(config), cache: Arc::new(Mutex::new(Cache::default())), min_refetch: MIN_REFETCH }
    }

    /// The same verifier with another least time between unknown-`kid` refetches (tests:
    /// lets a key rotation be observed without waiting out [`MIN_REFETCH`]).
    pub fn with_min_refetch(mut self, min_refetch: Duration) -> Oidc {
        self.min_refetch = min_refetch;
        self
    }

    /// A verifier with pre-loaded keys (tests).
    pub fn with_keys(config: OidcConfig, keys: JwkSet) -> Oidc {
        let cache = Cache { keys: Some(keys), fetched: Some(Instant::now()) };
        Oidc { config: Arc::new(config), cache: Arc::new(Mutex::new(cache)), min_refetch: MIN_REFETCH }
    }

    /// Verifies `token`; returns the reviewer it names (aliases from configuration are
    /// joined by the caller).
    pub async fn verify(&self, token: &str) -> Result<Reviewer, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Invalid)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Invalid);
        }
        let kid = header.kid.ok_or(AuthError::Invalid)?;
        let key = self.key_for(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        // `set_issuer` / `set_audience` only check `iss` / `aud` when the token carries
        // them: without requiring both, a token from the IdP's keys with no `iss` or no
        // `aud` (e.g. issued for another client) was accepted as a reviewer token.
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let data = decode::<Value>(token, &key, &validation).map_err(|_| AuthError::Invalid)?;
        let claims = data.claims;
        let id = claims
            .get(&self.config.id_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or(AuthError::Invalid)?
            .to_string();
        let groups = match claims.get(&self.config.groups_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let mut aliases = Vec::new();
        if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
            if sub != id {
                aliases.push(sub.to_string());
            }
        }
        Ok(Reviewer { id, groups, aliases })
    }

    async fn key_for(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(found) = cache.keys.as_ref().and_then(|k| k.find(kid)) {
            return DecodingKey::from_jwk(found).map_err(|_| AuthError::Invalid);
        }
        let recently = cache.fetched.is_some_and(|t| t.elapsed() < self.min_refetch);
        if recently && cache.keys.is_some() {
            return Err(AuthError::Invalid);
        }
        let url = self.config.jwks_url.clone();
        let fetched = tokio::task::spawn_blocking(move || fetch_jwks(&url))
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))??;
        cache.fetched = Some(Instant::now());
        cache.keys = Some(fetched);
        let found = cache.keys.as_ref().and_then(|k| k.find(kid)).ok_or(AuthError::Invalid)?;
        DecodingKey::from_jwk(found).map_err(|_| AuthError::Invalid)
    }
}

fn fetch_jwks(url: &str) -> Result<JwkSet, AuthError> {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
    let mut answer = agent.get(url).call().map_err(|e| AuthError::Unavailable(format!("{url}: {e}")))?;
    answer.body_mut().read_json::<JwkSet>().map_err(|e| AuthError::Unavailable(format!("{url}: not a JWKS: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use base64::Engine as _;

    fn config(jwks_url: &str) -> OidcConfig {
        OidcConfig {
            issuer: "https://login.example.com/".into(),
            audience: "airlock".into(),
            jwks_url: jwks_url.into(),
            id_claim: "email".into(),
            groups_claim: "groups".into(),
        }
    }

    fn token(header: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.{}", b(header), b(r#"{"email":"bob@corp.example"}"#), b("sig"))
    }

    #[tokio::test]
    async fn refuses_symmetric_algorithms_and_unknown_keys() {
        let oidc = Oidc::with_keys(config("http://127.0.0.1:9/keys"), JwkSet { keys: vec![] });
        let hs = token(r#"{"alg":"HS256","kid":"k"}"#);
        assert!(matches!(oidc.verify(&hs).await, Err(AuthError::Invalid)));
        let rs = token(r#"{"alg":"RS256","kid":"unknown"}"#);
        assert!(matches!(oidc.verify(&rs).await, Err(AuthError::Invalid)), "recently fetched: no refetch");
        let cold = Oidc::new(config("http://127.0.0.1:9/keys"));
        assert!(matches!(cold.verify(&rs).await, Err(AuthError::Unavailable(_))), "unknown kid triggers a fetch");
    }
}
