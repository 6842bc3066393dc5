//! The core's host interfaces implemented over proxy-wasm hostcalls.

use airlock_filter::metrics::{Counter, Metrics, EVAL_TIME_US};
use airlock_filter::source::{Headers, RequestSource};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MapType, MetricType, Status};
use std::collections::BTreeMap;

/// The current request's headers, read with one hostcall and kept as the host
/// serialized them (`airlock_filter::source::Headers`).
pub struct HostRequest {
    headers: Headers,
}

#[link(wasm_import_module = "env")]
extern "C" {
    // The SDK's own declaration of this import is private, and its readers build a
    // `String` and a `Vec` per header; this one hands back the map as one buffer.
    fn proxy_get_header_map_pairs(map_type: MapType, data: *mut *mut u8, size: *mut usize) -> Status;
}

impl HostRequest {
    /// Reads the request headers. Anything unexpected yields no headers at all, which
    /// the core refuses (no `:method`): failing closed.
    pub fn read() -> HostRequest {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: the host writes a pointer and a length; the buffer was allocated
        // through this module's `proxy_on_memory_allocate` (the SDK's, a `Vec<u8>` with
        // capacity `size`), so it is ours to take back as a `Vec` exactly as the SDK does.
        let bytes = unsafe {
            match proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) {
                Status::Ok if !data.is_null() => Vec::from_raw_parts(data, size, size),
                _ => Vec::new(),
            }
        };
        let headers = Headers::from_serialized(&bytes).unwrap_or_else(|e| {
            log(LogLevel::Error, &format!("airlock: unreadable request header map: {}", e.0));
            Headers::default()
        });
        HostRequest { headers }
    }
}

impl RequestSource for HostRequest {
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }
}

/// Envoy stats, defined once per configuration.
pub struct HostMetrics {
    counters: BTreeMap<Counter, u32>,
    eval_time: Option<u32>,
}

impl HostMetrics {
    pub fn define() -> HostMetrics {
        let counters = Counter::ALL
            .iter()
            .filter_map(|c| hostcalls::define_metric(MetricType::Counter, c.name()).ok().map(|id| (*c, id)))
            .collect();
        let eval_time = hostcalls::define_metric(MetricType::Histogram, EVAL_TIME_US).ok();
        HostMetrics { counters, eval_time }
    }
}

impl Metrics for HostMetrics {
    fn count(&mut self, counter: Counter) {
        if let Some(id) = self.counters.get(&counter) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
    fn eval_time_us(&mut self, micros: u64) {
        if let Some(id) = self.eval_time {
            let _ = hostcalls::record_metric(id, micros);
        }
    }
}

pub fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}
