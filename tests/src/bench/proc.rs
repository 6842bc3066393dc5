//! Processes the harness starts and what it reads about them from /proc.

use std::fs::File;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::bench::LOAD_CPU;
use crate::e2e::ports::free_port;

/// A child in its own process group, stopped (group SIGTERM, then SIGKILL) on drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: &Path) -> anyhow::Result<Proc> {
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

    pub fn pid(&self) -> u32 {
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
pub fn cpus() -> i64 {
    // SAFETY: sysconf has no preconditions.
    i64::from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } as i32)
}

/// `taskset -c <cpus> program`, when taskset exists and the machine has 2+ CPUs.
pub fn pinned(cpus_list: &str, program: &Path) -> Command {
    if cpus() >= 2 && Path::new("/usr/bin/taskset").exists() {
        let mut c = Command::new("/usr/bin/taskset");
        c.arg("-c").arg(cpus_list).arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("{what}: not within {timeout:?}")
}

/// nginx from Debian (one worker, access log off, on the load CPU) serving two ports:
/// `upstream`, the benchmark's upstream, and `authorizer`, the ext_authz listener's
/// authorization server. Both `return 200` without touching a file: the cheapest answer
/// an HTTP server gives, so the ext_authz row measures Envoy's side of the hop.
pub struct Nginx {
    pub proc: Proc,
    pub upstream: u16,
    pub authorizer: u16,
}

pub fn start_nginx(dir: &Path) -> anyhow::Result<Nginx> {
    let port = free_port()?;
    let authorizer = free_port()?;
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n\
           client_body_temp_path {d}/nginx-body; proxy_temp_path {d}/nginx-proxy;\n\
           fastcgi_temp_path {d}/nginx-fastcgi; uwsgi_temp_path {d}/nginx-uwsgi; scgi_temp_path {d}/nginx-scgi;\n\
           server {{ listen 127.0.0.1:{port}; location / {{ default_type text/plain; return 200 \"ok\\n\"; }} }}\n\
           server {{ listen 127.0.0.1:{authorizer}; location / {{ return 200; }} }}\n}}\n"
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
    for p in [port, authorizer] {
        wait_until("nginx listening", Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", p)).is_ok())?;
    }
    Ok(Nginx { proc, upstream: port, authorizer })
}

/// User + system CPU of a process so far (`/proc/<pid>/stat`, all threads).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
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

/// Resident memory of a process in MiB (`VmRSS` of `/proc/<pid>/status`): what the
/// kernel holds for it now, the figure the memory target is about.
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kib as f64 / 1024.0)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
