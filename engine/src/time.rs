//! Wall-clock time as the engine sees it: a value the host passes in.
//!
//! Wall-clock milliseconds (not a monotonic instant) because token expiry is persisted
//! across process restarts and must mean the same thing after a reboot.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, as read by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// This instant plus `secs` seconds, saturating instead of overflowing.
    #[inline]
    pub fn plus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// This instant plus `millis` milliseconds, saturating instead of overflowing.
    #[inline]
    pub fn plus_millis(self, millis: u64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// This instant minus `millis` milliseconds, saturating at the epoch.
    #[inline]
    pub fn minus_millis(self, millis: u64) -> Self {
        Self(self.0.saturating_sub(millis))
    }

    /// Milliseconds from `self` until `later`; zero when `later` is not after `self`.
    #[inline]
    pub fn millis_until(self, later: UnixMillis) -> u64 {
        later.0.saturating_sub(self.0)
    }

    /// Whole seconds since the epoch (rounded down).
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }
}
