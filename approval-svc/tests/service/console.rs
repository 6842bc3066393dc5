//! The web console's sign-in in process, against a local stand-in IdP (discovery, JWKS and
//! token endpoints) whose ID tokens are RS256-signed with the test-only fixture key: a
//! good sign-in starts a session and the PKCE verifier sent matches the challenge; every
//! bad callback — another sign-in's nonce, another client's audience, an unknown key, a
//! refused code, an IdP error, another issuer, no state cookie, a replayed state, a stale
//! step-up — ends with no session; an unreachable IdP fails closed. The browser test
//! (`tests/tests/e2e/console.rs`) runs the whole flow against a real provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::sync::{Arc, Mutex};

use airlock_approval_svc::auth::oidc::Oidc;
use airlock_approval_svc::auth::reviewer::ReviewerDirectory;
use airlock_approval_svc::console::{self, AuditSource, Console};
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::*;

const CLIENT: &str = "airlock-console";
const KID: &str = "test-key-1";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn key(name: &str) -> EncodingKey {
    let text = fixture(name);
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN RSA PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    EncodingKey::from_rsa_der(&STANDARD.decode(body).unwrap())
}

/// The stand-in IdP: what its token endpoint answers next is set by the test.
struct Idp {
    server: FakeServer,
    base: String,
    token: Arc<Mutex<(u16, String)>>,
}

fn idp() -> Idp {
    let base = Arc::new(Mutex::new(String::new()));
    let token = Arc::new(Mutex::new((500, "{}".to_string())));
    let (b, t) = (base.clone(), token.clone());
    let jwk: Value = serde_json::from_str(&fixture("oidc-test-jwk-1.json")).unwrap();
    let server = FakeServer::start("", move |r| {
        let base = b.lock().unwrap().clone();
        match r.path.as_str() {
            "/.well-known/openid-configuration" => Reply::Json(
                200,
                json!({"issuer": base, "authorization_endpoint": format!("{base}/auth"),
                       "token_endpoint": format!("{base}/token"), "jwks_uri": format!("{base}/keys")})
                .to_string(),
            ),
            "/keys" => Reply::Json(200, json!({"keys": [jwk]}).to_string()),
            "/token" => {
                let (status, body) = t.lock().unwrap().clone();
                Reply::Json(status, body)
            }
            _ => Reply::Json(404, "{}".into()),
        }
    });
    *base.lock().unwrap() = server.url.clone();
    Idp { base: server.url.clone(), server, token }
}

fn console_for(s: &Service, issuer: &str) -> Router {
    let config = parse_config(&format!(
        "[oidc]\nissuer = \"{issuer}\"\naudience = \"airlock-api\"\njwks_url = \"{issuer}/keys\"\n\n\
         [console]\npublic_url = \"http://127.0.0.1:8700\"\nclient_id = \"{CLIENT}\"\nstep_up_max_age = \"5m\"\n"
    ));
    let reviewers = ReviewerDirectory::new(&config.reviewers, Some(Oidc::new(config.oidc.clone().unwrap())));
    let audit = AuditSource { database: s.db.clone(), key: None, every: 100 };
    let console = Console::new(
        config.console.as_ref().unwrap(),
        s.state.approvals.clone(),
        reviewers,
        Some("console-secret".into()),
        audit,
    )
    .unwrap()
    .unwrap();
    console::router(console)
}

/// A query parameter of `url`.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn set_cookies(a: &Answer) -> Vec<String> {
    a.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

/// The session cookie an answer sets, if any (a deletion does not count).
fn session_cookie(a: &Answer) -> Option<String> {
    set_cookies(a)
        .into_iter()
        .filter_map(|c| c.strip_prefix("airlock_console=").map(|v| v.split(';').next().unwrap_or_default().to_string()))
        .find(|v| !v.is_empty())
}

struct Started {
    state: String,
    nonce: String,
    challenge: String,
    cookie: String,
}

async fn start(router: &Router, query: &str) -> Started {
    let a = send(router, Request::get(format!("/console/login{query}")).body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, 303, "{}", String::from_utf8_lossy(&a.body));
    let to = a.headers["location"].to_str().unwrap().to_string();
    let login = set_cookies(&a).into_iter().find(|c| c.starts_with("airlock_console_login=")).unwrap();
    Started {
        state: param(&to, "state").unwrap(),
        nonce: param(&to, "nonce").unwrap(),
        challenge: param(&to, "code_challenge").unwrap(),
        cookie: login.split(';').next().unwrap().to_string(),
    }
}

async fn callback(router: &Router, query: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::get(format!("/console/callback?{query}"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    send(router, req.body(Body::empty()).unwrap()).await
}

fn id_token(idp: &Idp, edit: impl FnOnce(&mut Value), key_file: &str) -> String {
    let now = now_secs();
    let mut claims = json!({"iss": idp.base, "aud": CLIENT, "sub": "oid-bob", "email": "bob@corp.example",
                            "groups": ["data-owners"], "iat": now, "exp": now + 300, "auth_time": now - 5});
    edit(&mut claims);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    encode(&header, &claims, &key(key_file)).unwrap()
}

fn answer_token(idp: &Idp, status: u16, body: Value) {
    *idp.token.lock().unwrap() = (status, body.to_string());
}

#[tokio::test]
async fn a_good_sign_in_starts_a_session_and_proves_its_pkce_verifier() {
    let s = service();
    let idp = idp();
    let router = console_for(&s, &idp.base);
    let started = start(&router, "?next=/console/history").await;
    let nonce = started.nonce.clone();
    answer_token(&idp, 200, json!({"id_token": id_token(&idp, |c| c["nonce"] = json!(nonce), "oidc-test-key.pem")}));
    let a = callback(&router, &format!("code=c1&state={}", started.state), Some(&started.cookie)).await;
    assert_eq!(a.status, 303, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.headers["location"], "/console/history");
    let session = session_cookie(&a).expect("a session cookie");
    // The code was redeemed with the verifier whose S256 is the challenge sent.
    let token_call = idp.server.recorded().into_iter().find(|r| r.path == "/token").unwrap();
    let form: Vec<(String, String)> = form_urlencoded::parse(&token_call.body).into_owned().collect();
    let verifier = form.iter().find(|(k, _)| k == "code_verifier").map(|(_, v)| v.clone()).unwrap();
    assert_eq!(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())), started.challenge);
    assert!(form.contains(&("code".into(), "c1".into())), "{form:?}");
    // The session works; the reviewer is the token's.
    let inbox = send(
        &router,
        Request::get("/console/").header("cookie", format!("airlock_console={session}")).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(inbox.status, 200);
    assert!(String::from_utf8_lossy(&inbox.body).contains("bob@corp.example"));
}

#[tokio::test]
async fn every_bad_callback_ends_with_no_session() {
    let s = service();
    let idp = idp();
    let router = console_for(&s, &idp.base);
    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit, &str)] = &[
        ("nonce of another sign-in", |c| c["nonce"] = json!("not-this-one"), "oidc-test-key.pem"),
        ("another client's audience", |c| c["aud"] = json!("another-client"), "oidc-test-key.pem"),
        ("signed with a key the IdP does not publish", |_| {}, "oidc-test-key-2.pem"),
        ("expired", |c| c["exp"] = json!(now_secs() - 3600), "oidc-test-key.pem"),
    ];
    for (why, edit, key_file) in cases {
        let started = start(&router, "").await;
        let nonce = started.nonce.clone();
        let token = id_token(
            &idp,
            |c| {
                c["nonce"] = json!(nonce);
                edit(c);
            },
            key_file,
        );
        answer_token(&idp, 200, json!({"id_token": token}));
        let a = callback(&router, &format!("code=c&state={}", started.state), Some(&started.cookie)).await;
        assert!(a.status >= 400, "{why}: {}", a.status);
        assert_eq!(session_cookie(&a), None, "{why}");
    }
    // The token endpoint refuses the code.
    let started = start(&router, "").await;
    answer_token(&idp, 400, json!({"error": "invalid_grant"}));
    let a = callback(&router, &format!("code=c&state={}", started.state), Some(&started.cookie)).await;
    assert_eq!((a.status, session_cookie(&a)), (403, None), "refused code");
    // The IdP answers with an error; then the same state again (a replay).
    let started = start(&router, "").await;
    let a = callback(&router, &format!("error=access_denied&state={}", started.state), Some(&started.cookie)).await;
    assert_eq!((a.status, session_cookie(&a)), (403, None), "IdP error");
    let again = callback(&router, &format!("code=c&state={}", started.state), Some(&started.cookie)).await;
    assert_eq!((again.status, session_cookie(&again)), (400, None), "replayed state");
    // Another issuer names itself (RFC 9207), and a callback without the login cookie.
    let started = start(&router, "").await;
    let a =
        callback(&router, &format!("code=c&state={}&iss=https://evil.example", started.state), Some(&started.cookie))
            .await;
    assert_eq!((a.status, session_cookie(&a)), (400, None), "another issuer");
    let started = start(&router, "").await;
    let a = callback(&router, &format!("code=c&state={}", started.state), None).await;
    assert_eq!((a.status, session_cookie(&a)), (400, None), "no login cookie");
    // A step-up whose ID token says the login is an hour old.
    let started = start(&router, "?step_up=1&next=/console/").await;
    let nonce = started.nonce.clone();
    let stale = id_token(
        &idp,
        |c| {
            c["nonce"] = json!(nonce);
            c["auth_time"] = json!(now_secs() - 3600);
        },
        "oidc-test-key.pem",
    );
    answer_token(&idp, 200, json!({"id_token": stale}));
    let a = callback(&router, &format!("code=c&state={}", started.state), Some(&started.cookie)).await;
    assert_eq!((a.status, session_cookie(&a)), (403, None), "stale step-up");
}

#[tokio::test]
async fn an_unreachable_idp_fails_closed_and_signed_out_pages_stay_shut() {
    let s = service();
    let router = console_for(&s, "http://127.0.0.1:9");
    let a = send(&router, Request::get("/console/login").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, 503);
    assert!(a.headers.get("location").is_none());
    assert!(a.headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    for (method, path, status) in [
        ("GET", "/console/", 303),
        ("GET", "/console/history", 303),
        ("GET", "/console/history/evidence.tar", 303),
        ("GET", "/console/approvals/apr_1", 303),
        ("POST", "/console/approvals/apr_1/decide", 303),
        ("GET", "/console/events", 401),
        ("GET", "/console/inbox/rows", 401),
    ] {
        let a = send(&router, Request::builder().method(method).uri(path).body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, status, "{method} {path}");
        if status == 303 {
            assert!(a.headers["location"].to_str().unwrap().starts_with("/console/login?next="), "{method} {path}");
        }
    }
    let forged = send(
        &router,
        Request::get("/console/").header("cookie", "airlock_console=forged").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(forged.status, 303, "an unknown session token is no session");
}

/// Signs in through the stand-in IdP as the token `edit` makes; answers the session cookie.
async fn signed_in(router: &Router, idp: &Idp, edit: impl FnOnce(&mut Value)) -> String {
    let started = start(router, "").await;
    let nonce = started.nonce.clone();
    let token = id_token(
        idp,
        |c| {
            c["nonce"] = json!(nonce);
            edit(c);
        },
        "oidc-test-key.pem",
    );
    answer_token(idp, 200, json!({ "id_token": token }));
    let a = callback(router, &format!("code=c&state={}", started.state), Some(&started.cookie)).await;
    format!("airlock_console={}", session_cookie(&a).expect("a session cookie"))
}

async fn get_page(router: &Router, path: &str, cookie: &str) -> (u16, String) {
    let a = send(router, Request::get(path).header("cookie", cookie).body(Body::empty()).unwrap()).await;
    (a.status, String::from_utf8_lossy(&a.body).into_owned())
}

/// The session's form token, as the page's hidden field carries it.
fn csrf_of(html: &str) -> String {
    let rest = html.split_once("name=\"csrf\" value=\"").expect("a csrf field").1;
    rest.split('"').next().unwrap().to_string()
}

async fn post_form(router: &Router, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Answer {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let req = Request::post(path)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    send(router, req).await
}

#[tokio::test]
async fn the_owner_cancels_from_the_approval_page_and_nobody_else_can() {
    let s = service();
    let idp = idp();
    let router = console_for(&s, &idp.base);
    let id = gateway(&s.router, "/v1/gateway/approvals", &create_body(&digest("console-cancel"), 0, None, 1))
        .await
        .json()["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = format!("/console/approvals/{id}");
    let cancel = format!("{page}/cancel");

    // Bob may approve but does not own the agent: no cancel form, and a forged POST is refused.
    let bob = signed_in(&router, &idp, |_| {}).await;
    let (status, html) = get_page(&router, &page, &bob).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"decide\"") && !html.contains("id=\"cancel\""), "{html}");
    let a = post_form(&router, &cancel, &bob, &[("csrf", &csrf_of(&html)), ("reason", "not mine")]).await;
    assert_eq!(a.status, 403, "{}", String::from_utf8_lossy(&a.body));

    // Alice owns it: she sees the form; without the token or without a reason nothing moves.
    let alice = signed_in(&router, &idp, |c| {
        c["sub"] = json!("oid-alice");
        c["email"] = json!("alice@corp.example");
    })
    .await;
    let (_, html) = get_page(&router, &page, &alice).await;
    assert!(html.contains("id=\"cancel\""), "{html}");
    let csrf = csrf_of(&html);
    assert_eq!(post_form(&router, &cancel, &alice, &[("reason", "asked by mistake")]).await.status, 403);
    assert_eq!(post_form(&router, &cancel, &alice, &[("csrf", &csrf), ("reason", "  ")]).await.status, 400);
    assert!(audit_events(&s.db, "approval.cancelled").is_empty(), "a refused cancel records nothing");

    let a = post_form(&router, &cancel, &alice, &[("csrf", &csrf), ("reason", "asked by mistake")]).await;
    assert_eq!((a.status, a.headers["location"].to_str().unwrap()), (303, page.as_str()));
    let events = audit_events(&s.db, "approval.cancelled");
    assert_eq!(events.len(), 1);
    let event: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(
        (event["by"].clone(), event["reason"].clone()),
        (json!("alice@corp.example"), json!("asked by mistake"))
    );
    let (_, html) = get_page(&router, &page, &alice).await;
    assert!(html.contains("cancelled") && !html.contains("id=\"cancel\""), "{html}");
    // First decision wins.
    let a = post_form(&router, &cancel, &alice, &[("csrf", &csrf), ("reason", "again")]).await;
    assert_eq!(a.status, 409);
}
