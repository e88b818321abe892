//! Stopping without losing a session.
//!
//! Between sending a refresh and storing its answer, the provider may already have rotated
//! the refresh token: a process that dies in that window leaves the old, now dead, token in
//! storage and the user logged out at the next refresh. Each session actor reports whether
//! it is in such a critical section (the driver decides: `Driver::in_critical_section`);
//! a program asked to terminate waits for [`safe_to_exit`] before it exits. The `tessera`
//! CLI does this for SIGTERM, SIGINT and SIGHUP. SIGKILL cannot be deferred: the window is
//! one token request and one store write.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How many sessions of this process are in a critical section.
static CRITICAL: AtomicUsize = AtomicUsize::new(0);

/// Whether no session of this process is in a critical section now.
pub fn is_safe_to_exit() -> bool {
    CRITICAL.load(Ordering::SeqCst) == 0
}

/// Waits until no session is in a critical section, at most `limit`; `false` when the
/// limit passed first.
pub async fn safe_to_exit(limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !is_safe_to_exit() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// One session's share of the count.
#[derive(Debug, Default)]
pub(crate) struct Critical(bool);

impl Critical {
    pub(crate) fn set(&mut self, critical: bool) {
        if critical != self.0 {
            if critical {
                CRITICAL.fetch_add(1, Ordering::SeqCst);
            } else {
                CRITICAL.fetch_sub(1, Ordering::SeqCst);
            }
            self.0 = critical;
        }
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        self.set(false);
    }
}
