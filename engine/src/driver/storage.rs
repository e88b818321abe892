//! The store and its refresh lock, as the driver sees them: one operation at a time,
//! writes before anything that follows them, and a lock taken with a bounded wait.
//!
//! ```text
//!            LockSession              LockAcquired { session }
//!  Released ────────────▶ Acquiring ─────────────────────────▶ Held ──UnlockSession──▶ Released
//!                          │  ▲  LockBusy (before the deadline):  (SessionLocked to the engine)
//!                          │  └─ retry after 50 ms, 100 ms … 1 s
//!                          └─ LockBusy after the deadline, LockFailed ⇒ StorageFailed to the engine
//! ```

use super::{Action, Driver, Notice, SAVE_ATTEMPTS, Version};
use crate::error::Rejected;
use crate::input::Input;
use crate::session::StoredSession;
use crate::time::UnixMillis;

/// The store operation in flight.
#[derive(Debug)]
pub(super) enum StoreOp {
    /// The engine asked (`LoadSession`).
    Load,
    Save {
        session: Box<StoredSession>,
        attempt: u32,
    },
    Delete,
}

/// The refresh lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lock {
    Released,
    /// `AcquireLock` is out, or waits for `retry_at` after `LockBusy`.
    Acquiring {
        deadline: UnixMillis,
        retry_at: Option<UnixMillis>,
        busy_count: u32,
        /// The engine no longer wants it: release it as soon as it is ours.
        unwanted: bool,
    },
    /// Ours (read after taking it) until released or the lease ends.
    Held {
        lease_until: UnixMillis,
    },
}

impl Lock {
    pub(super) fn retry_at(&self) -> Option<UnixMillis> {
        match self {
            Lock::Acquiring { retry_at, .. } => *retry_at,
            _ => None,
        }
    }
}

/// An answer to a store operation that is not in flight.
fn unasked(what: &str) -> Rejected {
    Rejected::Unexpected {
        input: what.to_owned(),
        state: "no store operation is in flight".to_owned(),
    }
}

/// An answer about the lock when none was asked for.
fn lock_unasked(what: &str) -> Rejected {
    Rejected::Unexpected {
        input: what.to_owned(),
        state: "the refresh lock was not asked for".to_owned(),
    }
}

impl Driver {
    pub(super) fn start(&mut self, op: StoreOp, action: Action) {
        self.store_op = Some(op);
        self.actions.push_back(action);
    }

    /// Saves under compare-and-swap while the refresh lock is held (the version read under
    /// it); a login's save replaces whatever is stored.
    pub(super) fn save(&mut self, now: UnixMillis, session: Box<StoredSession>, attempt: u32) {
        let replaces = match self.lock {
            Lock::Held { .. } => self.stored_version,
            _ => None,
        };
        if let Lock::Held { lease_until } = self.lock
            && now > lease_until
        {
            self.notify(Notice::StorageFailed {
                detail: "the refresh lock's lease ran out before the refreshed session was \
                         saved; another process may have refreshed too"
                    .to_owned(),
            });
        }
        self.write_failure = None;
        let action = Action::Save {
            session: session.clone(),
            replaces,
        };
        self.start(StoreOp::Save { session, attempt }, action);
    }

    pub(super) fn loaded(
        &mut self,
        now: UnixMillis,
        session: Option<StoredSession>,
        version: Option<Version>,
    ) -> Result<(), Rejected> {
        let Some(StoreOp::Load) = self.store_op.take() else {
            return Err(unasked("loaded"));
        };
        self.stored_version = version;
        self.feed(now, Input::SessionLoaded { session })
    }

    pub(super) fn saved(&mut self, version: Version) -> Result<(), Rejected> {
        let Some(StoreOp::Save { .. }) = self.store_op.take() else {
            return Err(unasked("saved"));
        };
        self.stored_version = Some(version);
        self.unsaved = false;
        self.storage_problem = None;
        Ok(())
    }

    pub(super) fn deleted(&mut self) -> Result<(), Rejected> {
        let Some(StoreOp::Delete) = self.store_op.take() else {
            return Err(unasked("deleted"));
        };
        self.stored_version = None;
        self.unsaved = false;
        self.storage_problem = None;
        Ok(())
    }

    pub(super) fn store_failed(
        &mut self,
        now: UnixMillis,
        detail: String,
        conflict: bool,
    ) -> Result<(), Rejected> {
        let Some(op) = self.store_op.take() else {
            return Err(unasked("store_failed"));
        };
        match op {
            StoreOp::Save { session, attempt }
                if !conflict
                    && attempt < SAVE_ATTEMPTS
                    && matches!(self.lock, Lock::Held { .. }) =>
            {
                // The lock keeps other processes from refreshing with the token just
                // rotated: try again before letting go of it.
                self.save(now, session, attempt + 1);
                return Ok(());
            }
            StoreOp::Save { .. } | StoreOp::Delete => {
                self.unsaved = matches!(op, StoreOp::Save { .. });
                self.write_failure = Some(detail.clone());
            }
            StoreOp::Load => {
                let _ = self.feed(
                    now,
                    Input::StorageFailed {
                        detail: detail.clone(),
                    },
                );
            }
        }
        let detail = if conflict {
            format!("another process replaced the stored session meanwhile: {detail}")
        } else {
            detail
        };
        self.storage_problem = Some(detail.clone());
        self.notify(Notice::StorageFailed { detail });
        Ok(())
    }

    pub(super) fn acquire_lock(&mut self, now: UnixMillis) {
        let Lock::Acquiring {
            deadline, retry_at, ..
        } = &mut self.lock
        else {
            return;
        };
        *retry_at = None;
        let wait_ms = now.millis_until(*deadline);
        self.actions.push_back(Action::AcquireLock {
            wait_ms,
            lease_ms: self.options.lock_lease_ms,
        });
    }

    /// The lock is ours and `session` is what the store holds now.
    pub(super) fn lock_acquired(
        &mut self,
        now: UnixMillis,
        session: Option<StoredSession>,
        version: Option<Version>,
    ) -> Result<(), Rejected> {
        let Lock::Acquiring { unwanted, .. } = self.lock else {
            return Err(lock_unasked("lock_acquired"));
        };
        if unwanted {
            self.lock = Lock::Released;
            self.actions.push_back(Action::ReleaseLock);
            return Ok(());
        }
        self.lock = Lock::Held {
            lease_until: now.plus_millis(self.options.lock_lease_ms),
        };
        // Storage still holds what a failed save should have replaced: the engine's own
        // session is the newer one (its refresh token may be the only one the provider
        // still accepts).
        let session = if self.unsaved && version == self.stored_version {
            self.engine.session().cloned()
        } else {
            session
        };
        self.stored_version = version;
        self.feed(now, Input::SessionLocked { session })
    }

    /// Someone else holds the lock. Before the deadline: try again after a pause that
    /// doubles from 50 ms to 1 s (a store that cannot wait is not asked in a busy loop).
    pub(super) fn lock_busy(&mut self, now: UnixMillis) -> Result<(), Rejected> {
        let Lock::Acquiring {
            deadline,
            retry_at,
            busy_count,
            unwanted,
        } = &mut self.lock
        else {
            return Err(lock_unasked("lock_busy"));
        };
        if *unwanted {
            self.lock = Lock::Released;
            return Ok(());
        }
        if now < *deadline {
            *busy_count = busy_count.saturating_add(1);
            let pause = (50u64 << (*busy_count - 1).min(5)).min(1000);
            *retry_at = Some(now.plus_millis(pause).min(*deadline));
            return Ok(());
        }
        let waited = self.options.lock_wait_ms / 1000;
        self.lock = Lock::Released;
        let detail = format!(
            "another process held the refresh lock for {waited} s; it may be stuck refreshing: \
             try again, or end that process"
        );
        let _ = self.feed(now, Input::StorageFailed { detail });
        Ok(())
    }

    pub(super) fn lock_failed(&mut self, now: UnixMillis, detail: String) -> Result<(), Rejected> {
        let Lock::Acquiring { unwanted, .. } = self.lock else {
            return Err(lock_unasked("lock_failed"));
        };
        self.lock = Lock::Released;
        if !unwanted {
            let _ = self.feed(now, Input::StorageFailed { detail });
        }
        Ok(())
    }

    pub(super) fn release_lock(&mut self) {
        match &mut self.lock {
            Lock::Released => {}
            Lock::Acquiring { retry_at, .. } if retry_at.is_some() => {
                // Nothing is out: simply stop trying.
                self.lock = Lock::Released;
            }
            Lock::Acquiring { unwanted, .. } => *unwanted = true,
            Lock::Held { .. } => {
                self.lock = Lock::Released;
                self.actions.push_back(Action::ReleaseLock);
            }
        }
    }
}
