//! A store that lives only in memory: the session given in the environment
//! (`TESSERA_ACCESS_TOKEN`, …) is used and refreshed by this process, never written out.

use std::sync::Mutex;

use tessera_engine::StoredSession;

use super::{SessionStore, StoreError, StoreInfo, StoreKind};

#[derive(Debug)]
pub struct MemoryStore {
    info: StoreInfo,
    session: Mutex<Option<StoredSession>>,
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
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<StoredSession>> {
        // A panic while holding this lock cannot leave a half-written session: recover it.
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SessionStore for MemoryStore {
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
}
