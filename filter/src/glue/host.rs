//! The core's host interfaces implemented over proxy-wasm hostcalls.

use crate::metrics::{Counter, Metrics, EVAL_TIME_US};
use crate::source::RequestSource;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MapType, MetricType};
use std::collections::BTreeMap;

/// The current request's headers, read with one hostcall.
///
/// One `get_map` is cheaper than a `get_map_value` per needed header, and it is the
/// only way to see repeats: Envoy's single-value read returns just the first value,
/// which would let `x-airlock-agent: a` + `x-airlock-agent: b` pass as `a`. Values are
/// read as bytes (the SDK's string reads panic on non-UTF-8) and decoded lossily;
/// the core refuses U+FFFD wherever a value matters for security.
pub struct HostRequest {
    headers: Vec<(String, String)>,
}

impl HostRequest {
    pub fn read() -> HostRequest {
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        HostRequest { headers }
    }
}

impl RequestSource for HostRequest {
    fn header(&self, name: &str) -> Option<String> {
        crate::source::joined(&self.headers, name)
    }
    fn headers(&self) -> &[(String, String)] {
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
