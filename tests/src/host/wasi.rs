//! WASI preview1, by hand: the calls a Rust `wasm32-wasip1` module makes at run time
//! (random, clocks, environment, stdout/stderr, exit, yield) behave as in Envoy; the rest
//! of the set Envoy registers are honest stubs that return an error and are noted. A
//! WASI import outside Envoy's set makes loading fail (see `imports::linker`).

use anyhow::Result;
use wasmtime::{Caller, Module, Val};

use super::abi::len_u32;
use super::imports::Registrar;
use super::logs::{LogLevel, LogSource};
use super::memory::{addr, read, write, write_u32, write_u64, Fault, HostResult};
use super::state::HostState;

const MODULES: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const ENOENT: i32 = 44;
const ENOSYS: i32 = 52;
const ENOTSUP: i32 = 58;

/// The rest of what proxy-wasm-cpp-host registers (`FOR_ALL_WASI_FUNCTIONS`), with the
/// error each returns here. There are no files or sockets, so nothing pretends to work.
const STUBS: [(&str, i32); 33] = [
    ("fd_close", EBADF),
    ("fd_seek", EBADF),
    ("fd_tell", EBADF),
    ("fd_sync", EBADF),
    ("fd_datasync", EBADF),
    ("fd_advise", EBADF),
    ("fd_allocate", EBADF),
    ("fd_fdstat_set_flags", ENOSYS),
    ("fd_fdstat_set_rights", EBADF),
    ("fd_filestat_get", EBADF),
    ("fd_filestat_set_size", EBADF),
    ("fd_filestat_set_times", EBADF),
    ("fd_pread", ENOSYS),
    ("fd_pwrite", EBADF),
    ("fd_readdir", EBADF),
    ("fd_renumber", EBADF),
    ("fd_prestat_get", EBADF),
    ("fd_prestat_dir_name", EBADF),
    ("path_open", ENOENT),
    ("path_filestat_get", ENOTSUP),
    ("path_create_directory", ENOTSUP),
    ("path_filestat_set_times", ENOTSUP),
    ("path_link", ENOTSUP),
    ("path_readlink", ENOTSUP),
    ("path_remove_directory", ENOTSUP),
    ("path_rename", ENOTSUP),
    ("path_symlink", ENOTSUP),
    ("path_unlink_file", ENOTSUP),
    ("poll_oneoff", ENOSYS),
    ("sock_accept", ENOTSUP),
    ("sock_recv", ENOTSUP),
    ("sock_send", ENOTSUP),
    ("sock_shutdown", ENOTSUP),
];

/// `proc_exit` unwinds the guest with this error.
#[derive(Debug)]
pub struct ProcExit(pub i32);

impl std::fmt::Display for ProcExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the module called proc_exit({})", self.0)
    }
}

impl std::error::Error for ProcExit {}

pub(crate) fn define(reg: &mut Registrar<'_>, module: &Module) -> Result<()> {
    for m in MODULES {
        define_implemented(reg, m)?;
    }
    // Stubs are defined with the module's own signature for each import it has.
    for import in module.imports() {
        if !MODULES.contains(&import.module()) {
            continue;
        }
        let Some((name, errno)) = STUBS.iter().find(|(n, _)| *n == import.name()) else {
            continue;
        };
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        let returns_errno = ty.results().len() == 1 && matches!(ty.results().next(), Some(wasmtime::ValType::I32));
        if !returns_errno {
            continue; // left undefined, so loading reports it
        }
        let (errno, label) = (*errno, format!("{}.{name}", import.module()));
        reg.func_new(import.module(), name, ty, move |mut c, _params, results| {
            c.data_mut().note(format!("WASI {label} is a stub here (returned errno {errno})"));
            if let Some(slot) = results.first_mut() {
                *slot = Val::I32(errno);
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Turns a body's result into an errno; a bad guest pointer is `EFAULT`.
fn errno(result: HostResult<i32>) -> wasmtime::Result<i32> {
    match result {
        Ok(code) => Ok(code),
        Err(Fault::Status(_)) => Ok(EFAULT),
        Err(Fault::Trap(e)) => Err(e),
    }
}

fn define_implemented(reg: &mut Registrar<'_>, m: &str) -> Result<()> {
    reg.func(m, "random_get", |mut c: Caller<'_, HostState>, buf: i32, len: i32| {
        errno((|| {
            let mut bytes = vec![0u8; addr(len)];
            c.data_mut().fill_random(&mut bytes);
            write(&mut c, buf, &bytes)?;
            Ok(ESUCCESS)
        })())
    })?;
    reg.func(m, "clock_time_get", |mut c: Caller<'_, HostState>, id: i32, _precision: i64, out: i32| {
        errno((|| {
            let now = match id {
                0 => c.data().clock.wall_nanos(),
                1 => c.data().clock.monotonic_nanos(),
                _ => return Ok(ENOTSUP),
            };
            write_u64(&mut c, out, now)?;
            Ok(ESUCCESS)
        })())
    })?;
    reg.func(m, "clock_res_get", |mut c: Caller<'_, HostState>, id: i32, out: i32| {
        errno((|| {
            if id != 0 && id != 1 {
                return Ok(ENOTSUP);
            }
            write_u64(&mut c, out, 1)?;
            Ok(ESUCCESS)
        })())
    })?;
    reg.func(m, "environ_sizes_get", |mut c: Caller<'_, HostState>, count_out: i32, size_out: i32| {
        errno((|| {
            let env = c.data().settings.environment.clone();
            let size: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            write_u32(&mut c, count_out, len_u32(env.len()))?;
            write_u32(&mut c, size_out, len_u32(size))?;
            Ok(ESUCCESS)
        })())
    })?;
    reg.func(m, "environ_get", |mut c: Caller<'_, HostState>, array: i32, buf: i32| {
        errno((|| {
            let env = c.data().settings.environment.clone();
            let (mut slot, mut at) = (array as u32, buf as u32);
            for (k, v) in env {
                let entry = format!("{k}={v}\0");
                write_u32(&mut c, slot as i32, at)?;
                write(&mut c, at as i32, entry.as_bytes())?;
                at = at.wrapping_add(len_u32(entry.len()));
                slot = slot.wrapping_add(4);
            }
            Ok(ESUCCESS)
        })())
    })?;
    reg.func(m, "args_get", |_c: Caller<'_, HostState>, _argv: i32, _buf: i32| Ok::<i32, wasmtime::Error>(ESUCCESS))?;
    reg.func(m, "args_sizes_get", |mut c: Caller<'_, HostState>, argc_out: i32, size_out: i32| {
        errno((|| {
            write_u32(&mut c, argc_out, 0)?;
            write_u32(&mut c, size_out, 0)?;
            Ok(ESUCCESS)
        })())
    })?;
    reg.func(m, "fd_write", |mut c: Caller<'_, HostState>, fd: i32, iovs: i32, iovs_len: i32, written_out: i32| {
        errno(fd_write(&mut c, fd, iovs, iovs_len, written_out))
    })?;
    reg.func(m, "fd_read", |mut c: Caller<'_, HostState>, fd: i32, _iovs: i32, _len: i32, _read_out: i32| {
        c.data_mut().note(format!("WASI fd_read({fd}): there is nothing to read"));
        Ok::<i32, wasmtime::Error>(ENOSYS)
    })?;
    reg.func(m, "fd_fdstat_get", |mut c: Caller<'_, HostState>, fd: i32, out: i32| {
        errno((|| {
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            // filetype unknown, no flags, rights = FD_WRITE only, as Envoy reports.
            let mut stat = [0u8; 24];
            stat[8] = 64;
            write(&mut c, out, &stat)?;
            Ok(ESUCCESS)
        })())
    })?;
    reg.func(m, "sched_yield", |_c: Caller<'_, HostState>| Ok::<i32, wasmtime::Error>(ESUCCESS))?;
    reg.func(m, "proc_exit", |_c: Caller<'_, HostState>, code: i32| {
        Err::<(), wasmtime::Error>(wasmtime::Error::from(ProcExit(code)))
    })?;
    Ok(())
}

/// stdout and stderr go to the captured log (info and error, trailing newline dropped,
/// as Envoy's `writevImpl`); any other descriptor is `EBADF`.
fn fd_write(c: &mut Caller<'_, HostState>, fd: i32, iovs: i32, iovs_len: i32, written_out: i32) -> HostResult<i32> {
    let (level, source) = match fd {
        1 => (LogLevel::Info, LogSource::Stdout),
        2 => (LogLevel::Error, LogSource::Stderr),
        _ => return Ok(EBADF),
    };
    let mut text = Vec::new();
    for i in 0..addr(iovs_len) {
        let at = (iovs as u32).wrapping_add(len_u32(i * 8)) as i32;
        let iov = read(c, at, 8)?;
        let word =
            |n: usize| iov.get(n..n + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_le_bytes).unwrap_or(0);
        let (buf, len) = (word(0), word(4));
        if len != 0 {
            text.extend(read(c, buf as i32, len as i32)?);
        }
    }
    let written = text.len();
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    if written != 0 {
        let message = String::from_utf8_lossy(&text).into_owned();
        c.data_mut().log(level, message, source);
    }
    write_u32(c, written_out, len_u32(written))?;
    Ok(ESUCCESS)
}
