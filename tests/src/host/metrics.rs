//! Metrics as Envoy keeps them for a Wasm VM: ids carry the type in their low two bits,
//! defining a name twice yields a new id for the same stat, counters only go up.

use std::collections::BTreeMap;

use super::abi::Status;

/// One stat's value, by the name the filter defined it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(u64),
    /// Every recorded value, in order.
    Histogram(Vec<u64>),
}

const TYPE_MASK: u32 = 0x3;
const COUNTER: u32 = 0;
const GAUGE: u32 = 1;
const HISTOGRAM: u32 = 2;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    names: BTreeMap<u32, String>,
    values: BTreeMap<String, MetricValue>,
    next: u32,
}

impl Metrics {
    pub(crate) fn define(&mut self, kind: i32, name: &str) -> Result<u32, Status> {
        let kind = u32::try_from(kind).map_err(|_| Status::BadArgument)?;
        let initial = match kind {
            COUNTER => MetricValue::Counter(0),
            GAUGE => MetricValue::Gauge(0),
            HISTOGRAM => MetricValue::Histogram(Vec::new()),
            _ => return Err(Status::BadArgument),
        };
        self.next += 1;
        let id = (self.next << 2) | kind;
        self.names.insert(id, name.to_string());
        let existing = self.values.entry(name.to_string()).or_insert(initial);
        if id_kind(existing) != kind {
            // Envoy would keep two stats of different types apart; one name, one type
            // here keeps test assertions unambiguous.
            return Err(Status::BadArgument);
        }
        Ok(id)
    }

    fn slot(&mut self, id: u32) -> Result<&mut MetricValue, Status> {
        let name = self.names.get(&id).ok_or(Status::NotFound)?;
        self.values.get_mut(name).ok_or(Status::NotFound)
    }

    pub(crate) fn increment(&mut self, id: u32, offset: i64) -> Result<(), Status> {
        match (id & TYPE_MASK, self.slot(id)?) {
            (COUNTER, MetricValue::Counter(v)) if offset > 0 => {
                *v = v.saturating_add(offset.unsigned_abs());
                Ok(())
            }
            (GAUGE, MetricValue::Gauge(v)) => {
                *v = if offset >= 0 {
                    v.saturating_add(offset.unsigned_abs())
                } else {
                    v.saturating_sub(offset.unsigned_abs())
                };
                Ok(())
            }
            _ => Err(Status::BadArgument),
        }
    }

    pub(crate) fn record(&mut self, id: u32, value: u64) -> Result<(), Status> {
        match self.slot(id)? {
            MetricValue::Counter(v) => *v = v.saturating_add(value),
            MetricValue::Gauge(v) => *v = value,
            MetricValue::Histogram(values) => values.push(value),
        }
        Ok(())
    }

    pub(crate) fn get(&mut self, id: u32) -> Result<u64, Status> {
        match self.slot(id)? {
            MetricValue::Counter(v) | MetricValue::Gauge(v) => Ok(*v),
            MetricValue::Histogram(_) => Err(Status::BadArgument),
        }
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&MetricValue> {
        self.values.get(name)
    }

    pub(crate) fn all(&self) -> &BTreeMap<String, MetricValue> {
        &self.values
    }
}

fn id_kind(value: &MetricValue) -> u32 {
    match value {
        MetricValue::Counter(_) => COUNTER,
        MetricValue::Gauge(_) => GAUGE,
        MetricValue::Histogram(_) => HISTOGRAM,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn behaves_like_envoy() {
        let mut m = Metrics::default();
        let c = m.define(0, "airlock.allow").unwrap();
        let c2 = m.define(0, "airlock.allow").unwrap();
        assert_ne!(c, c2);
        m.increment(c, 2).unwrap();
        m.increment(c2, 1).unwrap();
        assert_eq!(m.get(c).unwrap(), 3);
        assert_eq!(m.increment(c, 0), Err(Status::BadArgument));
        assert_eq!(m.increment(c, -1), Err(Status::BadArgument));
        let h = m.define(2, "airlock.eval_us").unwrap();
        m.record(h, 7).unwrap();
        m.record(h, 9).unwrap();
        assert_eq!(m.get(h), Err(Status::BadArgument));
        assert_eq!(m.by_name("airlock.eval_us"), Some(&MetricValue::Histogram(vec![7, 9])));
        assert_eq!(m.increment(12345, 1), Err(Status::NotFound));
        assert_eq!(m.define(3, "x"), Err(Status::BadArgument));
    }
}
