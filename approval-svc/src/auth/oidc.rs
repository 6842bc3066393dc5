//! OIDC bearer tokens: RS256/ES256 JWTs verified against the IdP's JWKS (fetched from
//! `jwks_url`, cached, refetched when a token names an unknown `kid`), with issuer,
//! audience, `exp`/`nbf` (30 s leeway), and the configured id and groups claims.
//!
//! The key set is refreshed by one task at a time, never under the cache's lock: a token
//! whose key is cached never waits for a refresh. Refreshes are rate-limited (one per
//! `min_refetch`, failed ones included, so an unreachable IdP is not asked again for
//! every token), and a kid a fresh key set did not have is refused without asking again
//! for a while (negative cache). Tokens naming unknown kids that arrive during a refresh
//! wait for its outcome instead of starting their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;

use super::reviewer::AuthError;
use crate::lifecycle::Reviewer;

/// `[oidc]` in airlock.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Where the IdP publishes its keys.
    pub jwks_url: String,
    /// Claim naming the reviewer.
    #[serde(default = "default_id_claim")]
    pub id_claim: String,
    /// Claim listing groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

fn default_id_claim() -> String {
    "email".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

/// Clock leeway for `exp` / `nbf`.
const LEEWAY_SECS: u64 = 30;
/// Least time between two JWKS fetches triggered by unknown key ids.
const MIN_REFETCH: Duration = Duration::from_secs(30);
/// How long a kid missing from a fresh key set is refused without a refetch, in units
/// of `min_refetch`.
const NEGATIVE_TTL_FACTOR: u32 = 10;
/// Most kids remembered as unknown.
const MAX_UNKNOWN_KIDS: usize = 1024;
/// Longest one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// An OIDC verifier with a JWKS cache.
#[derive(Clone)]
pub struct Oidc {
    config: Arc<OidcConfig>,
    cache: Arc<Mutex<Cache>>,
    /// Bumped when a refresh ends (either way): wakes the tokens waiting for it.
    refreshed: Arc<watch::Sender<u64>>,
    min_refetch: Duration,
}

#[derive(Default)]
struct Cache {
    keys: Option<JwkSet>,
    /// When the last fetch started.
    attempted: Option<Instant>,
    /// Why the last fetch failed; `None` after a success.
    failure: Option<String>,
    /// A fetch is under way.
    fetching: bool,
    /// Kids a fresh key set did not have, and since when.
    unknown: HashMap<String, Instant>,
}

/// What a token's kid leads to, decided under the cache's lock.
enum Next {
    Key(Result<DecodingKey, AuthError>),
    Wait(watch::Receiver<u64>),
}

impl Oidc {
    /// A verifier for `config` (keys fetched on first use).
    pub fn new(config: OidcConfig) -> Oidc {
        Oidc::with_cache(config, Cache::default())
    }

    fn with_cache(config: OidcConfig, cache: Cache) -> Oidc {
        Oidc {
            config: Arc::new(config),
            cache: Arc::new(Mutex::new(cache)),
            refreshed: Arc::new(watch::channel(0).0),
            min_refetch: MIN_REFETCH,
        }
    }

    /// The same verifier with another least time between unknown-`kid` refetches (tests:
    /// lets a key rotation be observed without waiting out [`MIN_REFETCH`]). The negative
    /// cache of unknown kids scales with it.
    pub fn with_min_refetch(mut self, min_refetch: Duration) -> Oidc {
        self.min_refetch = min_refetch;
        self
    }

    /// A verifier with pre-loaded keys (tests).
    pub fn with_keys(config: OidcConfig, keys: JwkSet) -> Oidc {
        Oidc::with_cache(config, Cache { keys: Some(keys), attempted: Some(Instant::now()), ..Cache::default() })
    }

    /// Verifies `token`; returns the reviewer it names (aliases from configuration are
    /// joined by the caller).
    pub async fn verify(&self, token: &str) -> Result<Reviewer, AuthError> {
        let audience = self.config.audience.clone();
        self.verify_for(token, &audience).await.map(|(reviewer, _)| reviewer)
    }

    /// Verifies an ID token issued to `client_id` (the web console's sign-in): the same
    /// keys, issuer, algorithms and identity claims as a bearer token, but the audience
    /// is the console's client. Answers the reviewer and every claim (`nonce`,
    /// `auth_time`, ...), which the caller checks against its sign-in.
    pub async fn verify_id_token(&self, token: &str, client_id: &str) -> Result<(Reviewer, Value), AuthError> {
        self.verify_for(token, client_id).await
    }

    /// The configuration this verifier checks against.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn verify_for(&self, token: &str, audience: &str) -> Result<(Reviewer, Value), AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Invalid)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Invalid);
        }
        let kid = header.kid.ok_or(AuthError::Invalid)?;
        let key = self.key_for(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[audience]);
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
        Ok((Reviewer { id, groups, aliases }, claims))
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn negative_ttl(&self) -> Duration {
        self.min_refetch.saturating_mul(NEGATIVE_TTL_FACTOR)
    }

    async fn key_for(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let next = {
            let mut c = self.lock();
            if let Some(found) = c.keys.as_ref().and_then(|k| k.find(kid)) {
                Next::Key(DecodingKey::from_jwk(found).map_err(|_| AuthError::Invalid))
            } else if c.unknown.get(kid).is_some_and(|at| at.elapsed() < self.negative_ttl()) {
                Next::Key(Err(AuthError::Invalid))
            } else if c.fetching {
                Next::Wait(self.refreshed.subscribe())
            } else if c.attempted.is_some_and(|at| at.elapsed() < self.min_refetch) {
                Next::Key(Err(self.missing(&mut c, kid)))
            } else {
                c.fetching = true;
                c.attempted = Some(Instant::now());
                let waiting = self.refreshed.subscribe();
                // Its own task: a caller that goes away cannot leave the fetch unfinished.
                tokio::spawn(self.clone().refresh());
                Next::Wait(waiting)
            }
        };
        let mut waiting = match next {
            Next::Key(key) => return key,
            Next::Wait(w) => w,
        };
        if tokio::time::timeout(FETCH_TIMEOUT + Duration::from_secs(1), waiting.changed()).await.is_err() {
            return Err(AuthError::Unavailable("the identity provider's key set did not arrive in time".into()));
        }
        let mut c = self.lock();
        match c.keys.as_ref().and_then(|k| k.find(kid)) {
            Some(found) => DecodingKey::from_jwk(found).map_err(|_| AuthError::Invalid),
            None => Err(self.missing(&mut c, kid)),
        }
    }

    /// Why `kid`, not in the key set, is refused: the IdP is unavailable if the last
    /// fetch failed, else the kid is unknown (and remembered as such).
    fn missing(&self, c: &mut Cache, kid: &str) -> AuthError {
        if let Some(why) = &c.failure {
            return AuthError::Unavailable(why.clone());
        }
        if c.unknown.len() >= MAX_UNKNOWN_KIDS {
            let ttl = self.negative_ttl();
            c.unknown.retain(|_, at| at.elapsed() < ttl);
        }
        if c.unknown.len() < MAX_UNKNOWN_KIDS {
            c.unknown.insert(kid.to_string(), Instant::now());
        }
        AuthError::Invalid
    }

    /// Fetches the key set, stores the outcome, wakes the waiting tokens.
    async fn refresh(self) {
        let url = self.config.jwks_url.clone();
        let fetched = match tokio::task::spawn_blocking(move || fetch_jwks(&url)).await {
            Ok(Ok(keys)) => Ok(keys),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("key fetch failed: {e}")),
        };
        {
            let mut c = self.lock();
            c.fetching = false;
            match fetched {
                Ok(keys) => {
                    c.keys = Some(keys);
                    c.failure = None;
                    // A new key set may hold kids refused before.
                    c.unknown.clear();
                }
                Err(why) => {
                    tracing::warn!(error = %why, "oidc: fetching the key set failed");
                    c.failure = Some(why);
                }
            }
        }
        self.refreshed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn fetch_jwks(url: &str) -> Result<JwkSet, AuthError> {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(FETCH_TIMEOUT)).build().into();
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
