//! The hot-path benchmark of issue #6: real Envoy (one worker) with listeners side by side
//! — no filter, an empty proxy-wasm filter (the floor), and the Airlock filter with the
//! example policy library (`policies/library`, 18 modules, data mounted by directory) —
//! in front of the same upstreams (Envoy `direct_response`, and nginx from Debian). The
//! library is loaded the way a gateway loads it: built and signed as a bundle with the
//! `airlock` CLI (`airlock bundle build` + `airlock bundle sign`, the binary that also
//! runs the approval service) and passed inline (`policy.bundle.base64` +
//! `policy.bundle_keys`). A second Airlock listener on `direct_response`, "airlock, every
//! request evaluated", has the same configuration with `decision_cache.max_entries: 0`, so
//! every run shows the cache-hit allow path and the evaluate-every-request path of the
//! same module side by side.
//!
//! Prints throughput (wrk, closed loop, A/B alternated), the Envoy CPU spent per request,
//! open-loop latency percentiles at a fixed rate (HDR histograms, measured from each
//! request's intended send time), Envoy's ready time and the CPU it spent until ready
//! (a separate Envoy with one Airlock listener, `--concurrency 1` but NOT pinned: V8
//! compiles the module on background threads, as in a deployment that gives Envoy the
//! machine's cores), the module size, and the approve-required → pending latency against
//! the REAL approval service (each answer checked: 403 `approval-pending`).
//!
//! The allowed request: `GET api.example.com/v1/reports?page=2` by
//! `spiffe://corp/agent/report-bot` (the library's `hosts` module: `known-host-read`).
//! The approve-required request: `POST api.example.com/v1/exports` with a JSON body whose
//! `destination.uri` is external and new each time (the `exports` module: `data-export`,
//! approvers `data-owners`, credential `export-api`).
//!
//! Run it with `bash scripts/bench-envoy.sh` (installs wrk, nginx and Envoy, builds the
//! module and the service, then runs this in release). Method and results:
//! `docs/benchmarks.md`. Options: `--seconds N` (per closed-loop run, default 5),
//! `--rounds N` (default 3), `--rate N` (open-loop requests/s, default 1000).
//! Environment: `AIRLOCK_WASM=<file>` benchmarks that module instead of the shipped one;
//! `AIRLOCK_BIN=<file>` the `airlock` binary (service and bundle CLI);
//! `AIRLOCK_BENCH_ALT_WASM=<file>` adds an "alt module" listener (direct_response) with
//! the same configuration, and `AIRLOCK_BENCH_ALT_NO_CACHE=1` turns the decision cache
//! off on that listener too.
//!
//! Everything listens on 127.0.0.1; every loop is bounded in count and time. This is a
//! benchmark, not a test: nothing here asserts a timing.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlock_tests::e2e::client::{send_raw, Request};
use airlock_tests::e2e::envoy::envoy_binary;
use airlock_tests::e2e::gateway::filter_module;
use airlock_tests::e2e::plugin::{plugin_config, PluginOptions, APPROVAL_CLUSTER, IDENTITY_HEADER};
use airlock_tests::e2e::ports::free_port;
use airlock_tests::e2e::service::{run_bounded, AirlockService, Reviewer, ServiceOptions};
use airlock_tests::wasm::workspace_root;
use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;
use serde_json::json;

const AGENT: &str = "spiffe://corp/agent/report-bot";
const HOST: &str = "api.example.com";
const ALLOW_PATH: &str = "/v1/reports?page=2";
/// The approve-required path (library `exports` module, `data-export`).
const EXPORT_PATH: &str = "/v1/exports";
/// The key the bench signs the library bundle with (`policy.bundle_keys`).
const BUNDLE_KEY_ID: &str = "bench-bundles";
const BUNDLE_KEY: &[u8; 32] = b"airlock-bench-bundle-key-32bytes";
/// CPU the harness keeps for Envoy; wrk, nginx and the generator get the other one.
const ENVOY_CPU: &str = "0";
const LOAD_CPU: &str = "1";

/// An empty proxy-wasm filter: every callback answers at once, `on_request_headers`
/// returns Continue. What Envoy charges for having a Wasm filter at all.
const FLOOR_WAT: &str = r#"
(module
  (memory (export "memory") 64)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 65536))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))
"#;

#[derive(Clone, Copy, PartialEq)]
enum Filter {
    None,
    Floor,
    Airlock,
    /// The same module and config with `decision_cache.max_entries: 0` (its own VM),
    /// direct_response only: every request evaluates the policy.
    Eval,
    /// The same filter and config from another module file (`AIRLOCK_BENCH_ALT_WASM`,
    /// e.g. a `wasm-opt` build), direct_response only: compares builds in one run.
    Alt,
}

impl Filter {
    fn label(self) -> &'static str {
        match self {
            Filter::None => "no filter",
            Filter::Floor => "empty wasm (floor)",
            Filter::Airlock => "airlock (library)",
            Filter::Eval => "airlock, every request evaluated",
            Filter::Alt => "airlock, alt module",
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Upstream {
    Direct,
    Nginx,
}

impl Upstream {
    fn label(self) -> &'static str {
        match self {
            Upstream::Direct => "direct_response",
            Upstream::Nginx => "nginx",
        }
    }
}

struct Listener {
    name: String,
    filter: Filter,
    upstream: Upstream,
    addr: SocketAddr,
}

struct Opts {
    seconds: u64,
    rounds: usize,
    rate: u64,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts { seconds: 5, rounds: 3, rate: 1000 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = |i: usize| -> anyhow::Result<u64> {
            pair.get(i)
                .ok_or_else(|| anyhow!("{} needs a value", pair[0]))?
                .parse()
                .with_context(|| format!("bad value for {}", pair[0]))
        };
        match pair[0].as_str() {
            "--seconds" => o.seconds = value(1)?.clamp(1, 30),
            "--rounds" => o.rounds = usize::try_from(value(1)?.clamp(1, 10))?,
            "--rate" => o.rate = value(1)?.clamp(10, 20_000),
            other => bail!("unknown option {other} (--seconds N, --rounds N, --rate N)"),
        }
    }
    Ok(o)
}

// ---------- processes ----------

/// A child in its own process group, stopped (group SIGTERM, then SIGKILL) on drop.
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: &Path) -> anyhow::Result<Proc> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        Ok(Proc { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).stderr(Stdio::null()).status();
        for _ in 0..150 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

/// CPUs online (not this process's affinity, which the harness narrows).
fn cpus() -> i64 {
    // SAFETY: sysconf has no preconditions.
    i64::from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } as i32)
}

/// `taskset -c <cpus> program`, when taskset exists and the machine has 2+ CPUs.
fn pinned(cpus_list: &str, program: &Path) -> Command {
    if cpus() >= 2 && Path::new("/usr/bin/taskset").exists() {
        let mut c = Command::new("/usr/bin/taskset");
        c.arg("-c").arg(cpus_list).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("{what}: not within {timeout:?}")
}

fn start_nginx(dir: &Path) -> anyhow::Result<(Proc, u16)> {
    let port = free_port()?;
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n\
           client_body_temp_path {d}/nginx-body; proxy_temp_path {d}/nginx-proxy;\n\
           fastcgi_temp_path {d}/nginx-fastcgi; uwsgi_temp_path {d}/nginx-uwsgi; scgi_temp_path {d}/nginx-scgi;\n\
           server {{ listen 127.0.0.1:{port}; location / {{ default_type text/plain; return 200 \"ok\\n\"; }} }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("no nginx; install it with: apt-get install nginx-light"))?;
    let mut cmd = pinned(LOAD_CPU, &nginx);
    cmd.arg("-p").arg(dir).arg("-e").arg(dir.join("nginx-error.log")).arg("-c").arg(&path);
    let proc = Proc::spawn(&mut cmd, &dir.join("nginx.out"))?;
    wait_until("nginx listening", Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", port)).is_ok())?;
    Ok((proc, port))
}

/// The example policy library as a gateway gets it: `airlock bundle build` + `airlock
/// bundle sign` (the service's binary), read back as base64 for `policy.bundle.base64`.
fn library_bundle(airlock: &Path, dir: &Path) -> anyhow::Result<String> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let library = workspace_root().join("policies/library");
    let key_file = dir.join("bundle.key");
    std::fs::write(&key_file, b64(BUNDLE_KEY))?;
    let bundle = dir.join("library.tar.gz");
    let limit = Duration::from_secs(60);
    let mut build = Command::new(airlock);
    build.args(["bundle", "build"]).arg(&library).arg("-o").arg(&bundle).args(["--revision", "bench-library"]);
    run_bounded(build, "airlock bundle build policies/library".into(), limit)?.ok()?;
    let mut sign = Command::new(airlock);
    sign.args(["bundle", "sign"]).arg(&bundle).args(["--key-id", BUNDLE_KEY_ID, "--key-file"]).arg(&key_file);
    run_bounded(sign, "airlock bundle sign library.tar.gz".into(), limit)?.ok()?;
    Ok(b64(&std::fs::read(&bundle)?))
}

/// The Airlock listeners' configuration: the signed library bundle inline, identity from
/// `x-airlock-agent`, the decision log batched to the service every second.
fn library_plugin(bundle_base64: &str) -> serde_json::Value {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode(BUNDLE_KEY);
    let mut cfg = plugin_config(&PluginOptions::default());
    cfg["policy"] = json!({
        "bundle": {"base64": bundle_base64},
        "bundle_keys": [{"key_id": BUNDLE_KEY_ID, "key_base64": key}],
        "mode": "enforce",
    });
    cfg["identity"]["agents"] = json!({AGENT: {"owner": "alice@corp.example", "acts_for": []}});
    cfg["request"]["input_headers"] = json!(["content-type", "user-agent"]);
    cfg["decision_log"] = json!({"flush_ms": 1000, "max_queue": 4096, "max_batch": 256});
    cfg
}

/// `cfg` with the decision cache off: every request evaluates the policy.
fn without_cache(mut cfg: serde_json::Value) -> serde_json::Value {
    cfg["decision_cache"] = json!({"max_entries": 0});
    cfg
}

/// One listener: the demo gateway's connection-manager settings, no access log, a Wasm
/// filter or not, and a `direct_response` or nginx route.
fn listener_yaml(name: &str, filter: Filter, upstream: Upstream, modules: [&Path; 3], plugin: &str) -> String {
    let [floor, wasm, alt] = modules;
    let route = match upstream {
        Upstream::Direct => r#"direct_response: {status: 200, body: {inline_string: "ok\n"}}"#.to_string(),
        Upstream::Nginx => "route: {cluster: nginx, timeout: 30s}".to_string(),
    };
    let wasm_filter = |vm: &str, code: &Path, config: &str| {
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
    };
    let filter = match filter {
        Filter::None => String::new(),
        Filter::Floor => wasm_filter("floor", floor, "\"\""),
        Filter::Airlock => wasm_filter("airlock", wasm, plugin),
        Filter::Eval => wasm_filter("airlock_eval", wasm, plugin),
        Filter::Alt => wasm_filter("airlock_alt", alt, plugin),
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
          http_filters:{filter}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#
    )
}

fn cluster_yaml(name: &str, port: u16) -> String {
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

struct Envoy {
    proc: Proc,
    admin: SocketAddr,
    /// Process start → `/ready` LIVE.
    ready_after: Duration,
    /// User + system CPU of the Envoy process (all threads) until it was seen ready;
    /// includes the PyPI wrapper's Python start, which `exec`s Envoy in the same process.
    ready_cpu: Duration,
}

/// Starts Envoy (`--concurrency 1`) on the CPUs `cpus_list` (taskset syntax) and waits
/// until `/ready` answers LIVE.
fn start_envoy(dir: &Path, config: &str, cpus_list: &str) -> anyhow::Result<Envoy> {
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, config)?;
    let admin_path = dir.join("envoy.admin");
    let mut cmd = pinned(cpus_list, &envoy_binary()?);
    cmd.arg("-c")
        .arg(&path)
        .args(["--concurrency", "1", "--use-dynamic-base-id", "-l", "warning"])
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

fn listener_addr(admin: SocketAddr, name: &str) -> anyhow::Result<SocketAddr> {
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

/// User + system CPU of a process so far (`/proc/<pid>/stat`, all threads).
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| anyhow!("odd stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).ok_or_else(|| anyhow!("no utime"))?.parse::<u64>()?
        + f.get(12).ok_or_else(|| anyhow!("no stime"))?.parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100).max(1);
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------- closed loop: wrk ----------

struct WrkRun {
    requests: u64,
    seconds: f64,
    bad: u64,
}

fn wrk(addr: SocketAddr, seconds: u64) -> anyhow::Result<WrkRun> {
    let mut cmd = pinned(LOAD_CPU, Path::new("/usr/bin/wrk"));
    let out = cmd
        .args(["-t1", "-c8", &format!("-d{seconds}s")])
        .args(["-H", &format!("Host: {HOST}"), "-H", &format!("{IDENTITY_HEADER}: {AGENT}")])
        .args(["-H", "user-agent: airlock-bench/1"])
        .arg(format!("http://{addr}{ALLOW_PATH}"))
        .stdin(Stdio::null())
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut run = WrkRun { requests: 0, seconds: 0.0, bad: 0 };
    for line in text.lines().map(str::trim) {
        if let Some((n, rest)) = line.split_once(" requests in ") {
            run.requests = n.trim().parse()?;
            let secs = rest.split(',').next().unwrap_or("").trim();
            run.seconds = match secs.strip_suffix("ms") {
                Some(ms) => ms.parse::<f64>()? / 1000.0,
                None => secs.trim_end_matches('s').parse::<f64>()?,
            };
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            run.bad += n.trim().parse::<u64>()?;
        } else if let Some(errs) = line.strip_prefix("Socket errors:") {
            for part in errs.split(',') {
                run.bad += part.split_whitespace().last().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    if run.requests == 0 {
        bail!("could not read wrk's output:\n{text}");
    }
    Ok(run)
}

// ---------- open loop: fixed rate, HDR histogram ----------

struct OpenRun {
    hist: Histogram<u64>,
    errors: u64,
}

/// `rate` requests/s for `seconds` over `conns` keep-alive connections; each connection
/// sends on a fixed schedule and the latency of a request counts from when it was *meant*
/// to be sent, so a stall shows up in every request it delays (no coordinated omission).
/// An answer counts as an error unless its status is `expect` and, with `body_has`, its
/// body contains that text.
fn open_loop(
    addr: SocketAddr,
    rate: u64,
    seconds: u64,
    conns: u64,
    request: &(dyn Fn(u64) -> Vec<u8> + Sync),
    expect: u16,
    body_has: Option<&str>,
) -> anyhow::Result<OpenRun> {
    let period = Duration::from_nanos(1_000_000_000 * conns / rate);
    let per_conn = rate * seconds / conns;
    let start = Instant::now() + Duration::from_millis(20);
    let results: Vec<anyhow::Result<OpenRun>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|c| {
                s.spawn(move || -> anyhow::Result<OpenRun> {
                    let mut run = OpenRun { hist: Histogram::new_with_bounds(1_000, 60_000_000_000, 3)?, errors: 0 };
                    let offset = Duration::from_nanos(1_000_000_000 * c / rate);
                    let mut conn: Option<TcpStream> = None;
                    let mut buf = vec![0u8; 64 * 1024];
                    for i in 0..per_conn {
                        let intended = start + offset + period * u32::try_from(i)?;
                        let now = Instant::now();
                        if intended > now {
                            std::thread::sleep(intended - now);
                        }
                        let ok = exchange(&mut conn, addr, &request(c * per_conn + i), &mut buf, expect, body_has);
                        let took = u64::try_from(intended.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        run.hist.saturating_record(took.max(1_000));
                        if !ok {
                            run.errors += 1;
                            conn = None;
                        }
                    }
                    Ok(run)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("generator thread panicked")))).collect()
    });
    let mut total = OpenRun { hist: Histogram::new_with_bounds(1_000, 60_000_000_000, 3)?, errors: 0 };
    for r in results {
        let r = r?;
        total.hist.add(&r.hist)?;
        total.errors += r.errors;
    }
    Ok(total)
}

/// One request/response on a kept-alive connection (opened if needed); true if the
/// answer had status `expect` (and, with `body_has`, a body containing it).
fn exchange(
    conn: &mut Option<TcpStream>,
    addr: SocketAddr,
    req: &[u8],
    buf: &mut [u8],
    expect: u16,
    body_has: Option<&str>,
) -> bool {
    if conn.is_none() {
        let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            return false;
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        *conn = Some(s);
    }
    let Some(s) = conn.as_mut() else { return false };
    if s.write_all(req).is_err() {
        return false;
    }
    let mut len = 0;
    loop {
        let Ok(n) = s.read(&mut buf[len..]) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(head)) => {
                let body = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if len >= head + body {
                    let body_ok = body_has.is_none_or(|needle| {
                        needle.is_empty()
                            || buf[head..head + body].windows(needle.len()).any(|w| w == needle.as_bytes())
                    });
                    return resp.code == Some(expect) && body_ok;
                }
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return false,
        }
        if len == buf.len() {
            return false;
        }
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

// ---------- main ----------

fn main() -> anyhow::Result<()> {
    let o = opts()?;
    // Precise sleeps for the open-loop schedule (default timer slack is 50 µs).
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's (and its children's) slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    // Keep this process (and the threads it starts) off Envoy's CPU.
    if cpus() >= 2 {
        let _ = Command::new("taskset")
            .args(["-p", "-c", LOAD_CPU, &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
    }

    let began = Instant::now();
    let load_before = loadavg();
    let dir = tempfile::Builder::new().prefix("airlock-bench-").tempdir()?;
    let wasm = filter_module()?;
    let floor = dir.path().join("floor.wasm");
    std::fs::write(&floor, wat::parse_str(FLOOR_WAT)?)?;
    let module_size = std::fs::metadata(&wasm)?.len();

    let service = AirlockService::start(
        "bench",
        &ServiceOptions {
            reviewers: vec![Reviewer::new("bob@corp.example", &["data-owners"])],
            credentials: vec!["export-api".into()],
            // The pending-latency run creates hundreds of approvals for one agent.
            max_pending_per_agent: Some(100_000),
            ..ServiceOptions::default()
        },
    )?;
    let (_nginx, nginx_port) = start_nginx(dir.path())?;

    let yaml = |cfg: &serde_json::Value| airlock_tests::e2e::template::yaml_string(&cfg.to_string());
    let library = library_plugin(&library_bundle(service.binary(), dir.path())?);
    let plugin = yaml(&library);
    // Every request evaluated: the same configuration with the decision cache off.
    let plugin_eval = yaml(&without_cache(library.clone()));
    // AIRLOCK_BENCH_ALT_NO_CACHE=1: the alt listener runs with the decision cache off too.
    let plugin_alt =
        if std::env::var_os("AIRLOCK_BENCH_ALT_NO_CACHE").is_some() { plugin_eval.clone() } else { plugin.clone() };
    let mut listeners_yaml = String::new();
    let mut specs = Vec::new();
    let alt = std::env::var_os("AIRLOCK_BENCH_ALT_WASM").map(PathBuf::from);
    for upstream in [Upstream::Direct, Upstream::Nginx] {
        for filter in [Filter::None, Filter::Floor, Filter::Airlock, Filter::Eval, Filter::Alt] {
            if filter == Filter::Alt && alt.is_none() {
                continue;
            }
            if matches!(filter, Filter::Eval | Filter::Alt) && upstream == Upstream::Nginx {
                continue;
            }
            let name = format!(
                "{}_{}",
                match upstream {
                    Upstream::Direct => "direct",
                    Upstream::Nginx => "nginx",
                },
                match filter {
                    Filter::None => "none",
                    Filter::Floor => "floor",
                    Filter::Airlock => "airlock",
                    Filter::Eval => "eval",
                    Filter::Alt => "alt",
                }
            );
            let alt_path = alt.as_deref().unwrap_or(&wasm);
            let config = match filter {
                Filter::Alt => &plugin_alt,
                Filter::Eval => &plugin_eval,
                _ => &plugin,
            };
            listeners_yaml.push_str(&listener_yaml(&name, filter, upstream, [&floor, &wasm, alt_path], config));
            specs.push((name, filter, upstream));
        }
    }
    let config = format!(
        "admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}}}\nstatic_resources:\n  listeners:{listeners_yaml}  clusters:{}{}",
        cluster_yaml("nginx", nginx_port),
        cluster_yaml(APPROVAL_CLUSTER, service.port())
    );
    // Ready time with the filter alone (one listener), Envoy on every CPU as deployed
    // (V8 compiles on background threads), then the pinned benchmark Envoy.
    let all_cpus = format!("0-{}", (cpus() - 1).max(0));
    let mut ready = Vec::new();
    for (label, module) in [("airlock", Some(wasm.as_path())), ("alt module", alt.as_deref())] {
        let Some(module) = module else { continue };
        let sub = dir.path().join(format!("ready-{}", ready.len()));
        std::fs::create_dir_all(&sub)?;
        let one = format!(
            "admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}}}\nstatic_resources:\n  listeners:{}  clusters:{}",
            listener_yaml("ready", Filter::Airlock, Upstream::Direct, [&floor, module, module], &plugin),
            cluster_yaml(APPROVAL_CLUSTER, service.port())
        );
        let e = start_envoy(&sub, &one, &all_cpus)?;
        ready.push((label, e.ready_after, e.ready_cpu));
    }
    let envoy = start_envoy(dir.path(), &config, ENVOY_CPU)?;
    let pid = envoy.proc.pid();
    let mut listeners = Vec::new();
    for (name, filter, upstream) in specs {
        let addr = listener_addr(envoy.admin, &name)?;
        listeners.push(Listener { name, filter, upstream, addr });
    }

    println!(
        "airlock-bench: Envoy {} (--concurrency 1, pinned to CPU {ENVOY_CPU}; load on CPU {LOAD_CPU})",
        envoy_binary()?.display()
    );
    println!("load average at start: {load_before}; CPUs online: {}", cpus());
    println!("module: {} ({:.2} MB)", wasm.display(), module_size as f64 / 1e6);
    if let Some(alt) = &alt {
        println!("alt module: {} ({:.2} MB)", alt.display(), std::fs::metadata(alt)?.len() as f64 / 1e6);
    }
    println!(
        "policy: policies/library as a signed bundle (revision bench-library), inline; \
         \"{}\" = decision_cache.max_entries 0",
        Filter::Eval.label()
    );
    for (label, took, cpu) in &ready {
        println!(
            "Envoy ready with the {label} (start → /ready LIVE, one listener, CPUs {all_cpus}, --concurrency 1): \
             {:.2} s, Envoy CPU until ready {:.2} s",
            took.as_secs_f64(),
            cpu.as_secs_f64()
        );
    }
    println!(
        "benchmark Envoy ready (all listeners and modules, pinned to CPU {ENVOY_CPU}): {:.2} s, Envoy CPU until ready {:.2} s",
        envoy.ready_after.as_secs_f64(),
        envoy.ready_cpu.as_secs_f64()
    );

    // Warm up every listener (V8 tiers up, connections open).
    let allow_request = format!(
        "GET {ALLOW_PATH} HTTP/1.1\r\nhost: {HOST}\r\n{IDENTITY_HEADER}: {AGENT}\r\nuser-agent: airlock-bench/1\r\n\r\n"
    )
    .into_bytes();
    for l in &listeners {
        let run = open_loop(l.addr, 2000, 1, 4, &|_| allow_request.clone(), 200, None)?;
        if run.errors > 0 {
            bail!("listener {} does not answer 200 to the allowed GET ({} errors)", l.name, run.errors);
        }
    }

    // Closed loop: wrk, listeners alternated, order rotated each round.
    println!("\n== closed loop: wrk -t1 -c8 -d{}s, {} rounds, allowed GET ==", o.seconds, o.rounds);
    let mut totals: Vec<(u64, f64, Duration, u64, Vec<f64>)> =
        vec![(0, 0.0, Duration::ZERO, 0, Vec::new()); listeners.len()];
    for round in 0..o.rounds {
        for k in 0..listeners.len() {
            let i = (k + round) % listeners.len();
            let before = cpu_time(pid)?;
            let run = wrk(listeners[i].addr, o.seconds)?;
            let cpu = cpu_time(pid)? - before;
            let t = &mut totals[i];
            t.0 += run.requests;
            t.1 += run.seconds;
            t.2 += cpu;
            t.3 += run.bad;
            t.4.push(run.requests as f64 / run.seconds);
        }
    }
    let per_req = |i: usize| totals[i].2.as_nanos() as f64 / totals[i].0.max(1) as f64 / 1000.0;
    let rps = |i: usize| totals[i].0 as f64 / totals[i].1.max(1e-9);
    let find = |f: Filter, u: Upstream| listeners.iter().position(|l| l.filter == f && l.upstream == u).unwrap_or(0);
    println!(
        "{:<16} {:<32} {:>9} {:>24} {:>8} {:>8} {:>11} {:>13} {:>11}",
        "upstream", "filter", "req/s", "per round", "vs none", "vs floor", "CPU µs/req", "added vs none", "above floor"
    );
    for (i, l) in listeners.iter().enumerate() {
        let none = find(Filter::None, l.upstream);
        let floor = find(Filter::Floor, l.upstream);
        let rounds: Vec<String> = totals[i].4.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{:<16} {:<32} {:>9.0} {:>24} {:>7.2}× {:>7.2}× {:>11.1} {:>13.1} {:>11.1}{}",
            l.upstream.label(),
            l.filter.label(),
            rps(i),
            rounds.join("/"),
            rps(i) / rps(none),
            rps(i) / rps(floor),
            per_req(i),
            per_req(i) - per_req(none),
            per_req(i) - per_req(floor),
            if totals[i].3 > 0 { format!("  ({} non-2xx/errors!)", totals[i].3) } else { String::new() }
        );
    }

    // Open loop: fixed rate, HDR histograms merged over the rounds.
    let open_secs = o.seconds.min(5);
    println!("\n== open loop: {} req/s for {open_secs} s × {} rounds per listener, 4 keep-alive connections, latency from intended send time ==", o.rate, o.rounds);
    let mut hists: Vec<OpenRun> = Vec::new();
    for _ in &listeners {
        hists.push(OpenRun { hist: Histogram::new_with_bounds(1_000, 60_000_000_000, 3)?, errors: 0 });
    }
    for round in 0..o.rounds {
        for k in 0..listeners.len() {
            let i = (k + round) % listeners.len();
            let run = open_loop(listeners[i].addr, o.rate, open_secs, 4, &|_| allow_request.clone(), 200, None)?;
            hists[i].hist.add(&run.hist)?;
            hists[i].errors += run.errors;
        }
    }
    println!(
        "{:<16} {:<32} {:>8} {:>9} {:>9} {:>9} {:>9} {:>15}",
        "upstream", "filter", "n", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "added p99 µs"
    );
    for (i, l) in listeners.iter().enumerate() {
        let h = &hists[i].hist;
        let none = &hists[find(Filter::None, l.upstream)].hist;
        println!(
            "{:<16} {:<32} {:>8} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>15.0}{}",
            l.upstream.label(),
            l.filter.label(),
            h.len(),
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.99)),
            us(h.value_at_quantile(0.999)),
            us(h.max()),
            us(h.value_at_quantile(0.99)) - us(none.value_at_quantile(0.99)),
            if hists[i].errors > 0 { format!("  ({} errors!)", hists[i].errors) } else { String::new() }
        );
    }

    // Approve-required → pending, real approval service (hold 0), each request a new approval.
    let pending_rate = 20;
    let pending_secs = 5;
    let airlock = &listeners[find(Filter::Airlock, Upstream::Direct)];
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    // An external destination (not in `data.exports.internal_destinations`), new each time.
    let export = |n: u64| {
        let body = format!(
            "{{\"format\":\"csv\",\"destination\":{{\"uri\":\"s3://partner-bench-{stamp}-{n}\"}},\"rows\":{n}}}"
        );
        format!(
            "POST {EXPORT_PATH} HTTP/1.1\r\nhost: {HOST}\r\n{IDENTITY_HEADER}: {AGENT}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    const PENDING: &str = "urn:airlock:problem:approval-pending";
    let first = send_raw(airlock.addr, &export(u64::from(u32::MAX)), Duration::from_secs(10))?;
    if first.status != 403 || first.problem_type().as_deref() != Some(PENDING) {
        bail!("the approve-required POST is not pending: {} {}", first.status, first.text());
    }
    let run = open_loop(airlock.addr, pending_rate, pending_secs, 1, &export, 403, Some(PENDING))?;
    let h = &run.hist;
    println!(
        "\n== approve-required POST → 403 approval-pending, real approval service (SQLite), {pending_rate} req/s for {pending_secs} s, each a new approval ==\n\
         n {}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms{}",
        h.len(),
        us(h.value_at_quantile(0.5)) / 1000.0,
        us(h.value_at_quantile(0.99)) / 1000.0,
        us(h.max()) / 1000.0,
        if run.errors > 0 { format!("  ({} not 403 approval-pending!)", run.errors) } else { String::new() }
    );

    println!("\nload average at end: {}; total {:.0} s", loadavg(), began.elapsed().as_secs_f64());
    drop(envoy);
    drop(service);
    Ok(())
}
