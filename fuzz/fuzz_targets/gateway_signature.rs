//! The HMAC protocol between filter and service (`docs/protocol.md`), both ends: the
//! service verifying a gateway request (`auth/gateway.rs`), the filter verifying an
//! answer (`callout::verified`) and reading it (`parse_approval`, `parse_redeem`).
//!
//! Input, separated by `\n--\n`: key id, timestamp, signature, path, body, request
//! signature, status.
#![no_main]
use std::sync::OnceLock;

use airlock_approval_svc::auth::gateway::{self as svc, GatewayKeys};
use airlock_filter::callout::{
    injectable_header_name, injectable_header_value, parse_approval, parse_redeem, signed_post, verified, Answer, Call,
    Redeemed,
};
use airlock_filter::config::{Config, ServiceConfig};
use airlock_fuzz::{parts, KEY, KEY_B64};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_800_000_000;
const OLD_KEY: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz012345";

fn filter_side() -> &'static ServiceConfig {
    static CFG: OnceLock<ServiceConfig> = OnceLock::new();
    CFG.get_or_init(|| {
        let cfg = serde_json::json!({
            "policy": {"modules": {"p.rego": "package airlock\ndecision := {\"effect\": \"allow\"}"}},
            "identity": {"source": "header", "header": "x-airlock-agent"},
            "approval_service": {"cluster": "svc", "signing": {"key_id": "k1", "key_base64": KEY_B64,
                "previous": {"key_id": "k0", "key_base64": "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU="}}}
        });
        Config::parse(cfg.to_string().as_bytes()).unwrap().service
    })
}

fn service_side() -> GatewayKeys {
    GatewayKeys::new(vec![("k1".into(), KEY.to_vec()), ("k0".into(), OLD_KEY.to_vec())])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn header_map(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n.as_bytes()), HeaderValue::from_bytes(v)) {
            h.append(n, v);
        }
    }
    h
}

/// The answer body as the filter reads it after verification.
fn read_answer(status: u32, body: &[u8]) {
    if let Ok(state) = parse_approval(status, body) {
        if let Some(id) = &state.approval_id {
            assert!(!id.is_empty() && id.len() <= 128);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{id:?}");
        }
        assert!(state.comment.as_deref().is_none_or(|c| !c.chars().any(char::is_control)));
    }
    if let Ok(Redeemed::Credential(headers)) = parse_redeem(status, body) {
        for (n, v) in &headers {
            assert!(injectable_header_name(n) && injectable_header_value(v), "{n:?}: {v:?}");
            assert!(!v.contains('\r') && !v.contains('\n'));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 7);
    let (key_id, ts, sig, path, body, req_sig) = (text(p[0]), text(p[1]), text(p[2]), text(p[3]), p[4], text(p[5]));
    let status = text(p[6]).trim().parse::<u16>().unwrap_or(200);
    let keys = service_side();
    let filter = filter_side();

    // The service, given whatever headers: accepts only what the filter's key signed.
    let h = header_map(&[(svc::KEY_ID_HEADER, p[0]), (svc::TIMESTAMP_HEADER, p[1]), (svc::SIGNATURE_HEADER, p[2])]);
    let pre = keys.precheck(&h, NOW as i64);
    if let Ok(bound) = keys.verify(&h, "POST", &path, body, NOW as i64) {
        assert!(pre.is_ok());
        let key: &[u8] = if key_id == "k1" { KEY } else { OLD_KEY };
        let expected = svc::sign(key, &svc::request_string(&ts, "POST", &path, body));
        assert!(bound.eq_ignore_ascii_case(&expected), "accepted a signature it did not make");
    }

    // The filter, given whatever answer: accepts only what the service's key signed.
    let call =
        Call { path: path.clone(), headers: Vec::new(), body: Vec::new(), timeout_ms: 1, signature: req_sig.clone() };
    let answer = Answer {
        status: Some(u32::from(status)),
        key_id: Some(key_id.clone()),
        timestamp: Some(ts.clone()),
        signature: Some(sig.clone()),
        body: body.to_vec(),
    };
    if verified(filter, NOW, &call.signature, &answer).is_ok() {
        let key: &[u8] = if key_id == "k1" { KEY } else { OLD_KEY };
        let expected = svc::sign(key, &svc::response_string(&ts, status, &req_sig, body));
        assert!(sig.eq_ignore_ascii_case(&expected), "accepted an answer the service did not sign");
    }

    // Each end accepts what the other signs, bound to exactly what was signed.
    if let Some(call) = signed_post(filter, NOW, &path, body.to_vec(), 1000) {
        let sent: Vec<(&str, &[u8])> = call.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        let h = header_map(&sent);
        if HeaderValue::from_str(&call.signature).is_ok() {
            let bound =
                keys.verify(&h, "POST", &path, body, NOW as i64).expect("the service accepts the filter's request");
            assert_eq!(bound, call.signature);
            let mut other = body.to_vec();
            other.push(b' ');
            assert!(keys.verify(&h, "POST", &path, &other, NOW as i64).is_err());
        }
        let a = keys.sign_answer(status, &call.signature, body, NOW as i64).unwrap();
        let mut answer = Answer {
            status: Some(u32::from(status)),
            key_id: Some(a.key_id),
            timestamp: Some(a.timestamp),
            signature: Some(a.signature),
            body: body.to_vec(),
        };
        assert_eq!(
            verified(filter, NOW + 30, &call.signature, &answer),
            Ok(u32::from(status)),
            "the filter refuses the service's answer"
        );
        read_answer(u32::from(status), body);
        answer.body.push(b' ');
        assert!(verified(filter, NOW, &call.signature, &answer).is_err());
        answer.body.pop();
        answer.status = Some(u32::from(status) + 1);
        assert!(verified(filter, NOW, &call.signature, &answer).is_err());
    }
    read_answer(u32::from(status), body);
});
