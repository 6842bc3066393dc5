//! The harness itself, against a tiny hand-written proxy-wasm module (no filter build
//! needed): memory allocation and out-params, the map encoding both ways, callouts,
//! local replies, resume, ticks, metrics, traps and unknown imports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use airlock_tests::host::{
    CalloutFailure, Host, HostOptions, LogLevel, LogSource, Outcome, RepeatedHeaderGet, WasmSource,
};

/// A guest written against ABI 0.2.1:
/// - `on_configure` refuses a configuration starting with `n` (logging "bad config" at
///   error), otherwise defines counter `requests` and a 1 s tick.
/// - `on_request_headers`: no `x-test` header → local reply 403 "denied";
///   `x-test: trap` → `unreachable`; `x-test: pause` → callout to cluster `svc` whose
///   body is the request header map as the guest received it, then `Pause`; anything
///   else → adds `x-added: yes`, counts, `Continue`.
/// - `on_http_call_response`: `:status` 200 → resume; otherwise local reply 503.
/// - `on_tick` counts too; `on_vm_start` writes "hello\n" to stdout.
const GUEST: &str = r#"
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_ctx (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 65536))
  (data (i32.const 1024) "x-test")
  (data (i32.const 1040) "denied")
  (data (i32.const 1056) "pause")
  (data (i32.const 1072) "trap")
  (data (i32.const 1088) "svc")
  (data (i32.const 1104) ":status")
  (data (i32.const 1120) "200")
  (data (i32.const 1136) "bad config")
  (data (i32.const 1152) "x-added")
  (data (i32.const 1168) "yes")
  (data (i32.const 1184) "requests")
  (data (i32.const 1200) "\03\00\00\00\07\00\00\00\04\00\00\00\05\00\00\00\06\00\00\00\0a\00\00\00\03\00\00\00:method\00POST\00:path\00/check\00:authority\00svc\00")
  (data (i32.const 1300) "\01\00\00\00\0c\00\00\00\0a\00\00\00content-type\00text/plain\00")
  (data (i32.const 1400) "hello\n")

  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $p))
  (func $eq (param $a i32) (param $al i32) (param $b i32) (param $bl i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $al) (local.get $bl)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $al)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (i32.store (i32.const 48) (i32.const 1400))
    (i32.store (i32.const 52) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 48) (i32.const 1) (i32.const 56)))
    (i32.const 1))
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (drop (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size) (i32.const 16) (i32.const 20)))
    (if (i32.eq (i32.load8_u (i32.load (i32.const 16))) (i32.const 110))
      (then
        (drop (call $log (i32.const 4) (i32.const 1136) (i32.const 10)))
        (return (i32.const 0))))
    (drop (call $define_metric (i32.const 0) (i32.const 1184) (i32.const 8) (i32.const 28)))
    (drop (call $set_tick (i32.const 1000)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (i32.ne (call $get_header (i32.const 0) (i32.const 1024) (i32.const 6) (i32.const 16) (i32.const 20)) (i32.const 0))
      (then
        (drop (call $reply (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 1040) (i32.const 6)
                           (i32.const 1300) (i32.const 36) (i32.const -1)))
        (return (i32.const 1))))
    (if (call $eq (i32.load (i32.const 16)) (i32.load (i32.const 20)) (i32.const 1072) (i32.const 4))
      (then unreachable))
    (if (call $eq (i32.load (i32.const 16)) (i32.load (i32.const 20)) (i32.const 1056) (i32.const 5))
      (then
        (i32.store (i32.const 32) (local.get $ctx))
        (drop (call $get_pairs (i32.const 0) (i32.const 40) (i32.const 44)))
        (drop (call $http_call (i32.const 1088) (i32.const 3) (i32.const 1200) (i32.const 69)
                               (i32.load (i32.const 40)) (i32.load (i32.const 44))
                               (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 24)))
        (return (i32.const 1))))
    (drop (call $add_header (i32.const 0) (i32.const 1152) (i32.const 7) (i32.const 1168) (i32.const 3)))
    (drop (call $inc (i32.load (i32.const 28)) (i64.const 1)))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_http_call_response") (param $ctx i32) (param $token i32) (param $nh i32) (param $bs i32) (param $nt i32)
    (drop (call $set_ctx (i32.load (i32.const 32))))
    (if (i32.eqz (call $get_header (i32.const 6) (i32.const 1104) (i32.const 7) (i32.const 16) (i32.const 20)))
      (then
        (if (call $eq (i32.load (i32.const 16)) (i32.load (i32.const 20)) (i32.const 1120) (i32.const 3))
          (then
            (drop (call $continue (i32.const 0)))
            (return)))))
    (drop (call $reply (i32.const 503) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                       (i32.const 0) (i32.const 0) (i32.const -1))))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $inc (i32.load (i32.const 28)) (i64.const 1))))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
)
"#;

fn options() -> HostOptions {
    HostOptions { wasm: WasmSource::Bytes(GUEST.as_bytes().to_vec()), ..HostOptions::default() }
}

fn host() -> Host {
    let host = Host::with_options("ok", options()).unwrap();
    assert!(host.configured(), "{}", host.logs_text());
    host
}

/// Decodes the proxy-wasm map format independently of the harness.
fn decode(bytes: &[u8]) -> Vec<(String, String)> {
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let count = word(0);
    let mut data = 4 + count * 8;
    let mut out = Vec::new();
    for n in 0..count {
        let (kl, vl) = (word(4 + n * 8), word(8 + n * 8));
        let key = String::from_utf8(bytes[data..data + kl].to_vec()).unwrap();
        assert_eq!(bytes[data + kl], 0);
        data += kl + 1;
        let value = String::from_utf8(bytes[data..data + vl].to_vec()).unwrap();
        assert_eq!(bytes[data + vl], 0);
        data += vl + 1;
        out.push((key, value));
    }
    assert_eq!(data, bytes.len());
    out
}

#[test]
fn a_refused_configuration_is_reported_with_the_guest_log() {
    let host = Host::with_options("no thanks", options()).unwrap();
    assert!(!host.configured());
    assert!(host.logs().iter().any(|l| l.level == LogLevel::Error && l.message == "bad config"));
    assert!(!host.is_failed());
}

#[test]
fn stdout_goes_to_the_log_at_info() {
    let host = host();
    let hello = host.logs().into_iter().find(|l| l.message == "hello").unwrap();
    assert_eq!(hello.level, LogLevel::Info);
    assert_eq!(hello.source, LogSource::Stdout);
}

#[test]
fn a_local_reply_stops_the_request() {
    let mut host = host();
    let stream = host.request().path("/x").send().unwrap();
    let reply = stream.local_reply().expect("local reply");
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, b"denied");
    assert_eq!(reply.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(reply.grpc_status, -1);
    assert!(!stream.reached_upstream());
    assert!(!stream.upstream_saw_headers());
    host.finish(&stream).unwrap();
}

#[test]
fn continue_forwards_the_modified_headers_and_body() {
    let mut host = host();
    let stream = host.request().header("X-Test", "go").body_chunks(["ab", "cd"]).send().unwrap();
    match stream.outcome() {
        Outcome::Continued { upstream_headers, upstream_body } => {
            assert_eq!(upstream_headers.get("x-added").as_deref(), Some("yes"));
            assert_eq!(upstream_body, b"abcd");
        }
        other => panic!("expected Continued, got {other:?}"),
    }
    assert!(stream.reached_upstream());
    assert_eq!(stream.header("x-test").as_deref(), Some("go"));
    assert_eq!(host.metric("requests"), Some(1));
}

#[test]
fn a_callout_carries_what_the_guest_sent_and_its_answer_resumes_the_request() {
    let mut host = host();
    let stream = host
        .request()
        .method("GET")
        .path("/a?b=c")
        .authority("api.example.com")
        .header("x-test", "pause")
        .send()
        .unwrap();
    assert!(stream.is_paused());
    let callouts = host.pending_callouts();
    assert_eq!(callouts.len(), 1);
    let callout = &callouts[0];
    assert_eq!(callout.cluster, "svc");
    assert_eq!(callout.method().as_deref(), Some("POST"));
    assert_eq!(callout.path().as_deref(), Some("/check"));
    assert_eq!(callout.authority().as_deref(), Some("svc"));
    assert_eq!(callout.timeout, Some(Duration::from_secs(5)));
    assert_eq!(callout.context_id, stream.id());
    // The body is the request header map the guest read with get_header_map_pairs.
    let sent = decode(&callout.body);
    assert_eq!(sent, stream.request_headers().pairs());
    assert!(sent.contains(&(":path".into(), "/a?b=c".into())));
    assert_eq!(callout.header("content-length"), Some(callout.body.len().to_string()));

    host.respond_callout(callout.token, 200, &[("x-y", "z")], "").unwrap();
    assert!(stream.reached_upstream());
    assert!(host.pending_callouts().is_empty());
    assert!(host.respond_callout(callout.token, 200, &[], "").is_err());
}

#[test]
fn callout_errors_and_failures_answer_503() {
    for how in ["status", "reset", "unreachable", "timeout"] {
        let mut host = host();
        let stream = host.request().header("x-test", "pause").send().unwrap();
        let token = host.pending_callouts()[0].token;
        match how {
            "status" => host.respond_callout(token, 500, &[], "oops").unwrap(),
            "reset" => host.fail_callout(token).unwrap(),
            "unreachable" => host.fail_callout_with(token, CalloutFailure::Unreachable).unwrap(),
            _ => host.advance_time(Duration::from_secs(6)).unwrap(),
        }
        assert_eq!(stream.response_status(), Some(503), "{how}");
        assert!(!stream.reached_upstream(), "{how}");
    }
}

#[test]
fn advancing_time_fires_ticks() {
    let mut host = host();
    assert_eq!(host.tick_period(), Some(Duration::from_secs(1)));
    let start = host.now();
    host.advance_time(Duration::from_millis(3500)).unwrap();
    assert_eq!(host.metric("requests"), Some(3));
    assert_eq!(host.now(), start + Duration::from_millis(3500));
    host.tick().unwrap();
    assert_eq!(host.metric("requests"), Some(4));
}

#[test]
fn a_trap_fails_the_vm_closed() {
    let mut host = host();
    let paused = host.request().header("x-test", "pause").send().unwrap();
    let trapped = host.request().header("x-test", "trap").send().unwrap();
    assert!(matches!(trapped.outcome(), Outcome::Failed { .. }));
    assert_eq!(trapped.response_status(), Some(503));
    assert!(!trapped.reached_upstream());
    let trap = host.failure().expect("VM failed").clone();
    assert_eq!(trap.during, "proxy_on_request_headers");
    assert!(trap.message.contains("unreachable"), "{trap}");
    // A request that was waiting can never continue; later ones never reach the guest.
    assert!(matches!(paused.outcome(), Outcome::Failed { .. }));
    let later = host.request().header("x-test", "go").send().unwrap();
    assert!(matches!(later.outcome(), Outcome::Failed { .. }));
    assert!(!later.reached_upstream());
    assert!(host.tick().is_err());
    let token = host.pending_callouts()[0].token;
    assert!(host.respond_callout(token, 200, &[], "").is_err());
    assert!(!paused.reached_upstream());
}

#[test]
fn repeated_headers_read_as_envoy_reads_them() {
    let mut host = host();
    // Envoy's get_header_map_value returns the first value only.
    let stream = host.request().header("x-test", "pause").header("x-test", "go").send().unwrap();
    assert!(stream.is_paused());

    let mut joined =
        Host::with_options("ok", HostOptions { repeated_header_get: RepeatedHeaderGet::JoinedWithComma, ..options() })
            .unwrap();
    let stream = joined.request().header("x-test", "pause").header("x-test", "go").send().unwrap();
    assert!(stream.reached_upstream());
}

#[test]
fn unknown_imports_fail_loading_and_are_named() {
    let module = r#"(module
        (import "env" "proxy_frobnicate" (func (param i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_renumber" (func (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "thread_spawn" (func (param i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
        (func (export "proxy_on_context_create") (param i32 i32)))"#;
    let err = Host::with_options(
        "",
        HostOptions { wasm: WasmSource::Bytes(module.as_bytes().to_vec()), ..HostOptions::default() },
    )
    .err()
    .expect("loading must fail");
    let text = err.to_string();
    assert!(text.contains("env.proxy_frobnicate"), "{text}");
    assert!(text.contains("wasi_snapshot_preview1.thread_spawn"), "{text}");
    // fd_renumber is in Envoy's WASI set: stubbed, not unknown.
    assert!(!text.contains("fd_renumber"), "{text}");
}

#[test]
fn a_module_without_the_abi_marker_is_refused() {
    let module = r#"(module (memory (export "memory") 1))"#;
    let err = Host::with_options(
        "",
        HostOptions { wasm: WasmSource::Bytes(module.as_bytes().to_vec()), ..HostOptions::default() },
    )
    .err()
    .expect("loading must fail");
    assert!(err.to_string().contains("proxy_abi_version_0_2_1"), "{err}");
}
