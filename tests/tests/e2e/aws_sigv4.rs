//! `aws-sigv4` credentials end to end: real Envoy and the real filter in front of moto
//! (S3, STS, IAM in server mode, with its IAM checks on: unknown keys, bad signatures
//! and actions the caller's policies do not allow are refused), the REAL approval
//! service assuming roles from moto's STS with the keys of an IAM user, exactly as it
//! would from AWS. An approved S3 export lands with the approved body; the captured
//! headers do not sign another key (moto refuses) or another body (botocore's signer,
//! which S3 applies and moto does not, disagrees); the session policy moto recorded is
//! the narrow one; no key reaches the agent, the logs or the store; an IAM role change is
//! approved and done; an action the credential cannot map is refused with the reason.
//!
//! Needs `bash scripts/setup.sh` (Envoy, moto via scripts/setup-aws.sh), the filter and
//! `cargo build -p airlock-approval-svc`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::e2e_support;

use std::time::{Duration, Instant};

use airlock_tests::e2e::client::{Request, Response};
use airlock_tests::e2e::gateway::Gateway;
use airlock_tests::e2e::moto::{Moto, Tee};
use airlock_tests::e2e::plugin::{plugin_config, PluginOptions, IDENTITY_HEADER};
use airlock_tests::e2e::ports::localhost;
use airlock_tests::e2e::service::{self, AirlockService, ServiceOptions};
use e2e_support::real::{approve_ok, expect_pending, real_vars, reviewers, BOB, CAROL};
use e2e_support::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const AGENT: &str = "spiffe://e2e/agent/aws-exporter";
const S3_HOST: &str = "exports.s3.us-east-1.amazonaws.com";
const IAM_HOST: &str = "iam.amazonaws.com";

const POLICY: &str = r#"package airlock

import rego.v1

default decision := {"effect": "deny", "reason": "no rule matched", "rule": "default-deny"}

decision := {
	"effect": "approve", "reason": "S3 export", "rule": "s3-export", "risk": "high",
	"approvers": {"groups": ["data-owners"], "quorum": 1}, "expires_in": "15m",
	"credential": "aws-s3-export", "reuse": "once",
} if {
	input.request.method == "PUT"
	input.request.host == "exports.s3.us-east-1.amazonaws.com"
}

decision := {
	"effect": "approve", "reason": "S3 export, STS down", "rule": "s3-no-sts", "risk": "high",
	"approvers": {"groups": ["data-owners"], "quorum": 1}, "expires_in": "15m",
	"credential": "aws-no-sts", "reuse": "once",
} if {
	input.request.method == "PUT"
	input.request.host == "stranded.s3.us-east-1.amazonaws.com"
}

decision := {
	"effect": "approve", "reason": "IAM change", "rule": "iam-change", "risk": "critical",
	"approvers": {"groups": ["sre"], "quorum": 1}, "expires_in": "15m",
	"credential": "aws-iam-change", "reuse": "once",
} if {
	input.request.host == "iam.amazonaws.com"
	input.request.query.Action[0] in {"AttachRolePolicy", "DetachRolePolicy", "ListRoles"}
}
"#;

struct Aws {
    moto: Moto,
    tee: Tee,
    svc: AirlockService,
    gw: Gateway,
    auditor: String,
}

fn start() -> Aws {
    let moto = Moto::start().unwrap_or_else(|e| panic!("{e:#}"));
    let keys = moto.tool_json("setup", &[]).unwrap_or_else(|e| panic!("{e:#}"));
    let key = |who: &str, k: &str| keys[who][k].as_str().unwrap().to_string();
    let auditor = format!("{}:{}", key("auditor", "access_key_id"), key("auditor", "secret"));
    let sts = moto.url();
    let closed = airlock_tests::e2e::ports::free_port().unwrap();
    let extra_toml = format!(
        r#"
[credentials.aws-s3-export]
kind = "aws-sigv4"
role_arn = "arn:aws:iam::123456789012:role/airlock-s3-export"
region = "us-east-1"
api = "s3"
hosts = ["s3.us-east-1.amazonaws.com"]
sts_endpoint = "{sts}"

[credentials.aws-no-sts]
kind = "aws-sigv4"
role_arn = "arn:aws:iam::123456789012:role/airlock-s3-export"
region = "us-east-1"
api = "s3"
hosts = ["s3.us-east-1.amazonaws.com"]
sts_endpoint = "http://127.0.0.1:{closed}"
timeout = "2s"

[credentials.aws-iam-change]
kind = "aws-sigv4"
role_arn = "arn:aws:iam::123456789012:role/airlock-iam-change"
region = "us-east-1"
api = "query"
service = "iam"
hosts = ["iam.amazonaws.com"]
sts_endpoint = "{sts}"
"#
    );
    let opts = ServiceOptions {
        reviewers: reviewers(),
        extra_toml,
        extra_env: vec![
            ("AWS_ACCESS_KEY_ID".into(), key("service", "access_key_id")),
            ("AWS_SECRET_ACCESS_KEY".into(), key("service", "secret")),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ],
        ..ServiceOptions::default()
    };
    let svc = AirlockService::start("aws", &opts).unwrap_or_else(|e| panic!("{e:#}"));
    let tee = Tee::start(moto.port()).unwrap();
    let wasm = filter_module();
    let plugin =
        plugin_config(&PluginOptions { policy: POLICY.to_string(), timeout_ms: 5000, ..PluginOptions::default() });
    let gw =
        start_gateways(vec![("aws", "demo.yaml", real_vars(&wasm, &plugin, tee.port(), svc.port()))]).pop().unwrap();
    Aws { moto, tee, svc, gw, auditor }
}

fn put(key: &str, body: &[u8]) -> Request {
    put_on(S3_HOST, key, body)
}

fn put_on(host: &str, key: &str, body: &[u8]) -> Request {
    Request::new("PUT", &format!("/{key}"))
        .header("host", host)
        .header(IDENTITY_HEADER, AGENT)
        .header("content-type", "text/csv")
        .body(body.to_vec())
}

/// Sends through the gateway, approves as `reviewer`, retries: answers the approval id,
/// the approved retry's answer and how long it took (the redeem, STS on its path).
fn approved(aws: &Aws, req: &Request, reviewer: &str) -> (String, Response, Duration) {
    let id = expect_pending(&send(&aws.gw, req));
    approve_ok(&aws.svc, &id, reviewer);
    let started = Instant::now();
    let resp = send(&aws.gw, req);
    (id, resp, started.elapsed())
}

fn session(aws: &Aws, approval_id: &str) -> Value {
    let all = aws.moto.tool_json("sessions", &[]).unwrap();
    let name = format!("airlock-{approval_id}");
    let found: Vec<&Value> = all.as_array().unwrap().iter().filter(|s| s["session_name"] == name).collect();
    assert_eq!(found.len(), 1, "one STS session named {name}: {all}");
    found[0].clone()
}

/// The first value of `key` anywhere in `v` (audit records nest the mint's details).
fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(key).or_else(|| o.values().find_map(|x| field(x, key))),
        Value::Array(a) => a.iter().find_map(|x| field(x, key)),
        _ => None,
    }
}

fn minted_record(aws: &Aws, session_name: &str) -> Value {
    let records = aws.svc.audit_export().unwrap();
    let found = service::records_mentioning(&records, "credential.minted", session_name);
    assert_eq!(found.len(), 1, "one credential.minted record for {session_name}");
    found[0].clone()
}

#[test]
fn aws_sigv4() {
    let started = Instant::now();
    let aws = start();
    eprintln!("[e2e_aws_sigv4] setup {:.1?}", started.elapsed());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s3_export(&aws);
        iam_role_change(&aws);
        unmappable_action_is_refused_with_the_reason(&aws);
        sts_down_fails_closed(&aws);
        redeem_latency(&aws);
    }));
    if outcome.is_err() {
        aws.svc.print_logs();
    }
    eprintln!("[e2e_aws_sigv4] total {:.1?}", started.elapsed());
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

fn s3_export(aws: &Aws) {
    let body = b"customer,total\nada,42\n".to_vec();
    let (id, resp, _) = approved(aws, &put("2026/12.csv", &body), BOB);
    assert_eq!(resp.status, 200, "the approved PutObject: {}", resp.text());
    let landed = aws.moto.tool("get-object", &[&aws.auditor, "exports", "2026/12.csv"]).unwrap();
    assert_eq!(landed, hex::encode(&body), "the object holds the approved body");

    // The session: narrowed to exactly this object, named after the approval.
    let s = session(aws, &id);
    assert_eq!(s["role_arn"], "arn:aws:iam::123456789012:role/airlock-s3-export");
    let policy: Value = serde_json::from_str(s["policy"].as_str().unwrap()).unwrap();
    assert_eq!(
        policy,
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "AirlockApprovedAction", "Effect": "Allow",
               "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::exports/2026/12.csv"]}]}),
        "the session policy STS was given"
    );

    // The audit names role, session, policy digest and expiry, and no key.
    let record = minted_record(aws, &format!("airlock-{id}"));
    let digest = hex::encode(Sha256::digest(s["policy"].as_str().unwrap().as_bytes()));
    assert_eq!(field(&record, "session_policy_sha256"), Some(&json!(digest)), "{record}");
    assert_eq!(field(&record, "session_name"), Some(&json!(format!("airlock-{id}"))), "{record}");
    assert_eq!(field(&record, "role_arn"), Some(&s["role_arn"]), "{record}");
    assert_eq!(field(&record, "action"), Some(&json!("s3:PutObject")), "{record}");
    let expires =
        field(&record, "expires_at").and_then(Value::as_str).unwrap_or_else(|| panic!("expires_at in {record}"));
    let expires = humantime::parse_rfc3339_weak(expires.trim_end_matches('Z')).unwrap();
    let left = expires.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    assert!(left <= Duration::from_secs(900), "a session of STS's minimum 15 minutes at most, {left:?} left");

    // What the gateway forwarded: SigV4 headers the service computed.
    let sent = aws.tee.last_request_headers("PUT /2026/12.csv ").expect("the forwarded PutObject");
    let header = |n: &str| sent.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
    let auth = header("authorization");
    assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=") && auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
    assert_eq!(header("x-amz-content-sha256"), hex::encode(Sha256::digest(&body)));
    assert_eq!(header("x-amz-security-token"), s["session_token"].as_str().unwrap());

    // Replayed by someone who captured them: another key is refused by moto itself.
    let replay = |key: &str, body: &[u8]| {
        let mut req = Request::new("PUT", &format!("/{key}")).body(body.to_vec());
        for (n, v) in &sent {
            if n == "host" || n == "authorization" || n.starts_with("x-amz-") || n == "content-type" {
                req = req.header(n, v);
            }
        }
        req.send(localhost(aws.moto.port())).unwrap()
    };
    let other_key = replay("2026/other.csv", &body);
    assert_eq!(other_key.status, 403, "another key with the same headers: {}", other_key.text());
    assert!(other_key.text().contains("SignatureDoesNotMatch"), "{}", other_key.text());
    // Another body: moto takes x-amz-content-sha256 on trust, S3 does not. botocore's
    // signer, fed the body as sent, agrees with the signature only for the approved one.
    let signature = auth.rsplit("Signature=").next().unwrap().to_string();
    let headers = Value::Object(sent.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()).to_string();
    let url = format!("http://{S3_HOST}/2026/12.csv");
    let key_id = s["access_key_id"].as_str().unwrap();
    let check =
        |body: &[u8]| aws.moto.tool_json("verify", &[key_id, "PUT", &url, &headers, &hex::encode(body)]).unwrap();
    assert_eq!(check(&body)["signature"], signature.as_str(), "botocore signs the approved request the same");
    let tampered = b"customer,total\nada,4200000\n";
    let other = check(tampered);
    assert_ne!(other["signature"], signature.as_str(), "another body is another signature");
    assert_ne!(other["payload_sha256"], header("x-amz-content-sha256").as_str());
    // Through the gateway another body is another action: a new approval, nothing sent.
    let before = aws.tee.seen().len();
    expect_pending(&send(&aws.gw, &put("2026/12.csv", tampered)));
    assert_eq!(aws.tee.seen().len(), before, "the unapproved body never left the gateway");

    // The keys are nowhere the agent, the logs or the store can show (the gateway held
    // the token and key id only in the one request's headers).
    let secret = s["secret_access_key"].as_str().unwrap();
    let token = s["session_token"].as_str().unwrap();
    let agent_saw = format!("{:?} {}", resp.headers, resp.text());
    let (out, err) = aws.svc.log_paths();
    let logs = format!(
        "{}{}",
        std::fs::read_to_string(out).unwrap_or_default(),
        std::fs::read_to_string(err).unwrap_or_default()
    );
    let mut store = std::fs::read(aws.svc.database()).unwrap();
    for suffix in ["-wal", "-shm"] {
        store.extend(std::fs::read(format!("{}{suffix}", aws.svc.database().display())).unwrap_or_default());
    }
    let store = String::from_utf8_lossy(&store);
    let gateway_log = aws.gw.envoy.log();
    for (what, haystack) in [
        ("agent's response", agent_saw.as_str()),
        ("service logs", logs.as_str()),
        ("store", &store),
        ("gateway's log", gateway_log.as_str()),
    ] {
        assert!(!haystack.contains(secret), "session secret in the {what}");
        assert!(!haystack.contains(token), "session token in the {what}");
        assert!(!haystack.contains(key_id), "session key id in the {what}");
    }
}

/// The query-API target of `action` on role `app` and policy `exports-read`, encoded as
/// AWS encodes it.
fn iam_target(action: &str) -> String {
    format!(
        "/?Action={action}&PolicyArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fexports-read&RoleName=app&Version=2010-05-08"
    )
}

fn iam_change(action: &str) -> Request {
    Request::get(&iam_target(action)).header("host", IAM_HOST).header(IDENTITY_HEADER, AGENT)
}

fn iam_role_change(aws: &Aws) {
    let before = aws.moto.tool_json("attached", &[&aws.auditor, "app"]).unwrap();
    assert_eq!(before, json!([]), "nothing attached yet");
    let (id, resp, _) = approved(aws, &iam_change("AttachRolePolicy"), CAROL);
    assert_eq!(resp.status, 200, "the approved AttachRolePolicy: {}", resp.text());
    let after = aws.moto.tool_json("attached", &[&aws.auditor, "app"]).unwrap();
    assert_eq!(after, json!(["arn:aws:iam::123456789012:policy/exports-read"]), "the role change was made");
    let policy: Value = serde_json::from_str(session(aws, &id)["policy"].as_str().unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][0],
        json!({"Sid": "AirlockApprovedAction", "Effect": "Allow", "Action": ["iam:AttachRolePolicy"],
               "Resource": ["arn:aws:iam::123456789012:role/app"],
               "Condition": {"ArnEquals": {"iam:PolicyARN": ["arn:aws:iam::123456789012:policy/exports-read"]}}}),
    );
    // The same headers do not sign the opposite change.
    let sent = aws.tee.last_request_headers("GET /?Action=AttachRolePolicy").expect("the forwarded IAM call");
    let mut detach = Request::get(&iam_target("DetachRolePolicy"));
    for (n, v) in &sent {
        if n == "host" || n == "authorization" || n.starts_with("x-amz-") {
            detach = detach.header(n, v);
        }
    }
    let refused = detach.send(localhost(aws.moto.port())).unwrap();
    assert_eq!(refused.status, 403, "DetachRolePolicy with the AttachRolePolicy headers: {}", refused.text());
    assert_eq!(aws.moto.tool_json("attached", &[&aws.auditor, "app"]).unwrap(), after, "still attached");
}

fn unmappable_action_is_refused_with_the_reason(aws: &Aws) {
    // A key IAM would read as a pattern: no reviewer is asked, the agent is told why.
    let resp = send(&aws.gw, &put("2026/*.csv", b"x"));
    let doc = expect_problem(&resp, 403, "denied");
    assert!(doc["detail"].as_str().unwrap_or("").contains("pattern"), "{doc}");
    // An IAM call naming no resource would need a session allowed on every resource.
    let list =
        Request::get("/?Action=ListRoles&Version=2010-05-08").header("host", IAM_HOST).header(IDENTITY_HEADER, AGENT);
    let doc = expect_problem(&send(&aws.gw, &list), 403, "denied");
    assert!(doc["detail"].as_str().unwrap_or("").contains("names no resource"), "{doc}");
    assert!(!aws.tee.seen().contains("ListRoles") && !aws.tee.seen().contains("%2A.csv"), "nothing was forwarded");
}

/// STS unreachable: the approved retry is answered `unavailable`, nothing is forwarded,
/// and the approval is not used up (a later retry may still redeem it).
fn sts_down_fails_closed(aws: &Aws) {
    let req = put_on("stranded.s3.us-east-1.amazonaws.com", "stranded.csv", b"a\n");
    let id = expect_pending(&send(&aws.gw, &req));
    approve_ok(&aws.svc, &id, BOB);
    expect_problem(&send(&aws.gw, &req), 503, "unavailable");
    assert!(!aws.tee.seen().contains("stranded"), "nothing was forwarded without a credential");
    let shown = aws.svc.show(&id, &e2e_support::real::key(&aws.svc, BOB)).unwrap();
    assert_eq!(service::status_of(&shown), Some("approved"), "still approved, not consumed: {shown}");
}

/// The approved retry's latency with AssumeRole on the redeem path (docs/benchmarks.md).
fn redeem_latency(aws: &Aws) {
    let mut took = Vec::new();
    let mut sts_ms = Vec::new();
    for n in 0..5 {
        let (id, resp, elapsed) = approved(aws, &put(&format!("latency/{n}.csv"), b"a,b\n"), BOB);
        assert_eq!(resp.status, 200, "{}", resp.text());
        took.push(elapsed);
        let record = minted_record(aws, &format!("airlock-{id}"));
        sts_ms.push(field(&record, "sts_ms").and_then(Value::as_u64).unwrap_or_else(|| panic!("sts_ms in {record}")));
    }
    took.sort();
    eprintln!("[e2e_aws_sigv4] approved retry (redeem + AssumeRole + PutObject) {took:?}; sts_ms per mint {sts_ms:?}");
}
