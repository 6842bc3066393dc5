//! Everything the host keeps for one VM, as Envoy keeps it: contexts, maps, buffers,
//! properties, callouts, metrics, timers, shared data, the clock and the log. It lives in
//! the wasmtime `Store`, so hostcalls reach it through `Caller::data_mut`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use wasmtime::{Memory, StoreLimits, TypedFunc};

use super::abi::StreamType;
use super::callout::{CallResponse, Callout};
use super::clock::Clock;
use super::headers::RepeatedHeaderGet;
use super::logs::{LogEntry, LogLevel, LogSource};
use super::metrics::Metrics;
use super::shared::{SharedData, SharedQueues};
use super::stream::{LocalReply, StreamState};

/// Guest exports the hostcalls themselves need.
#[derive(Default)]
pub(crate) struct GuestHandles {
    pub memory: Option<Memory>,
    pub allocate: Option<TypedFunc<i32, i32>>,
}

/// Effects Envoy defers until the outermost VM call returns (`addAfterVmCallAction`).
#[derive(Debug)]
pub(crate) enum Deferred {
    Continue {
        context: u32,
        stream: StreamType,
    },
    /// `proxy_close_stream` of the request or the response: the HTTP stream is reset.
    Close {
        context: u32,
    },
    LocalReply {
        context: u32,
        reply: LocalReply,
    },
    QueueReady {
        root: u32,
        token: u32,
    },
}

pub(crate) enum ContextKind {
    Root,
    Http(Rc<RefCell<StreamState>>),
}

/// Settings fixed when the host is created.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub repeated_header_get: RepeatedHeaderGet,
    /// `None`: every cluster name exists.
    pub clusters: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    pub vm_id: String,
}

pub(crate) struct HostState {
    pub limits: StoreLimits,
    pub guest: GuestHandles,
    pub settings: Settings,
    /// `_initialize` is running: Envoy only allows logging, WASI basics.
    pub initializing: bool,
    /// The context the host called into.
    pub current_context: u32,
    /// Set by `proxy_set_effective_context`; reset on every call into the guest.
    pub effective_context: u32,
    pub root_id: u32,
    pub contexts: BTreeMap<u32, ContextKind>,
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    /// `on_configure` is running (Envoy only exposes the plugin configuration then).
    pub configuring: bool,
    /// Properties for every context, keyed by the NUL-joined path.
    pub properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub pending_callouts: BTreeMap<u32, Callout>,
    /// Monotonic deadline (ns) of each pending callout with a timeout.
    pub callout_deadlines: BTreeMap<u32, u64>,
    pub all_callouts: Vec<Callout>,
    pub next_token: u32,
    /// Set only while `proxy_on_http_call_response` runs for a callout that got one.
    pub call_response: Option<CallResponse>,
    /// What `proxy_get_status` reports.
    pub status: (u32, String),
    pub metrics: Metrics,
    pub tick_period: Option<Duration>,
    /// Monotonic time (ns) of the next tick.
    pub next_tick: Option<u64>,
    pub shared_data: SharedData,
    pub queues: SharedQueues,
    pub clock: Clock,
    pub logs: Vec<LogEntry>,
    pub log_level: LogLevel,
    rng: u64,
    pub deferred: Vec<Deferred>,
    /// Calls the harness answered with a stub (gRPC, foreign functions, odd WASI).
    pub notes: Vec<String>,
}

impl HostState {
    pub(crate) fn new(
        settings: Settings,
        clock: Clock,
        log_level: LogLevel,
        seed: u64,
        limits: StoreLimits,
    ) -> HostState {
        HostState {
            limits,
            guest: GuestHandles::default(),
            settings,
            initializing: false,
            current_context: 0,
            effective_context: 0,
            root_id: 0,
            contexts: BTreeMap::new(),
            vm_configuration: Vec::new(),
            plugin_configuration: Vec::new(),
            configuring: false,
            properties: BTreeMap::new(),
            pending_callouts: BTreeMap::new(),
            callout_deadlines: BTreeMap::new(),
            all_callouts: Vec::new(),
            next_token: 0,
            call_response: None,
            status: (0, String::new()),
            metrics: Metrics::default(),
            tick_period: None,
            next_tick: None,
            shared_data: SharedData::default(),
            queues: SharedQueues::default(),
            clock,
            logs: Vec::new(),
            log_level,
            rng: seed,
            deferred: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The context hostcalls act on: the effective one if it still exists (Envoy's
    /// `contextOrEffectiveContext`).
    pub(crate) fn active_context(&self) -> u32 {
        if self.effective_context != 0 && self.contexts.contains_key(&self.effective_context) {
            self.effective_context
        } else {
            self.current_context
        }
    }

    pub(crate) fn stream(&self, id: u32) -> Option<Rc<RefCell<StreamState>>> {
        match self.contexts.get(&id) {
            Some(ContextKind::Http(s)) => Some(Rc::clone(s)),
            _ => None,
        }
    }

    pub(crate) fn active_stream(&self) -> Option<Rc<RefCell<StreamState>>> {
        self.stream(self.active_context())
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: String, source: LogSource) {
        let context_id = self.active_context();
        self.logs.push(LogEntry { level, message, context_id, source });
    }

    /// Records a stubbed or suspicious call once.
    pub(crate) fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Deterministic bytes for `random_get` (splitmix64), so runs repeat.
    pub(crate) fn fill_random(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let bytes = z.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
