//! Load generators: wrk (closed loop), a fixed-rate open loop, and back-to-back runs for
//! the pending latency, every one bounded in count and time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;

use crate::bench::proc::pinned;
use crate::bench::{AGENT, HOST, LOAD_CPU};
use crate::e2e::plugin::IDENTITY_HEADER;

// ---------- closed loop: wrk ----------

pub struct WrkRun {
    pub requests: u64,
    pub seconds: f64,
    pub bad: u64,
}

/// What wrk sends: the allowed GET, or (with a script) what the Lua script makes of it.
pub struct WrkLoad<'a> {
    pub path: &'a str,
    /// A Lua script from [`post_script`]: it sets the method and body and counts the
    /// answers that are not what it expects (so a 403 can be the expected answer).
    pub script: Option<&'a Path>,
    /// wrk's connections (`-c`).
    pub connections: u32,
}

/// The allowed GET.
pub const ALLOW_LOAD: WrkLoad<'static> = WrkLoad { path: crate::bench::ALLOW_PATH, script: None, connections: 8 };

/// A wrk Lua script: POST `body_file` as JSON, and count answers whose status is not
/// `expect` or (with `needle`) whose body lacks it. wrk's "Non-2xx" count cannot tell an
/// expected 403 approval-pending from a failure, so the script prints its own count
/// ("unexpected answers: N"), summed over wrk's threads in `done`.
pub fn post_script(body_file: &Path, expect: u16, needle: Option<&str>) -> String {
    let needle = needle.map(|n| format!("{n:?}")).unwrap_or_else(|| "nil".into());
    format!(
        r#"local f = assert(io.open("{}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["content-type"] = "application/json"
local needle = {needle}
unexpected = 0
function response(status, headers, body)
  if status ~= {expect} or (needle and not string.find(body, needle, 1, true)) then
    unexpected = unexpected + 1
  end
end
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("unexpected") end
  io.write("unexpected answers: " .. n .. "\n")
end
"#,
        body_file.display()
    )
}

pub fn wrk(addr: SocketAddr, seconds: u64, load: &WrkLoad) -> anyhow::Result<WrkRun> {
    let mut cmd = pinned(LOAD_CPU, Path::new("/usr/bin/wrk"));
    cmd.args(["-t1", &format!("-c{}", load.connections), &format!("-d{seconds}s")])
        .args(["-H", &format!("Host: {HOST}"), "-H", &format!("{IDENTITY_HEADER}: {AGENT}")])
        .args(["-H", "user-agent: airlock-bench/1"]);
    if let Some(script) = load.script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd
        .arg(format!("http://{addr}{}", load.path))
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
            // With a script, the script's own count says what was unexpected.
            if load.script.is_none() {
                run.bad += n.trim().parse::<u64>()?;
            }
        } else if let Some(n) = line.strip_prefix("unexpected answers:") {
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
    if load.script.is_some() && !text.contains("unexpected answers:") {
        bail!("wrk's Lua script did not report its count:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(run)
}

// ---------- open loop: fixed rate, HDR histogram ----------

pub struct OpenRun {
    pub hist: Histogram<u64>,
    pub errors: u64,
}

impl OpenRun {
    /// An empty run: 1 µs to 60 s, 3 significant digits.
    pub fn empty() -> anyhow::Result<OpenRun> {
        Ok(OpenRun { hist: Histogram::new_with_bounds(1_000, 60_000_000_000, 3)?, errors: 0 })
    }
}

/// `rate` requests/s for `seconds` over `conns` keep-alive connections; each connection
/// sends on a fixed schedule and the latency of a request counts from when it was *meant*
/// to be sent, so a stall shows up in every request it delays (no coordinated omission).
/// An answer counts as an error unless its status is `expect` and, with `body_has`, its
/// body contains that text.
pub fn open_loop(
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
                    let mut run = OpenRun::empty()?;
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
    let mut total = OpenRun::empty()?;
    for r in results {
        let r = r?;
        total.hist.add(&r.hist)?;
        total.errors += r.errors;
    }
    Ok(total)
}

// ---------- back to back: the pending latency of sequential and concurrent agents ----------

/// `n` requests one after another on one keep-alive connection, each sent as soon as the
/// previous answer is in; latency = send → answer. Requests not sent before `limit` has
/// passed count as errors, so a stalled run shows instead of hanging.
pub fn back_to_back(
    addr: SocketAddr,
    n: u64,
    request: &dyn Fn(u64) -> Vec<u8>,
    expect: u16,
    body_has: Option<&str>,
    limit: Duration,
) -> anyhow::Result<OpenRun> {
    let deadline = Instant::now() + limit;
    let mut run = OpenRun::empty()?;
    let mut conn: Option<TcpStream> = None;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..n {
        if Instant::now() >= deadline {
            run.errors += n - i;
            break;
        }
        let req = request(i);
        let sent = Instant::now();
        let ok = exchange(&mut conn, addr, &req, &mut buf, expect, body_has);
        run.hist.saturating_record(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1_000));
        if !ok {
            run.errors += 1;
            conn = None;
        }
    }
    Ok(run)
}

/// `agents` agents at once, each on its own connection running [`back_to_back`] for
/// `per_agent` requests (`request(agent, i)`); all start together, one histogram.
pub fn concurrent_agents(
    addr: SocketAddr,
    agents: u64,
    per_agent: u64,
    request: &(dyn Fn(u64, u64) -> Vec<u8> + Sync),
    expect: u16,
    body_has: Option<&str>,
    limit: Duration,
) -> anyhow::Result<OpenRun> {
    let start = std::sync::Barrier::new(usize::try_from(agents)?);
    let results: Vec<anyhow::Result<OpenRun>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..agents)
            .map(|a| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    back_to_back(addr, per_agent, &|i| request(a, i), expect, body_has, limit)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("agent thread panicked")))).collect()
    });
    let mut total = OpenRun::empty()?;
    for r in results {
        let r = r?;
        total.hist.add(&r.hist)?;
        total.errors += r.errors;
    }
    Ok(total)
}

/// One request/response on a kept-alive connection (opened if needed); true if the
/// answer had status `expect` (and, with `body_has`, a body containing it).
pub fn exchange(
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
