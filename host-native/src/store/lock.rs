//! The cross-process refresh lock `<config_dir>/<profile>.lock`.
//!
//! Providers that rotate refresh tokens revoke the whole grant when a rotated token is used
//! twice. Two tessera processes sharing a login must therefore never refresh at once: the
//! engine asks for this lock (`Effect::LockSession`), re-reads storage while holding it (the
//! other process may have refreshed meanwhile), and refreshes only if still needed.
//!
//! The lock is an advisory exclusive file lock (`flock` on Unix, `LockFileEx` on Windows,
//! through fs4). The operating system releases it when the holder exits or crashes, so a
//! stale lock file cannot block anyone; the file itself is left in place, because deleting
//! a lock file while another process waits on it would let a third one lock a new file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::StoreError;
use super::{fsutil, validate_profile};

/// How often a held lock is tried again.
const POLL: Duration = Duration::from_millis(20);

/// The refresh lock of a profile. See [`RefreshLock::acquire`].
#[derive(Debug)]
pub struct RefreshLock;

/// Holds the refresh lock until dropped.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RefreshLockGuard {
    file: File,
    path: PathBuf,
}

/// `<config_dir>/<profile>.lock`.
pub fn lock_path(config_dir: &Path, profile: &str) -> PathBuf {
    config_dir.join(format!("{profile}.lock"))
}

impl RefreshLock {
    /// Takes the lock of `profile`, waiting up to `timeout` for another holder to let go.
    ///
    /// Blocking (polls every 20 ms): call it from `spawn_blocking`. Creates the config
    /// directory (0700) and the lock file (0600) when missing. A zero timeout tries once.
    /// Locks are per open file, so two handles in one process exclude each other too.
    pub fn acquire(
        config_dir: &Path,
        profile: &str,
        timeout: Duration,
    ) -> Result<RefreshLockGuard, StoreError> {
        validate_profile(profile)?;
        let path = lock_path(config_dir, profile);
        let file = fsutil::open_lock_file(&path)?;
        let started = Instant::now();
        loop {
            // Called through the trait: std's inherent `File::try_lock` (Rust 1.89) would
            // shadow it, and the workspace's MSRV is 1.88.
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), "refresh lock taken");
                    return Ok(RefreshLockGuard { file, path });
                }
                Err(fs4::TryLockError::WouldBlock) => {}
                Err(fs4::TryLockError::Error(err)) => {
                    return Err(StoreError::io("lock", path, err));
                }
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(StoreError::LockTimeout { path, waited });
            }
            std::thread::sleep(POLL.min(timeout - waited));
        }
    }
}

/// The lock as a store's [`LockGuard`](super::LockGuard): `None` when it stayed busy for
/// `wait`.
pub(crate) fn acquire_file_lock(
    config_dir: &Path,
    profile: &str,
    wait: Duration,
) -> Result<Option<super::LockGuard>, StoreError> {
    match RefreshLock::acquire(config_dir, profile, wait) {
        Ok(guard) => Ok(Some(super::LockGuard::new(guard))),
        Err(StoreError::LockTimeout { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

impl RefreshLockGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RefreshLockGuard {
    fn drop(&mut self) {
        // Closing the file releases the lock as well; unlocking first makes it immediate
        // even if the descriptor was duplicated (e.g. inherited by a child process).
        if let Err(err) = fs4::FileExt::unlock(&self.file) {
            tracing::warn!(path = %self.path.display(), %err, "could not release the refresh lock");
        }
        tracing::debug!(path = %self.path.display(), "refresh lock released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn excludes_a_second_holder_until_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config");
        let guard = RefreshLock::acquire(&dir, "default", Duration::ZERO).unwrap();
        assert_eq!(guard.path(), dir.join("default.lock"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(guard.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // Another thread, another open file: times out while the guard lives.
        let other_dir = dir.clone();
        let started = Instant::now();
        let err = std::thread::spawn(move || {
            RefreshLock::acquire(&other_dir, "default", Duration::from_millis(150))
        })
        .join()
        .unwrap()
        .unwrap_err();
        let StoreError::LockTimeout { waited, .. } = err else {
            panic!("{err:?}")
        };
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(started.elapsed() < Duration::from_secs(2));

        // Other profiles are independent.
        let _work = RefreshLock::acquire(&dir, "work", Duration::ZERO).unwrap();

        // A waiter gets the lock once the holder lets go.
        let (tx, rx) = mpsc::channel();
        let waiter_dir = dir.clone();
        let waiter = std::thread::spawn(move || {
            tx.send(()).unwrap();
            RefreshLock::acquire(&waiter_dir, "default", Duration::from_secs(10)).map(|_| ())
        });
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(60));
        drop(guard);
        waiter.join().unwrap().unwrap();
        let _again = RefreshLock::acquire(&dir, "default", Duration::ZERO).unwrap();
    }

    #[test]
    fn rejects_profile_names_that_are_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let err = RefreshLock::acquire(tmp.path(), "../x", Duration::ZERO).unwrap_err();
        assert!(matches!(err, StoreError::InvalidProfile { .. }), "{err:?}");
    }
}
