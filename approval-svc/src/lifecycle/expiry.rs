//! Deadlines: when a pending approval expires, how long an approved one stays usable.

use std::time::Duration;

use super::Status;
use crate::time::duration_ms;

/// The policy's `reuse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// One redeem.
    Once,
    /// Any number of redeems (same agent, same digest) until this long after approval.
    Window(Duration),
}

impl Reuse {
    /// Parses `once` or `window:<humantime>`; absent means `once`.
    pub fn parse(text: Option<&str>) -> Result<Reuse, String> {
        match text {
            None | Some("once") => Ok(Reuse::Once),
            Some(other) => {
                let Some(span) = other.strip_prefix("window:") else {
                    return Err(format!("reuse {other:?} is neither \"once\" nor \"window:<duration>\""));
                };
                let d = humantime::parse_duration(span).map_err(|e| format!("reuse window {span:?}: {e}"))?;
                if d.is_zero() {
                    return Err("reuse window must be longer than zero".into());
                }
                Ok(Reuse::Window(d))
            }
        }
    }

    /// The canonical text.
    pub fn text(self) -> String {
        match self {
            Reuse::Once => "once".into(),
            Reuse::Window(d) => format!("window:{}", humantime::format_duration(d)),
        }
    }
}

/// Deadline bounds from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct ExpiryLimits {
    /// Used when the policy names no `expires_in`.
    pub default_expires_in: Duration,
    /// Longest `expires_in` granted.
    pub max_expires_in: Duration,
    /// Longest reuse window a policy may ask for.
    pub max_reuse_window: Duration,
}

/// The policy's `reuse`, refused when its window is longer than the configured maximum:
/// an approval is for one action now, not a standing grant (clamping it instead would
/// quietly change what the policy author wrote).
pub fn reuse(text: Option<&str>, limits: ExpiryLimits) -> Result<Reuse, String> {
    let reuse = Reuse::parse(text)?;
    match reuse {
        Reuse::Window(d) if d > limits.max_reuse_window => Err(format!(
            "reuse window {} is longer than this service allows ({}, approvals.max_reuse_window)",
            humantime::format_duration(d),
            humantime::format_duration(limits.max_reuse_window)
        )),
        other => Ok(other),
    }
}

/// The deadline of an approval created at `now_ms` (policy value clamped to the maximum).
pub fn expires_at(now_ms: i64, expires_in: Option<&str>, limits: ExpiryLimits) -> Result<i64, String> {
    let asked = match expires_in {
        None => limits.default_expires_in,
        Some(text) => humantime::parse_duration(text).map_err(|e| format!("expires_in {text:?}: {e}"))?,
    };
    if asked.is_zero() {
        return Err("expires_in must be longer than zero".into());
    }
    Ok(now_ms.saturating_add(duration_ms(asked.min(limits.max_expires_in))))
}

/// Until when an approval approved at `approved_ms` may be redeemed: `once` until the
/// approval's own deadline, a window until `approved + window`.
pub fn usable_until(reuse: Reuse, approved_ms: i64, expires_at_ms: i64) -> i64 {
    match reuse {
        Reuse::Once => expires_at_ms,
        Reuse::Window(d) => approved_ms.saturating_add(duration_ms(d)),
    }
}

/// The status a live approval must move to at `now_ms`, if its time is up.
pub fn due_transition(
    status: Status,
    expires_at_ms: i64,
    usable_until_ms: Option<i64>,
    redeem_count: i64,
    now_ms: i64,
) -> Option<Status> {
    match status {
        Status::Pending if now_ms >= expires_at_ms => Some(Status::Expired),
        Status::Approved => {
            let until = usable_until_ms.unwrap_or(expires_at_ms);
            if now_ms < until {
                None
            } else if redeem_count > 0 {
                Some(Status::Redeemed)
            } else {
                Some(Status::Expired)
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LIMITS: ExpiryLimits = ExpiryLimits {
        default_expires_in: Duration::from_secs(900),
        max_expires_in: Duration::from_secs(3600),
        max_reuse_window: Duration::from_secs(3600),
    };

    #[test]
    fn reuse_parsing() {
        assert_eq!(Reuse::parse(None).unwrap(), Reuse::Once);
        assert_eq!(Reuse::parse(Some("once")).unwrap(), Reuse::Once);
        assert_eq!(Reuse::parse(Some("window:10m")).unwrap(), Reuse::Window(Duration::from_secs(600)));
        assert!(Reuse::parse(Some("window:")).is_err());
        assert!(Reuse::parse(Some("window:0s")).is_err());
        assert!(Reuse::parse(Some("twice")).is_err());
        assert_eq!(Reuse::parse(Some("window:10m")).unwrap().text(), "window:10m");
    }

    #[test]
    fn reuse_windows_longer_than_configured_are_refused() {
        assert_eq!(reuse(Some("window:1h"), LIMITS).unwrap(), Reuse::Window(Duration::from_secs(3600)));
        assert_eq!(reuse(None, LIMITS).unwrap(), Reuse::Once);
        let e = reuse(Some("window:1000years"), LIMITS).unwrap_err();
        assert!(e.contains("max_reuse_window"), "{e}");
        assert!(reuse(Some("window:61m"), LIMITS).is_err());
    }

    #[test]
    fn deadlines_default_and_clamp() {
        assert_eq!(expires_at(1000, None, LIMITS).unwrap(), 1000 + 900_000);
        assert_eq!(expires_at(0, Some("5m"), LIMITS).unwrap(), 300_000);
        assert_eq!(expires_at(0, Some("48h"), LIMITS).unwrap(), 3_600_000);
        assert!(expires_at(0, Some("soon"), LIMITS).is_err());
        assert!(expires_at(0, Some("0s"), LIMITS).is_err());
    }

    #[test]
    fn due_transitions() {
        assert_eq!(due_transition(Status::Pending, 10, None, 0, 9), None);
        assert_eq!(due_transition(Status::Pending, 10, None, 0, 10), Some(Status::Expired));
        assert_eq!(due_transition(Status::Approved, 10, Some(20), 0, 15), None);
        assert_eq!(due_transition(Status::Approved, 10, Some(20), 0, 20), Some(Status::Expired));
        assert_eq!(due_transition(Status::Approved, 10, Some(20), 3, 20), Some(Status::Redeemed));
        assert_eq!(due_transition(Status::Denied, 10, None, 0, 99), None);
        assert_eq!(usable_until(Reuse::Once, 5, 10), 10);
        assert_eq!(usable_until(Reuse::Window(Duration::from_secs(1)), 5, 10), 1005);
    }
}
