//! Inbound Bot Framework tokens: the `Authorization: Bearer` JWT on every activity Teams
//! sends to the messaging endpoint, verified against the keys the Bot Framework's OpenID
//! metadata names (`jwks_uri`), before anything in the activity is believed.
//!
//! Rules (Bot Framework "authenticate requests from the connector"): RS256 only; a key
//! from the JWKS by `kid`; `iss`, `aud` = app id, `nbf`/`exp` within the clock skew;
//! then, against the activity, the `serviceurl` claim equals its `serviceUrl` and the
//! signing key's `endorsements` contain its `channelId`.
//!
//! Keys are cached: refreshed when older than a day, and when a token names an unknown
//! `kid` — at most once per [`MIN_UNKNOWN_KID_REFRESH`], so a flood of made-up key ids
//! cannot make the service hammer the identity provider.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

/// Keys older than this are fetched again before use.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(24 * 3600);
/// Least time between two key fetches caused by unknown `kid`s (or failed fetches).
pub const MIN_UNKNOWN_KID_REFRESH: Duration = Duration::from_secs(60);

/// Why an activity's token was refused. Nothing in the activity is acted on.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No usable `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// The token is not one the Bot Framework issued to this bot (401).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The keys could not be fetched and none are cached (503).
    #[error("Bot Framework keys unavailable: {0}")]
    Unavailable(String),
}

/// A verified token: who signed it and what it says.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    /// The signing key's id (recorded as evidence).
    pub kid: String,
    /// The key's `endorsements` (channel ids it may sign for).
    pub endorsements: Vec<String>,
    /// The token's claims.
    pub claims: Value,
}

impl VerifiedToken {
    /// The checks that need the activity: the `serviceurl` claim names the activity's
    /// `serviceUrl`, and the key is endorsed for its `channelId`.
    pub fn check_activity(&self, service_url: &str, channel_id: &str) -> Result<(), TokenError> {
        let claim = self
            .claims
            .get("serviceurl")
            .or_else(|| self.claims.get("serviceUrl"))
            .and_then(Value::as_str)
            .ok_or_else(|| TokenError::Invalid("no serviceurl claim".into()))?;
        if !same_service_url(claim, service_url) {
            return Err(TokenError::Invalid("serviceurl claim does not match the activity's serviceUrl".into()));
        }
        if channel_id.is_empty() || !self.endorsements.iter().any(|e| e.eq_ignore_ascii_case(channel_id)) {
            return Err(TokenError::Invalid(format!("signing key is not endorsed for channel {channel_id:?}")));
        }
        Ok(())
    }
}

/// Case-insensitive, ignoring one trailing `/` on either side.
pub fn same_service_url(a: &str, b: &str) -> bool {
    let trim = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
    !a.trim().is_empty() && trim(a) == trim(b)
}

#[derive(Clone)]
struct SigningKey {
    kid: String,
    jwk: Jwk,
    endorsements: Vec<String>,
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<SigningKey>,
    /// When the cached keys were fetched.
    fetched: Option<Instant>,
    /// When a fetch was last tried (successful or not).
    attempted: Option<Instant>,
}

/// Verifies Bot Framework tokens for one bot.
pub struct TokenVerifier {
    metadata_url: String,
    issuer: String,
    app_id: String,
    leeway_secs: u64,
    timeout: Duration,
    min_refresh: Duration,
    cache: Mutex<KeyCache>,
    fetches: AtomicU64,
}

impl TokenVerifier {
    /// A verifier for tokens issued by `issuer` to `app_id`, keys from `metadata_url`.
    pub fn new(metadata_url: &str, issuer: &str, app_id: &str, skew: Duration, timeout: Duration) -> TokenVerifier {
        TokenVerifier {
            metadata_url: metadata_url.to_string(),
            issuer: issuer.to_string(),
            app_id: app_id.to_string(),
            leeway_secs: skew.as_secs(),
            timeout,
            min_refresh: MIN_UNKNOWN_KID_REFRESH,
            cache: Mutex::new(KeyCache::default()),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many times the keys were fetched (metrics, tests).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Verifies the `Authorization` header value: signature, algorithm, issuer, audience
    /// and time. The activity checks follow with [`VerifiedToken::check_activity`].
    pub async fn verify(&self, authorization: Option<&str>) -> Result<VerifiedToken, TokenError> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        let header = decode_header(token).map_err(|e| TokenError::Invalid(format!("header: {e}")))?;
        // RS256 only: `none` and HS* would let anyone who knows the public key (or no key)
        // forge a token; the Bot Framework signs with RS256.
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Invalid(format!("algorithm {:?} is not RS256", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| TokenError::Invalid("no kid".into()))?;
        let key = self.key(&kid).await?;
        let decoding = DecodingKey::from_jwk(&key.jwk).map_err(|e| TokenError::Invalid(format!("key {kid}: {e}")))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.app_id]);
        // Without requiring them, a token lacking `iss`/`aud`/`exp` would pass those checks.
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        let data = decode::<Value>(token, &decoding, &validation).map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok(VerifiedToken { kid: key.kid, endorsements: key.endorsements, claims: data.claims })
    }

    async fn key(&self, kid: &str) -> Result<SigningKey, TokenError> {
        let mut cache = self.cache.lock().await;
        let stale = cache.fetched.is_none_or(|t| t.elapsed() >= MAX_KEY_AGE);
        let known = cache.keys.iter().find(|k| k.kid == kid).cloned();
        let may_fetch = cache.attempted.is_none_or(|t| t.elapsed() >= self.min_refresh);
        if let Some(key) = known.as_ref().filter(|_| !stale || !may_fetch) {
            return Ok(key.clone());
        }
        if !may_fetch {
            return Err(match cache.fetched {
                Some(_) => TokenError::Invalid(format!("unknown key id {kid:?}")),
                None => TokenError::Unavailable("keys not fetched yet; retry shortly".into()),
            });
        }
        cache.attempted = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let (url, timeout) = (self.metadata_url.clone(), self.timeout);
        let fetched = tokio::task::spawn_blocking(move || fetch_keys(&url, timeout))
            .await
            .map_err(|e| TokenError::Unavailable(e.to_string()))
            .and_then(|r| r);
        match fetched {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(error = %e, "teams: fetching Bot Framework keys failed");
                // Keys a day old still beat none while the identity provider is down.
                if cache.keys.is_empty() {
                    return Err(e);
                }
            }
        }
        cache
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .cloned()
            .ok_or_else(|| TokenError::Invalid(format!("unknown key id {kid:?}")))
    }

    /// A verifier with keys already loaded (unit tests, the fuzz targets), with
    /// `min_refresh` between unknown-`kid` fetches.
    #[doc(hidden)]
    pub fn with_keys(mut self, jwks: &Value, min_refresh: Duration) -> TokenVerifier {
        let now = Instant::now();
        self.cache = Mutex::new(KeyCache {
            keys: parse_keys(jwks).unwrap_or_default(),
            fetched: Some(now),
            attempted: Some(now),
        });
        self.min_refresh = min_refresh;
        self
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into()
}

/// Reads the OpenID metadata, then the JWKS its `jwks_uri` names.
fn fetch_keys(metadata_url: &str, timeout: Duration) -> Result<Vec<SigningKey>, TokenError> {
    let agent = agent(timeout);
    let get = |url: &str| -> Result<Value, TokenError> {
        let mut answer = agent.get(url).call().map_err(|e| TokenError::Unavailable(format!("{url}: {e}")))?;
        let status = answer.status().as_u16();
        if status != 200 {
            return Err(TokenError::Unavailable(format!("{url} answered {status}")));
        }
        answer.body_mut().read_json::<Value>().map_err(|e| TokenError::Unavailable(format!("{url}: not JSON: {e}")))
    };
    let metadata = get(metadata_url)?;
    let jwks_uri = metadata
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| TokenError::Unavailable(format!("{metadata_url}: no jwks_uri")))?;
    // The key URL comes from the network: only https (or loopback http, for local fakes).
    let (scheme, host) = super::config::scheme_and_host(jwks_uri).map_err(TokenError::Unavailable)?;
    if scheme != "https" && host != "127.0.0.1" && host != "localhost" {
        return Err(TokenError::Unavailable(format!("jwks_uri {jwks_uri:?} is not https")));
    }
    parse_keys(&get(jwks_uri)?)
}

/// The RSA signing keys of a JWKS with their endorsements; other keys are skipped.
fn parse_keys(jwks: &Value) -> Result<Vec<SigningKey>, TokenError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| TokenError::Unavailable("JWKS has no keys array".into()))?;
    let mut out = Vec::new();
    for raw in keys {
        let Some(kid) = raw.get("kid").and_then(Value::as_str) else { continue };
        if raw.get("kty").and_then(Value::as_str) != Some("RSA") {
            continue;
        }
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
        let endorsements = raw
            .get("endorsements")
            .and_then(Value::as_array)
            .map(|e| e.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        out.push(SigningKey { kid: kid.to_string(), jwk, endorsements });
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    pub const APP_ID: &str = "00000000-0000-0000-0000-0000000000b0";
    pub const ISSUER: &str = "https://api.botframework.com";
    pub const SERVICE_URL: &str = "https://smba.trafficmanager.net/amer/";

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// The test JWKS: key 1 endorsed for msteams, key 2 for another channel only.
    pub fn jwks() -> Value {
        let mut k1: Value = serde_json::from_str(&fixture("oidc-test-jwk-1.json")).unwrap();
        k1["endorsements"] = json!(["msteams"]);
        let mut k2: Value = serde_json::from_str(&fixture("oidc-test-jwk-2.json")).unwrap();
        k2["endorsements"] = json!(["webchat"]);
        json!({"keys": [k1, k2]})
    }

    pub fn now() -> i64 {
        crate::time::now_secs()
    }

    pub fn claims() -> Value {
        json!({"iss": ISSUER, "aud": APP_ID, "nbf": now() - 10, "exp": now() + 600, "serviceurl": SERVICE_URL})
    }

    /// The private key of a PKCS#1 PEM fixture (jsonwebtoken is built without PEM support).
    pub fn private_key(key_file: &str) -> EncodingKey {
        use base64::Engine as _;
        let pem = fixture(key_file);
        let body: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        EncodingKey::from_rsa_der(&base64::engine::general_purpose::STANDARD.decode(body).unwrap())
    }

    pub fn mint(kid: &str, key_file: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        encode(&header, claims, &private_key(key_file)).unwrap()
    }

    pub fn good(claims: &Value) -> String {
        mint("test-key-1", "oidc-test-key.pem", claims)
    }

    pub fn verifier() -> TokenVerifier {
        cold_verifier().with_keys(&jwks(), Duration::from_secs(3600))
    }

    /// No keys yet, and keys from an unreachable URL: only the unknown-kid tests fetch,
    /// and must fail.
    fn cold_verifier() -> TokenVerifier {
        TokenVerifier::new("http://127.0.0.1:9/meta", ISSUER, APP_ID, Duration::from_secs(300), Duration::from_secs(1))
    }

    async fn check(token: &str) -> Result<VerifiedToken, TokenError> {
        let v = verifier();
        let t = v.verify(Some(&format!("Bearer {token}"))).await?;
        t.check_activity(SERVICE_URL, "msteams")?;
        Ok(t)
    }

    fn b64(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[tokio::test]
    async fn a_good_token_verifies() {
        let t = check(&good(&claims())).await.unwrap();
        assert_eq!(t.kid, "test-key-1");
        assert!(t.check_activity("HTTPS://SMBA.trafficmanager.net/amer", "msteams").is_ok(), "case, trailing /");
    }

    #[tokio::test]
    async fn wrong_issuer_audience_or_time_is_refused() {
        for (field, value) in [
            ("iss", json!("https://sts.windows.net/evil/")),
            ("aud", json!("another-app")),
            ("exp", json!(now() - 330)),
            ("nbf", json!(now() + 330)),
        ] {
            let mut c = claims();
            c[field] = value;
            assert!(matches!(check(&good(&c)).await, Err(TokenError::Invalid(_))), "{field}");
        }
        // Inside the 5 minute skew, both ways.
        let mut c = claims();
        c["exp"] = json!(now() - 200);
        c["nbf"] = json!(now() + 200);
        assert!(check(&good(&c)).await.is_ok());
        for missing in ["iss", "aud", "exp"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(missing);
            assert!(check(&good(&c)).await.is_err(), "without {missing}");
        }
    }

    #[tokio::test]
    async fn alg_none_and_hs256_with_the_public_key_are_refused() {
        let payload = b64(&claims().to_string());
        let none = format!("{}.{payload}.", b64(r#"{"alg":"none","kid":"test-key-1"}"#));
        assert!(matches!(check(&none).await, Err(TokenError::Invalid(_))));
        // Algorithm confusion: HMAC keyed with the public key's bytes.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("test-key-1".into());
        for public in [fixture("oidc-test-key.pub.pem"), fixture("oidc-test-jwk-1.json")] {
            let forged = encode(&header, &claims(), &EncodingKey::from_secret(public.as_bytes())).unwrap();
            assert!(matches!(check(&forged).await, Err(TokenError::Invalid(_))));
        }
        let mut h = Header::new(Algorithm::RS384);
        h.kid = Some("test-key-1".into());
        let key = private_key("oidc-test-key.pem");
        assert!(check(&encode(&h, &claims(), &key).unwrap()).await.is_err(), "RS384");
        // Signed by key 2 but naming key 1.
        assert!(check(&mint("test-key-1", "oidc-test-key-2.pem", &claims())).await.is_err());
        assert!(matches!(check("not.a.jwt").await, Err(TokenError::Invalid(_))));
        let v = verifier();
        assert!(matches!(v.verify(None).await, Err(TokenError::Missing)));
        assert!(matches!(v.verify(Some("Basic abc")).await, Err(TokenError::Missing)));
    }

    #[tokio::test]
    async fn serviceurl_mismatch_and_missing_endorsement_are_refused() {
        let t = check(&good(&claims())).await.unwrap();
        assert!(t.check_activity("https://smba.trafficmanager.net/emea/", "msteams").is_err());
        assert!(t.check_activity(SERVICE_URL, "webchat").is_err(), "key 1 is endorsed for msteams only");
        assert!(t.check_activity(SERVICE_URL, "").is_err());
        let mut c = claims();
        c.as_object_mut().unwrap().remove("serviceurl");
        assert!(check(&good(&c)).await.is_err(), "no serviceurl claim");
        // Key 2 verifies, but is endorsed for webchat only.
        let v = verifier();
        let bearer = format!("Bearer {}", mint("test-key-2", "oidc-test-key-2.pem", &claims()));
        let t2 = v.verify(Some(&bearer)).await.unwrap();
        assert!(t2.check_activity(SERVICE_URL, "msteams").is_err());
    }

    #[tokio::test]
    async fn unknown_kid_triggers_exactly_one_refresh() {
        // Keys loaded long enough ago that one refresh is allowed; the IdP is unreachable.
        let v = verifier();
        {
            let mut cache = v.cache.lock().await;
            cache.attempted = None;
        }
        let unknown = format!("Bearer {}", mint("rotated-key", "oidc-test-key.pem", &claims()));
        for _ in 0..5 {
            assert!(matches!(v.verify(Some(&unknown)).await, Err(TokenError::Invalid(_))));
        }
        assert_eq!(v.fetches(), 1, "a flood of unknown kids fetches once per interval");
        // Known keys still work while the IdP is down.
        assert!(v.verify(Some(&format!("Bearer {}", good(&claims())))).await.is_ok());
        assert_eq!(v.fetches(), 1);
    }

    #[tokio::test]
    async fn a_cold_verifier_fetches_and_reports_an_unreachable_idp() {
        let v = cold_verifier();
        let t = format!("Bearer {}", good(&claims()));
        assert!(matches!(v.verify(Some(&t)).await, Err(TokenError::Unavailable(_))));
        assert!(matches!(v.verify(Some(&t)).await, Err(TokenError::Unavailable(_))));
        assert_eq!(v.fetches(), 1, "failed fetches are rate-limited too");
    }

    /// A one-thread OpenID metadata + JWKS server on 127.0.0.1 serving `keys` (shared, so
    /// a test can rotate them); answers at most `max` requests.
    fn idp(keys: std::sync::Arc<std::sync::Mutex<Value>>, max: usize) -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(max) {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                // Skip the headers (GET: no body).
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let body = if line.contains("/meta") {
                    json!({"issuer": ISSUER, "jwks_uri": format!("http://127.0.0.1:{port}/keys")})
                } else {
                    keys.lock().unwrap().clone()
                };
                let body = body.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://127.0.0.1:{port}/meta")
    }

    #[tokio::test]
    async fn a_rotated_key_is_fetched_once_and_accepted() {
        let mut only_key_1 = jwks();
        only_key_1["keys"].as_array_mut().unwrap().truncate(1);
        let keys = std::sync::Arc::new(std::sync::Mutex::new(only_key_1));
        let url = idp(keys.clone(), 20);
        let mut v = TokenVerifier::new(&url, ISSUER, APP_ID, Duration::from_secs(300), Duration::from_secs(2));
        v.min_refresh = Duration::ZERO;
        assert!(v.verify(Some(&format!("Bearer {}", good(&claims())))).await.is_ok());
        assert_eq!(v.fetches(), 1, "cold cache: one fetch");
        assert!(v.verify(Some(&format!("Bearer {}", good(&claims())))).await.is_ok());
        assert_eq!(v.fetches(), 1, "cached");
        // The IdP rotates in key 2 (endorsed for msteams this time).
        let mut k2: Value = serde_json::from_str(&fixture("oidc-test-jwk-2.json")).unwrap();
        k2["endorsements"] = json!(["msteams"]);
        keys.lock().unwrap()["keys"].as_array_mut().unwrap().push(k2);
        let rotated = format!("Bearer {}", mint("test-key-2", "oidc-test-key-2.pem", &claims()));
        let t = v.verify(Some(&rotated)).await.unwrap();
        t.check_activity(SERVICE_URL, "msteams").unwrap();
        assert_eq!(v.fetches(), 2, "the unknown kid caused exactly one refresh");
        // With the rate limit in force, a flood of unknown kids fetches nothing more.
        v.min_refresh = Duration::from_secs(3600);
        let unknown = format!("Bearer {}", mint("nobody", "oidc-test-key.pem", &claims()));
        for _ in 0..10 {
            assert!(matches!(v.verify(Some(&unknown)).await, Err(TokenError::Invalid(_))));
        }
        assert_eq!(v.fetches(), 2);
    }

    #[test]
    fn parses_keys_with_endorsements() {
        let keys = parse_keys(&jwks()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].endorsements, vec!["msteams".to_string()]);
        assert!(parse_keys(&json!({"nokeys": []})).is_err());
    }
}
