//! The hot-path benchmark of issues #6 and #12: real Envoy (one worker) with listeners side
//! by side — no filter, an empty proxy-wasm filter (the floor), and the Airlock filter
//! with the example policy library (`policies/library`, data mounted by directory) — in
//! front of the same upstreams (Envoy `direct_response`, and nginx from Debian). The
//! library is loaded the way a gateway loads it: built and signed as a bundle with the
//! `airlock` CLI (`airlock bundle build` + `airlock bundle sign`, the binary that also
//! runs the approval service) and passed inline (`policy.bundle.base64` +
//! `policy.bundle_keys`). More listeners on `direct_response`:
//! - "airlock, every request evaluated": the same configuration with
//!   `decision_cache.max_entries: 0`, so every run shows the cache-hit allow path and the
//!   evaluate-every-request path of the same module side by side;
//! - "airlock 9× library, every request evaluated": the same, with a library generated
//!   from `policies/library` at 9× its size (`airlock_tests::bench::library9`: 8 more
//!   teams' copies of every rule module, with their own hosts and data), checked at
//!   startup to compile and to decide the benchmark's requests as the library does;
//! - "ext_authz → nginx": no Wasm, Envoy's ext_authz HTTP filter asking a trivial local
//!   authorizer (nginx `return 200`) on every request — the floor of any sidecar design.
//!
//! Prints throughput (wrk, closed loop, A/B alternated), the Envoy CPU spent per request,
//! the same for the approve route with a 1 KB and a 64 KB JSON body (the same pending
//! request repeated, so the filter finds the existing approval through the service; the
//! floor is the empty filter with the same POST), open-loop latency percentiles at a fixed
//! rate (HDR histograms, measured from each request's intended send time), Envoy's ready
//! time and the CPU it spent until ready (a separate Envoy with one Airlock listener,
//! `--concurrency 1` but NOT pinned: V8 compiles the module on background threads, as in
//! a deployment that gives Envoy the machine's cores), Envoy's resident memory per
//! listener configuration (separate Envoys with only the floor, only the library or only
//! the 9× library listener, at one and two workers), the module size, the
//! approve-required → pending latency against the REAL approval service (each answer
//! checked: 403 `approval-pending`; at a fixed rate, 100 sequential requests, and 50
//! concurrent agents), and at the end one table of issue 12's targets, each with its
//! measured value, its distance to the target, and met / not met.
//!
//! The allowed request: `GET api.example.com/v1/reports?page=2` by
//! `spiffe://corp/agent/report-bot` (the library's `hosts` module: `known-host-read`).
//! The approve-required request: `POST api.example.com/v1/exports` with a JSON body whose
//! `destination.uri` is external (the `exports` module: `data-export`, approvers
//! `data-owners`, credential `export-api`) — new each time for the pending latency, the
//! same each time for the approve-route CPU runs.
//!
//! Run it with `bash scripts/bench-envoy.sh` (installs wrk, nginx and Envoy, builds the
//! module and the service, then runs this in release). Method and results:
//! `docs/benchmarks.md`. Options: `--seconds N` (per closed-loop run, default 5),
//! `--rounds N` (default 3), `--rate N` (open-loop requests/s, default 1000);
//! `--write-library9 DIR` only writes the generated 9× library into DIR.
//! Environment: `AIRLOCK_WASM=<file>` benchmarks that module instead of the shipped one;
//! `AIRLOCK_BIN=<file>` the `airlock` binary (service and bundle CLI);
//! `AIRLOCK_BENCH_ALT_WASM=<file>` adds an "alt module" listener (direct_response) with
//! the same configuration, and `AIRLOCK_BENCH_ALT_NO_CACHE=1` turns the decision cache
//! off on that listener too.
//!
//! Everything listens on 127.0.0.1; every loop is bounded in count and time. This is a
//! benchmark, not a test: nothing here asserts a timing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock_tests::bench::envoy::{
    cluster_yaml, downstream_connections, envoy_yaml, filter_yaml, floor_callout_wat, listener_addr, listener_yaml,
    start_envoy, upstream_use, Filter, FilterSetup, Upstream, AUTHZ_CLUSTER, FLOOR_BODY_WAT, FLOOR_WAT,
};
use airlock_tests::bench::library9::{self, Library9};
use airlock_tests::bench::load::{
    back_to_back, concurrent_agents, open_loop, post_script, wrk, OpenRun, WrkLoad, ALLOW_LOAD,
};
use airlock_tests::bench::policy::{build_signed_bundle, bundle_base64, library_plugin, without_cache};
use airlock_tests::bench::proc::{cpu_time, cpus, loadavg, rss_mib, start_nginx};
use airlock_tests::bench::targets::{self, Target};
use airlock_tests::bench::{us, AGENT, ALLOW_PATH, ENVOY_CPU, EXPORT_PATH, HOST, LOAD_CPU, PENDING};
use airlock_tests::e2e::client::send_raw;
use airlock_tests::e2e::envoy::envoy_binary;
use airlock_tests::e2e::gateway::filter_module;
use airlock_tests::e2e::plugin::{APPROVAL_CLUSTER, IDENTITY_HEADER};
use airlock_tests::e2e::service::{AirlockService, Reviewer, ServiceOptions};
use airlock_tests::wasm::workspace_root;
use anyhow::{anyhow, bail, Context};

/// Agents of the concurrent pending run: distinct ids, so the service's per-agent limits
/// and the filter's per-agent state never couple them.
const CONCURRENT_AGENTS: u64 = 50;
/// Requests each of them sends, one after another (each a new approval).
const PER_AGENT: u64 = 10;
/// Requests of the sequential pending run (one agent, one connection, each a new approval).
const SEQUENTIAL: u64 = 100;
/// Approve-route bodies: 1 KB and 64 KB of JSON.
const BODY_SIZES: [usize; 2] = [1024, 64 * 1024];
/// The size of Airlock's find call for the approve-route POST (`cargo bench -p
/// airlock-filter --bench body` prints it): what the callout floor sends.
const FIND_CALL_BYTES: usize = 732;
/// wrk's connections on the approve route: each of Airlock's requests waits for the
/// service, so with wrk's usual 8 Envoy can sit idle between answers, and an Envoy that
/// is not kept busy spends more CPU per request (fewer requests per event-loop wakeup):
/// enough connections that the service's latency does not set the figure.
const APPROVE_CONNECTIONS: u32 = 64;

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

/// The agents of the concurrent pending run.
fn concurrent_agent_ids() -> Vec<String> {
    (0..CONCURRENT_AGENTS).map(|a| format!("spiffe://corp/agent/bench-{a:02}")).collect()
}

// ---------- the policies ----------

/// The 9× library generated into the run's directory, checked, built and signed; returns
/// the bundle as base64 and a line saying what was checked. Fails loudly when it does not
/// compile or does not decide the benchmark's requests as the library does.
fn library9_bundle(airlock: &Path, library: &Path, dir: &Path) -> anyhow::Result<(String, String)> {
    let Library9 { dir: lib9, rule_modules } = library9::generate(library, &dir.join("library9"))?;
    let compiled = library9::compiles(airlock, &lib9).context("the generated 9× library does not compile")?;
    let bundle = build_signed_bundle(airlock, &lib9, dir, "library9")?;
    let inputs = library9::check_inputs(AGENT, HOST, ALLOW_PATH, EXPORT_PATH);
    let original = library9::decide(airlock, library, &inputs, dir)?;
    let generated = library9::decide(airlock, &bundle, &inputs, dir)?;
    // The allowed GET and the export POST: exactly as the library decides them.
    if generated[..2] != original[..2] {
        bail!("the 9× library decides differently from policies/library: {generated:?} vs {original:?}");
    }
    // Team 3's export API: only the copies know it (the library denies the unknown host),
    // so the copies are live rules, not dead code.
    let approve_export = ("approve".to_string(), "data-export".to_string());
    if generated[2] != approve_export || original[2].0 != "deny" {
        bail!("team 3's copy of the export route: 9× library {:?}, library {:?}", generated[2], original[2]);
    }
    let size = std::fs::metadata(&bundle)?.len();
    let line = format!(
        "9× library: {rule_modules} rule modules generated in {} ({compiled}); bundle {:.0} KB; \
         GET → {} {}, POST /v1/exports → {} {} (as the library), team 3's POST → {} {} (library: {} {})",
        lib9.display(),
        size as f64 / 1e3,
        generated[0].0,
        generated[0].1,
        generated[1].0,
        generated[1].1,
        generated[2].0,
        generated[2].1,
        original[2].0,
        original[2].1,
    );
    Ok((bundle_base64(&bundle)?, line))
}

// ---------- closed loop ----------

#[derive(Clone, Default)]
struct Totals {
    requests: u64,
    seconds: f64,
    cpu: Duration,
    bad: u64,
    per_round: Vec<f64>,
}

impl Totals {
    fn add(&mut self, run: &airlock_tests::bench::load::WrkRun, cpu: Duration) {
        self.requests += run.requests;
        self.seconds += run.seconds;
        self.cpu += cpu;
        self.bad += run.bad;
        self.per_round.push(run.requests as f64 / run.seconds.max(1e-9));
    }

    /// Envoy CPU µs per request.
    fn cpu_per_req(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.requests.max(1) as f64 / 1000.0
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    fn flag(&self) -> String {
        if self.bad > 0 {
            format!("  ({} unexpected answers/errors!)", self.bad)
        } else {
            String::new()
        }
    }
}

/// wrk on each of `targets` (address, load) for `rounds` rounds, the order rotated each
/// round; Envoy's CPU during each run is charged to that target.
fn closed_loop(
    pid: u32,
    targets: &[(SocketAddr, &WrkLoad)],
    seconds: u64,
    rounds: usize,
) -> anyhow::Result<Vec<Totals>> {
    let mut totals = vec![Totals::default(); targets.len()];
    for round in 0..rounds {
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let before = cpu_time(pid)?;
            let run = wrk(targets[i].0, seconds, targets[i].1)?;
            totals[i].add(&run, cpu_time(pid)? - before);
        }
    }
    Ok(totals)
}

// ---------- approve route with a body ----------

/// An approve-required export body of exactly `size` bytes: the library's `exports` shape
/// (an external destination) with a column list, as an export job names what it takes.
fn export_body(size: usize, tag: &str) -> anyhow::Result<String> {
    let head = format!("{{\"format\":\"csv\",\"destination\":{{\"uri\":\"s3://partner-bench-{tag}\"}},\"columns\":[");
    let mut body = head.clone();
    let mut n = 0;
    let tail_room = "],\"note\":\"\"}".len() + 16;
    while body.len() + tail_room < size {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"col_{n:05}\""));
        n += 1;
    }
    body.push_str("],\"note\":\"");
    let pad = size.checked_sub(body.len() + 2).ok_or_else(|| anyhow!("body of {size} bytes too small"))?;
    body.push_str(&"n".repeat(pad));
    body.push_str("\"}");
    if body.len() != size || serde_json::from_str::<serde_json::Value>(&body).is_err() {
        bail!("export body of {size} bytes came out {} bytes or not JSON", body.len());
    }
    Ok(body)
}

fn post_request(path: &str, agent: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: {HOST}\r\n{IDENTITY_HEADER}: {agent}\r\nuser-agent: airlock-bench/1\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Per body size: the floor listener's and the Airlock listener's CPU per request for
/// the same POST repeated. The first Airlock request creates the approval; every later
/// one finds it through the service (403 approval-pending, checked per answer).
struct BodyRun {
    size: usize,
    floor: Totals,
    /// The floor plus one callout per request and a local 403 (`floor_callout_wat`).
    callout: Totals,
    airlock: Totals,
    /// Requests per accepted connection (floor, callout, airlock): a connection closed
    /// after each answer would put connection setup into the CPU per request.
    per_connection: [f64; 3],
    /// Callouts per upstream connection (the callout floor's, Airlock's to the service):
    /// the same concern on the other side.
    per_upstream_connection: [f64; 2],
}

/// The listeners a body run compares, by name (their stat prefix) and address.
struct BodyListeners<'a> {
    admin: SocketAddr,
    floor: (&'a str, SocketAddr),
    callout: (&'a str, SocketAddr),
    airlock: (&'a str, SocketAddr),
}

fn body_runs(pid: u32, on: &BodyListeners, dir: &Path, o: &Opts, stamp: u128) -> anyhow::Result<Vec<BodyRun>> {
    let (floor, callout, airlock) = (on.floor.1, on.callout.1, on.airlock.1);
    let mut out = Vec::new();
    for size in BODY_SIZES {
        let body = export_body(size, &format!("{stamp}-repeat-{size}"))?;
        let first = send_raw(airlock, &post_request(EXPORT_PATH, AGENT, &body), Duration::from_secs(10))?;
        if first.status != 403 || first.problem_type().as_deref() != Some(PENDING) {
            bail!("the {size}-byte approve-route POST is not pending: {} {}", first.status, first.text());
        }
        let on_floor = send_raw(floor, &post_request(EXPORT_PATH, AGENT, &body), Duration::from_secs(10))?;
        if on_floor.status != 200 {
            bail!("the floor listener answers the {size}-byte POST with {}", on_floor.status);
        }
        let body_file = dir.join(format!("body-{size}.json"));
        std::fs::write(&body_file, &body)?;
        let floor_script = dir.join(format!("post-floor-{size}.lua"));
        std::fs::write(&floor_script, post_script(&body_file, 200, None))?;
        let airlock_script = dir.join(format!("post-airlock-{size}.lua"));
        std::fs::write(&airlock_script, post_script(&body_file, 403, Some(PENDING)))?;
        let floor_load = WrkLoad { path: EXPORT_PATH, script: Some(&floor_script), connections: APPROVE_CONNECTIONS };
        let airlock_load =
            WrkLoad { path: EXPORT_PATH, script: Some(&airlock_script), connections: APPROVE_CONNECTIONS };
        let callout_script = dir.join(format!("post-callout-{size}.lua"));
        std::fs::write(&callout_script, post_script(&body_file, 403, Some(PENDING)))?;
        let callout_load =
            WrkLoad { path: EXPORT_PATH, script: Some(&callout_script), connections: APPROVE_CONNECTIONS };
        let on_callout = send_raw(callout, &post_request(EXPORT_PATH, AGENT, &body), Duration::from_secs(10))?;
        if on_callout.status != 403 {
            bail!("the callout floor answers the {size}-byte POST with {}", on_callout.status);
        }
        let connections = || -> anyhow::Result<[u64; 3]> {
            Ok([
                downstream_connections(on.admin, on.floor.0)?,
                downstream_connections(on.admin, on.callout.0)?,
                downstream_connections(on.admin, on.airlock.0)?,
            ])
        };
        let upstream = || -> anyhow::Result<[(u64, u64); 2]> {
            Ok([upstream_use(on.admin, AUTHZ_CLUSTER)?, upstream_use(on.admin, APPROVAL_CLUSTER)?])
        };
        let (before, up_before) = (connections()?, upstream()?);
        let t = closed_loop(
            pid,
            &[(floor, &floor_load), (callout, &callout_load), (airlock, &airlock_load)],
            o.seconds,
            o.rounds,
        )?;
        let (after, up_after) = (connections()?, upstream()?);
        let per_conn = |i: usize| t[i].requests as f64 / (after[i] - before[i]).max(1) as f64;
        let per_up = |i: usize| {
            let (cx, rq) = (up_after[i].0 - up_before[i].0, up_after[i].1 - up_before[i].1);
            rq as f64 / cx.max(1) as f64
        };
        out.push(BodyRun {
            size,
            floor: t[0].clone(),
            callout: t[1].clone(),
            airlock: t[2].clone(),
            per_connection: [per_conn(0), per_conn(1), per_conn(2)],
            per_upstream_connection: [per_up(0), per_up(1)],
        });
    }
    Ok(out)
}

// ---------- memory ----------

struct Memory {
    label: &'static str,
    filter: Filter,
    /// VmRSS MiB at 1 and 2 workers.
    rss: [f64; 2],
    ready: [Duration; 2],
}

/// Envoy's resident memory with only one listener of `filter`, at one and at two workers
/// (separate Envoys on all CPUs, as deployed): started, warmed up with 1,000 allowed GETs
/// over 8 connections, then read after the allocator's background release has run.
fn memory_runs(dir: &Path, setup: &FilterSetup, approval_port: u16, all_cpus: &str) -> anyhow::Result<Vec<Memory>> {
    let allow = allow_request();
    let mut out = Vec::new();
    for (label, filter) in [
        ("empty wasm (floor)", Filter::Floor),
        ("airlock (library)", Filter::Airlock),
        ("airlock 9× library", Filter::Eval9),
    ] {
        let mut m = Memory { label, filter, rss: [0.0; 2], ready: [Duration::ZERO; 2] };
        for (w, workers) in [1u32, 2].into_iter().enumerate() {
            let sub = dir.join(format!("memory-{}-{workers}", filter.slug()));
            std::fs::create_dir_all(&sub)?;
            let config = envoy_yaml(
                &listener_yaml("memory", &filter_yaml(filter, setup), Upstream::Direct),
                &cluster_yaml(APPROVAL_CLUSTER, approval_port),
            );
            let envoy = start_envoy(&sub, &config, all_cpus, workers)?;
            let addr = listener_addr(envoy.admin, "memory")?;
            let run = open_loop(addr, 1000, 1, 8, &|_| allow.clone(), 200, None)?;
            if run.errors > 0 {
                bail!("{label} at {workers} workers: {} errors in the warm-up", run.errors);
            }
            // Long enough for two of the allocator's 1 s release rounds (envoy_yaml).
            std::thread::sleep(Duration::from_millis(2500));
            m.rss[w] = rss_mib(envoy.proc.pid())?;
            m.ready[w] = envoy.ready_after;
        }
        out.push(m);
    }
    Ok(out)
}

fn allow_request() -> Vec<u8> {
    format!("GET {ALLOW_PATH} HTTP/1.1\r\nhost: {HOST}\r\n{IDENTITY_HEADER}: {AGENT}\r\nuser-agent: airlock-bench/1\r\n\r\n")
        .into_bytes()
}

// ---------- printing ----------

fn print_latency(title: &str, run: &OpenRun) {
    let h = &run.hist;
    println!(
        "{title}\nn {}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms{}",
        h.len(),
        us(h.value_at_quantile(0.5)) / 1000.0,
        us(h.value_at_quantile(0.99)) / 1000.0,
        us(h.max()) / 1000.0,
        if run.errors > 0 { format!("  ({} not 403 approval-pending!)", run.errors) } else { String::new() }
    );
}

fn p99_ms(run: &OpenRun) -> Option<f64> {
    (run.errors == 0 && !run.hist.is_empty()).then(|| us(run.hist.value_at_quantile(0.99)) / 1000.0)
}

// ---------- main ----------

fn main() -> anyhow::Result<()> {
    // `--write-library9 DIR`: only generate the 9× library (for the native benches:
    // `AIRLOCK_LIBRARY_DIR=DIR cargo bench -p airlock-filter --bench library`).
    if let [flag, out] = &std::env::args().skip(1).collect::<Vec<_>>()[..] {
        if flag == "--write-library9" {
            let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/library");
            let lib = library9::generate(&library, Path::new(out))?;
            println!("{} rule modules in {}", lib.rule_modules, lib.dir.display());
            return Ok(());
        }
    }
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
    let floor_body = dir.path().join("floor-body.wasm");
    std::fs::write(&floor_body, wat::parse_str(FLOOR_BODY_WAT)?)?;
    let floor_callout = dir.path().join("floor-callout.wasm");
    std::fs::write(&floor_callout, wat::parse_str(floor_callout_wat(AUTHZ_CLUSTER, FIND_CALL_BYTES))?)?;
    let module_size = std::fs::metadata(&wasm)?.len();

    let service = AirlockService::start(
        "bench",
        &ServiceOptions {
            reviewers: vec![Reviewer::new("bob@corp.example", &["data-owners"])],
            credentials: vec!["export-api".into()],
            // The pending-latency runs create hundreds of approvals for one agent.
            max_pending_per_agent: Some(100_000),
            ..ServiceOptions::default()
        },
    )?;
    let nginx = start_nginx(dir.path())?;

    let yaml = |cfg: &serde_json::Value| airlock_tests::e2e::template::yaml_string(&cfg.to_string());
    let airlock_bin = service.binary();
    let library_dir = workspace_root().join("policies/library");
    let agents = concurrent_agent_ids();
    let library_bundle = build_signed_bundle(airlock_bin, &library_dir, dir.path(), "library")?;
    let library = library_plugin(&bundle_base64(&library_bundle)?, &agents);
    let plugin = yaml(&library);
    // Every request evaluated: the same configuration with the decision cache off.
    let plugin_eval = yaml(&without_cache(library.clone()));
    let (bundle9, library9_line) = library9_bundle(airlock_bin, &library_dir, dir.path())?;
    let plugin_eval9 = yaml(&without_cache(library_plugin(&bundle9, &agents)));
    // AIRLOCK_BENCH_ALT_NO_CACHE=1: the alt listener runs with the decision cache off too.
    let plugin_alt =
        if std::env::var_os("AIRLOCK_BENCH_ALT_NO_CACHE").is_some() { plugin_eval.clone() } else { plugin.clone() };
    let alt = std::env::var_os("AIRLOCK_BENCH_ALT_WASM").map(PathBuf::from);
    let setup = FilterSetup {
        floor: &floor,
        floor_body: &floor_body,
        floor_callout: &floor_callout,
        wasm: &wasm,
        alt: alt.as_deref().unwrap_or(&wasm),
        library: &plugin,
        eval: &plugin_eval,
        eval9: &plugin_eval9,
        alt_config: &plugin_alt,
    };
    let mut listeners_yaml = String::new();
    let mut specs = Vec::new();
    for upstream in [Upstream::Direct, Upstream::Nginx] {
        for filter in [
            Filter::None,
            Filter::Floor,
            Filter::FloorBody,
            Filter::FloorCallout,
            Filter::Airlock,
            Filter::Eval,
            Filter::Eval9,
            Filter::ExtAuthz,
            Filter::Alt,
        ] {
            if filter == Filter::Alt && alt.is_none() {
                continue;
            }
            let direct_only = matches!(
                filter,
                Filter::FloorBody
                    | Filter::FloorCallout
                    | Filter::Eval
                    | Filter::Eval9
                    | Filter::ExtAuthz
                    | Filter::Alt
            );
            if direct_only && upstream == Upstream::Nginx {
                continue;
            }
            let name = format!("{}_{}", upstream.slug(), filter.slug());
            listeners_yaml.push_str(&listener_yaml(&name, &filter_yaml(filter, &setup), upstream));
            specs.push((name, filter, upstream));
        }
    }
    let config = envoy_yaml(
        &listeners_yaml,
        &[
            cluster_yaml("nginx", nginx.upstream),
            cluster_yaml(APPROVAL_CLUSTER, service.port()),
            cluster_yaml(AUTHZ_CLUSTER, nginx.authorizer),
        ]
        .concat(),
    );
    // Ready time with the filter alone (one listener), Envoy on every CPU as deployed
    // (V8 compiles on background threads), then the memory Envoys, then the pinned
    // benchmark Envoy: each measured while no other Envoy runs.
    let all_cpus = format!("0-{}", (cpus() - 1).max(0));
    let mut ready = Vec::new();
    for (label, module) in [("airlock", Some(wasm.as_path())), ("alt module", alt.as_deref())] {
        let Some(module) = module else { continue };
        let sub = dir.path().join(format!("ready-{}", ready.len()));
        std::fs::create_dir_all(&sub)?;
        let one_setup = FilterSetup { wasm: module, ..setup };
        let one = envoy_yaml(
            &listener_yaml("ready", &filter_yaml(Filter::Airlock, &one_setup), Upstream::Direct),
            &cluster_yaml(APPROVAL_CLUSTER, service.port()),
        );
        let e = start_envoy(&sub, &one, &all_cpus, 1)?;
        ready.push((label, e.ready_after, e.ready_cpu));
    }
    let memory = memory_runs(dir.path(), &setup, service.port(), &all_cpus)?;
    let envoy = start_envoy(dir.path(), &config, ENVOY_CPU, 1)?;
    let pid = envoy.proc.pid();
    let mut listeners = Vec::new();
    let mut floor_body_listener = None;
    let mut floor_callout_listener = None;
    for (name, filter, upstream) in specs {
        let addr = listener_addr(envoy.admin, &name)?;
        // The body floors serve the approve-route runs only.
        match filter {
            Filter::FloorBody => floor_body_listener = Some((name, addr)),
            Filter::FloorCallout => floor_callout_listener = Some((name, addr)),
            _ => listeners.push(Listener { name, filter, upstream, addr }),
        }
    }
    let floor_body_listener = floor_body_listener.ok_or_else(|| anyhow!("no body-floor listener"))?;
    let floor_callout_listener = floor_callout_listener.ok_or_else(|| anyhow!("no callout-floor listener"))?;

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
    println!("{library9_line}");
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
    let allow = allow_request();
    for l in &listeners {
        let run = open_loop(l.addr, 2000, 1, 4, &|_| allow.clone(), 200, None)?;
        if run.errors > 0 {
            bail!("listener {} does not answer 200 to the allowed GET ({} errors)", l.name, run.errors);
        }
    }

    // Closed loop: wrk, listeners alternated, order rotated each round.
    println!("\n== closed loop: wrk -t1 -c8 -d{}s, {} rounds, allowed GET ==", o.seconds, o.rounds);
    let gets: Vec<(SocketAddr, &WrkLoad)> = listeners.iter().map(|l| (l.addr, &ALLOW_LOAD)).collect();
    let totals = closed_loop(pid, &gets, o.seconds, o.rounds)?;
    let find = |f: Filter, u: Upstream| listeners.iter().position(|l| l.filter == f && l.upstream == u);
    let at = |f: Filter, u: Upstream| find(f, u).map(|i| &totals[i]);
    println!(
        "{:<16} {:<38} {:>9} {:>24} {:>8} {:>8} {:>11} {:>13} {:>11}",
        "upstream", "filter", "req/s", "per round", "vs none", "vs floor", "CPU µs/req", "added vs none", "above floor"
    );
    for (i, l) in listeners.iter().enumerate() {
        let t = &totals[i];
        let none = at(Filter::None, l.upstream).ok_or_else(|| anyhow!("no no-filter listener"))?;
        let fl = at(Filter::Floor, l.upstream).ok_or_else(|| anyhow!("no floor listener"))?;
        let rounds: Vec<String> = t.per_round.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{:<16} {:<38} {:>9.0} {:>24} {:>7.2}× {:>7.2}× {:>11.1} {:>13.1} {:>11.1}{}",
            l.upstream.label(),
            l.filter.label(),
            t.rps(),
            rounds.join("/"),
            t.rps() / none.rps(),
            t.rps() / fl.rps(),
            t.cpu_per_req(),
            t.cpu_per_req() - none.cpu_per_req(),
            t.cpu_per_req() - fl.cpu_per_req(),
            t.flag()
        );
    }

    // The approve route with a body: the same pending POST repeated, floor vs Airlock.
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let direct = |f: Filter| {
        find(f, Upstream::Direct).map(|i| listeners[i].addr).ok_or_else(|| anyhow!("no {} listener", f.label()))
    };
    println!(
        "\n== approve route with a body: wrk -t1 -c{APPROVE_CONNECTIONS} -d{}s, {} rounds, the same POST {EXPORT_PATH} repeated \
         (Airlock: 403 approval-pending, the existing approval found through the service; floor: the empty filter \
         waiting for the body, 200) ==",
        o.seconds, o.rounds
    );
    let airlock_name = format!("{}_{}", Upstream::Direct.slug(), Filter::Airlock.slug());
    let on = BodyListeners {
        admin: envoy.admin,
        floor: (&floor_body_listener.0, floor_body_listener.1),
        callout: (&floor_callout_listener.0, floor_callout_listener.1),
        airlock: (&airlock_name, direct(Filter::Airlock)?),
    };
    let bodies = body_runs(pid, &on, dir.path(), &o, stamp)?;
    println!(
        "{:<8} {:<38} {:>9} {:>11} {:>11} {:>10}",
        "body", "filter", "req/s", "CPU µs/req", "above floor", "req/conn"
    );
    for b in &bodies {
        for (k, (label, t)) in [
            (Filter::FloorBody.label(), &b.floor),
            (Filter::FloorCallout.label(), &b.callout),
            ("airlock (library), pending found", &b.airlock),
        ]
        .into_iter()
        .enumerate()
        {
            println!(
                "{:<8} {:<38} {:>9.0} {:>11.1} {:>11.1} {:>10.0}{}",
                format!("{} KB", b.size / 1024),
                label,
                t.rps(),
                t.cpu_per_req(),
                t.cpu_per_req() - b.floor.cpu_per_req(),
                b.per_connection[k],
                t.flag()
            );
        }
    }

    for b in &bodies {
        println!(
            "{} KB: callouts per upstream connection: callout floor {:.0}, airlock {:.0}",
            b.size / 1024,
            b.per_upstream_connection[0],
            b.per_upstream_connection[1]
        );
    }

    // Open loop: fixed rate, HDR histograms merged over the rounds.
    let open_secs = o.seconds.min(5);
    println!("\n== open loop: {} req/s for {open_secs} s × {} rounds per listener, 4 keep-alive connections, latency from intended send time ==", o.rate, o.rounds);
    let mut hists: Vec<OpenRun> = Vec::new();
    for _ in &listeners {
        hists.push(OpenRun::empty()?);
    }
    for round in 0..o.rounds {
        for k in 0..listeners.len() {
            let i = (k + round) % listeners.len();
            let run = open_loop(listeners[i].addr, o.rate, open_secs, 4, &|_| allow.clone(), 200, None)?;
            hists[i].hist.add(&run.hist)?;
            hists[i].errors += run.errors;
        }
    }
    println!(
        "{:<16} {:<38} {:>8} {:>9} {:>9} {:>9} {:>9} {:>15}",
        "upstream", "filter", "n", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "added p99 µs"
    );
    for (i, l) in listeners.iter().enumerate() {
        let h = &hists[i].hist;
        let none = &hists[find(Filter::None, l.upstream).unwrap_or(0)].hist;
        println!(
            "{:<16} {:<38} {:>8} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>15.0}{}",
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

    // Approve-required → pending, real approval service (hold 0), each request a new
    // approval: an external destination (not in `data.exports.internal_destinations`)
    // that no other request of the run uses.
    let airlock = direct(Filter::Airlock)?;
    let export = |run: &str, agent: &str, n: u64| {
        let body = format!(
            "{{\"format\":\"csv\",\"destination\":{{\"uri\":\"s3://partner-bench-{stamp}-{run}-{n}\"}},\"rows\":{n}}}"
        );
        post_request(EXPORT_PATH, agent, &body)
    };
    let first = send_raw(airlock, &export("first", AGENT, 0), Duration::from_secs(10))?;
    if first.status != 403 || first.problem_type().as_deref() != Some(PENDING) {
        bail!("the approve-required POST is not pending: {} {}", first.status, first.text());
    }
    let (pending_rate, pending_secs) = (20, 5);
    let paced = open_loop(airlock, pending_rate, pending_secs, 1, &|n| export("paced", AGENT, n), 403, Some(PENDING))?;
    print_latency(
        &format!(
            "\n== approve-required POST → 403 approval-pending, real approval service (SQLite), {pending_rate} req/s for {pending_secs} s on one connection, each a new approval =="
        ),
        &paced,
    );
    let limit = Duration::from_secs(60);
    let sequential = back_to_back(airlock, SEQUENTIAL, &|n| export("seq", AGENT, n), 403, Some(PENDING), limit)?;
    print_latency(
        &format!("== the same, {SEQUENTIAL} requests back to back (one agent, one connection), each a new approval =="),
        &sequential,
    );
    let concurrent = concurrent_agents(
        airlock,
        CONCURRENT_AGENTS,
        PER_AGENT,
        &|a, n| export("conc", &agents[usize::try_from(a).unwrap_or(0)], n),
        403,
        Some(PENDING),
        limit,
    )?;
    print_latency(
        &format!(
            "== the same, {CONCURRENT_AGENTS} concurrent agents (own ids and connections), {PER_AGENT} requests each back to back, each a new approval =="
        ),
        &concurrent,
    );

    // Memory, measured before the benchmark Envoy started (separate Envoys, one listener).
    println!(
        "\n== Envoy resident memory (VmRSS after ready + 1,000 allowed GETs), one listener per Envoy, all CPUs =="
    );
    println!(
        "{:<22} {:>10} {:>10} {:>14} {:>17} {:>18} {:>13}",
        "listener", "1 worker", "2 workers", "vs floor (1w)", "per extra worker", "… above the floor", "ready 1w/2w"
    );
    let floor_mem = memory.iter().find(|m| m.filter == Filter::Floor).ok_or_else(|| anyhow!("no floor memory"))?;
    let extra = |m: &Memory| m.rss[1] - m.rss[0];
    for m in &memory {
        println!(
            "{:<22} {:>6.1} MiB {:>6.1} MiB {:>10.1} MiB {:>13.1} MiB {:>14.1} MiB {:>6.2}/{:.2} s",
            m.label,
            m.rss[0],
            m.rss[1],
            m.rss[0] - floor_mem.rss[0],
            extra(m),
            extra(m) - extra(floor_mem),
            m.ready[0].as_secs_f64(),
            m.ready[1].as_secs_f64()
        );
    }

    // Issue 12's targets.
    let above_floor = |f: Filter, u: Upstream| -> Option<f64> {
        let t = at(f, u)?;
        let fl = at(Filter::Floor, u)?;
        (t.bad == 0 && fl.bad == 0).then(|| t.cpu_per_req() - fl.cpu_per_req())
    };
    let eval = above_floor(Filter::Eval, Upstream::Direct);
    let eval9 = above_floor(Filter::Eval9, Upstream::Direct);
    let body_above = |size: usize| {
        bodies
            .iter()
            .find(|b| b.size == size)
            .filter(|b| b.floor.bad == 0 && b.airlock.bad == 0)
            .map(|b| b.airlock.cpu_per_req() - b.floor.cpu_per_req())
    };
    let nginx_ratio = match (at(Filter::Airlock, Upstream::Nginx), at(Filter::None, Upstream::Nginx)) {
        (Some(a), Some(n)) if a.bad == 0 && n.bad == 0 => Some(a.rps() / n.rps()),
        _ => None,
    };
    let airlock_mem =
        memory.iter().find(|m| m.filter == Filter::Airlock).ok_or_else(|| anyhow!("no airlock memory"))?;
    let ext_authz = above_floor(Filter::ExtAuthz, Upstream::Direct);
    let rows = vec![
        Target::at_most("every request evaluated, library: Envoy CPU above the floor", 15.0, "µs", eval)
            .note("direct_response, decision_cache.max_entries 0"),
        Target::at_most(
            "every request evaluated, 9× library: ratio to the library's figure",
            1.3,
            "×",
            eval.zip(eval9).map(|(a, b)| b / a),
        )
        .note(format!("9× library {} µs above the floor", eval9.map_or("—".into(), |v| format!("{v:.1}")))),
        Target::at_most("approve route, 1 KB body, pending found: CPU above the floor", 60.0, "µs", body_above(1024))
            .note("floor = empty wasm waiting for the body, same POST"),
        Target::at_most(
            "approve route, 64 KB body, pending found: CPU above the floor",
            200.0,
            "µs",
            body_above(65536),
        )
        .note("floor = empty wasm waiting for the body, same POST"),
        Target::at_most(
            "repeated allow (cache hit): CPU above the floor",
            4.0,
            "µs",
            above_floor(Filter::Airlock, Upstream::Direct),
        )
        .note("direct_response"),
        Target::at_least("repeated allow, nginx upstream: throughput vs no filter", 0.9, "×", nginx_ratio)
            .note("wrk req/s, same run"),
        Target::at_most("pending answer p99, 100 sequential requests", 2.0, "ms", p99_ms(&sequential))
            .note("real service, SQLite, each a new approval"),
        Target::at_most("pending answer p99, 50 concurrent agents", 2.0, "ms", p99_ms(&concurrent))
            .note(format!("{} requests", CONCURRENT_AGENTS * PER_AGENT)),
        Target::at_most(
            "VM memory above the empty-filter floor, one worker",
            40.0,
            "MiB",
            Some(airlock_mem.rss[0] - floor_mem.rss[0]),
        )
        .note(format!("VmRSS {:.1} vs {:.1} MiB", airlock_mem.rss[0], floor_mem.rss[0])),
        Target::at_most(
            "VM memory per extra worker, above the floor's",
            2.0,
            "MiB",
            Some(extra(airlock_mem) - extra(floor_mem)),
        )
        .note(format!("2 − 1 workers: airlock {:.1}, floor {:.1} MiB", extra(airlock_mem), extra(floor_mem))),
        Target::at_most("Envoy ready with the filter", 2.0, "s", ready.first().map(|r| r.1.as_secs_f64()))
            .note("one listener, --concurrency 1, all CPUs"),
    ];
    targets::print(&rows);
    println!(
        "for reference: ext_authz → nginx (the floor of a sidecar design) {} µs of Envoy CPU above the floor",
        ext_authz.map_or("—".into(), |v| format!("{v:.1}"))
    );

    println!("\nload average at end: {}; total {:.0} s", loadavg(), began.elapsed().as_secs_f64());
    drop(envoy);
    drop(service);
    drop(nginx);
    Ok(())
}
