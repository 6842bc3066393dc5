//! The benchmark Envoy's listeners and how one Envoy is started and waited for.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};

use crate::bench::proc::{cpu_time, pinned, wait_until, Proc};
use crate::e2e::client::Request;
use crate::e2e::envoy::envoy_binary;

/// The cluster of the ext_authz listener's authorization server.
pub const AUTHZ_CLUSTER: &str = "authz";

/// The callbacks every floor module answers at once (proxy-wasm ABI 0.2.1): the VM and
/// context lifecycle, response headers, the end of a stream. Each module adds its own
/// memory, imports and request callbacks.
macro_rules! floor_lifecycle {
    () => {
        r#"
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 65536))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))"#
    };
}

/// Request headers: Continue only at the end of the stream, else StopIteration (wait for
/// the body), as Airlock does.
macro_rules! floor_waits_for_the_body {
    () => {
        r#"
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (select (i32.const 0) (i32.const 1) (local.get 2)))"#
    };
}

/// An empty proxy-wasm filter: every callback answers at once, `on_request_headers`
/// returns Continue. What Envoy charges for having a Wasm filter at all. It exports no
/// body callback, so with a POST body Envoy does not enter the VM per chunk: the floor of
/// the approve-route rows is the cost of a Wasm filter that never looks at the body.
pub const FLOOR_WAT: &str = concat!(
    r#"
(module
  (memory (export "memory") 64)"#,
    floor_lifecycle!(),
    r#"
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0)))
"#
);

/// The floor of the approve-route rows: the empty filter that waits for the whole body
/// before it lets the request go (headers: Continue only at end of stream, else
/// StopIteration; body: StopIterationAndBuffer until end of stream), as Airlock does. The
/// plain floor lets `direct_response` answer at the headers, before the body is read, and
/// Envoy then closes the HTTP/1 connection (measured: one request per connection), so its
/// CPU per request would include a connection setup that Airlock's rows do not pay.
pub const FLOOR_BODY_WAT: &str = concat!(
    r#"
(module
  (memory (export "memory") 64)"#,
    floor_lifecycle!(),
    floor_waits_for_the_body!(),
    r#"
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (select (i32.const 0) (i32.const 1) (local.get 2))))
"#
);

/// The floor of finding an approval through a service, for the approve-route rows: the
/// body floor's filter ([`FLOOR_BODY_WAT`]) that, once the body is in, makes one
/// `dispatch_http_call` to `cluster` (a POST of a `call_body_len`-byte body, the size of
/// Airlock's find call) and answers the request with a local 403 when the answer comes.
/// No hashing, parsing, policy or signing: what Envoy and V8 charge any proxy-wasm design
/// that asks a service per request and answers locally.
pub fn floor_callout_wat(cluster: &str, call_body_len: usize) -> String {
    let headers = header_map(&[
        (":method", "POST"),
        (":path", "/authz/find"),
        (":authority", "floor"),
        ("content-type", "application/json"),
    ]);
    let reply = br#"{"type":"urn:airlock:problem:approval-pending","status":403}"#;
    format!(
        r#"
(module
  (import "env" "proxy_http_call"
    (func $dispatch (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 64)
  ;; 1024: the cluster; 2048: the call's headers; 4096: its body; 12288: the reply; 16000:
  ;; an empty header map; 16004: the call's token; 16384: the stream of each token.
  (data (i32.const 1024) "{cluster}")
  (data (i32.const 2048) "{headers}")
  (data (i32.const 4096) "{body}")
  (data (i32.const 12288) "{reply}"){lifecycle}{headers_wait}
  (func (export "proxy_on_request_body") (param $ctx i32) (param i32) (param $end i32) (result i32)
    (if (i32.eqz (local.get $end)) (then (return (i32.const 1))))
    (if (call $dispatch (i32.const 1024) (i32.const {cluster_len}) (i32.const 2048) (i32.const {headers_len})
          (i32.const 4096) (i32.const {body_len}) (i32.const 0) (i32.const 0) (i32.const 2000) (i32.const 16004))
      (then (unreachable)))
    (i32.store (i32.add (i32.const 16384) (i32.shl (i32.and (i32.load (i32.const 16004)) (i32.const 1023)) (i32.const 2)))
      (local.get $ctx))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32) (param $token i32) (param i32 i32 i32)
    (drop (call $effective
      (i32.load (i32.add (i32.const 16384) (i32.shl (i32.and (local.get $token) (i32.const 1023)) (i32.const 2))))))
    (drop (call $reply (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 12288) (i32.const {reply_len})
      (i32.const 16000) (i32.const 4) (i32.const -1)))))
"#,
        lifecycle = floor_lifecycle!(),
        headers_wait = floor_waits_for_the_body!(),
        cluster = wat_string(cluster.as_bytes()),
        cluster_len = cluster.len(),
        headers = wat_string(&headers),
        headers_len = headers.len(),
        body = wat_string(&vec![b'x'; call_body_len.min(8192)]),
        body_len = call_body_len.min(8192),
        reply = wat_string(reply),
        reply_len = reply.len(),
    )
}

/// proxy-wasm's serialized header map: the pair count, each pair's key and value
/// lengths, then each key and value NUL-terminated (all integers little-endian u32).
fn header_map(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        for part in [k, v] {
            out.extend_from_slice(part.as_bytes());
            out.push(0);
        }
    }
    out
}

/// Bytes as a WAT string literal's contents (every byte escaped).
fn wat_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Filter {
    None,
    Floor,
    /// [`FLOOR_BODY_WAT`], direct_response only, used by the approve-route body runs.
    FloorBody,
    /// [`floor_callout_wat`], direct_response only, used by the approve-route body runs.
    FloorCallout,
    Airlock,
    /// The same module and config with `decision_cache.max_entries: 0` (its own VM),
    /// direct_response only: every request evaluates the policy.
    Eval,
    /// Every request evaluated against the generated 9× library (`library9`), its own VM,
    /// direct_response only: how the evaluation cost grows with the bundle.
    Eval9,
    /// Envoy's ext_authz HTTP filter asking nginx (`return 200`) on every request,
    /// direct_response only: the floor of any sidecar/authorization-server design.
    ExtAuthz,
    /// The same filter and config from another module file (`AIRLOCK_BENCH_ALT_WASM`,
    /// e.g. a `wasm-opt` build), direct_response only: compares builds in one run.
    Alt,
}

impl Filter {
    pub fn label(self) -> &'static str {
        match self {
            Filter::None => "no filter",
            Filter::Floor => "empty wasm (floor)",
            Filter::FloorBody => "empty wasm, waits for the body (floor)",
            Filter::FloorCallout => "the same + one callout, local 403",
            Filter::Airlock => "airlock (library)",
            Filter::Eval => "airlock, every request evaluated",
            Filter::Eval9 => "airlock 9× library, every req. eval.",
            Filter::ExtAuthz => "ext_authz → nginx (no wasm)",
            Filter::Alt => "airlock, alt module",
        }
    }

    /// The listener name's part (also the Wasm VM id where there is one).
    pub fn slug(self) -> &'static str {
        match self {
            Filter::None => "none",
            Filter::Floor => "floor",
            Filter::FloorBody => "floorbody",
            Filter::FloorCallout => "floorcall",
            Filter::Airlock => "airlock",
            Filter::Eval => "eval",
            Filter::Eval9 => "eval9",
            Filter::ExtAuthz => "extauthz",
            Filter::Alt => "alt",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Upstream {
    Direct,
    Nginx,
}

impl Upstream {
    pub fn label(self) -> &'static str {
        match self {
            Upstream::Direct => "direct_response",
            Upstream::Nginx => "nginx",
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Upstream::Direct => "direct",
            Upstream::Nginx => "nginx",
        }
    }
}

/// What the listeners' filters load: module files and (YAML-quoted) plugin configs.
pub struct FilterSetup<'a> {
    pub floor: &'a Path,
    pub floor_body: &'a Path,
    pub floor_callout: &'a Path,
    pub wasm: &'a Path,
    pub alt: &'a Path,
    /// The library, decision cache on.
    pub library: &'a str,
    /// The library, decision cache off.
    pub eval: &'a str,
    /// The 9× library, decision cache off.
    pub eval9: &'a str,
    /// The alt listener's config (`library` or `eval`, per `AIRLOCK_BENCH_ALT_NO_CACHE`).
    pub alt_config: &'a str,
}

fn wasm_filter_yaml(vm: &str, code: &Path, config: &str) -> String {
    format!(
        r#"
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {vm}
                root_id: {vm}
                failure_policy: FAIL_RELOAD
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: {vm}
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: "{}"}}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {config}"#,
        code.display()
    )
}

/// ext_authz over HTTP to the authorizer cluster, refusing when it cannot be asked (as
/// Airlock's FAIL_RELOAD refuses), and forwarding the headers Airlock's policy input
/// reads (the agent, content-type, user-agent) so both designs get the same facts.
fn ext_authz_yaml() -> String {
    format!(
        r#"
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: false
              allowed_headers:
                patterns: [{{exact: x-airlock-agent}}, {{exact: content-type}}, {{exact: user-agent}}]
              http_service:
                server_uri: {{uri: "http://127.0.0.1", cluster: {AUTHZ_CLUSTER}, timeout: 2s}}
                path_prefix: /authz"#
    )
}

/// The HTTP filters (before the router) of a listener with `filter`.
pub fn filter_yaml(filter: Filter, s: &FilterSetup) -> String {
    match filter {
        Filter::None => String::new(),
        Filter::Floor => wasm_filter_yaml("floor", s.floor, "\"\""),
        Filter::FloorBody => wasm_filter_yaml("floor_body", s.floor_body, "\"\""),
        Filter::FloorCallout => wasm_filter_yaml("floor_callout", s.floor_callout, "\"\""),
        Filter::Airlock => wasm_filter_yaml("airlock", s.wasm, s.library),
        Filter::Eval => wasm_filter_yaml("airlock_eval", s.wasm, s.eval),
        Filter::Eval9 => wasm_filter_yaml("airlock_eval9", s.wasm, s.eval9),
        Filter::ExtAuthz => ext_authz_yaml(),
        Filter::Alt => wasm_filter_yaml("airlock_alt", s.alt, s.alt_config),
    }
}

/// One listener: the demo gateway's connection-manager settings, no access log, the
/// given HTTP filters, and a `direct_response` or nginx route.
pub fn listener_yaml(name: &str, filters: &str, upstream: Upstream) -> String {
    let route = match upstream {
        Upstream::Direct => r#"direct_response: {status: 200, body: {inline_string: "ok\n"}}"#.to_string(),
        Upstream::Nginx => "route: {cluster: nginx, timeout: 30s}".to_string(),
    };
    format!(
        r#"
  - name: {name}
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          codec_type: AUTO
          use_remote_address: true
          internal_address_config: {{cidr_ranges: [{{address_prefix: 127.0.0.1, prefix_len: 32}}]}}
          request_timeout: 120s
          normalize_path: true
          merge_slashes: true
          path_with_escaped_slashes_action: KEEP_UNCHANGED
          strip_trailing_host_dot: true
          common_http_protocol_options: {{headers_with_underscores_action: REJECT_REQUEST}}
          route_config:
            name: {name}
            internal_only_headers: [x-airlock-agent]
            virtual_hosts:
            - name: all
              domains: ["*"]
              request_headers_to_remove: [x-airlock-agent, x-airlock-approval]
              routes:
              - match: {{prefix: "/"}}
                {route}
          http_filters:{filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#
    )
}

pub fn cluster_yaml(name: &str, port: u16) -> String {
    format!(
        r#"
  - name: {name}
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: {name}
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]
"#
    )
}

/// Background release of tcmalloc's free memory, as the shipped configurations set it
/// (`approval-svc/src/cli/init/envoy.yaml`): the memory rows measure what a deployment gets.
const ALLOCATOR_RELEASE: &str = "memory_allocator_manager: {bytes_to_release: 16777216, memory_release_interval: 1s}\n";

/// A whole Envoy configuration: an admin on a free port, the listeners, the clusters, and
/// the allocator release of the shipped configurations.
pub fn envoy_yaml(listeners: &str, clusters: &str) -> String {
    format!(
        "admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}}}\n{ALLOCATOR_RELEASE}static_resources:\n  listeners:{listeners}  clusters:{clusters}"
    )
}

pub struct Envoy {
    pub proc: Proc,
    pub admin: SocketAddr,
    /// Process start → `/ready` LIVE.
    pub ready_after: Duration,
    /// User + system CPU of the Envoy process (all threads) until it was seen ready;
    /// includes the PyPI wrapper's Python start, which `exec`s Envoy in the same process.
    pub ready_cpu: Duration,
}

/// Starts Envoy with `workers` worker threads (`--concurrency`) on the CPUs `cpus_list`
/// (taskset syntax) and waits until `/ready` answers LIVE.
pub fn start_envoy(dir: &Path, config: &str, cpus_list: &str, workers: u32) -> anyhow::Result<Envoy> {
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, config)?;
    let admin_path = dir.join("envoy.admin");
    let mut cmd = pinned(cpus_list, &envoy_binary()?);
    cmd.arg("-c")
        .arg(&path)
        .args(["--concurrency", &workers.to_string(), "--use-dynamic-base-id", "-l", "warning"])
        .arg("--admin-address-path")
        .arg(&admin_path);
    let started = Instant::now();
    let mut proc = Proc::spawn(&mut cmd, &dir.join("envoy.log"))?;
    let mut admin = None;
    let ready = wait_until("Envoy /ready LIVE", Duration::from_secs(60), || {
        if matches!(proc.child.try_wait(), Ok(Some(_))) {
            return true;
        }
        if admin.is_none() {
            admin = std::fs::read_to_string(&admin_path).ok().and_then(|t| t.trim().parse::<SocketAddr>().ok());
        }
        admin.is_some_and(|a| {
            Request::get("/ready")
                .timeout(Duration::from_secs(2))
                .send(a)
                .is_ok_and(|r| r.status == 200 && r.text().trim() == "LIVE")
        })
    });
    let ready_after = started.elapsed();
    let ready_cpu = cpu_time(proc.pid());
    if ready.is_err() || matches!(proc.child.try_wait(), Ok(Some(_))) {
        let log = std::fs::read_to_string(dir.join("envoy.log")).unwrap_or_default();
        bail!("Envoy did not become ready:\n{log}");
    }
    let admin = admin.ok_or_else(|| anyhow!("no admin address"))?;
    Ok(Envoy { proc, admin, ready_after, ready_cpu: ready_cpu? })
}

pub fn listener_addr(admin: SocketAddr, name: &str) -> anyhow::Result<SocketAddr> {
    let text = Request::get("/listeners?format=json").send(admin)?.text();
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    for s in doc["listener_statuses"].as_array().into_iter().flatten() {
        if s["name"] == name {
            let port = s.pointer("/local_address/socket_address/port_value").and_then(|p| p.as_u64());
            return Ok(SocketAddr::from(([127, 0, 0, 1], u16::try_from(port.unwrap_or(0))?)));
        }
    }
    bail!("no listener {name}")
}

/// Connections a listener has accepted so far (`http.<name>.downstream_cx_total`; the
/// listeners' stat prefix is their name). A closed-loop run that reuses its connections
/// adds wrk's 8; more means Envoy closed them (e.g. answering before a body was read) and
/// the run's CPU includes connection setup.
pub fn downstream_connections(admin: SocketAddr, listener: &str) -> anyhow::Result<u64> {
    counter(admin, &format!("http.{listener}.downstream_cx_total"))
}

/// An upstream cluster's (connections, requests) so far.
pub fn upstream_use(admin: SocketAddr, cluster: &str) -> anyhow::Result<(u64, u64)> {
    Ok((
        counter(admin, &format!("cluster.{cluster}.upstream_cx_total"))?,
        counter(admin, &format!("cluster.{cluster}.upstream_rq_total"))?,
    ))
}

/// One counter of Envoy's stats.
pub fn counter(admin: SocketAddr, name: &str) -> anyhow::Result<u64> {
    let text = Request::get(&format!("/stats?filter=^{}$", name.replace('.', "\\."))).send(admin)?.text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("no {name} in Envoy's stats"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_floor_modules_are_valid_wasm() {
        for wat in
            [super::FLOOR_WAT.to_string(), super::FLOOR_BODY_WAT.to_string(), super::floor_callout_wat("authz", 732)]
        {
            wat::parse_str(&wat).unwrap();
        }
    }
}
