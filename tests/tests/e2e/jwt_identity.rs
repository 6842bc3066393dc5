//! Agent identity from a JWT verified by Envoy's `jwt_authn` (`envoy/jwt-gateway.yaml`):
//! the filter reads the verified claims from dynamic metadata, so the approval service
//! sees the token's subject and owner, and nothing a client sends in headers can
//! change who the agent is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use airlock_tests::e2e::client::Request;
use airlock_tests::e2e::fake_service::FakeService;
use airlock_tests::e2e::plugin::{plugin_config, service_keys, PluginOptions, APPROVE_PATH};
use airlock_tests::e2e::template::yaml_string;
use airlock_tests::e2e::upstream::{RecordingUpstream, CASE_HEADER};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use e2e_support::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://idp.e2e.example";
const AUDIENCE: &str = "airlock-gateway";
const JWT_KEY: &[u8] = b"e2e-agent-token-signing-key-32by";

/// An HS256 token signed the way the identity provider would.
fn token(claims: Value) -> String {
    let header = B64URL.encode(json!({"alg": "HS256", "typ": "JWT", "kid": "agents-1"}).to_string());
    let payload = B64URL.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(JWT_KEY).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let sig = B64URL.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{sig}")
}

fn claims(sub: &str) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "owner": "carol@e2e.example",
           "scope": "exports", "iat": now, "exp": now + 300})
}

#[test]
fn jwt_identity() {
    let wasm = filter_module();
    let upstream = RecordingUpstream::http("jwt-upstream").unwrap();
    let service = FakeService::start(service_keys().unwrap()).unwrap();
    let mut plugin = plugin_config(&PluginOptions::default());
    plugin["identity"] = json!({
        "source": "jwt",
        "jwt": {"payload_key": "jwt_payload", "id_claim": "sub", "owner_claim": "owner", "claims": ["scope"]}
    });
    let mut v = vars(&wasm, &PluginOptions::default(), upstream.port(), service.port());
    v.insert("AIRLOCK_PLUGIN_CONFIG".into(), yaml_string(&plugin.to_string()));
    let jwks = json!({"keys": [{"kty": "oct", "alg": "HS256", "kid": "agents-1", "k": B64URL.encode(JWT_KEY)}]});
    v.insert("AIRLOCK_JWKS".into(), yaml_string(&jwks.to_string()));
    v.insert("AIRLOCK_JWT_ISSUER".into(), ISSUER.into());
    v.insert("AIRLOCK_JWT_AUDIENCE".into(), AUDIENCE.into());
    let gw = start_gateways(vec![("jwt", "jwt-gateway.yaml", v)]).pop().unwrap();

    // A verified token: allowed, and the agent's token does not travel upstream.
    let ok = token(claims("spiffe://e2e/agent/jwt-bot"));
    let resp = send(
        &gw,
        &Request::get("/v1/reports").header("authorization", &format!("Bearer {ok}")).header(CASE_HEADER, "jwt-allow"),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = upstream.wait_for("jwt-allow", 1, Duration::from_secs(5));
    assert_eq!(seen.len(), 1);
    assert!(seen[0].header("authorization").is_none(), "jwt_authn forward: false strips the agent token");

    // No token, or a token signed with another key: refused before the filter.
    let resp = send(&gw, &Request::get("/v1/reports").header(CASE_HEADER, "jwt-none"));
    assert_eq!(resp.status, 401);
    let forged = {
        let t = token(claims("spiffe://e2e/agent/root"));
        let (head, _) = t.rsplit_once('.').unwrap();
        format!("{head}.{}", B64URL.encode([0u8; 32]))
    };
    let resp = send(
        &gw,
        &Request::get("/v1/reports")
            .header("authorization", &format!("Bearer {forged}"))
            .header(CASE_HEADER, "jwt-forged"),
    );
    assert_eq!(resp.status, 401);
    expect_nothing_reached(&upstream, "jwt-none");
    expect_nothing_reached(&upstream, "jwt-forged");

    // The approval service sees the token's subject and owner, not a header's claim.
    let body = json!({"customer": {"id": 7, "ssn": "123-45-6789"}});
    let req = Request::post_json(APPROVE_PATH, &body)
        .header("authorization", &format!("Bearer {ok}"))
        .header("x-airlock-agent", "spiffe://e2e/agent/someone-else")
        .header(CASE_HEADER, "jwt-approve");
    let resp = send(&gw, &req);
    expect_problem(&resp, 403, "approval-pending");
    let approvals = service.approvals();
    let a =
        approvals.iter().find(|a| a.agent == "spiffe://e2e/agent/jwt-bot").expect("approval for the token's subject");
    assert_eq!(a.create_request["agent"]["source"], "jwt");
    assert_eq!(a.create_request["agent"]["owner"], "carol@e2e.example");
    assert!(approvals.iter().all(|a| a.agent != "spiffe://e2e/agent/someone-else"));
    expect_nothing_reached(&upstream, "jwt-approve");
}
