//! The host's clock: wall-clock milliseconds, as the engine expects.

use std::time::{SystemTime, UNIX_EPOCH};

use tessera_engine::UnixMillis;

/// Now, in Unix milliseconds (a clock before 1970 reads as the epoch).
#[inline]
pub fn now() -> UnixMillis {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    UnixMillis(u64::try_from(millis).unwrap_or(u64::MAX))
}
