//! The core's host interfaces implemented over proxy-wasm hostcalls.

use crate::metrics::{Counter, Metrics, EVAL_TIME_US};
use crate::source::RequestSource;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MapType, MetricType};
use std::collections::BTreeMap;

/// The current request, read one value per hostcall.
pub struct HostRequest;

impl RequestSource for HostRequest {
    fn header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpRequestHeaders, name).ok().flatten()
    }
    fn headers(&self) -> Vec<(String, String)> {
        hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default()
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
