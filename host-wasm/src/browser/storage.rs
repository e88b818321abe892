//! The stored session in the embedder's storage: one JSON string under one key.
//!
//! The value is the engine's `StoredSession` as JSON, the same shape the native host
//! encrypts into its file. Browser storage is not encrypted at rest: chrome.storage and
//! IndexedDB are private to the extension (or origin), which is the boundary the browser
//! offers; see host-wasm/README.md.

use tessera_engine::driver::{DriverInput, Version};
use tessera_engine::{SESSION_FORMAT_VERSION, StoredSession};

use super::glue::{SessionStorage, settle};

/// A storage adapter and the key of this session.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    storage: SessionStorage,
    key: String,
}

impl Store {
    pub fn new(storage: SessionStorage, key: String) -> Self {
        Self { storage, key }
    }

    /// What storage holds; an error names the key and says how to recover.
    pub async fn load(&self) -> Result<Option<StoredSession>, String> {
        let value = settle(self.storage.get(&self.key))
            .await
            .map_err(|e| format!("cannot read the session (storage key {:?}): {e}", self.key))?;
        if value.is_null() || value.is_undefined() {
            return Ok(None);
        }
        let Some(text) = value.as_string() else {
            return Err(self.unreadable("it is not a string"));
        };
        let session: StoredSession = serde_json::from_str(&text)
            .map_err(|e| self.unreadable(&format!("it is not a tessera session ({e})")))?;
        if session.version > SESSION_FORMAT_VERSION {
            return Err(self.unreadable(&format!(
                "it was written by a newer tessera (format {}, this one reads up to {})",
                session.version, SESSION_FORMAT_VERSION
            )));
        }
        Ok(Some(session))
    }

    /// Stores `session` in place of version `replaces` (or whatever is stored): the new
    /// version, or why not and whether another version was found (a conflict).
    pub async fn save(
        &self,
        session: &StoredSession,
        replaces: Option<Version>,
    ) -> Result<Version, (String, bool)> {
        if let Some(expected) = replaces {
            let current = self.load().await.map_err(|e| (e, false))?;
            if current.as_ref().map(Version::of) != Some(expected) {
                let detail = format!("storage key {:?} holds another version", self.key);
                return Err((detail, true));
            }
        }
        self.write(session).await.map_err(|e| (e, false))?;
        Ok(Version::of(session))
    }

    async fn write(&self, session: &StoredSession) -> Result<(), String> {
        let text = serde_json::to_string(session)
            .map_err(|e| format!("cannot encode the session: {e}"))?;
        settle(self.storage.set(&self.key, &text))
            .await
            .map(drop)
            .map_err(|e| format!("cannot store the session (storage key {:?}): {e}", self.key))
    }

    pub async fn delete(&self) -> Result<(), String> {
        settle(self.storage.remove(&self.key))
            .await
            .map(drop)
            .map_err(|e| {
                format!(
                    "cannot remove the session (storage key {:?}): {e}",
                    self.key
                )
            })
    }

    /// The Web Lock that serialises refreshes between pages and workers of one origin.
    pub fn lock_name(&self) -> String {
        format!("tessera-refresh:{}", self.key)
    }

    /// What storage holds, as the driver's input (versioned by content).
    pub async fn load_input(&self) -> DriverInput {
        match self.load().await {
            Ok(Some(session)) => DriverInput::Loaded {
                version: Some(Version::of(&session)),
                session: Some(session),
            },
            Ok(None) => DriverInput::Loaded {
                session: None,
                version: None,
            },
            Err(detail) => DriverInput::StoreFailed {
                detail,
                conflict: false,
            },
        }
    }

    fn unreadable(&self, why: &str) -> String {
        format!(
            "the stored session (storage key {:?}) is unreadable: {why}; it was left as it is \
             and a new sign-in will replace it",
            self.key
        )
    }
}
