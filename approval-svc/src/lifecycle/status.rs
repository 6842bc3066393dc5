//! Where an approval stands, and the word the gateway protocol uses for it.

use std::fmt;
use std::str::FromStr;

/// Stored status. `Redeemed` is terminal for `reuse = "once"` (and for a used window
/// once it closes); the gateway hears it as `approved`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Waiting for reviewers.
    Pending,
    /// Approved; redeemable within its reuse rule.
    Approved,
    /// A reviewer denied it.
    Denied,
    /// Its deadline passed before it was decided (or before it was used).
    Expired,
    /// Withdrawn.
    Cancelled,
    /// Consumed by the gateway.
    Redeemed,
}

impl Status {
    /// The stored (and reviewer API) word.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Redeemed => "redeemed",
        }
    }

    /// The word `docs/protocol.md` answers the gateway with.
    pub fn wire(self) -> &'static str {
        match self {
            Status::Redeemed => "approved",
            other => other.as_str(),
        }
    }

    /// Whether no further transition is possible.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Pending | Status::Approved)
    }

    /// Whether `self → next` is a transition the lifecycle allows.
    pub fn can_become(self, next: Status) -> bool {
        matches!(
            (self, next),
            (Status::Pending, Status::Approved)
                | (Status::Pending, Status::Denied)
                | (Status::Pending, Status::Expired)
                | (Status::Pending, Status::Cancelled)
                | (Status::Approved, Status::Redeemed)
                | (Status::Approved, Status::Expired)
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "denied" => Status::Denied,
            "expired" => Status::Expired,
            "cancelled" => Status::Cancelled,
            "redeemed" => Status::Redeemed,
            other => return Err(format!("unknown status {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_wire_words() {
        for s in
            [Status::Pending, Status::Approved, Status::Denied, Status::Expired, Status::Cancelled, Status::Redeemed]
        {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
        assert_eq!(Status::Redeemed.wire(), "approved");
        assert!("bogus".parse::<Status>().is_err());
    }

    #[test]
    fn only_lifecycle_transitions_are_allowed() {
        assert!(Status::Pending.can_become(Status::Approved));
        assert!(Status::Approved.can_become(Status::Redeemed));
        assert!(!Status::Denied.can_become(Status::Approved));
        assert!(!Status::Expired.can_become(Status::Approved));
        assert!(!Status::Redeemed.can_become(Status::Approved));
        assert!(!Status::Pending.can_become(Status::Redeemed));
    }
}
