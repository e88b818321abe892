//! Session storage for the native host: the system keyring, or an encrypted file.
//!
//! The engine asks for its session to be loaded, saved and deleted ([`BlockingStore`]) and,
//! around a refresh, for a cross-process lock ([`RefreshLock`]). Every operation here is
//! blocking: the actor runs them in `tokio::task::spawn_blocking` (the keyring *must* not be
//! called from async code, see below).
//!
//! # Where the session goes
//!
//! [`open_store`] with [`StoreChoice::Auto`] (the default) uses the system keyring when one
//! works, and otherwise the encrypted file `<config_dir>/<profile>.session`, saying why in
//! [`StoreInfo::fallback_reason`] — never a silent plaintext fallback, and never a hard
//! error on a headless machine. `Keyring` and `File` force one; `Keyring` without a keyring
//! is an error. Auto also stays with an existing session file when the keyring holds nothing
//! for the profile, so a login made over SSH is still found at the desktop (and both keep
//! refreshing the one session, under one lock).
//!
//! # What the encrypted file protects, and the passphrase decision
//!
//! The file is created 0600 in a 0700 directory, so other local users cannot read it. It is
//! also encrypted (scrypt + AES-256-GCM, see `crypto.rs`) so that a copy — a backup, a synced
//! dotfiles repository, a disk image, a stolen laptop's home directory — is useless without
//! the passphrase. It does **not** protect against code running as the same user while the
//! passphrase is available (it can read `TESSERA_PASSPHRASE`, attach to the process, or log
//! keystrokes), nor against a weak passphrase (scrypt makes each guess cost ~32 MiB and
//! ~150 ms; it cannot make "password1" strong).
//!
//! The key comes from a passphrase the user provides, not from something stored next to the
//! file: a key file or a machine-derived key would sit in the same backups as the session
//! and add nothing. The passphrase comes from `TESSERA_PASSPHRASE` (for scripts, CI and
//! services, which already hold secrets in their environment) or, with
//! [`PassphraseSource::EnvOrPrompt`] on a terminal, from a prompt on stderr — once per
//! process, since the store caches the passphrase and the derived key in memory, and once
//! per login session and cache period where the kernel keeps the derived key
//! (`keycache.rs`, ADR 007; `TESSERA_KEY_CACHE_SECS=0` turns that off). A new
//! file's passphrase is typed twice. Programs embedding tessera pass it directly
//! ([`PassphraseSource::Fixed`]). Without any of these, opening a file fails with
//! [`StoreError::NoPassphrase`]; it never falls back to plaintext.
//!
//! # Keyring and runtimes
//!
//! On Linux the keyring is the Secret Service over D-Bus. Its client runs its own tokio
//! runtime internally and panics if called from a thread inside another runtime: call
//! `load`/`save`/`delete` from `spawn_blocking` or a plain thread. `open_store` probes on a
//! thread of its own (bounded by a timeout), but blocks its caller meanwhile.

mod crypto;
mod envelope;
mod error;
mod file;
pub(crate) mod fsutil;
mod keycache;
mod keyring;
mod lock;
mod memory;
mod passphrase;
mod shared;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tessera_engine::StoredSession;

pub use error::StoreError;
pub use keycache::KEY_CACHE_SECS_ENV;
pub use lock::{RefreshLock, RefreshLockGuard, lock_path};
pub use memory::MemoryStore;
pub use passphrase::PASSPHRASE_ENV;
pub use shared::{
    Blocking, LockGuard, Locked, SessionStore, StoreFuture, Versioned, failed_input, load_input,
    loaded_input, version_of,
};

/// Which storage the user asked for (`--store auto|keyring|file`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreChoice {
    /// The keyring when it works, else the encrypted file (with the reason).
    #[default]
    Auto,
    /// The keyring or an error.
    Keyring,
    /// The encrypted file.
    File,
}

impl FromStr for StoreChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(StoreChoice::Auto),
            "keyring" => Ok(StoreChoice::Keyring),
            "file" => Ok(StoreChoice::File),
            other => Err(format!(
                "unknown store {other:?}; use auto, keyring or file"
            )),
        }
    }
}

impl fmt::Display for StoreChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreChoice::Auto => "auto",
            StoreChoice::Keyring => "keyring",
            StoreChoice::File => "file",
        })
    }
}

/// Which storage is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Keyring,
    File,
    /// Tokens given in the environment (`TESSERA_ACCESS_TOKEN`…), kept in memory only.
    Environment,
    /// A database (`tessera serve`), tokens sealed.
    Database,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Keyring => "keyring",
            StoreKind::File => "encrypted file",
            StoreKind::Environment => "environment",
            StoreKind::Database => "database",
        })
    }
}

/// Where the session is kept, for `tessera status` and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreInfo {
    pub kind: StoreKind,
    /// `Secret Service (service tessera, account <profile>)`, or the file's path.
    pub location: String,
    /// Why the keyring is not used, in one line, when `Auto` chose the file.
    pub fallback_reason: Option<String>,
}

impl fmt::Display for StoreInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.fallback_reason) {
            (StoreKind::Keyring | StoreKind::Environment | StoreKind::Database, _) | (_, None) => {
                write!(f, "{}: {}", self.kind, self.location)
            }
            (StoreKind::File, Some(reason)) => write!(
                f,
                "{}: {} (not the keyring: {reason})",
                self.kind, self.location
            ),
        }
    }
}

/// Loads, saves and deletes one profile's session, and takes its refresh lock. All
/// methods block; [`Blocking`] runs them on tokio's blocking pool as a [`SessionStore`].
///
/// Implementations serialize their own operations (`&self` methods, `Sync`); consistency
/// across processes comes from the refresh lock plus atomic replacement.
pub trait BlockingStore: Send + Sync + 'static {
    /// Where the session is kept.
    fn info(&self) -> &StoreInfo;
    /// The stored session, `Ok(None)` when there is none. Never deletes anything.
    fn load(&self) -> Result<Option<StoredSession>, StoreError>;
    /// Replaces the stored session.
    fn save(&self, session: &StoredSession) -> Result<(), StoreError>;
    /// Removes the stored session; `Ok` when there was none.
    fn delete(&self) -> Result<(), StoreError>;
    /// Takes the refresh lock, waiting up to `wait` for another holder: `Ok(None)` when it
    /// stayed busy. Released when the guard is dropped, or when this process dies.
    fn lock(&self, wait: std::time::Duration) -> Result<Option<LockGuard>, StoreError>;
}

impl fmt::Debug for dyn BlockingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingStore").field(self.info()).finish()
    }
}

/// Where the encrypted file's passphrase comes from (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// `TESSERA_PASSPHRASE`, or fail with [`StoreError::NoPassphrase`].
    Env,
    /// `TESSERA_PASSPHRASE`, else a prompt on the terminal (stderr), else fail.
    EnvOrPrompt,
    /// Given by the program (library users, tests).
    Fixed(String),
}

impl fmt::Debug for PassphraseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PassphraseSource::Env => f.write_str("Env"),
            PassphraseSource::EnvOrPrompt => f.write_str("EnvOrPrompt"),
            PassphraseSource::Fixed(_) => f.write_str("Fixed(<redacted>)"),
        }
    }
}

/// Opens the session store of `profile` in `config_dir`.
///
/// Nothing is created and no passphrase is asked for here: the directory and file appear on
/// the first save, and the passphrase is needed only when a file is read or written. For
/// `Auto` and `Keyring` this probes the keyring (a D-Bus round trip or two, bounded by a
/// timeout; see `keyring.rs`). Blocking.
pub fn open_store(
    choice: StoreChoice,
    config_dir: &Path,
    profile: &str,
    passphrase: PassphraseSource,
) -> Result<Box<dyn BlockingStore>, StoreError> {
    open(choice, config_dir, profile, passphrase).map(|(store, _)| store)
}

/// What loading right after opening gives: the session, none, or why it is unreadable.
pub type Loaded = Result<Option<StoredSession>, StoreError>;

/// [`open_store`], then the stored session, as `load` would return it. The keyring's
/// probe has just read the item, so this asks the Secret Service once instead of twice
/// (`tessera token` opens and reads at once). Blocking.
pub fn open_and_load(
    choice: StoreChoice,
    config_dir: &Path,
    profile: &str,
    passphrase: PassphraseSource,
) -> Result<(Box<dyn BlockingStore>, Loaded), StoreError> {
    let (store, probed) = open(choice, config_dir, profile, passphrase)?;
    let loaded = probed.unwrap_or_else(|| store.load());
    Ok((store, loaded))
}

/// [`open_and_load`] for the encrypted file only, without linking or touching the keyring:
/// what `tessera`'s front binary uses for `tessera token --store file` (main.rs). The
/// keyring module, its D-Bus client and the runtime behind it stay out of that binary.
pub fn open_file_and_load(
    config_dir: &Path,
    profile: &str,
    passphrase: PassphraseSource,
) -> Result<(Box<dyn BlockingStore>, Loaded), StoreError> {
    validate_profile(profile)?;
    let store = file_store(config_dir, profile, passphrase, None);
    let loaded = store.load();
    Ok((store, loaded))
}

fn file_store(
    config_dir: &Path,
    profile: &str,
    passphrase: PassphraseSource,
    fallback_reason: Option<String>,
) -> Box<dyn BlockingStore> {
    Box::new(
        file::FileStore::new(
            config_dir,
            profile,
            passphrase::Asker::new(passphrase),
            crypto::KdfCost::DEFAULT,
            fallback_reason,
        )
        .with_kernel_cache(),
    )
}

/// The store, and what the keyring probe read (when it chose the keyring and could tell).
fn open(
    choice: StoreChoice,
    config_dir: &Path,
    profile: &str,
    passphrase: PassphraseSource,
) -> Result<(Box<dyn BlockingStore>, Option<Loaded>), StoreError> {
    validate_profile(profile)?;
    let file = |fallback_reason: Option<String>| {
        file_store(config_dir, profile, passphrase.clone(), fallback_reason)
    };
    let chosen = |mut probed: keyring::Probed| -> (Box<dyn BlockingStore>, Option<Loaded>) {
        probed.store.set_lock_dir(config_dir);
        let loaded = probed.read.map(|read| match read {
            Some(secret) => probed.store.decode(secret),
            None => Ok(None),
        });
        (Box::new(probed.store), loaded)
    };
    match choice {
        StoreChoice::File => Ok((file(None), None)),
        StoreChoice::Keyring => match keyring::probe(profile, true) {
            Ok(probed) => Ok(chosen(probed)),
            Err(reason) => Err(StoreError::KeyringUnavailable { reason }),
        },
        StoreChoice::Auto => {
            let session_file = file::session_path(config_dir, profile);
            let file_exists = session_file.exists();
            match keyring::probe(profile, !file_exists) {
                Ok(probed) if probed.has_session || !file_exists => {
                    tracing::debug!(store = %probed.store.info(), "session store chosen");
                    Ok(chosen(probed))
                }
                Ok(_) => Ok((
                    file(Some(format!(
                        "a session file exists and the keyring holds no session for profile \
                         {profile}"
                    ))),
                    None,
                )),
                Err(reason) => {
                    tracing::debug!(%reason, "keyring unavailable; using the encrypted file");
                    Ok((file(Some(reason)), None))
                }
            }
        }
    }
}

/// Writes a file holding secrets as the session files are written: mode 0600 (a missing
/// directory is created 0700), through a synced temporary file renamed over `path`, so
/// readers see the old or the new content and a link at `path` is replaced, not followed.
/// (`tessera export -o`.)
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    fsutil::write_atomic(path, bytes)
}

/// `<config dir of the platform>/tessera`, e.g. `~/.config/tessera` on Linux.
pub fn default_config_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("tessera"))
}

/// Profile names become file names and keyring accounts: keep them boring.
pub fn validate_profile(profile: &str) -> Result<(), StoreError> {
    let reason = if profile.is_empty() {
        Some("it is empty")
    } else if profile.len() > 64 {
        Some("it is longer than 64 characters")
    } else if profile.starts_with(['.', '-']) {
        Some("it starts with '.' or '-'")
    } else if !profile
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("it contains a character other than letters, digits, '.', '_' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidProfile {
            profile: profile.chars().take(80).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names() {
        for good in ["default", "work", "a.b_c-d", "X1"] {
            validate_profile(good).unwrap();
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "..",
            "a b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(validate_profile(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn choices_parse_and_print() {
        for choice in [StoreChoice::Auto, StoreChoice::Keyring, StoreChoice::File] {
            assert_eq!(choice.to_string().parse::<StoreChoice>().unwrap(), choice);
        }
        assert!("plaintext".parse::<StoreChoice>().is_err());
    }

    #[test]
    fn file_choice_touches_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config");
        let store = open_store(StoreChoice::File, &dir, "default", PassphraseSource::Env).unwrap();
        assert_eq!(store.info().kind, StoreKind::File);
        assert_eq!(store.info().fallback_reason, None);
        assert!(store.load().unwrap().is_none());
        store.delete().unwrap();
        assert!(!dir.exists());
        assert!(format!("{store:?}").contains("default.session"));
    }

    #[test]
    fn info_says_why_not_the_keyring() {
        let info = StoreInfo {
            kind: StoreKind::File,
            location: "/home/u/.config/tessera/default.session".into(),
            fallback_reason: Some("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)".into()),
        };
        assert_eq!(
            info.to_string(),
            "encrypted file: /home/u/.config/tessera/default.session (not the keyring: no \
             D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset))"
        );
    }
}
