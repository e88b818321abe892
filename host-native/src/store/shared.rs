//! The session store as the session actor uses it: asynchronous, versioned, with a refresh
//! lock — the engine driver's vocabulary (`Load`, `Save { replaces }`, `Delete`,
//! `AcquireLock { wait, lease }`). Library users can implement [`SessionStore`] for their
//! own storage; tessera's blocking stores (keyring, encrypted file, memory) are adapted by
//! [`Blocking`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tessera_engine::StoredSession;
use tessera_engine::driver::{DriverInput, Version};

use super::{BlockingStore, StoreError, StoreInfo};

/// What a [`SessionStore`] method returns: a future that owns what it needs.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// A stored session and the version that names this write of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    pub session: StoredSession,
    pub version: Version,
}

/// Holds a refresh lock; dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl LockGuard {
    /// Wraps whatever releases the lock when dropped (a file lock, a database lease…).
    pub fn new(release_on_drop: impl Send + Sync + 'static) -> Self {
        Self(Box::new(release_on_drop))
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

/// One profile's session storage, as the session actor drives it.
///
/// - `load`: the session and its version, `None` when nothing is stored.
/// - `save`: replaces version `replaces` (compare-and-swap: [`StoreError::Conflict`] if
///   another version is stored), or whatever is stored when `replaces` is `None`; returns
///   the new version. tessera asks for a compare-and-swap only while it holds the lock.
/// - `delete`: removes the session; `Ok` when there was none.
/// - `lock`: the refresh lock, waiting up to `wait` (`Ok(None)`: still busy), then a read
///   of the session (what another holder may have written). It must exclude every other
///   process sharing this session, and end by itself at the latest `lease` after it was
///   taken if its holder dies (a file lock ends with its process; a database lease row
///   with its expiry).
pub trait SessionStore: Send + Sync + 'static {
    /// Where the session is kept, for `status`.
    fn info(&self) -> StoreInfo;
    fn load(&self) -> StoreFuture<Option<Versioned>>;
    fn save(&self, session: StoredSession, replaces: Option<Version>) -> StoreFuture<Version>;
    fn delete(&self) -> StoreFuture<()>;
    fn lock(&self, wait: Duration, lease: Duration) -> StoreFuture<Option<Locked>>;
}

/// The refresh lock, held, and the session as the store holds it once locked.
#[derive(Debug)]
pub struct Locked {
    pub guard: LockGuard,
    pub read: Option<Versioned>,
}

impl std::fmt::Debug for dyn SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SessionStore").field(&self.info()).finish()
    }
}

/// The version of a session by its content (see [`Version::of`]).
pub fn version_of(session: &StoredSession) -> Version {
    Version::of(session)
}

/// A [`BlockingStore`] as a [`SessionStore`]: each call runs on tokio's blocking pool (the
/// keyring must not be called from async code). Versions are content hashes; a
/// compare-and-swap reads, compares and writes under the refresh lock the caller holds.
#[derive(Clone, Debug)]
pub struct Blocking(pub Arc<dyn BlockingStore>);

impl Blocking {
    /// Starts `operation` on the blocking pool at once (not when the future is first
    /// polled: the task awaiting it may queue behind many others, as in a refresh storm).
    fn run<T, F>(&self, operation: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn BlockingStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.0.clone();
        let running = tokio::task::spawn_blocking(move || operation(store.as_ref()));
        Box::pin(async move {
            running
                .await
                .unwrap_or_else(|e| Err(StoreError::internal(format!("storage task: {e}"))))
        })
    }
}

impl SessionStore for Blocking {
    fn info(&self) -> StoreInfo {
        self.0.info().clone()
    }

    fn load(&self) -> StoreFuture<Option<Versioned>> {
        self.run(|store| {
            Ok(store.load()?.map(|session| Versioned {
                version: version_of(&session),
                session,
            }))
        })
    }

    fn save(&self, session: StoredSession, replaces: Option<Version>) -> StoreFuture<Version> {
        self.run(move |store| {
            if let Some(expected) = replaces {
                let current = store.load()?.map(|s| version_of(&s));
                if current != Some(expected) {
                    return Err(StoreError::Conflict {
                        location: store.info().location.clone(),
                    });
                }
            }
            store.save(&session)?;
            Ok(version_of(&session))
        })
    }

    fn delete(&self) -> StoreFuture<()> {
        self.run(|store| store.delete())
    }

    fn lock(&self, wait: Duration, _lease: Duration) -> StoreFuture<Option<Locked>> {
        // File and memory locks end with their process: no lease to keep.
        self.run(move |store| {
            let Some(guard) = store.lock(wait)? else {
                return Ok(None);
            };
            let read = store.load()?.map(|session| Versioned {
                version: version_of(&session),
                session,
            });
            Ok(Some(Locked { guard, read }))
        })
    }
}

impl From<Box<dyn BlockingStore>> for Blocking {
    fn from(store: Box<dyn BlockingStore>) -> Self {
        Blocking(Arc::from(store))
    }
}

/// Reads the store, as the driver's input.
pub async fn load_input(store: &dyn SessionStore) -> DriverInput {
    loaded_input(store.load().await)
}

/// What a load produced, as the driver's input.
pub fn loaded_input(read: Result<Option<Versioned>, StoreError>) -> DriverInput {
    match read {
        Ok(Some(read)) => DriverInput::Loaded {
            session: Some(read.session),
            version: Some(read.version),
        },
        Ok(None) => DriverInput::Loaded {
            session: None,
            version: None,
        },
        Err(error) => failed_input(&error),
    }
}

/// A failed store operation, as the driver's input.
pub fn failed_input(error: &StoreError) -> DriverInput {
    DriverInput::StoreFailed {
        detail: error.to_string(),
        conflict: matches!(error, StoreError::Conflict { .. }),
    }
}
