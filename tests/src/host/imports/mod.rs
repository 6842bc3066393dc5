//! The functions the module imports: every `env.proxy_*` hostcall of ABI 0.2.1 (the Rust
//! SDK 0.2.5 imports all of them, used or not) and the WASI preview1 calls Envoy provides.
//! Each submodule covers one area; this file wires them into a wasmtime `Linker` and
//! refuses modules that import anything else.

mod buffers;
mod context;
mod http;
mod logging;
mod maps;
mod metrics;
mod properties;
mod shared;
mod stream;
mod time;

use std::collections::BTreeSet;

use anyhow::{bail, Result};
use wasmtime::{Caller, Engine, ExternType, IntoFunc, Linker, Module};

use super::abi::Status;
use super::logs::{LogLevel, LogSource};
use super::memory::{Fault, HostResult};
use super::state::HostState;
use super::wasi;

/// Defines functions on a linker and remembers which, so unknown imports can be named.
pub(crate) struct Registrar<'a> {
    linker: &'a mut Linker<HostState>,
    defined: BTreeSet<(String, String)>,
}

impl Registrar<'_> {
    pub(crate) fn func<Params, Args>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoFunc<HostState, Params, Args>,
    ) -> Result<()> {
        self.linker.func_wrap(module, name, func).map_err(|e| anyhow::anyhow!("defining {module}.{name}: {e}"))?;
        self.defined.insert((module.to_string(), name.to_string()));
        Ok(())
    }

    /// A function whose signature is taken from the module's own import.
    pub(crate) fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: wasmtime::FuncType,
        func: impl Fn(Caller<'_, HostState>, &[wasmtime::Val], &mut [wasmtime::Val]) -> wasmtime::Result<()>
            + Send
            + Sync
            + 'static,
    ) -> Result<()> {
        self.linker.func_new(module, name, ty, func).map_err(|e| anyhow::anyhow!("defining {module}.{name}: {e}"))?;
        self.defined.insert((module.to_string(), name.to_string()));
        Ok(())
    }

    pub(crate) fn is_defined(&self, module: &str, name: &str) -> bool {
        self.defined.contains(&(module.to_string(), name.to_string()))
    }
}

/// A linker with every hostcall defined, or an error naming each import of `module` that
/// neither this host nor Envoy provides.
pub(crate) fn linker(engine: &Engine, module: &Module) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    let mut reg = Registrar { linker: &mut linker, defined: BTreeSet::new() };
    logging::define(&mut reg)?;
    time::define(&mut reg)?;
    maps::define(&mut reg)?;
    buffers::define(&mut reg)?;
    properties::define(&mut reg)?;
    stream::define(&mut reg)?;
    http::define(&mut reg)?;
    metrics::define(&mut reg)?;
    shared::define(&mut reg)?;
    context::define(&mut reg)?;
    wasi::define(&mut reg, module)?;

    let unknown: Vec<String> = module
        .imports()
        .filter(|i| !reg.is_defined(i.module(), i.name()))
        .map(|i| format!("{}.{} ({})", i.module(), i.name(), describe(&i.ty())))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the module imports {} thing(s) that neither this host nor Envoy provides:\n  {}",
            unknown.len(),
            unknown.join("\n  ")
        );
    }
    Ok(linker)
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => format!("func {f}"),
        ExternType::Memory(_) => "memory".into(),
        ExternType::Table(_) => "table".into(),
        ExternType::Global(_) => "global".into(),
        ExternType::Tag(_) => "tag".into(),
    }
}

/// Runs one `proxy_*` hostcall and turns its result into the status the guest sees. While
/// `_initialize` runs, Envoy refuses every proxy-wasm call but `proxy_log`.
pub(crate) fn hostcall<'a>(
    caller: &mut Caller<'a, HostState>,
    name: &str,
    body: impl FnOnce(&mut Caller<'a, HostState>) -> HostResult,
) -> wasmtime::Result<i32> {
    if caller.data().initializing && name != "proxy_log" {
        caller.data_mut().log(
            LogLevel::Error,
            format!("Attempted call to restricted proxy-wasm capability: {name}"),
            LogSource::Host,
        );
        return Ok(Status::InternalFailure as i32);
    }
    match body(caller) {
        Ok(()) => Ok(Status::Ok as i32),
        Err(Fault::Status(status)) => Ok(status as i32),
        Err(Fault::Trap(e)) => Err(e),
    }
}
