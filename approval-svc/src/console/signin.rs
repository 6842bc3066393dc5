//! Signing reviewers in: OpenID Connect authorization code flow with PKCE (S256) against
//! the `[oidc]` issuer, as the console's own client. The issuer's endpoints come from its
//! discovery document (fetched once, checked to name the same issuer); the ID token is
//! verified by the same verifier as API bearer tokens ([`crate::auth::oidc`]: keys,
//! issuer, algorithms, id and groups claims) with the console's client id as audience,
//! then its `nonce` and, for a step-up, its `auth_time` are checked here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::config::ConsoleConfig;
use crate::auth::oidc::Oidc;
use crate::auth::reviewer::{AuthError, ReviewerDirectory};
use crate::lifecycle::Reviewer;

/// Longest one call to the IdP may take.
const IDP_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock leeway for `auth_time`.
const AUTH_TIME_LEEWAY_SECS: i64 = 30;

/// Why a sign-in failed. Every one ends with no session.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The IdP could not be reached or answered nonsense.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The IdP answered the authorization request with an error.
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The callback or the tokens do not belong to a sign-in this console started.
    #[error("the sign-in could not be verified: {0}")]
    Invalid(String),
}

impl From<AuthError> for SignInError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable(why) => SignInError::Unavailable(why),
            other => SignInError::Invalid(format!("ID token: {other}")),
        }
    }
}

#[derive(Clone, Debug)]
struct Endpoints {
    authorization: String,
    token: String,
}

/// The console's OIDC client.
pub struct SignIn {
    oidc: Oidc,
    reviewers: ReviewerDirectory,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    scopes: String,
    endpoints: Mutex<Option<Endpoints>>,
}

/// What a verified sign-in yields.
#[derive(Debug)]
pub struct SignedIn {
    /// The reviewer, joined with their configured entry.
    pub reviewer: Reviewer,
    /// `auth_time` of the ID token (Unix seconds).
    pub auth_time: Option<i64>,
}

/// PKCE: a fresh verifier and its S256 challenge.
pub fn pkce_pair(verifier: String) -> (String, String) {
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl SignIn {
    /// The client of `config`, verifying with the directory's OIDC verifier; `None`
    /// when `[oidc]` is not configured.
    pub fn new(config: &ConsoleConfig, reviewers: ReviewerDirectory, client_secret: Option<String>) -> Option<SignIn> {
        let oidc = reviewers.oidc()?.clone();
        Some(SignIn {
            oidc,
            reviewers,
            client_id: config.client_id.clone(),
            client_secret,
            redirect_uri: config.redirect_uri(),
            scopes: config.scopes.join(" "),
            endpoints: Mutex::new(None),
        })
    }

    fn issuer(&self) -> &str {
        &self.oidc.config().issuer
    }

    async fn endpoints(&self) -> Result<Endpoints, SignInError> {
        if let Some(e) = self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(e);
        }
        let issuer = self.issuer().to_string();
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let doc = blocking(move || get_json(&url)).await?;
        let text = |field: &str| {
            doc.get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| SignInError::Unavailable(format!("discovery document has no {field}")))
        };
        // A document naming another issuer is not this IdP's (OpenID Discovery 4.3).
        if text("issuer")? != issuer {
            return Err(SignInError::Unavailable(format!(
                "discovery document names issuer {:?}, not the configured {issuer:?}",
                text("issuer")?
            )));
        }
        let found = Endpoints { authorization: text("authorization_endpoint")?, token: text("token_endpoint")? };
        *self.endpoints.lock().unwrap_or_else(|p| p.into_inner()) = Some(found.clone());
        Ok(found)
    }

    /// Where to send the browser: the authorization request for `state`, `nonce` and the
    /// PKCE `challenge`. A step-up asks for a fresh login (`prompt=login`) no older than
    /// `max_age`, so the ID token carries `auth_time`; a normal sign-in asks for
    /// `auth_time` too (through `max_age` = the session lifetime).
    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        challenge: &str,
        max_age: Duration,
        step_up: bool,
    ) -> Result<String, SignInError> {
        let endpoints = self.endpoints().await?;
        let max_age = max_age.as_secs().to_string();
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.scopes)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("max_age", &max_age);
        if step_up {
            query.append_pair("prompt", "login");
        }
        let separator = if endpoints.authorization.contains('?') { '&' } else { '?' };
        Ok(format!("{}{separator}{}", endpoints.authorization, query.finish()))
    }

    /// Redeems `code` with the PKCE `verifier`, verifies the ID token for `nonce` and,
    /// when `fresh_within` is set, that the IdP authenticated the reviewer within it.
    pub async fn finish(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        fresh_within: Option<Duration>,
    ) -> Result<SignedIn, SignInError> {
        let endpoints = self.endpoints().await?;
        let mut form = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".to_string(), code.to_string()),
            ("redirect_uri".to_string(), self.redirect_uri.clone()),
            ("code_verifier".to_string(), verifier.to_string()),
        ];
        let authorization = match &self.client_secret {
            // client_secret_basic: both parts form-encoded first (RFC 6749 2.3.1).
            Some(secret) => {
                let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", enc(&self.client_id), enc(secret));
                Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
            }
            None => {
                form.push(("client_id".to_string(), self.client_id.clone()));
                None
            }
        };
        let url = endpoints.token.clone();
        let answer = blocking(move || post_form(&url, authorization.as_deref(), &form)).await?;
        let id_token = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| SignInError::Invalid("the token answer has no id_token".into()))?;
        let (identity, claims) = self.oidc.verify_id_token(id_token, &self.client_id).await?;
        check_claims(&claims, &self.client_id, nonce, fresh_within, crate::time::now_secs())?;
        let auth_time = claims.get("auth_time").and_then(Value::as_i64);
        Ok(SignedIn { reviewer: self.reviewers.merge(identity), auth_time })
    }

    /// Whether an `iss` authorization response parameter (RFC 9207) names our issuer.
    pub fn is_issuer(&self, iss: &str) -> bool {
        iss == self.issuer()
    }
}

/// The ID token checks the shared verifier does not make: `nonce` (binds the token to
/// this sign-in), `azp` when several audiences, and the freshness a step-up needs.
fn check_claims(
    claims: &Value,
    client_id: &str,
    nonce: &str,
    fresh_within: Option<Duration>,
    now_secs: i64,
) -> Result<(), SignInError> {
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err(SignInError::Invalid("ID token nonce does not match this sign-in".into()));
    }
    if claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1)
        && claims.get("azp").and_then(Value::as_str) != Some(client_id)
    {
        return Err(SignInError::Invalid("ID token for several audiences is not authorized for this client".into()));
    }
    if let Some(max_age) = fresh_within {
        let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        let Some(auth_time) = claims.get("auth_time").and_then(Value::as_i64) else {
            return Err(SignInError::Invalid("ID token has no auth_time: a fresh sign-in cannot be proven".into()));
        };
        if now_secs.saturating_sub(auth_time) > max_age.saturating_add(AUTH_TIME_LEEWAY_SECS) {
            return Err(SignInError::Invalid("the identity provider did not sign you in again".into()));
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SignInError> + Send + 'static,
) -> Result<T, SignInError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SignInError::Unavailable(format!("task failed: {e}")))?
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(IDP_TIMEOUT)).http_status_as_error(false).build().into()
}

fn get_json(url: &str) -> Result<Value, SignInError> {
    let mut answer = agent().get(url).call().map_err(|e| SignInError::Unavailable(format!("{url}: {e}")))?;
    if !answer.status().is_success() {
        return Err(SignInError::Unavailable(format!("{url}: HTTP {}", answer.status())));
    }
    answer.body_mut().read_json::<Value>().map_err(|e| SignInError::Unavailable(format!("{url}: not JSON: {e}")))
}

fn post_form(url: &str, authorization: Option<&str>, form: &[(String, String)]) -> Result<Value, SignInError> {
    let mut request = agent().post(url).header("accept", "application/json");
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut answer = request.send_form(pairs).map_err(|e| SignInError::Unavailable(format!("{url}: {e}")))?;
    let status = answer.status();
    let body = answer.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    if !status.is_success() {
        // The token endpoint's error code, not its whole answer (it may echo input).
        let code = body.get("error").and_then(Value::as_str).unwrap_or("no error code");
        return Err(SignInError::Refused(format!("token endpoint answered HTTP {status}: {code}")));
    }
    Ok(body)
}

/// Shared handle.
pub type SharedSignIn = Arc<SignIn>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn pkce_challenge_is_rfc7636_s256() {
        // RFC 7636 appendix B.
        let (_, challenge) = pkce_pair("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn nonce_azp_and_freshness_are_checked() {
        let now = 1_000_000;
        let ok = json!({"nonce": "n", "aud": "c", "auth_time": now - 10});
        check_claims(&ok, "c", "n", Some(Duration::from_secs(60)), now).unwrap();
        assert!(check_claims(&ok, "c", "other", None, now).is_err(), "nonce of another sign-in");
        assert!(check_claims(&json!({"aud": "c"}), "c", "n", None, now).is_err(), "no nonce");
        let stale = json!({"nonce": "n", "auth_time": now - 600});
        check_claims(&stale, "c", "n", None, now).unwrap();
        assert!(check_claims(&stale, "c", "n", Some(Duration::from_secs(60)), now).is_err(), "stale step-up");
        let no_time = json!({"nonce": "n"});
        assert!(check_claims(&no_time, "c", "n", Some(Duration::from_secs(60)), now).is_err(), "no auth_time");
        let multi = json!({"nonce": "n", "aud": ["c", "d"], "azp": "d"});
        assert!(check_claims(&multi, "c", "n", None, now).is_err(), "azp of another client");
    }
}
