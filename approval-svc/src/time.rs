//! Wall-clock helpers: milliseconds since the Unix epoch and RFC 3339 text.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// `ms` as RFC 3339 UTC with milliseconds (`2026-11-21T19:30:00.000Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    humantime::format_rfc3339_millis(to_system_time(ms)).to_string()
}

/// `ms` as RFC 3339 UTC, whole seconds (`2026-11-21T19:30:00Z`).
pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_seconds(to_system_time(ms)).to_string()
}

fn to_system_time(ms: i64) -> SystemTime {
    let ms = u64::try_from(ms.max(0)).unwrap_or(0);
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A duration in whole milliseconds, saturating.
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Durations in `airlock.toml`, written as humantime text (`"30s"`, `"15m"`).
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// For `#[serde(with = "crate::time::duration_text")]`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("duration {text:?}: {e}")))
    }
}
