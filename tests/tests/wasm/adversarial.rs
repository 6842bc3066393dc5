//! The adversarial corpus through the real filter module: path and encoding tricks, host
//! variants, spoofed, repeated and malformed identity, duplicate and non-UTF-8 headers,
//! oversized bodies, and actions replayed against an approval for another digest. None
//! may reach the upstream, none may crash the VM, and none may turn a deny or an
//! approval into an allow (SPEC §5, invariants 1, 3 and 4).
//!
//! Needs the release build: `cargo build -p airlock-filter-wasm --target wasm32-wasip1 --release`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::wasm_support;

use std::collections::BTreeSet;

use airlock_tests::host::{Host, Outcome, Stream};
use serde_json::{json, Value};
use wasm_support::*;

/// A refusal before any policy ran: `denied`, rule `airlock.malformed-request` or
/// `airlock.no-identity`, and no call to the approval service.
fn assert_refused_before_policy(host: &Host, stream: &Stream, rule: &str, what: &str) {
    let body = assert_problem(host, stream, 403, "denied");
    assert_eq!(body["rule"], rule, "{what}: {body}");
    assert!(approval_calls(host).is_empty(), "{what}: {:?}", approval_calls(host));
}

fn get_with_path(host: &mut Host, path: &[u8]) -> Stream {
    host.request()
        .method("GET")
        .scheme("https")
        .authority(HOST)
        .header_bytes(":path", path)
        .header(IDENTITY_HEADER, AGENT)
        .send()
        .unwrap()
}

fn export_to(host: &mut Host, authority: &str, path: &str, body: &Value) -> Stream {
    host.request()
        .method("POST")
        .scheme("https")
        .authority(authority)
        .path(path)
        .header(IDENTITY_HEADER, AGENT)
        .json(body)
        .send()
        .unwrap()
}

/// The digest the filter sent for `stream`'s create call.
fn sent_digest(host: &Host, stream: &Stream) -> String {
    let call = create_call_for(host, stream);
    call.json().unwrap()["digest"].as_str().unwrap().to_string()
}

// ----- paths -----

const AMBIGUOUS_PATHS: [&str; 29] = [
    "/v1/reports%2Fsecret",
    "/v1/reports%2fsecret",
    "/v1/reports%5Csecret",
    "/v1/reports%5csecret",
    "/v1/reports%00",
    "/v1/reports%00.json",
    "/v1/../admin",
    "/v1/reports/..",
    "/v1/reports/../../admin",
    "/v1/./reports",
    "/v1/reports/.",
    "/v1//reports",
    "//v1/reports",
    "/v1/reports//",
    "/v1/reports;jsessionid=x",
    "/v1/reports/;jsessionid=x/secret",
    "/v1/%2e%2e/admin",
    "/v1/%2E%2E/admin",
    "/v1/.%2e/admin",
    "/v1/%2e/reports",
    "/v1\\reports",
    "/v1/reports\\..\\admin",
    "/v1/reports%252F",
    "/v1/reports%",
    "/v1/reports%zz",
    "v1/reports",
    "/v1/rep orts",
    "/v1/réports",
    "/v1/reports#frag",
];

#[test]
fn ambiguous_paths_are_refused_and_never_reach_the_upstream() {
    let mut host = host();
    // Control: the plain paths are allowed.
    for ok in ["/v1/reports/secret", "/v1/reports", "/v1/a.b/c..d/.e", "/v1/rep%20orts"] {
        let s = send_get(&mut host, HOST, ok);
        assert_reached_upstream(&host, &s);
    }
    for path in AMBIGUOUS_PATHS {
        let s = get_with_path(&mut host, path.as_bytes());
        assert_refused_before_policy(&host, &s, "airlock.malformed-request", path);
    }
    for raw in [&b"/v1/\xffreports"[..], b"/v1/\x00", b"/v1/\x7f", b"/v1/\r\nx: y", b""] {
        let s = get_with_path(&mut host, raw);
        assert_refused_before_policy(&host, &s, "airlock.malformed-request", &format!("{raw:?}"));
    }
    assert!(!host.is_failed(), "{:?}", host.failure());
}

#[test]
fn ambiguous_paths_on_an_approve_route_never_reach_the_service() {
    let mut host = host();
    for path in [
        "/v1/exports%2F..%2Fadmin",
        "/v1/exports%2fall",
        "/v1/exports/..",
        "/v1/exports/../admin",
        "/v1/exports;x=1",
        "/v1/exports//all",
        "/v1/exports/%2e%2e/admin",
        "/v1/exports\\all",
        "/v1/exports%00",
        "/v1/exports%5call",
    ] {
        let s = export_to(&mut host, HOST, path, &export_body());
        assert_refused_before_policy(&host, &s, "airlock.malformed-request", path);
        assert!(s.upstream_body().is_empty());
    }
}

// ----- hosts -----

#[test]
fn host_variants_give_one_digest_so_one_approval() {
    let mut host = host();
    let body = export_body();
    let expected = DigestInput::export(body.to_string().as_bytes()).digest();
    for authority in [
        "api.example.com",
        "API.EXAMPLE.COM",
        "Api.Example.Com",
        "api.example.com.",
        "API.example.com.",
        "api.example.com:443",
        "API.Example.com.:443",
    ] {
        let s = export_to(&mut host, authority, "/v1/exports?format=csv", &body);
        assert!(s.is_paused(), "{authority}: {:?}", s.outcome());
        let call = create_call_for(&host, &s);
        let sent = call.json().unwrap();
        assert_eq!(sent["digest"], expected.as_str(), "{authority}");
        assert_eq!(sent["request"]["host"], HOST, "{authority}");
        assert_eq!(sent["request"]["port"], 443, "{authority}");
        // The service finds the one pending approval for (agent, digest).
        respond(&mut host, &call, 200, &json!({"approval_id": "apr_one", "status": "pending"}));
        let problem = assert_problem(&host, &s, 403, "approval-pending");
        assert_eq!(problem["approval_id"], "apr_one");
    }
    // Another port is another action.
    let s = export_to(&mut host, "api.example.com:8443", "/v1/exports?format=csv", &body);
    assert_ne!(sent_digest(&host, &s), expected);
}

#[test]
fn host_variants_never_bypass_a_host_deny() {
    let mut host = host();
    let variants = [
        "blocked.example.com",
        "BLOCKED.EXAMPLE.COM",
        "Blocked.Example.Com",
        "blocked.example.com.",
        "BLOCKED.example.com.",
        "blocked.example.com:443",
        "blocked.example.com:8443",
        "Blocked.Example.Com.:443",
        "blocked.example.com:0443",
        "blocked.example.com:+443",
        "blocked%2eexample.com",
        "blocked.example.com%00",
        "blocked.example.com,api.example.com",
        "api.example.com,blocked.example.com",
        "api.example.com@blocked.example.com",
        "blocked.example.com:443:443",
        "blocked.example.com:",
        "blocked.example.com:99999",
        "blocked .example.com",
        "",
    ];
    for authority in variants {
        let get = send_get(&mut host, authority, "/v1/reports");
        assert_blocked(&host, &get);
        let body = assert_problem(&host, &get, 403, "denied");
        assert!(body["rule"] == "blocked-host" || body["rule"] == "airlock.malformed-request", "{authority:?}: {body}");
        let export = export_to(&mut host, authority, "/v1/exports", &export_body());
        assert_blocked(&host, &export);
    }
    assert!(approval_calls(&host).is_empty(), "{:?}", approval_calls(&host));
    // Two :authority values, in either order.
    for pair in [[HOST, BLOCKED_HOST], [BLOCKED_HOST, HOST]] {
        let s = host
            .request()
            .method("GET")
            .authority(pair[0])
            .authority(pair[1])
            .path("/v1/reports")
            .header(IDENTITY_HEADER, AGENT)
            .send()
            .unwrap();
        assert_blocked(&host, &s);
    }
    // Control: the allowed host itself.
    let ok = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &ok);
}

/// The filter strips one trailing dot from the host (`blocked.example.com.` is
/// `blocked.example.com`) but accepts a host with empty labels: `blocked.example.com..`
/// reaches the policy as `blocked.example.com.`, misses a host deny keyed on the
/// canonical name, and goes upstream. Such hosts are not valid DNS names; the filter's
/// rule is to refuse what is ambiguous rather than guess.
#[test]
fn hosts_with_empty_labels_are_refused() {
    let mut host = host();
    for authority in
        ["blocked.example.com..", "blocked.example.com..:443", ".blocked.example.com", "blocked..example.com"]
    {
        let s = send_get(&mut host, authority, "/v1/reports");
        assert_blocked(&host, &s);
    }
}

// ----- identity -----

#[test]
fn repeated_identity_headers_are_refused() {
    let mut host = host();
    for values in [[AGENT, "spiffe://corp/agent/admin"], ["spiffe://corp/agent/admin", AGENT], [AGENT, AGENT]] {
        let s = host
            .request()
            .method("GET")
            .authority(HOST)
            .path("/v1/reports")
            .header(IDENTITY_HEADER, values[0])
            .header(IDENTITY_HEADER, values[1])
            .send()
            .unwrap();
        assert_refused_before_policy(&host, &s, "airlock.no-identity", &format!("{values:?}"));
        let s = host
            .request()
            .method("POST")
            .authority(HOST)
            .path("/v1/exports")
            .header(IDENTITY_HEADER, values[0])
            .header("X-Airlock-Agent", values[1])
            .json(&export_body())
            .send()
            .unwrap();
        assert_refused_before_policy(&host, &s, "airlock.no-identity", &format!("{values:?} on export"));
    }
}

#[test]
fn malformed_identity_values_are_refused() {
    let mut host = host();
    let long = format!("spiffe://corp/agent/{}", "a".repeat(600));
    for value in [
        "spiffe://corp/agent/report-bot,spiffe://corp/agent/admin",
        "spiffe://corp/agent/a, spiffe://corp/agent/b",
        ",",
        "",
        " ",
        "spiffe://corp/agent/report bot",
        "spiffe://corp/agent/report-bøt",
        "spiffe://corp/agent/report-bot\t",
        long.as_str(),
    ] {
        let s = host
            .request()
            .method("GET")
            .authority(HOST)
            .path("/v1/reports")
            .header(IDENTITY_HEADER, value)
            .send()
            .unwrap();
        assert_refused_before_policy(&host, &s, "airlock.no-identity", value);
    }
    for raw in [&b"spiffe://corp/agent/\xff"[..], b"spiffe://corp/agent/\x00x", b"a\r\nb"] {
        let s = host
            .request()
            .method("GET")
            .authority(HOST)
            .path("/v1/reports")
            .header_bytes(IDENTITY_HEADER, raw)
            .send()
            .unwrap();
        assert_refused_before_policy(&host, &s, "airlock.no-identity", &format!("{raw:?}"));
    }
    // Headers that merely look like identity are not identity.
    for name in ["x-airlock-agent-id", "x-agent", "x-forwarded-client-cert", "x-airlock_agent"] {
        let s = host.request().method("GET").authority(HOST).path("/v1/reports").header(name, AGENT).send().unwrap();
        assert_refused_before_policy(&host, &s, "airlock.no-identity", name);
    }
}

#[test]
fn a_spoofed_identity_header_is_ignored_when_identity_comes_from_mtls() {
    let mut cfg = config();
    cfg["identity"] = json!({"source": "mtls", "agents": {AGENT: {"owner": OWNER}}});
    let mut host = host_with(&cfg);
    // A header claiming the identity, no peer certificate SAN.
    let spoofed = host
        .request()
        .method("GET")
        .authority(HOST)
        .path("/v1/reports")
        .header(IDENTITY_HEADER, AGENT)
        .header("x-forwarded-client-cert", &format!("URI={AGENT}"))
        .send()
        .unwrap();
    assert_refused_before_policy(&host, &spoofed, "airlock.no-identity", "header without SAN");
    let spoofed_export = export_to(&mut host, HOST, "/v1/exports", &export_body());
    assert_refused_before_policy(&host, &spoofed_export, "airlock.no-identity", "export without SAN");

    // With a SAN, the SAN is the identity whatever the header says.
    let other = "spiffe://corp/agent/intern-bot";
    let s = host
        .request()
        .method("POST")
        .authority(HOST)
        .path("/v1/exports")
        .header(IDENTITY_HEADER, AGENT)
        .property(&["connection", "uri_san_peer_certificate"], other)
        .json(&export_body())
        .send()
        .unwrap();
    let sent = create_call_for(&host, &s).json().unwrap();
    assert_eq!(sent["agent"]["id"], other, "{sent}");
    assert_eq!(sent["agent"]["source"], "mtls");
    assert!(sent["agent"]["owner"].is_null(), "the spoofed agent's owner is not borrowed: {sent}");

    // A SAN that is empty, repeated or not printable is no identity.
    for san in [&b""[..], b"spiffe://a,spiffe://b", b"spiffe://corp/\xff", b"spiffe://corp/a b"] {
        let s = host
            .request()
            .method("GET")
            .authority(HOST)
            .path("/v1/reports")
            .header(IDENTITY_HEADER, AGENT)
            .property(&["connection", "uri_san_peer_certificate"], san)
            .send()
            .unwrap();
        assert_blocked(&host, &s);
    }
}

#[test]
fn a_spoofed_identity_header_is_ignored_when_identity_comes_from_jwt() {
    let mut cfg = config();
    cfg["identity"] = json!({"source": "jwt", "jwt": {"id_claim": "sub"}});
    let mut host = host_with(&cfg);
    let spoofed = host
        .request()
        .method("GET")
        .authority(HOST)
        .path("/v1/reports")
        .header(IDENTITY_HEADER, AGENT)
        .header("authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.")
        .send()
        .unwrap();
    assert_refused_before_policy(&host, &spoofed, "airlock.no-identity", "jwt header only");
    let verified = host
        .request()
        .method("GET")
        .authority(HOST)
        .path("/v1/reports")
        .property(&["metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "jwt_payload", "sub"], AGENT)
        .send()
        .unwrap();
    assert_reached_upstream(&host, &verified);
}

// ----- duplicate and malformed headers -----

#[test]
fn duplicate_single_valued_headers_are_refused() {
    let mut host = host();
    let cases: [(&str, [&str; 2]); 5] = [
        ("content-type", ["application/json", "text/plain"]),
        ("content-type", ["text/plain", "application/json"]),
        ("content-type", ["application/json", "application/json"]),
        ("x-airlock-approval", ["apr_mine", "apr_other"]),
        ("content-length", ["27", "27"]),
    ];
    for (name, values) in cases {
        let body = r#"{"format":"csv","rows":10}"#;
        let s = host
            .request()
            .method("POST")
            .authority(HOST)
            .path("/v1/exports")
            .header(IDENTITY_HEADER, AGENT)
            .header(name, values[0])
            .header(name, values[1])
            .body(body)
            .send()
            .unwrap();
        assert_refused_before_policy(&host, &s, "airlock.malformed-request", &format!("{name}: {values:?}"));
        let s = host
            .request()
            .method("GET")
            .authority(HOST)
            .path("/v1/reports")
            .header(IDENTITY_HEADER, AGENT)
            .header(name, values[0])
            .header(name, values[1])
            .send()
            .unwrap();
        assert_blocked(&host, &s);
    }
    for bad_length in ["abc", "-1", "1e3", "18446744073709551616"] {
        let s = host
            .request()
            .method("POST")
            .authority(HOST)
            .path("/v1/exports")
            .header(IDENTITY_HEADER, AGENT)
            .header("content-type", "application/json")
            .header("content-length", bad_length)
            .body("{}")
            .send()
            .unwrap();
        assert_refused_before_policy(&host, &s, "airlock.malformed-request", bad_length);
    }
    for method in ["get", "G ET", "GET,DELETE", ""] {
        let s = host
            .request()
            .method(method)
            .authority(HOST)
            .path("/v1/reports")
            .header(IDENTITY_HEADER, AGENT)
            .send()
            .unwrap();
        assert_refused_before_policy(&host, &s, "airlock.malformed-request", method);
    }
    // Two :method values: never the allowed one alone.
    let s = host
        .request()
        .method("GET")
        .method("DELETE")
        .authority(HOST)
        .path("/v1/reports")
        .header(IDENTITY_HEADER, AGENT)
        .send()
        .unwrap();
    assert_blocked(&host, &s);
    // Two :path values, one ambiguous.
    let s = host
        .request()
        .method("GET")
        .authority(HOST)
        .path("/v1/reports")
        .path("/v1/reports%2f..%2fadmin")
        .header(IDENTITY_HEADER, AGENT)
        .send()
        .unwrap();
    assert_blocked(&host, &s);
}

#[test]
fn non_utf8_header_values_never_crash_the_vm() {
    let mut host = host();
    let allowed = [
        ("x-note", &b"caf\xe9"[..]),
        ("user-agent", b"bot/\xff\xfe"),
        ("authorization", b"Bearer \xc3\x28"),
        ("cookie", b"s=\x80"),
        ("x-request-id", b"id-\xff"),
    ];
    for (name, value) in allowed {
        let s = host
            .request()
            .method("GET")
            .authority(HOST)
            .path("/v1/reports")
            .header(IDENTITY_HEADER, AGENT)
            .header_bytes(name, value)
            .send()
            .unwrap();
        assert!(!host.is_failed(), "{name}: {:?}", host.failure());
        // Not security-relevant here: the allowed call goes on, bytes untouched.
        assert_reached_upstream(&host, &s);
        let up = s.upstream_headers().unwrap();
        assert_eq!(up.values(name), vec![value], "{name}");
    }
    let refused = [
        (IDENTITY_HEADER, &b"spiffe://corp/agent/\xe9"[..]),
        ("content-type", b"application/json\xff"),
        (":authority", b"api.example.com\xff"),
        (":method", b"G\xc9T"),
        (":path", b"/v1/reports/\xc0\xaf"),
        (":path", b"/v1/reports/\xff"),
    ];
    for (name, value) in refused {
        let mut headers: Vec<(&str, &[u8])> = vec![
            (":method", b"GET"),
            (":scheme", b"https"),
            (":authority", HOST.as_bytes()),
            (":path", b"/v1/reports"),
            (IDENTITY_HEADER, AGENT.as_bytes()),
        ];
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => headers.push((name, value)),
        }
        let mut req = host.request().raw();
        for (n, v) in headers {
            req = req.header_bytes(n, v);
        }
        let s = req.send().unwrap();
        assert!(!host.is_failed(), "{name}: {:?}", host.failure());
        assert!(!matches!(s.outcome(), Outcome::Failed { .. }), "{name}");
        assert_blocked(&host, &s);
    }
    // On an approve route: the call goes to the service with the value made visible,
    // and the credential header's bytes go nowhere.
    let s = host
        .request()
        .method("POST")
        .authority(HOST)
        .path("/v1/exports")
        .header(IDENTITY_HEADER, AGENT)
        .header_bytes("x-note", b"caf\xe9")
        .header_bytes("authorization", b"Bearer SECRET1\xff")
        .header_bytes("x-airlock-approval", b"apr_\xff")
        .json(&export_body())
        .send()
        .unwrap();
    assert!(!host.is_failed(), "{:?}", host.failure());
    if s.is_paused() {
        let call = create_call_for(&host, &s);
        assert!(!call.body_text().contains("SECRET1"), "{}", call.body_text());
        respond(&mut host, &call, 200, &json!({"approval_id": "apr_x", "status": "mismatch"}));
    }
    assert_blocked(&host, &s);
    // The VM still serves.
    let ok = send_get(&mut host, HOST, "/v1/reports");
    assert_reached_upstream(&host, &ok);
    assert!(!host.is_failed());
}

// ----- bodies -----

/// A JSON export body of exactly `len` bytes.
fn export_of_len(len: usize) -> String {
    let head = r#"{"format":"csv","customer":{"ssn":"1"},"pad":""#;
    let tail = r#""}"#;
    let body = format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()));
    assert_eq!(body.len(), len);
    body
}

#[test]
fn an_oversized_body_on_an_approve_route_is_413_and_never_reaches_the_service() {
    let mut host = host();
    let body = export_of_len(MAX_BODY + 200);
    assert!(body.len() > MAX_BODY);
    let check = |host: &Host, s: &Stream, what: &str| {
        let problem = assert_problem(host, s, 413, "denied");
        assert_eq!(problem["rule"], "pii-export", "{what}: {problem}");
        assert!(approval_calls(host).is_empty(), "{what}: a callout with a truncated body");
        assert!(s.upstream_body().is_empty(), "{what}");
    };

    // Declared too large: refused before a byte is buffered.
    let s = host
        .request()
        .method("POST")
        .authority(HOST)
        .path("/v1/exports")
        .header(IDENTITY_HEADER, AGENT)
        .header("content-type", "application/json")
        .body(&body)
        .send()
        .unwrap();
    check(&host, &s, "content-length");

    // Chunked, no length: refused once the buffer outgrows the cap.
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(300).collect();
    let s = host
        .request()
        .method("POST")
        .authority(HOST)
        .path("/v1/exports")
        .header(IDENTITY_HEADER, AGENT)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body_chunks(chunks.clone())
        .send()
        .unwrap();
    check(&host, &s, "chunked");

    // Many one-byte-over chunks.
    let tiny: Vec<&[u8]> = body.as_bytes().chunks(7).collect();
    let s = host
        .request()
        .method("PUT")
        .authority(HOST)
        .path("/v1/exports")
        .header(IDENTITY_HEADER, AGENT)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body_chunks(tiny)
        .send()
        .unwrap();
    check(&host, &s, "tiny chunks");

    // A small declared length does not buy a larger body past the cap.
    let s = host
        .request()
        .method("POST")
        .authority(HOST)
        .path("/v1/exports")
        .header(IDENTITY_HEADER, AGENT)
        .header("content-type", "application/json")
        .header("content-length", "10")
        .body_chunks(chunks)
        .send()
        .unwrap();
    check(&host, &s, "understated length");

    // Control: exactly at the cap, the whole body is digested and sent for approval.
    let fit = export_of_len(MAX_BODY);
    let s = host
        .request()
        .method("POST")
        .authority(HOST)
        .path("/v1/exports")
        .header(IDENTITY_HEADER, AGENT)
        .header("content-type", "application/json")
        .body_chunks(fit.as_bytes().chunks(100))
        .send()
        .unwrap();
    let sent = create_call_for(&host, &s).json().unwrap();
    assert_eq!(sent["request"]["body_size"], MAX_BODY);
    assert_eq!(sent["request"]["body_sha256"], sha256_hex(fit.as_bytes()).as_str());
}

// ----- one approval, one action -----

#[test]
fn a_changed_action_gets_a_different_digest() {
    let mut host = host();
    let base_body = export_body().to_string();
    let other_body = json!({"format": "csv", "customer": {"name": "Ada Lovelace", "ssn": "123-45-6780"}}).to_string();
    let spaced_body = base_body.replace(':', ": ");
    struct Variant<'a> {
        what: &'a str,
        method: &'a str,
        authority: &'a str,
        path: &'a str,
        content_type: &'a str,
        body: &'a str,
        expected: DigestInput<'a>,
    }
    let ct = "application/json";
    let variants = vec![
        Variant {
            what: "base",
            method: "POST",
            authority: HOST,
            path: "/v1/exports?format=csv",
            content_type: ct,
            body: &base_body,
            expected: DigestInput::export(base_body.as_bytes()),
        },
        Variant {
            what: "body",
            method: "POST",
            authority: HOST,
            path: "/v1/exports?format=csv",
            content_type: ct,
            body: &other_body,
            expected: DigestInput::export(other_body.as_bytes()),
        },
        Variant {
            what: "same JSON, other bytes",
            method: "POST",
            authority: HOST,
            path: "/v1/exports?format=csv",
            content_type: ct,
            body: &spaced_body,
            expected: DigestInput::export(spaced_body.as_bytes()),
        },
        Variant {
            what: "method",
            method: "PUT",
            authority: HOST,
            path: "/v1/exports?format=csv",
            content_type: ct,
            body: &base_body,
            expected: DigestInput { method: "PUT", ..DigestInput::export(base_body.as_bytes()) },
        },
        Variant {
            what: "path",
            method: "POST",
            authority: HOST,
            path: "/v1/exports/all?format=csv",
            content_type: ct,
            body: &base_body,
            expected: DigestInput { path: "/v1/exports/all", ..DigestInput::export(base_body.as_bytes()) },
        },
        Variant {
            what: "query value",
            method: "POST",
            authority: HOST,
            path: "/v1/exports?format=json",
            content_type: ct,
            body: &base_body,
            expected: DigestInput { query: vec![("format", "json")], ..DigestInput::export(base_body.as_bytes()) },
        },
        Variant {
            what: "extra query parameter",
            method: "POST",
            authority: HOST,
            path: "/v1/exports?format=csv&all=true",
            content_type: ct,
            body: &base_body,
            expected: DigestInput {
                query: vec![("format", "csv"), ("all", "true")],
                ..DigestInput::export(base_body.as_bytes())
            },
        },
        Variant {
            what: "no query",
            method: "POST",
            authority: HOST,
            path: "/v1/exports",
            content_type: ct,
            body: &base_body,
            expected: DigestInput { query: vec![], ..DigestInput::export(base_body.as_bytes()) },
        },
        Variant {
            what: "host",
            method: "POST",
            authority: "api2.example.com",
            path: "/v1/exports?format=csv",
            content_type: ct,
            body: &base_body,
            expected: DigestInput { host: "api2.example.com", ..DigestInput::export(base_body.as_bytes()) },
        },
        Variant {
            what: "port",
            method: "POST",
            authority: "api.example.com:8443",
            path: "/v1/exports?format=csv",
            content_type: ct,
            body: &base_body,
            expected: DigestInput { port: 8443, ..DigestInput::export(base_body.as_bytes()) },
        },
        Variant {
            what: "significant header",
            method: "POST",
            authority: HOST,
            path: "/v1/exports?format=csv",
            content_type: "application/json; charset=utf-8",
            body: &base_body,
            expected: DigestInput {
                significant: vec![("content-type", Some("application/json; charset=utf-8"))],
                ..DigestInput::export(base_body.as_bytes())
            },
        },
    ];
    let mut seen = BTreeSet::new();
    for v in &variants {
        let s = host
            .request()
            .method(v.method)
            .authority(v.authority)
            .path(v.path)
            .header(IDENTITY_HEADER, AGENT)
            .header("content-type", v.content_type)
            .body(v.body)
            .send()
            .unwrap();
        let digest = sent_digest(&host, &s);
        assert_eq!(digest, v.expected.digest(), "{}: digest per docs/digest.md", v.what);
        assert!(seen.insert(digest), "{}: same digest as another variant", v.what);
    }
}

#[test]
fn query_order_and_encoding_do_not_change_the_digest() {
    let mut host = host();
    let body = export_body();
    let same = [
        "/v1/exports?format=csv&limit=10",
        "/v1/exports?limit=10&format=csv",
        "/v1/exports?format=%63sv&limit=%31%30",
        "/v1/exports?%66ormat=csv&limit=10",
    ];
    let digests: BTreeSet<String> = same
        .iter()
        .map(|p| {
            let s = export_to(&mut host, HOST, p, &body);
            sent_digest(&host, &s)
        })
        .collect();
    assert_eq!(digests.len(), 1, "{digests:?}");
    let expected = DigestInput {
        query: vec![("format", "csv"), ("limit", "10")],
        ..DigestInput::export(body.to_string().as_bytes())
    }
    .digest();
    assert!(digests.contains(&expected));
    // Repeated parameters: order-free, but their values count.
    let a = export_to(&mut host, HOST, "/v1/exports?id=1&id=2", &body);
    let b = export_to(&mut host, HOST, "/v1/exports?id=2&id=1", &body);
    let c = export_to(&mut host, HOST, "/v1/exports?id=1,2", &body);
    let d = export_to(&mut host, HOST, "/v1/exports?id=1", &body);
    assert_eq!(sent_digest(&host, &a), sent_digest(&host, &b));
    assert_ne!(sent_digest(&host, &a), sent_digest(&host, &c));
    assert_ne!(sent_digest(&host, &a), sent_digest(&host, &d));
}

/// Body A is approved and redeemed; then B (another body, method, path, query or host)
/// names A's approval. The create call carries A's id and B's own digest, so the
/// service cannot match them, answers `mismatch`, and B is denied.
#[test]
fn an_approval_for_one_action_is_refused_for_another() {
    let mut host = host();
    let a = send_export(&mut host, &export_body(), &[]);
    let create_a = create_call_for(&host, &a);
    let digest_a = create_a.json().unwrap()["digest"].as_str().unwrap().to_string();
    respond(&mut host, &create_a, 200, &json!({"approval_id": "apr_A", "status": "approved"}));
    let redeem = the_pending(&host, &redeem_path("apr_A"));
    respond(
        &mut host,
        &redeem,
        200,
        &json!({"approval_id": "apr_A", "status": "redeemed", "headers": {"authorization": "Bearer for-A"}}),
    );
    assert_reached_upstream(&host, &a);

    let other_body = json!({"format": "csv", "customer": {"name": "Grace Hopper", "ssn": "987-65-4321"}});
    let replays: [(&str, &str, &str, &str, Value); 5] = [
        ("body", "POST", HOST, "/v1/exports?format=csv", other_body),
        ("path", "POST", HOST, "/v1/exports/all?format=csv", export_body()),
        ("query", "POST", HOST, "/v1/exports?format=parquet", export_body()),
        ("host", "POST", "api2.example.com", "/v1/exports?format=csv", export_body()),
        ("method", "PUT", HOST, "/v1/exports?format=csv", export_body()),
    ];
    for (what, method, authority, path, body) in replays {
        let before = approval_calls(&host).len();
        let s = host
            .request()
            .method(method)
            .scheme("https")
            .authority(authority)
            .path(path)
            .header(IDENTITY_HEADER, AGENT)
            .header("x-airlock-approval", "apr_A")
            .header("authorization", AGENT_AUTHORIZATION)
            .json(&body)
            .send()
            .unwrap();
        let create = create_call_for(&host, &s);
        let sent = create.json().unwrap();
        assert_eq!(sent["approval_id"], "apr_A", "{what}: the named approval is passed on");
        assert_ne!(sent["digest"], digest_a.as_str(), "{what}: must not match A's digest");
        assert_eq!(sent["agent"]["id"], AGENT);
        respond(&mut host, &create, 200, &json!({"approval_id": "apr_A", "status": "mismatch"}));
        let problem = assert_problem(&host, &s, 403, "denied");
        assert_eq!(problem["approval_id"], "apr_A", "{what}");
        assert_eq!(approval_calls(&host).len(), before + 1, "{what}: no redeem after a mismatch");
    }
    assert_eq!(metric(&host, "airlock.credentials.injected"), 1);
}

/// The same action replayed after its approval was consumed: the digest matches, so
/// the service finds the approval, and refuses the redeem.
#[test]
fn a_consumed_approval_is_not_redeemed_twice() {
    let mut host = host();
    let first = send_export(&mut host, &export_body(), &[]);
    let create = create_call_for(&host, &first);
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_once", "status": "approved"}));
    let redeem = the_pending(&host, &redeem_path("apr_once"));
    respond(&mut host, &redeem, 200, &json!({"status": "redeemed", "headers": {"authorization": "Bearer once"}}));
    assert_reached_upstream(&host, &first);

    let replay = send_export(&mut host, &export_body(), &[("x-airlock-approval", "apr_once")]);
    let create = create_call_for(&host, &replay);
    assert_eq!(create.json().unwrap()["digest"], create_call_digest_of(&host, &first));
    respond(&mut host, &create, 200, &json!({"approval_id": "apr_once", "status": "approved"}));
    let redeem = the_pending(&host, &redeem_path("apr_once"));
    respond(&mut host, &redeem, 409, &json!({"status": "consumed"}));
    assert_problem(&host, &replay, 403, "denied");
}

fn create_call_digest_of(host: &Host, stream: &Stream) -> Value {
    let call = calls_to(host, APPROVALS).into_iter().find(|c| c.context_id == stream.id()).unwrap();
    call.json().unwrap()["digest"].clone()
}

#[test]
fn the_agent_cannot_smuggle_airlock_or_signature_headers_to_the_service() {
    let mut host = host();
    let s = send_export(
        &mut host,
        &export_body(),
        &[("x-airlock-signature", "v1=forged"), ("x-airlock-key-id", "k9"), ("x-airlock-timestamp", "1")],
    );
    let call = create_call_for(&host, &s);
    assert_signed_by_filter(&host, &call);
    assert_eq!(call.headers.values("x-airlock-signature").len(), 1);
    assert_eq!(call.headers.values("x-airlock-key-id").len(), 1);
}
