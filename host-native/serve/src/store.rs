//! One (user, profile)'s session in the database, as the session driver uses it
//! ([`SessionStore`]): sealed at rest, versioned by a write counter, and a refresh lease
//! row as the lock (`leases`: a holder and an expiry, taken by compare-and-swap), so no
//! transaction or connection is held across the provider's answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera::store::{
    LockGuard, Locked, SessionStore, StoreError, StoreFuture, StoreInfo, StoreKind, Versioned,
};
use tessera_engine::StoredSession;
use tessera_engine::driver::Version;

use crate::backend::{Backend, DbError, SessionIndex, WriteError};
use crate::crypto::{Kind, Sealer};

/// Shared by every session store of one service.
#[derive(Debug)]
pub struct Vault {
    pub db: Box<dyn Backend>,
    pub sealer: Sealer,
    /// Names this process in lease rows.
    pub holder: String,
}

impl Vault {
    /// The session of (user, profile), opened; `Err` names why it cannot be used.
    pub fn read(&self, user: &str, profile: &str) -> Result<Option<Versioned>, StoreError> {
        let row = self
            .db
            .load_session(user, profile)
            .map_err(|e| db_error("read", e))?;
        let Some(row) = row else { return Ok(None) };
        let location = location(user, profile);
        let plain = self
            .sealer
            .open(Kind::Session, user, profile, &row.sealed)
            .ok_or_else(|| StoreError::Corrupt {
                location: location.clone(),
                detail: "it does not open with this service's key (another key, or altered)".into(),
            })?;
        let session: StoredSession =
            serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt {
                location,
                detail: format!("not a session: {e}"),
            })?;
        Ok(Some(Versioned {
            session,
            version: Version(row.version as u64),
        }))
    }

    /// Seals and stores `session` in place of `replaces` (any version when `None`).
    pub fn write(
        &self,
        user: &str,
        profile: &str,
        session: &StoredSession,
        replaces: Option<Version>,
    ) -> Result<Version, StoreError> {
        let plain = serde_json::to_vec(session).map_err(|e| StoreError::Other {
            detail: format!("cannot encode the session: {e}"),
        })?;
        let sealed = self.sealer.seal(Kind::Session, user, profile, &plain);
        let index = SessionIndex {
            user: user.to_owned(),
            profile: profile.to_owned(),
            expires_at: session.expires_at.0 as i64,
            has_refresh_token: session.refresh_token.is_some(),
        };
        let replaces = replaces.map(|v| v.0 as i64);
        match self.db.save_session(&index, &sealed, replaces, now_ms()) {
            Ok(version) => Ok(Version(version as u64)),
            Err(WriteError::Conflict) => Err(StoreError::Conflict {
                location: location(user, profile),
            }),
            Err(WriteError::Db(e)) => Err(db_error("write", e)),
        }
    }
}

/// The [`SessionStore`] of one (user, profile).
#[derive(Clone, Debug)]
pub struct UserStore {
    vault: Arc<Vault>,
    user: Arc<str>,
    profile: Arc<str>,
    /// Names this store's client in lease rows: the process's name and a number of its
    /// own, so two clients of one session in one process (an old one stopping while its
    /// successor starts) exclude each other as two replicas do.
    holder: Arc<str>,
}

impl UserStore {
    pub fn new(vault: Arc<Vault>, user: &str, profile: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let holder = format!("{}/{n}", vault.holder);
        Self {
            vault,
            user: user.into(),
            profile: profile.into(),
            holder: holder.into(),
        }
    }

    fn run<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Vault, &str, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let (vault, user, profile) = (self.vault.clone(), self.user.clone(), self.profile.clone());
        let running = tokio::task::spawn_blocking(move || operation(&vault, &user, &profile));
        Box::pin(async move {
            running.await.unwrap_or_else(|e| {
                Err(StoreError::Other {
                    detail: format!("storage task: {e}"),
                })
            })
        })
    }
}

/// Releases the lease when the driver lets go of the lock (or its holder is dropped).
struct Lease {
    vault: Arc<Vault>,
    user: Arc<str>,
    profile: Arc<str>,
    holder: Arc<str>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (vault, user, profile, holder) = (
            self.vault.clone(),
            self.user.clone(),
            self.profile.clone(),
            self.holder.clone(),
        );
        let release = move || {
            if let Err(e) = vault.db.release_lease(&user, &profile, &holder) {
                tracing::warn!(error = %e, "could not release a refresh lease; it ends with its expiry");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(release)),
            Err(_) => release(),
        }
    }
}

impl SessionStore for UserStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: StoreKind::Database,
            location: location(&self.user, &self.profile),
            fallback_reason: None,
        }
    }

    fn load(&self) -> StoreFuture<Option<Versioned>> {
        self.run(|vault, user, profile| vault.read(user, profile))
    }

    fn save(&self, session: StoredSession, replaces: Option<Version>) -> StoreFuture<Version> {
        self.run(move |vault, user, profile| vault.write(user, profile, &session, replaces))
    }

    fn delete(&self) -> StoreFuture<()> {
        self.run(|vault, user, profile| {
            vault
                .db
                .delete_session(user, profile)
                .map_err(|e| db_error("delete", e))
        })
    }

    fn lock(&self, wait: Duration, lease: Duration) -> StoreFuture<Option<Locked>> {
        let store = self.clone();
        Box::pin(async move {
            let started = Instant::now();
            let mut pause = Duration::from_millis(5);
            loop {
                let holder = store.holder.clone();
                let taken = store
                    .run(move |vault, user, profile| {
                        vault
                            .db
                            .try_lease(user, profile, &holder, now_ms(), lease.as_millis() as i64)
                            .map_err(|e| db_error("take the refresh lease of", e))
                    })
                    .await?;
                if taken {
                    let guard = LockGuard::new(Lease {
                        vault: store.vault.clone(),
                        user: store.user.clone(),
                        profile: store.profile.clone(),
                        holder: store.holder.clone(),
                    });
                    let read = store.load().await?;
                    return Ok(Some(Locked { guard, read }));
                }
                if started.elapsed() >= wait {
                    return Ok(None);
                }
                tokio::time::sleep(pause.min(wait.saturating_sub(started.elapsed()))).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        })
    }
}

fn location(user: &str, profile: &str) -> String {
    format!("database (user {user:?}, profile {profile:?})")
}

fn db_error(action: &str, e: DbError) -> StoreError {
    StoreError::Other {
        detail: format!("could not {action} the session in the database: {e}"),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    tessera::clock::now().0 as i64
}
