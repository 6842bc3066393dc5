//! `Host`: one VM running the filter, driven the way Envoy drives it. Creation mirrors
//! Envoy's plugin start (`_initialize`, root context 1, `on_vm_start`, `on_configure`);
//! every call into the guest goes through `Host::call`, which applies deferred effects
//! and turns a trap into a failed VM (FAIL_CLOSED: every unsettled and later request
//! gets 503 and never reaches the upstream).

mod dispatch;
mod events;
mod observe;
mod traffic;

use std::collections::VecDeque;
use std::time::SystemTime;

use anyhow::{anyhow, bail, Result};
use wasmtime::{Module, Store, StoreLimitsBuilder};

use super::clock::Clock;
use super::guest::Exports;
use super::headers::RepeatedHeaderGet;
use super::imports;
use super::logs::LogLevel;
use super::module::{self, WasmSource};
use super::state::{ContextKind, HostState, Settings};
use super::trap::GuestTrap;
use super::wasi::ProcExit;

/// How the host is set up; `HostOptions::default()` is the real filter with Envoy's
/// defaults and the clock at the current time.
#[derive(Clone, Debug)]
pub struct HostOptions {
    pub wasm: WasmSource,
    /// `vm_config.configuration` (the `VmConfiguration` buffer).
    pub vm_configuration: Vec<u8>,
    /// Where the (frozen) clock starts.
    pub start_time: SystemTime,
    /// What `proxy_get_log_level` reports; every line is captured regardless.
    pub log_level: LogLevel,
    /// Clusters `dispatch_http_call` may name; `None` accepts any name.
    pub clusters: Option<Vec<String>>,
    /// `vm_config.environment_variables`.
    pub environment: Vec<(String, String)>,
    /// Seed for `random_get` (deterministic, so runs repeat).
    pub random_seed: u64,
    pub repeated_header_get: RepeatedHeaderGet,
    pub vm_id: String,
    /// The `plugin_name` and `plugin_root_id` properties.
    pub plugin_name: String,
    pub root_id: String,
    /// Guest memory cap (Envoy/proxy-wasm-cpp-host allow 1 GiB).
    pub memory_limit_bytes: usize,
}

impl Default for HostOptions {
    fn default() -> HostOptions {
        HostOptions {
            wasm: WasmSource::Filter,
            vm_configuration: Vec::new(),
            start_time: SystemTime::now(),
            log_level: LogLevel::Trace,
            clusters: None,
            environment: Vec::new(),
            random_seed: 0x4149_524c_4f43_4b21,
            repeated_header_get: RepeatedHeaderGet::FirstValue,
            vm_id: String::new(),
            plugin_name: "airlock".into(),
            root_id: String::new(),
            memory_limit_bytes: 1 << 30,
        }
    }
}

/// One VM running the filter. Not `Send`: a test drives it from one thread, as Envoy
/// drives a VM from one worker.
pub struct Host {
    store: Store<HostState>,
    exports: Exports,
    module: Module,
    root_id: u32,
    next_context: u32,
    configured: bool,
    failure: Option<GuestTrap>,
    /// `proxy_on_queue_ready` notifications waiting for the current operation to end.
    queue_ready: VecDeque<(u32, u32)>,
    pub(crate) requests_sent: u64,
}

impl Host {
    /// Loads the built filter with `plugin_config` and fails unless `on_configure`
    /// accepted it (the error carries the filter's log).
    pub fn new(plugin_config: impl AsRef<[u8]>) -> Result<Host> {
        let host = Host::try_new(plugin_config)?;
        if !host.configured {
            bail!(
                "the filter refused its configuration{}; its log:\n{}",
                host.failure.as_ref().map(|f| format!(" ({f})")).unwrap_or_default(),
                host.logs_text()
            );
        }
        Ok(host)
    }

    /// Like `new`, but a refused configuration is `Ok` with `configured() == false`.
    pub fn try_new(plugin_config: impl AsRef<[u8]>) -> Result<Host> {
        Host::with_options(plugin_config, HostOptions::default())
    }

    /// Loads the module, starts the VM and configures root context 1. Errors are about
    /// loading (missing module, unknown imports, a trap in `_initialize`); whether the
    /// configuration was accepted is `configured()`.
    pub fn with_options(plugin_config: impl AsRef<[u8]>, options: HostOptions) -> Result<Host> {
        let module = module::load(&options.wasm)?;
        let engine = module.engine().clone();
        let linker = imports::linker(&engine, &module)?;
        let settings = Settings {
            repeated_header_get: options.repeated_header_get,
            clusters: options.clusters.clone(),
            environment: options.environment.clone(),
            vm_id: options.vm_id.clone(),
        };
        let limits = StoreLimitsBuilder::new().memory_size(options.memory_limit_bytes).build();
        let state = HostState::new(
            settings,
            Clock::starting_at(options.start_time),
            options.log_level,
            options.random_seed,
            limits,
        );
        let mut store = Store::new(&engine, state);
        store.limiter(|s| &mut s.limits);
        let instance = linker
            .instantiate(&mut store, &module)
            .map_err(|e| anyhow!("instantiating the module: {}", anyhow::Error::from(e)))?;
        let memory = instance.get_memory(&mut store, "memory");
        let allocate = instance.get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate").ok();
        let exports = Exports::resolve(&mut store, &instance)?;
        {
            let state = store.data_mut();
            state.guest.memory = memory;
            state.guest.allocate = allocate;
            state.vm_configuration = options.vm_configuration.clone();
            state.plugin_configuration = plugin_config.as_ref().to_vec();
            for (path, value) in [
                ("plugin_name", options.plugin_name.as_bytes()),
                ("plugin_root_id", options.root_id.as_bytes()),
                ("plugin_vm_id", options.vm_id.as_bytes()),
            ] {
                state.properties.insert(path.as_bytes().to_vec(), value.to_vec());
            }
        }
        let mut host = Host {
            store,
            exports,
            module,
            root_id: 1,
            next_context: 2,
            configured: false,
            failure: None,
            queue_ready: VecDeque::new(),
            requests_sent: 0,
        };
        host.initialize()?;
        host.start_root(plugin_config.as_ref());
        host.pump().ok();
        Ok(host)
    }

    /// `_initialize` (then `main` if exported), or `_start`, with proxy-wasm calls
    /// restricted as Envoy restricts them. A trap here is a load error.
    fn initialize(&mut self) -> Result<()> {
        let root = self.root_id;
        self.store.data_mut().initializing = true;
        let result = if let Some(init) = self.exports.initialize.clone() {
            let main = self.exports.main.clone();
            self.call("_initialize", root, |s| init.call(&mut *s, ())).and_then(|()| match main {
                Some(main) => self.call("main", root, |s| main.call(s, (0, 0)).map(drop)),
                None => Ok(()),
            })
        } else if let Some(start) = self.exports.start.clone() {
            // A command module may exit(0) at the end of main.
            self.call("_start", root, |s| match start.call(&mut *s, ()) {
                Err(e) if e.downcast_ref::<ProcExit>().is_some_and(|x| x.0 == 0) => Ok(()),
                other => other,
            })
        } else {
            Ok(())
        };
        self.store.data_mut().initializing = false;
        result.map_err(|trap| anyhow!("the module failed to initialize: {trap}\n{}", self.logs_text()))
    }

    /// Root context creation, `on_vm_start`, `on_configure`.
    fn start_root(&mut self, plugin_config: &[u8]) {
        let root = self.root_id;
        self.store.data_mut().root_id = root;
        self.store.data_mut().contexts.insert(root, ContextKind::Root);
        let create = self.exports.context_create.clone();
        if self.call("proxy_on_context_create", root, |s| create.call(s, (root as i32, 0))).is_err() {
            return;
        }
        if let Some(vm_start) = self.exports.vm_start.clone() {
            let size = self.store.data().vm_configuration.len() as i32;
            match self.call("proxy_on_vm_start", root, |s| vm_start.call(s, (root as i32, size))) {
                Ok(0) => {
                    self.host_log(LogLevel::Error, "proxy_on_vm_start returned false: VM start failed".into());
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
        self.configured = self.configure(plugin_config).unwrap_or(false);
    }

    /// Runs `on_configure` on the root context with new plugin configuration (what
    /// Envoy does on a config update that keeps the VM). Returns what it answered.
    pub fn configure(&mut self, plugin_config: impl AsRef<[u8]>) -> Result<bool> {
        let root = self.root_id;
        let Some(configure) = self.exports.configure.clone() else {
            return Ok(true);
        };
        let config = plugin_config.as_ref().to_vec();
        let size = config.len() as i32;
        {
            let state = self.store.data_mut();
            state.plugin_configuration = config;
            state.configuring = true;
        }
        let result = self.call("proxy_on_configure", root, |s| configure.call(s, (root as i32, size)));
        self.store.data_mut().configuring = false;
        let accepted = result.map(|r| r != 0)?;
        self.configured = accepted;
        self.pump()?;
        Ok(accepted)
    }

    /// Whether the last `on_configure` accepted the configuration.
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// The trap that failed the VM, if it failed.
    pub fn failure(&self) -> Option<&GuestTrap> {
        self.failure.as_ref()
    }

    pub fn is_failed(&self) -> bool {
        self.failure.is_some()
    }

    pub fn root_context_id(&self) -> u32 {
        self.root_id
    }

    /// `(module, name)` of every import of the loaded module.
    pub fn module_imports(&self) -> Vec<(String, String)> {
        module::imports_of(&self.module)
    }
}
