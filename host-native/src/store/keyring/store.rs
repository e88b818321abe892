//! The keyring store over keyring-core's `Entry`, the same on every platform that has one;
//! `platform` builds the platform's credential store and names it.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use keyring_core::{Entry, Error};
use tessera_engine::StoredSession;

use super::super::envelope::{self, MAX_SESSION_BYTES, wipe};
use super::super::error::one_line;
use super::super::{BlockingStore, StoreKind};
use super::platform;
use super::*;

/// How long the probe may take. Starting a keyring daemon takes well under a second; an
/// unlock prompt on a desktop waits for the user, so this is generous.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the session lives, for [`StoreInfo::location`].
pub(crate) fn location(profile: &str) -> String {
    format!("{} (service {SERVICE}, account {profile})", platform::NAME)
}

/// The keyring item of one profile.
#[derive(Debug)]
pub(crate) struct KeyringStore {
    info: StoreInfo,
    profile: String,
    /// Where the profile's refresh lock file lives (the config directory).
    lock_dir: std::path::PathBuf,
    /// Always `Some` until dropped (see the module docs on dropping).
    entry: Option<Entry>,
}

impl Drop for KeyringStore {
    fn drop(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return drop(entry);
        }
        // Inside a runtime (a worker, or the blocking pool, which cannot be told apart
        // from here): release the connection where `block_on` is allowed.
        // Through a channel, so the entry is still ours if the thread cannot start.
        let (handover, receiver) = mpsc::channel::<Entry>();
        let spawned = std::thread::Builder::new()
            .name("tessera-keyring-drop".to_owned())
            .spawn(move || drop(receiver.recv()));
        let unsent = match spawned {
            Ok(_) => handover.send(entry).err().map(|unsent| unsent.0),
            Err(_) => Some(entry),
        };
        if let Some(entry) = unsent {
            // Only when threads are exhausted: leaking one connection beats a panic.
            tracing::debug!("could not release the keyring connection");
            std::mem::forget(entry);
        }
    }
}

/// Connects to the keyring and reads this profile's item. When it holds none and
/// `check_write` is set, also stores and deletes a throw-away item: a headless GNOME
/// Keyring answers reads but refuses writes when its login keyring is locked and no unlock
/// prompt can be shown, and finding that out only after a login would lose it.
pub(crate) fn probe(profile: &str, check_write: bool) -> Result<Probed, String> {
    let (tx, rx) = mpsc::channel();
    let owned = profile.to_owned();
    std::thread::Builder::new()
        .name("tessera-keyring-probe".to_owned())
        .spawn(move || {
            let _ = tx.send(probe_here(&owned, check_write));
        })
        .map_err(|err| format!("could not start the keyring probe: {err}"))?;
    match rx.recv_timeout(PROBE_TIMEOUT) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "the {} did not answer within {} s",
            platform::NAME,
            PROBE_TIMEOUT.as_secs()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err("the keyring probe failed unexpectedly".to_owned())
        }
    }
}

fn probe_here(profile: &str, check_write: bool) -> Result<Probed, String> {
    let store = platform::open()?;
    let label = format!("tessera session ({profile})");
    let entry = store
        .build(SERVICE, profile, modifiers(&label).as_ref())
        .map_err(|err| one_line(&err.to_string()))?;
    let (has_session, read) = match entry.get_secret() {
        Ok(secret) => (true, Some(Some(secret))),
        Err(Error::NoEntry) => (false, Some(None)),
        Err(Error::Ambiguous(_)) => (true, None),
        Err(err) => return Err(access_reason("read from", err, profile)),
    };
    if check_write && !has_session {
        let account = super::super::crypto::random_hex(8).map_err(|e| e.to_string())?;
        let modifiers = modifiers("tessera keyring probe (safe to delete)");
        let probe = store
            .build("tessera-probe", &account, modifiers.as_ref())
            .map_err(|err| one_line(&err.to_string()))?;
        probe
            .set_secret(b"probe")
            .map_err(|err| access_reason("store an item in", err, profile))?;
        if let Err(err) = probe.delete_credential() {
            tracing::warn!(%err, "could not delete the keyring probe item");
        }
    }
    let store = KeyringStore {
        info: StoreInfo {
            kind: StoreKind::Keyring,
            location: location(profile),
            fallback_reason: None,
        },
        profile: profile.to_owned(),
        lock_dir: std::path::PathBuf::from("."),
        entry: Some(entry),
    };
    Ok(Probed {
        store,
        has_session,
        read,
    })
}

/// What an item is built with: its label, where the platform's store takes one.
fn modifiers(label: &str) -> Option<HashMap<&str, &str>> {
    platform::TAKES_LABEL.then(|| HashMap::from([("label", label)]))
}

/// Why an operation was refused, in one line.
fn access_reason(action: &str, err: Error, profile: &str) -> String {
    let name = platform::NAME;
    match err {
        Error::NoStorageAccess(inner) => format!(
            "the {name} refused to {action} the keyring; it is locked and could not be \
             unlocked ({})",
            one_line(&inner.to_string())
        ),
        Error::Ambiguous(items) => format!(
            "{} items match service {SERVICE} and this profile; delete the extra ones ({})",
            items.len(),
            platform::duplicates_hint(profile)
        ),
        // A session bigger than one item may hold (Windows: 2560 bytes).
        Error::TooLong(_, limit) => {
            format!("the session is larger than the {name} holds in one item ({limit} bytes)")
        }
        // BadEncoding/BadDataFormat carry the secret's bytes: never print them.
        Error::BadEncoding(_) | Error::BadDataFormat(..) => {
            format!("the {name} returned malformed data")
        }
        other => format!("the {name} failed: {}", one_line(&other.to_string())),
    }
}

impl KeyringStore {
    fn entry(&self) -> Result<&Entry, StoreError> {
        self.entry
            .as_ref()
            .ok_or_else(|| StoreError::internal("the keyring store was released"))
    }

    fn failed(&self, action: &'static str, err: Error) -> StoreError {
        let reason = access_reason(action, err, &self.profile);
        let verb = match action {
            "read from" => "read",
            "write to" => "save",
            _ => "delete",
        };
        StoreError::Keyring {
            action: verb,
            reason,
        }
    }

    /// The refresh lock is the file `<dir>/<profile>.lock`, shared with the file store.
    pub(crate) fn set_lock_dir(&mut self, dir: &std::path::Path) {
        self.lock_dir = dir.to_path_buf();
    }

    /// A read item as a session: what `load` does after reading.
    pub(crate) fn decode(&self, secret: Vec<u8>) -> Result<Option<StoredSession>, StoreError> {
        let session = if secret.len() as u64 > MAX_SESSION_BYTES {
            Err(StoreError::TooLarge {
                location: self.info.location.clone(),
                size: secret.len() as u64,
                limit: MAX_SESSION_BYTES,
            })
        } else {
            envelope::decode(&secret, &self.profile, &self.info.location)
        };
        wipe(secret);
        session.map(Some)
    }
}

impl BlockingStore for KeyringStore {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn load(&self) -> Result<Option<StoredSession>, StoreError> {
        let secret = match self.entry()?.get_secret() {
            Ok(secret) => secret,
            Err(Error::NoEntry) => return Ok(None),
            Err(err) => return Err(self.failed("read from", err)),
        };
        self.decode(secret)
    }

    fn save(&self, session: &StoredSession) -> Result<(), StoreError> {
        let secret = envelope::encode(&self.profile, session)?;
        let stored = self.entry()?.set_secret(&secret);
        wipe(secret);
        stored.map_err(|err| self.failed("write to", err))
    }

    fn delete(&self) -> Result<(), StoreError> {
        match self.entry()?.delete_credential() {
            Ok(()) | Err(Error::NoEntry) => Ok(()),
            // Duplicates (e.g. left by another tool): logging out removes them all.
            Err(Error::Ambiguous(entries)) => {
                for entry in entries {
                    match entry.delete_credential() {
                        Ok(()) | Err(Error::NoEntry) => {}
                        Err(err) => return Err(self.failed("delete from", err)),
                    }
                }
                Ok(())
            }
            Err(err) => Err(self.failed("delete from", err)),
        }
    }

    fn lock(&self, wait: Duration) -> Result<Option<super::super::LockGuard>, StoreError> {
        super::super::lock::acquire_file_lock(&self.lock_dir, &self.profile, wait)
    }
}
