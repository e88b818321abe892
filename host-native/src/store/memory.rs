//! A store that lives only in memory: the session given in the environment
//! (`TESSERA_ACCESS_TOKEN`, …) is used and refreshed by this process, never written out.
//!
//! A refresh token given in the environment can be spent once only when the provider
//! rotates refresh tokens: the next process given the same variable would send the old
//! token and trip the provider's reuse detection, which revokes the whole grant (issue 12,
//! finding 4). So when this process saves a session whose refresh token differs from the
//! one it was given, it notes the SHA-256 of the spent token (never the token) in a small
//! list in the configuration directory ([`SpentRefreshTokens`]), and a later process that
//! finds its `TESSERA_REFRESH_TOKEN` there does not send it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tessera_engine::{Secret, StoredSession};

use super::{BlockingStore, LockGuard, StoreError, StoreInfo, StoreKind, fsutil};

#[derive(Debug)]
pub struct MemoryStore {
    info: StoreInfo,
    session: Mutex<Option<StoredSession>>,
    /// The refresh lock, for this process only (nothing else sees this store).
    lock: Arc<(Mutex<bool>, Condvar)>,
    /// The refresh token this store was given, and where to note it once rotated away.
    given: Option<Given>,
}

#[derive(Debug)]
struct Given {
    refresh_token: Secret,
    spent: SpentRefreshTokens,
    noted: AtomicBool,
}

/// The SHA-256 hashes of refresh tokens from the environment that a refresh has spent (the
/// provider answered with a new one): `<config_dir>/spent-refresh-tokens`, one hex hash a
/// line, the newest [`SpentRefreshTokens::KEPT`] kept, written atomically with mode 0600.
#[derive(Clone, Debug)]
struct SpentRefreshTokens {
    path: PathBuf,
}

impl SpentRefreshTokens {
    /// How many hashes the list keeps (the oldest are dropped).
    const KEPT: usize = 64;
    const LIMIT: u64 = 16 * 1024;

    /// The list in `config_dir`.
    fn in_dir(config_dir: &Path) -> Self {
        Self {
            path: config_dir.join("spent-refresh-tokens"),
        }
    }

    fn hash(token: &str) -> String {
        Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn read(&self) -> Result<Vec<String>, StoreError> {
        let bytes = fsutil::read_limited(&self.path, Self::LIMIT)?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::trim)
            .filter(|line| line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .collect())
    }

    /// Whether a refresh noted `token` as spent. An unreadable list counts as not.
    fn contains(&self, token: &str) -> bool {
        let hash = Self::hash(token);
        match self.read() {
            Ok(hashes) => hashes.contains(&hash),
            Err(error) => {
                tracing::warn!(%error, "could not read the list of spent refresh tokens");
                false
            }
        }
    }

    /// Notes `token` as spent (its hash, under a lock so two processes add both).
    fn add(&self, token: &str) -> Result<(), StoreError> {
        let lock_path = self.path.with_file_name(".spent-refresh-tokens.lock");
        let lock = fsutil::open_lock_file(&lock_path)?;
        // Through the trait: std's inherent `File::lock` (Rust 1.89) would shadow it.
        fs4::FileExt::lock(&lock).map_err(|err| StoreError::io("lock", &lock_path, err))?;
        let hash = Self::hash(token);
        let mut hashes = self.read().unwrap_or_default();
        hashes.retain(|h| *h != hash);
        hashes.push(hash);
        let skip = hashes.len().saturating_sub(Self::KEPT);
        let mut text = String::from(
            "# SHA-256 of refresh tokens from TESSERA_REFRESH_TOKEN that a refresh spent\n",
        );
        for hash in &hashes[skip..] {
            text.push_str(hash);
            text.push('\n');
        }
        fsutil::write_atomic(&self.path, text.as_bytes())
    }
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
            given: None,
        }
    }

    /// A store holding the session given in the environment: when a save replaces its
    /// refresh token (the provider rotated it), the given one is noted as spent in
    /// `<config_dir>/spent-refresh-tokens` (its SHA-256, never the token).
    pub fn from_environment(
        session: StoredSession,
        location: impl Into<String>,
        config_dir: &Path,
    ) -> Self {
        let given = session.refresh_token.clone().map(|refresh_token| Given {
            refresh_token,
            spent: SpentRefreshTokens::in_dir(config_dir),
            noted: AtomicBool::new(false),
        });
        Self {
            given,
            ..Self::new(Some(session), location)
        }
    }

    /// Whether a refresh in an earlier process spent `refresh_token` (the provider rotated
    /// it): sending it again would trip the provider's reuse detection.
    pub fn refresh_token_spent(config_dir: &Path, refresh_token: &str) -> bool {
        SpentRefreshTokens::in_dir(config_dir).contains(refresh_token)
    }

    fn note_spent(&self, saved: &StoredSession) {
        let Some(given) = &self.given else {
            return;
        };
        let rotated = saved
            .refresh_token
            .as_ref()
            .is_some_and(|t| t.expose() != given.refresh_token.expose());
        if !rotated || given.noted.swap(true, Ordering::SeqCst) {
            return;
        }
        match given.spent.add(given.refresh_token.expose()) {
            Ok(()) => tracing::info!(
                list = %given.spent.path.display(),
                "the provider rotated the refresh token from TESSERA_REFRESH_TOKEN; noted it as spent"
            ),
            Err(error) => tracing::warn!(
                %error,
                "the provider rotated the refresh token from TESSERA_REFRESH_TOKEN, but it could \
                 not be noted as spent: a later process given it will trip reuse detection"
            ),
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
        self.note_spent(session);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_engine::UnixMillis;

    fn session(refresh_token: &str) -> StoredSession {
        StoredSession {
            version: tessera_engine::SESSION_FORMAT_VERSION,
            issuer: Some("https://issuer.example".into()),
            client_id: "client".into(),
            access_token: Secret::new("access"),
            refresh_token: Some(Secret::new(refresh_token)),
            id_token: None,
            obtained_at: UnixMillis(0),
            expires_at: UnixMillis(1000),
            scopes: Vec::new(),
            identity: None,
            endpoints: Default::default(),
        }
    }

    #[test]
    fn a_rotated_refresh_token_from_the_environment_is_noted_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::from_environment(session("rt-given"), "env", dir.path());
        // Saved unchanged (no rotation): nothing noted.
        store.save(&session("rt-given")).unwrap();
        assert!(!MemoryStore::refresh_token_spent(dir.path(), "rt-given"));
        store.save(&session("rt-rotated")).unwrap();
        assert!(MemoryStore::refresh_token_spent(dir.path(), "rt-given"));
        assert!(!MemoryStore::refresh_token_spent(dir.path(), "rt-rotated"));
        let path = dir.path().join("spent-refresh-tokens");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("rt-given"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn the_list_keeps_the_newest_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let list = SpentRefreshTokens::in_dir(dir.path());
        for n in 0..SpentRefreshTokens::KEPT + 6 {
            list.add(&format!("token-{n}")).unwrap();
        }
        assert_eq!(list.read().unwrap().len(), SpentRefreshTokens::KEPT);
        assert!(!list.contains("token-5"));
        assert!(list.contains("token-6"));
        assert!(list.contains(&format!("token-{}", SpentRefreshTokens::KEPT + 5)));
    }
}
