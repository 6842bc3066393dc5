//! OIDC reviewer tokens end to end: a local JWKS endpoint, RS256 tokens signed with a
//! test-only key (tests/fixtures/oidc-test-key*.pem), the reviewer API deciding on
//! approvals the signed gateway endpoint created.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_approval_svc::auth::oidc::Oidc;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::*;

const ISSUER: &str = "https://login.test.example/tenant/v2.0";
const AUDIENCE: &str = "airlock-reviewers";
const KID_1: &str = "test-key-1";
const KID_2: &str = "test-key-2";

/// The DER inside a PKCS#1 PEM fixture (text outside the armour is ignored).
fn fixture_key(name: &str) -> EncodingKey {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN RSA PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    EncodingKey::from_rsa_der(&STANDARD.decode(body).unwrap())
}

fn fixture_jwk(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap()
}

fn key1() -> EncodingKey {
    fixture_key("oidc-test-key.pem")
}

fn key2() -> EncodingKey {
    fixture_key("oidc-test-key-2.pem")
}

/// A JWKS endpoint whose key set the test can change; counts fetches.
struct Jwks {
    server: FakeServer,
    keys: Arc<Mutex<Vec<Value>>>,
}

impl Jwks {
    fn start(keys: Vec<Value>) -> Jwks {
        let keys = Arc::new(Mutex::new(keys));
        let served = keys.clone();
        let server = FakeServer::start("/discovery/keys", move |r| {
            if r.method != "GET" || r.path != "/discovery/keys" {
                return Reply::Json(404, "{}".into());
            }
            Reply::Json(200, json!({"keys": *served.lock().unwrap()}).to_string())
        });
        Jwks { server, keys }
    }
}

/// `[oidc]` as an operator writes it (non-default claim names, so they must be honoured).
fn oidc_for(jwks: &Jwks) -> Oidc {
    let config = parse_config(&format!(
        "[oidc]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_url = \"{}\"\nid_claim = \"preferred_username\"\ngroups_claim = \"roles\"\n",
        jwks.server.url
    ));
    Oidc::new(config.oidc.unwrap())
}

/// Valid claims for `user` with `roles`; tests edit them.
fn claims(user: &str, roles: &[&str]) -> Value {
    let now = now_secs();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": format!("oid-{user}"), "preferred_username": user,
           "roles": roles, "iat": now, "nbf": now - 5, "exp": now + 600})
}

fn sign(claims: &Value, kid: &str, key: &EncodingKey) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(&header, claims, key).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A pending approval (owner alice, acts for U-carol, approvers data-owners) from the
/// signed gateway endpoint.
async fn pending(s: &Service, tag: &str, quorum: u32) -> String {
    let a = gateway(&s.router, "/v1/gateway/approvals", &create_body(&digest(tag), 0, None, quorum)).await;
    assert_eq!(a.status, 200);
    a.json()["approval_id"].as_str().unwrap().to_string()
}

async fn approve(s: &Service, id: &str, token: &str) -> Answer {
    reviewer(&s.router, "POST", &format!("/v1/approvals/{id}/approve"), Some(token), Some(json!({"comment": "oidc"})))
        .await
}

fn problem(a: &Answer) -> (u16, String) {
    (a.status, a.json()["type"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn a_valid_token_with_an_approver_group_approves() {
    let jwks = Jwks::start(vec![fixture_jwk("oidc-test-jwk-1.json")]);
    let s = service_with(Some(oidc_for(&jwks)), None);
    let id = pending(&s, "oidc-ok", 2).await;

    // A configured reviewer (bob) votes with his API key; the same human with a token
    // (id claim, any case) is the same reviewer: a second vote is a duplicate.
    assert_eq!(approve(&s, &id, "bob-key").await.json()["status"], "pending");
    let bob = sign(&claims("Bob@Corp.Example", &[]), KID_1, &key1());
    assert_eq!(problem(&approve(&s, &id, &bob).await), (409, "urn:airlock:problem:duplicate-vote".into()));

    // Someone the configuration does not know: the token's groups claim makes her an approver.
    let erin = sign(&claims("erin@corp.example", &["data-owners"]), KID_1, &key1());
    let listed = reviewer(&s.router, "GET", "/v1/approvals?status=pending", Some(&erin), None).await;
    assert_eq!(listed.status, 200);
    let a = approve(&s, &id, &erin).await;
    assert_eq!(a.status, 200, "{:?}", a.json());
    let shown = a.json();
    assert_eq!(shown["status"], "approved");
    let reviewers: Vec<&str> =
        shown["reviews"].as_array().unwrap().iter().map(|r| r["reviewer"].as_str().unwrap()).collect();
    assert_eq!(reviewers, ["bob@corp.example", "erin@corp.example"]);

    // The approval is usable by the gateway.
    let r = gateway(
        &s.router,
        &format!("/v1/gateway/approvals/{id}/redeem"),
        &json!({"decision_id": "d", "agent": AGENT, "digest": digest("oidc-ok")}),
    )
    .await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("redeemed")));

    // A single-string groups claim counts too.
    let id2 = pending(&s, "oidc-one-group", 1).await;
    let mut c = claims("frank@corp.example", &[]);
    c["roles"] = json!("data-owners");
    assert_eq!(approve(&s, &id2, &sign(&c, KID_1, &key1())).await.json()["status"], "approved");
    assert_eq!(jwks.server.hits(), 1, "the key set is fetched once and cached");
}

#[tokio::test]
async fn groups_from_the_token_decide_not_an_approver() {
    let jwks = Jwks::start(vec![fixture_jwk("oidc-test-jwk-1.json")]);
    let s = service_with(Some(oidc_for(&jwks)), None);
    let id = pending(&s, "oidc-groups", 1).await;
    for roles in [&["sre"][..], &[][..], &["Data-Owners"][..]] {
        let t = sign(&claims("erin@corp.example", roles), KID_1, &key1());
        assert_eq!(
            problem(&approve(&s, &id, &t).await),
            (403, "urn:airlock:problem:not-an-approver".into()),
            "{roles:?}"
        );
    }
    // Groups under another claim name than the configured one do not count.
    let mut c = claims("erin@corp.example", &[]);
    c["groups"] = json!(["data-owners"]);
    assert_eq!(problem(&approve(&s, &id, &sign(&c, KID_1, &key1())).await).0, 403);
    assert_eq!(
        reviewer(&s.router, "GET", &format!("/v1/approvals/{id}"), Some("bob-key"), None).await.json()["status"],
        "pending"
    );
}

#[tokio::test]
async fn the_agents_owner_or_principal_gets_separation_of_duties() {
    let jwks = Jwks::start(vec![fixture_jwk("oidc-test-jwk-1.json")]);
    let s = service_with(Some(oidc_for(&jwks)), None);
    let id = pending(&s, "oidc-sod", 1).await;
    let sod = (403, "urn:airlock:problem:separation-of-duties".to_string());
    // The owner, by id claim, even when her token puts her in the approver group.
    let owner = sign(&claims("alice@corp.example", &["data-owners"]), KID_1, &key1());
    assert_eq!(problem(&approve(&s, &id, &owner).await), sod);
    // Unknown id claim, but the token's subject is the owner.
    let mut c = claims("not-alice@corp.example", &["data-owners"]);
    c["sub"] = json!("alice@corp.example");
    assert_eq!(problem(&approve(&s, &id, &sign(&c, KID_1, &key1())).await), sod);
    // Someone the agent acts for (U-carol is carol's configured alias): by subject ...
    let mut c = claims("someone@corp.example", &["data-owners"]);
    c["sub"] = json!("U-carol");
    assert_eq!(problem(&approve(&s, &id, &sign(&c, KID_1, &key1())).await), sod);
    // ... and by id claim, through the configured reviewer's aliases.
    let carol = sign(&claims("carol@corp.example", &["data-owners"]), KID_1, &key1());
    assert_eq!(problem(&approve(&s, &id, &carol).await), sod);
    // Deny is a review too.
    let a =
        reviewer(&s.router, "POST", &format!("/v1/approvals/{id}/deny"), Some(&owner), Some(json!({"comment": "x"})))
            .await;
    assert_eq!(problem(&a), sod);
    assert_eq!(
        reviewer(&s.router, "GET", &format!("/v1/approvals/{id}"), Some("bob-key"), None).await.json()["status"],
        "pending"
    );
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let jwks = Jwks::start(vec![fixture_jwk("oidc-test-jwk-1.json")]);
    let s = service_with(Some(oidc_for(&jwks)), None);
    let id = pending(&s, "oidc-bad", 1).await;
    let good = claims("erin@corp.example", &["data-owners"]);
    let now = now_secs();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        sign(&c, KID_1, &key1())
    };
    let header = |v: Value| b64(&v);
    let valid = sign(&good, KID_1, &key1());
    let parts: Vec<&str> = valid.split('.').collect();
    let mut tampered_claims = good.clone();
    tampered_claims["preferred_username"] = json!("bob@corp.example");
    let public_key_bytes = fixture_jwk("oidc-test-jwk-1.json").to_string();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(KID_1.into());

    let cases: Vec<(&str, String)> = vec![
        ("wrong issuer", edit(&|c| c["iss"] = json!("https://evil.example/"))),
        ("issuer prefix", edit(&|c| c["iss"] = json!(format!("{ISSUER}/extra")))),
        (
            "no issuer",
            edit(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
        ),
        ("wrong audience", edit(&|c| c["aud"] = json!("someone-else"))),
        ("audience list without ours", edit(&|c| c["aud"] = json!(["a", "b"]))),
        (
            "no audience",
            edit(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        ("expired beyond leeway", edit(&|c| c["exp"] = json!(now - 120))),
        (
            "no expiry",
            edit(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("not yet valid", edit(&|c| c["nbf"] = json!(now + 300))),
        (
            "no id claim",
            edit(&|c| {
                c.as_object_mut().unwrap().remove("preferred_username");
            }),
        ),
        ("blank id claim", edit(&|c| c["preferred_username"] = json!("  "))),
        ("signed by another key under kid 1", sign(&good, KID_1, &key2())),
        ("tampered payload", format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2])),
        ("signature stripped", format!("{}.{}.", parts[0], parts[1])),
        ("alg none", format!("{}.{}.", header(json!({"alg": "none", "typ": "JWT", "kid": KID_1})), parts[1])),
        (
            "alg none, original signature",
            format!("{}.{}.{}", header(json!({"alg": "none", "kid": KID_1})), parts[1], parts[2]),
        ),
        (
            "HS256 with the public key as secret",
            encode(&hs_header, &good, &EncodingKey::from_secret(public_key_bytes.as_bytes())).unwrap(),
        ),
        ("HS256 with the modulus as secret", {
            let n = URL_SAFE_NO_PAD.decode(fixture_jwk("oidc-test-jwk-1.json")["n"].as_str().unwrap()).unwrap();
            encode(&hs_header, &good, &EncodingKey::from_secret(&n)).unwrap()
        }),
        ("no kid", {
            let h = Header::new(Algorithm::RS256);
            encode(&h, &good, &key1()).unwrap()
        }),
        ("garbage", "a.b.c".into()),
    ];
    for (what, token) in &cases {
        let a = approve(&s, &id, token).await;
        assert_eq!(problem(&a), (401, "urn:airlock:problem:unauthenticated".into()), "{what}");
        let a = reviewer(&s.router, "GET", "/v1/approvals", Some(token), None).await;
        assert_eq!(a.status, 401, "{what} (list)");
    }
    // Within the 30 s leeway is still fine, and the untouched token works.
    let t = edit(&|c| c["exp"] = json!(now - 5));
    assert_eq!(reviewer(&s.router, "GET", "/v1/approvals", Some(&t), None).await.status, 200, "exp within leeway");
    let t = edit(&|c| c["nbf"] = json!(now + 10));
    assert_eq!(reviewer(&s.router, "GET", "/v1/approvals", Some(&t), None).await.status, 200, "nbf within leeway");
    let t = edit(&|c| c["aud"] = json!(["other", AUDIENCE]));
    assert_eq!(reviewer(&s.router, "GET", "/v1/approvals", Some(&t), None).await.status, 200, "aud list with ours");
    assert_eq!(approve(&s, &id, &valid).await.json()["status"], "approved");
    // Every token named the cached kid (or none, or was unreadable): one fetch in all.
    assert_eq!(jwks.server.hits(), 1);
}

#[tokio::test]
async fn unknown_kid_refetches_the_key_set_once() {
    let jwks = Jwks::start(vec![fixture_jwk("oidc-test-jwk-1.json")]);
    // Default throttle: an unknown kid right after a fetch does not hammer the IdP.
    let s = service_with(Some(oidc_for(&jwks)), None);
    let list = |t: String| {
        let router = s.router.clone();
        async move { reviewer(&router, "GET", "/v1/approvals", Some(&t), None).await.status }
    };
    let c = claims("erin@corp.example", &["data-owners"]);
    assert_eq!(list(sign(&c, KID_1, &key1())).await, 200);
    assert_eq!(jwks.server.hits(), 1);
    jwks.keys.lock().unwrap().push(fixture_jwk("oidc-test-jwk-2.json"));
    assert_eq!(list(sign(&c, "never-published", &key2())).await, 401);
    assert_eq!(list(sign(&c, KID_2, &key2())).await, 401, "fetched < 30 s ago: no refetch yet");
    assert_eq!(jwks.server.hits(), 1, "refetches are rate-limited");

    // Without the throttle: a key published after startup (and after the first fetch)
    // is picked up by one refetch; an unknown kid costs exactly one fetch.
    jwks.keys.lock().unwrap().truncate(1);
    let rotating = service_with(Some(oidc_for(&jwks).with_min_refetch(Duration::ZERO)), None);
    let id = pending(&rotating, "oidc-rotation", 1).await;
    let before = jwks.server.hits();
    assert_eq!(approve(&rotating, &id, &sign(&c, KID_1, &key1())).await.status, 200);
    assert_eq!(jwks.server.hits(), before + 1, "first use fetches");
    let id = pending(&rotating, "oidc-rotation-2", 1).await;
    let new_key = sign(&c, KID_2, &key2());
    assert_eq!(approve(&rotating, &id, &new_key).await.status, 401, "not published yet");
    assert_eq!(jwks.server.hits(), before + 2, "one refetch for the unknown kid");
    jwks.keys.lock().unwrap().push(fixture_jwk("oidc-test-jwk-2.json"));
    let a = approve(&rotating, &id, &new_key).await;
    assert_eq!((a.status, a.json()["status"].clone()), (200, json!("approved")), "published after startup: picked up");
    assert_eq!(jwks.server.hits(), before + 3);
    // Known keys are served from the cache.
    let id = pending(&rotating, "oidc-rotation-3", 1).await;
    assert_eq!(approve(&rotating, &id, &sign(&c, KID_1, &key1())).await.status, 200);
    assert_eq!(jwks.server.hits(), before + 3);
    // A published kid with another key's signature never works.
    let forged = sign(&c, KID_2, &key1());
    assert_eq!(reviewer(&rotating.router, "GET", "/v1/approvals", Some(&forged), None).await.status, 401);
}

#[tokio::test]
async fn an_unreachable_jwks_endpoint_is_unavailable_not_a_pass() {
    let jwks = Jwks::start(vec![fixture_jwk("oidc-test-jwk-1.json")]);
    let oidc = oidc_for(&jwks);
    drop(jwks); // nothing listens there any more
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = service_with(Some(oidc), None);
    let id = pending(&s, "oidc-down", 1).await;
    let t = sign(&claims("erin@corp.example", &["data-owners"]), KID_1, &key1());
    let a = approve(&s, &id, &t).await;
    assert_eq!(problem(&a), (503, "urn:airlock:problem:unavailable".into()));
    // API keys do not depend on the IdP.
    assert_eq!(approve(&s, &id, "bob-key").await.json()["status"], "approved");
}

/// A JWKS endpoint that answers every fetch after `delay` (or hangs up after it).
fn slow_jwks(delay: Duration, answer: bool) -> (FakeServer, Oidc) {
    let keys = json!({"keys": [fixture_jwk("oidc-test-jwk-1.json")]}).to_string();
    let server = FakeServer::start("/discovery/keys", move |_| {
        if answer {
            Reply::JsonAfter(delay, 200, keys.clone())
        } else {
            Reply::Hang(delay)
        }
    });
    let config = parse_config(&format!(
        "[oidc]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_url = \"{}\"\nid_claim = \"preferred_username\"\ngroups_claim = \"roles\"\n",
        server.url
    ));
    (server, Oidc::new(config.oidc.unwrap()))
}

#[tokio::test]
async fn bogus_kids_cannot_stall_sign_in_while_the_idp_is_slow() {
    // Cold start, an IdP that hangs up after 1.5 s: six tokens naming unknown kids at once.
    let (server, oidc) = slow_jwks(Duration::from_millis(1500), false);
    let s = service_with(Some(oidc), None);
    let started = std::time::Instant::now();
    let bogus: Vec<_> = (0..6)
        .map(|i| {
            let router = s.router.clone();
            let t = sign(&claims("mallory@corp.example", &[]), &format!("bogus-{i}"), &key1());
            tokio::spawn(async move { reviewer(&router, "GET", "/v1/approvals", Some(&t), None).await.status })
        })
        .collect();
    for b in bogus {
        assert!(matches!(b.await.unwrap(), 401 | 503));
    }
    assert!(started.elapsed() < Duration::from_secs(4), "six bogus tokens took {:?}", started.elapsed());
    assert_eq!(server.hits(), 1, "one fetch at a time, and a failure is remembered");
    // Right after the failure: answered at once, no new fetch.
    let started = std::time::Instant::now();
    let t = sign(&claims("mallory@corp.example", &[]), "bogus-7", &key1());
    assert_eq!(reviewer(&s.router, "GET", "/v1/approvals", Some(&t), None).await.status, 503);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_known_key_never_waits_for_a_refresh() {
    let (server, oidc) = slow_jwks(Duration::from_millis(1500), true);
    let s = service_with(Some(oidc.with_min_refetch(Duration::ZERO)), None);
    let valid = sign(&claims("erin@corp.example", &["data-owners"]), KID_1, &key1());
    assert_eq!(reviewer(&s.router, "GET", "/v1/approvals", Some(&valid), None).await.status, 200);
    assert_eq!(server.hits(), 1);
    // A refresh for an unknown kid is under way (slow)...
    let router = s.router.clone();
    let bogus = sign(&claims("mallory@corp.example", &[]), "bogus", &key1());
    let refresh = tokio::spawn(async move { reviewer(&router, "GET", "/v1/approvals", Some(&bogus), None).await });
    for _ in 0..100 {
        if server.hits() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.hits(), 2);
    // ...while a token with a cached key signs in at once.
    let started = std::time::Instant::now();
    assert_eq!(reviewer(&s.router, "GET", "/v1/approvals", Some(&valid), None).await.status, 200);
    assert!(started.elapsed() < Duration::from_millis(500), "waited {:?} behind a refresh", started.elapsed());
    assert_eq!(refresh.await.unwrap().status, 401);
}
