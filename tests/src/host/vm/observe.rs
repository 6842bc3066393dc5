//! What a test can look at: metrics, logs, notes, properties, shared data and queues.

use std::collections::BTreeMap;

use super::Host;
use crate::host::logs::LogEntry;
use crate::host::metrics::MetricValue;

impl Host {
    /// A counter's or gauge's value by the name the filter defined.
    pub fn metric(&self, name: &str) -> Option<u64> {
        match self.store.data().metrics.by_name(name)? {
            MetricValue::Counter(v) | MetricValue::Gauge(v) => Some(*v),
            MetricValue::Histogram(_) => None,
        }
    }

    /// Every value recorded into a histogram.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        match self.store.data().metrics.by_name(name)? {
            MetricValue::Histogram(values) => Some(values.clone()),
            _ => None,
        }
    }

    pub fn metrics(&self) -> BTreeMap<String, MetricValue> {
        self.store.data().metrics.all().clone()
    }

    pub fn logs(&self) -> Vec<LogEntry> {
        self.store.data().logs.clone()
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.store.data().logs.iter().any(|l| l.message.contains(needle))
    }

    /// The whole log, one line per entry (for assertion messages).
    pub fn logs_text(&self) -> String {
        self.store.data().logs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }

    /// Stubbed calls the filter made (gRPC, foreign functions, WASI without an
    /// implementation) and other host-side remarks.
    pub fn notes(&self) -> Vec<String> {
        self.store.data().notes.clone()
    }

    /// Sets a property for every context (e.g. `["node", "id"]`); a request's own
    /// properties take precedence.
    pub fn set_property(&mut self, path: &[&str], value: impl AsRef<[u8]>) {
        self.store.data_mut().properties.insert(path.join("\0").into_bytes(), value.as_ref().to_vec());
    }

    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.store.data().shared_data.get(key).ok()
    }

    pub fn set_shared_data(&mut self, key: &str, value: impl AsRef<[u8]>) {
        // cas 0 always succeeds.
        let _ = self.store.data_mut().shared_data.set(key, value.as_ref().to_vec(), 0);
    }

    /// The items waiting in the shared queue `name`.
    pub fn shared_queue(&self, name: &str) -> Option<Vec<Vec<u8>>> {
        self.store.data().queues.items(name)
    }
}
