//! Bearer tokens from outside: reviewer sign-in (`auth/reviewer.rs` → API key or OIDC
//! JWT, `auth/oidc.rs`) and the Bot Framework token on every Teams activity
//! (`channels/teams/token.rs`). Keys are pre-loaded; nothing is fetched.
//!
//! The first byte picks the mode: 0 — the rest is the `Authorization` value as sent;
//! 1 — the rest is a claims set the harness signs with the test IdP's key under a
//! well-formed header; 2 — header and claims (`\n--\n` between them), signed as given.
#![no_main]
use std::sync::OnceLock;
use std::time::Duration;

use airlock_approval_svc::auth::oidc::Oidc;
use airlock_approval_svc::auth::reviewer::ReviewerDirectory;
use airlock_approval_svc::channels::teams::token::TokenVerifier;
use airlock_fuzz::parts;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{crypto, Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const API_KEY: &str = "reviewer-api-key-0123456789";
const OIDC_ISSUER: &str = "https://login.example.com/";
const OIDC_AUDIENCE: &str = "airlock";
const BOT_ISSUER: &str = "https://api.botframework.com";
const BOT_APP_ID: &str = "00000000-0000-0000-0000-0000000000b0";
/// Never: no refetch is ever due, so unknown key ids are refused without a fetch.
const NO_REFETCH: Duration = Duration::from_secs(1 << 40);

struct Fixtures {
    runtime: tokio::runtime::Runtime,
    reviewers: ReviewerDirectory,
    bot: TokenVerifier,
    key: EncodingKey,
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../approval-svc/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let mut k1: Value = serde_json::from_str(&fixture("oidc-test-jwk-1.json")).unwrap();
        let k2: Value = serde_json::from_str(&fixture("oidc-test-jwk-2.json")).unwrap();
        let oidc_keys = serde_json::from_value(serde_json::json!({"keys": [k1.clone(), k2]})).unwrap();
        let oidc_config = serde_json::from_value(serde_json::json!({
            "issuer": OIDC_ISSUER, "audience": OIDC_AUDIENCE, "jwks_url": "http://127.0.0.1:9/keys",
            "id_claim": "email", "groups_claim": "groups"
        }))
        .unwrap();
        let oidc = Oidc::with_keys(oidc_config, oidc_keys).with_min_refetch(NO_REFETCH);
        let api_key_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(API_KEY));
        let reviewers: Vec<airlock_approval_svc::config::ReviewerConfig> = serde_json::from_value(serde_json::json!([
            {"id": "alice@corp.example", "groups": ["data-owners"], "api_key_sha256": api_key_sha256},
            {"id": "bob@corp.example", "aliases": ["U0BOB"]}
        ]))
        .unwrap();
        k1["endorsements"] = serde_json::json!(["msteams"]);
        let bot = TokenVerifier::new(
            "http://127.0.0.1:9/meta",
            BOT_ISSUER,
            BOT_APP_ID,
            Duration::from_secs(300),
            Duration::from_secs(1),
        )
        .with_keys(&serde_json::json!({"keys": [k1]}), NO_REFETCH);
        let pem = fixture("oidc-test-key.pem");
        let der: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        Fixtures {
            runtime: tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap(),
            reviewers: ReviewerDirectory::new(&reviewers, Some(oidc)),
            bot,
            key: EncodingKey::from_rsa_der(&STANDARD.decode(der).unwrap()),
        }
    })
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `aud` names `audience` (a string, or an array holding it).
fn audience_has(claims: &Value, audience: &str) -> bool {
    match &claims["aud"] {
        Value::String(a) => a == audience,
        Value::Array(items) => items.iter().any(|a| a == audience),
        _ => false,
    }
}

/// What any accepted token must say, whoever checked it.
fn check_claims(claims: &Value, issuer: &str, audience: &str, leeway: i64) {
    assert_eq!(claims["iss"], issuer, "{claims}");
    assert!(audience_has(claims, audience), "{claims}");
    let exp = claims["exp"].as_f64().expect("exp");
    assert!(exp + leeway as f64 >= now() as f64, "{claims}");
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_f64) {
        assert!(nbf - leeway as f64 <= now() as f64, "{claims}");
    }
}

fn check(f: &Fixtures, authorization: &str, signed_by_us: bool) {
    let claims: Option<Value> = authorization
        .split('.')
        .nth(1)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice(&c).ok());
    f.runtime.block_on(async {
        if let Ok(r) = f.reviewers.authenticate(Some(authorization)).await {
            let token =
                authorization.strip_prefix("Bearer ").or_else(|| authorization.strip_prefix("bearer ")).unwrap().trim();
            if token != API_KEY {
                assert!(signed_by_us, "a token nobody signed was accepted: {authorization:?}");
                let claims = claims.as_ref().expect("accepted claims are JSON");
                check_claims(claims, OIDC_ISSUER, OIDC_AUDIENCE, 30);
                assert_eq!(claims["email"].as_str().map(str::trim).filter(|s| !s.is_empty()).is_some(), true);
                assert!(
                    r.id == "alice@corp.example"
                        || r.id == "bob@corp.example"
                        || Some(r.id.as_str()) == claims["email"].as_str()
                );
            }
        }
        if let Ok(t) = f.bot.verify(Some(authorization)).await {
            assert!(signed_by_us, "a Bot Framework token nobody signed was accepted: {authorization:?}");
            check_claims(&t.claims, BOT_ISSUER, BOT_APP_ID, 300);
            assert_eq!(t.kid, "test-key-1");
            let _ = t.check_activity("https://smba.trafficmanager.net/amer/", "msteams");
        }
    });
}

/// Times relative to now, so committed seeds stay valid: `$PAST` is a minute ago,
/// `$FUTURE` ten minutes ahead.
fn with_times(claims: &[u8]) -> String {
    String::from_utf8_lossy(claims)
        .replace("$PAST", &(now() - 60).to_string())
        .replace("$FUTURE", &(now() + 600).to_string())
}

fn signed(f: &Fixtures, header: &[u8], claims: &[u8]) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = crypto::sign(message.as_bytes(), &f.key, Algorithm::RS256).unwrap();
    format!("Bearer {message}.{signature}")
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let f = fixtures();
    match mode % 3 {
        0 => check(f, &String::from_utf8_lossy(rest), false),
        1 => {
            let claims = with_times(rest);
            check(f, &signed(f, br#"{"alg":"RS256","typ":"JWT","kid":"test-key-1"}"#, claims.as_bytes()), true);
        }
        _ => {
            let p = parts(rest, 2);
            let claims = with_times(p[1]);
            check(f, &signed(f, p[0], claims.as_bytes()), true);
        }
    }
});
