//! A store that lives only in memory: the session given in the environment
//! (`TESSERA_ACCESS_TOKEN`, …) is used and refreshed by this process, never written out.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tessera_engine::StoredSession;

use super::{BlockingStore, LockGuard, StoreError, StoreInfo, StoreKind};

#[derive(Debug)]
pub struct MemoryStore {
    info: StoreInfo,
    session: Mutex<Option<StoredSession>>,
    /// The refresh lock, for this process only (nothing else sees this store).
    lock: Arc<(Mutex<bool>, Condvar)>,
}

/// Releases the memory store's lock when dropped.
struct Held(Arc<(Mutex<bool>, Condvar)>);

impl Drop for Held {
    fn drop(&mut self) {
        let (taken, released) = &*self.0;
        *taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = false;
        released.notify_one();
    }
}

impl MemoryStore {
    /// A store holding `session`; `location` says where it came from (for `status`).
    pub fn new(session: Option<StoredSession>, location: impl Into<String>) -> Self {
        let info = StoreInfo {
            kind: StoreKind::Environment,
            location: location.into(),
            fallback_reason: None,
        };
        Self {
            info,
            session: Mutex::new(session),
            lock: Arc::default(),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<StoredSession>> {
        // A panic while holding this lock cannot leave a half-written session: recover it.
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl BlockingStore for MemoryStore {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn load(&self) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.slot().clone())
    }

    fn save(&self, session: &StoredSession) -> Result<(), StoreError> {
        *self.slot() = Some(session.clone());
        Ok(())
    }

    fn delete(&self) -> Result<(), StoreError> {
        *self.slot() = None;
        Ok(())
    }

    fn lock(&self, wait: Duration) -> Result<Option<LockGuard>, StoreError> {
        let (taken, released) = &*self.lock;
        let deadline = Instant::now() + wait;
        let mut held = taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *held {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            held = released
                .wait_timeout(held, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *held = true;
        Ok(Some(LockGuard::new(Held(self.lock.clone()))))
    }
}
