//! The stored session in the embedder's storage: one string under one key.
//!
//! The value is the engine's `StoredSession` as JSON, the same shape the native host
//! encrypts into its file. By default (`encryptAtRest`, on for the default storage where
//! WebCrypto and IndexedDB exist) that JSON is sealed with AES-GCM under a non-extractable
//! key kept in IndexedDB (`glue.js`, `sessionCipher`): the stored value is then
//! `tessera-aes-gcm.1.<key id>.<iv>.<ciphertext>`. A plaintext value (written before
//! encryption, or with `encryptAtRest: false`) is still read, and `Session.open` rewrites
//! it sealed ([`Store::migrate`]). What this protects and what not: host-wasm/README.md,
//! "Threat model".
//!
//! Nothing here ever changes or removes a value it cannot read: every failure is a typed
//! [`StoreError`], the value is left as it is, and the next successful sign-in replaces it.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Reflect;
use tessera_engine::driver::{DriverInput, Version};
use tessera_engine::{SESSION_FORMAT_VERSION, StoredSession};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::glue::{self, Cipher, SessionStorage, describe, settle};

/// What a sealed value starts with (`SEALED` in glue.js).
const SEALED_PREFIX: &str = "tessera-aes-gcm.1.";

/// How long `Session.open` waits for the refresh lock to rewrite a plaintext session.
const MIGRATE_LOCK_MS: f64 = 2_000.0;

/// Why the stored session could not be read or written; `status().storage_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreErrorKind {
    /// The storage call itself failed (quota, storage gone, encryption unavailable).
    Unavailable,
    /// The value is not a tessera session (corrupt, foreign, a newer format).
    Unreadable,
    /// The value is encrypted with a key this browser profile no longer has.
    KeyMissing,
    /// The value is encrypted but does not decrypt (altered, truncated, moved).
    Undecryptable,
    /// Another context replaced the stored session meanwhile.
    Conflict,
}

impl StoreErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Unreadable => "unreadable",
            Self::KeyMissing => "key_missing",
            Self::Undecryptable => "undecryptable",
            Self::Conflict => "conflict",
        }
    }
}

/// A typed storage failure; `detail` names the key and what to do, never a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoreError {
    pub kind: StoreErrorKind,
    pub detail: String,
}

/// What storage held: the session, and whether it was stored in plaintext (`raw`).
#[derive(Debug)]
pub(crate) struct Loaded {
    pub session: StoredSession,
    pub plaintext: Option<String>,
}

/// A storage adapter, the key of this session, and the encryption in front of it.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    storage: SessionStorage,
    key: String,
    /// Decrypts sealed values whenever WebCrypto and IndexedDB exist.
    cipher: Option<Cipher>,
    /// Seal what is written (`encryptAtRest`).
    seal: bool,
    /// The last error, so that `status()` can name its kind.
    last_error: Rc<RefCell<Option<StoreError>>>,
    /// Said once at open: the storage is less protected than it should be.
    warning: Option<Rc<str>>,
}

impl Store {
    pub fn new(
        storage: SessionStorage,
        key: String,
        cipher: Option<Cipher>,
        seal: bool,
        warning: Option<String>,
    ) -> Self {
        Self {
            storage,
            key,
            seal: seal && cipher.is_some(),
            cipher,
            last_error: Rc::default(),
            warning: warning.map(Rc::from),
        }
    }

    /// What storage holds; an error names the key and says how to recover.
    pub async fn load(&self) -> Result<Option<Loaded>, StoreError> {
        let result = self.read().await;
        if let Err(error) = &result {
            self.remember(error);
        }
        result
    }

    async fn read(&self) -> Result<Option<Loaded>, StoreError> {
        let value = settle(self.storage.get(&self.key)).await.map_err(|e| {
            error(
                StoreErrorKind::Unavailable,
                format!("cannot read the session (storage key {:?}): {e}", self.key),
            )
        })?;
        if value.is_null() || value.is_undefined() {
            return Ok(None);
        }
        let Some(text) = value.as_string() else {
            return Err(self.unreadable(StoreErrorKind::Unreadable, "it is not a string"));
        };
        let (json, plaintext) = if text.starts_with(SEALED_PREFIX) {
            (self.open(&text).await?, None)
        } else {
            (text.clone(), Some(text))
        };
        let session: StoredSession = serde_json::from_str(&json).map_err(|e| {
            self.unreadable(
                StoreErrorKind::Unreadable,
                &format!("it is not a tessera session ({e})"),
            )
        })?;
        if session.version > SESSION_FORMAT_VERSION {
            return Err(self.unreadable(
                StoreErrorKind::Unreadable,
                &format!(
                    "it was written by a newer tessera (format {}, this one reads up to {})",
                    session.version, SESSION_FORMAT_VERSION
                ),
            ));
        }
        Ok(Some(Loaded { session, plaintext }))
    }

    /// The JSON inside a sealed value.
    async fn open(&self, sealed: &str) -> Result<String, StoreError> {
        let Some(cipher) = &self.cipher else {
            return Err(self.unreadable(
                StoreErrorKind::KeyMissing,
                "it is encrypted, and this context has no WebCrypto or IndexedDB to decrypt it",
            ));
        };
        match JsFuture::from(cipher.open(sealed, &self.key)).await {
            Ok(json) => json
                .as_string()
                .ok_or_else(|| self.unreadable(StoreErrorKind::Undecryptable, "no plaintext")),
            Err(error) => {
                let kind = match Reflect::get(&error, &JsValue::from_str("kind"))
                    .ok()
                    .and_then(|k| k.as_string())
                    .as_deref()
                {
                    Some("key_missing") => StoreErrorKind::KeyMissing,
                    _ => StoreErrorKind::Undecryptable,
                };
                Err(self.unreadable(kind, &describe(&error)))
            }
        }
    }

    /// Stores `session` in place of version `replaces` (or whatever is stored): the new
    /// version, or why not and whether another version was found (a conflict).
    pub async fn save(
        &self,
        session: &StoredSession,
        replaces: Option<Version>,
    ) -> Result<Version, (String, bool)> {
        let result = self.save_checked(session, replaces).await;
        result.map_err(|error| {
            self.remember(&error);
            let conflict = error.kind == StoreErrorKind::Conflict;
            (error.detail, conflict)
        })
    }

    async fn save_checked(
        &self,
        session: &StoredSession,
        replaces: Option<Version>,
    ) -> Result<Version, StoreError> {
        if let Some(expected) = replaces {
            let current = self.read().await?;
            if current.as_ref().map(|l| Version::of(&l.session)) != Some(expected) {
                let detail = format!("storage key {:?} holds another version", self.key);
                return Err(error(StoreErrorKind::Conflict, detail));
            }
        }
        self.write(session).await?;
        Ok(Version::of(session))
    }

    async fn write(&self, session: &StoredSession) -> Result<(), StoreError> {
        let unavailable = |e: String| error(StoreErrorKind::Unavailable, e);
        let mut text = serde_json::to_string(session)
            .map_err(|e| unavailable(format!("cannot encode the session: {e}")))?;
        if let (true, Some(cipher)) = (self.seal, &self.cipher) {
            text = JsFuture::from(cipher.seal(&text, &self.key))
                .await
                .ok()
                .and_then(|sealed| sealed.as_string())
                .ok_or_else(|| {
                    unavailable(format!(
                        "cannot encrypt the session (storage key {:?}): WebCrypto or IndexedDB \
                         failed; Session.open with encryptAtRest: false stores it unencrypted",
                        self.key
                    ))
                })?;
        }
        settle(self.storage.set(&self.key, &text))
            .await
            .map(drop)
            .map_err(|e| {
                unavailable(format!(
                    "cannot store the session (storage key {:?}): {e}",
                    self.key
                ))
            })
    }

    pub async fn delete(&self) -> Result<(), String> {
        settle(self.storage.remove(&self.key))
            .await
            .map(drop)
            .map_err(|e| {
                let detail = format!(
                    "cannot remove the session (storage key {:?}): {e}",
                    self.key
                );
                self.remember(&error(StoreErrorKind::Unavailable, detail.clone()));
                detail
            })
    }

    /// Rewrites a session found in plaintext (`loaded.plaintext`) sealed, when this store
    /// seals. Under the refresh lock, and only if storage still holds the same text, so
    /// that a newer session written by another context meanwhile is never replaced. A
    /// failure leaves the plaintext for the next open or save, and is only logged.
    pub async fn migrate(&self, loaded: &Loaded) {
        let Some(plaintext) = loaded.plaintext.as_deref().filter(|_| self.seal) else {
            return;
        };
        let lock = JsFuture::from(glue::acquire_lock(&self.lock_name(), MIGRATE_LOCK_MS)).await;
        let release = match lock {
            Ok(release) => release,
            Err(e) => return glue::warn(&format!("not encrypted yet: {}", describe(&e))),
        };
        let still = settle(self.storage.get(&self.key)).await;
        let outcome = match still {
            Ok(value) if value.as_string().as_deref() == Some(plaintext) => {
                self.write(&loaded.session).await.map_err(|e| e.detail)
            }
            Ok(_) => Ok(()), // replaced meanwhile: whoever wrote it wrote it their way
            Err(e) => Err(e),
        };
        if let Some(release) = release.dyn_ref::<js_sys::Function>() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
        if let Err(detail) = outcome {
            glue::warn(&format!(
                "the stored session is not encrypted yet: {detail}"
            ));
        }
    }

    /// The Web Lock that serialises refreshes between pages and workers of one origin.
    pub fn lock_name(&self) -> String {
        format!("tessera-refresh:{}", self.key)
    }

    /// What storage holds, as the driver's input (versioned by content).
    pub async fn load_input(&self) -> DriverInput {
        input(self.load().await)
    }

    /// The kind of the storage problem the driver reports (`detail`, perhaps prefixed).
    pub fn error_kind(&self, detail: &str) -> Option<&'static str> {
        let last = self.last_error.borrow();
        let last = last.as_ref().filter(|e| detail.ends_with(&e.detail))?;
        Some(last.kind.as_str())
    }

    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    fn remember(&self, error: &StoreError) {
        *self.last_error.borrow_mut() = Some(error.clone());
    }

    fn unreadable(&self, kind: StoreErrorKind, why: &str) -> StoreError {
        let detail = format!(
            "the stored session (storage key {:?}) is unreadable: {why}; it was left as it is \
             and a new sign-in will replace it",
            self.key
        );
        error(kind, detail)
    }
}

/// A load's outcome as the driver's input (versioned by content).
pub(crate) fn input(loaded: Result<Option<Loaded>, StoreError>) -> DriverInput {
    match loaded {
        Ok(Some(loaded)) => DriverInput::Loaded {
            version: Some(Version::of(&loaded.session)),
            session: Some(loaded.session),
        },
        Ok(None) => DriverInput::Loaded {
            session: None,
            version: None,
        },
        Err(error) => DriverInput::StoreFailed {
            detail: error.detail,
            conflict: false,
        },
    }
}

fn error(kind: StoreErrorKind, detail: String) -> StoreError {
    StoreError { kind, detail }
}
