//! The encrypted session file `<config_dir>/<profile>.session`.
//!
//! Used when there is no keyring (headless machines, SSH, containers) or when asked for
//! with `--store file`. The format and its cryptography are in `crypto.rs`; where the
//! passphrase comes from is in `passphrase.rs`.
//!
//! Key caching: scrypt is deliberately slow (~90–150 ms optimized, seconds unoptimized),
//! so the store keeps the passphrase and the derived key (with its salt) for the life of
//! the process. Writes reuse that key and salt with a fresh random nonce, so only the
//! first derivation pays: a refresh that persists the rotated session does not wait for
//! scrypt (ADR 007). A key is derived again only for a file another process wrote under a
//! different salt, for the first write of a new file, or after `delete`. Across processes
//! of one login session the kernel keeps the derived key (`keycache.rs`, ADR 007), so a
//! later process opens the file without scrypt and without asking for the passphrase.
//!
//! Rules kept here:
//! - A file that cannot be read (wrong passphrase, garbled, newer format) is never deleted
//!   or overwritten by `load`; the user decides (`tessera logout --force`).
//! - `save` only replaces an existing, readable file when the passphrase opens it, so one
//!   profile never silently ends up under a second passphrase. A garbled file is replaced.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tessera_engine::StoredSession;

use super::crypto::{KdfCost, KdfParams, Key, Sealed, Unparsable};
use super::envelope::{self, MAX_SESSION_BYTES, wipe};
use super::error::StoreError;
use super::fsutil;
use super::keycache;
use super::passphrase::{Asker, MAX_PROMPTS, Passphrase};
use super::{BlockingStore, StoreInfo, StoreKind};

/// The largest encrypted file read: the envelope limit after base64 and JSON framing.
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;
const _: () = assert!(MAX_SESSION_BYTES * 4 / 3 + 1024 < MAX_FILE_BYTES);

/// The session file of one profile.
#[derive(Debug)]
pub(crate) struct FileStore {
    info: StoreInfo,
    path: PathBuf,
    profile: String,
    cost: KdfCost,
    /// Share derived keys through the kernel session keyring (`keycache.rs`).
    kernel_cache: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    asker: Asker,
    /// Known to open the current file, or chosen for a new one.
    passphrase: Option<Passphrase>,
    /// The key of the file last written or read.
    key: Option<Key>,
}

/// `<config_dir>/<profile>.session`.
pub(crate) fn session_path(config_dir: &Path, profile: &str) -> PathBuf {
    config_dir.join(format!("{profile}.session"))
}

impl FileStore {
    pub(crate) fn new(
        config_dir: &Path,
        profile: &str,
        asker: Asker,
        cost: KdfCost,
        fallback_reason: Option<String>,
    ) -> Self {
        let path = session_path(config_dir, profile);
        FileStore {
            info: StoreInfo {
                kind: StoreKind::File,
                location: path.display().to_string(),
                fallback_reason,
            },
            path,
            profile: profile.to_owned(),
            cost,
            kernel_cache: false,
            state: Mutex::new(State {
                asker,
                passphrase: None,
                key: None,
            }),
        }
    }

    /// Shares derived keys with the other processes of the login session (what
    /// `open_store` builds; unit tests stay off the user's keyring).
    pub(crate) fn with_kernel_cache(mut self) -> Self {
        self.kernel_cache = true;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-updated that matters: at worst
        // the cache is empty and the passphrase is asked for again.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Sealed, StoreError> {
        Sealed::parse(bytes).map_err(|problem| match problem {
            Unparsable::Corrupt(detail) => StoreError::corrupt(self.info.location.clone(), detail),
            Unparsable::Version(found) => StoreError::UnsupportedVersion {
                location: self.info.location.clone(),
                found,
            },
        })
    }

    /// Decrypts `sealed`, deriving (and asking for the passphrase) only when the cached key
    /// does not fit. A typed passphrase that fails may be retried; one from the environment
    /// or the program fails at once.
    fn decrypt(&self, state: &mut State, sealed: &Sealed) -> Result<Vec<u8>, StoreError> {
        let aad = self.profile.as_bytes();
        if let Some(plaintext) = self.open_with_cached_key(state, sealed) {
            return Ok(plaintext);
        }
        for attempt in 1..=MAX_PROMPTS {
            let mut derived = false;
            if !state
                .key
                .as_ref()
                .is_some_and(|k| k.params() == &sealed.params)
            {
                let passphrase = match state.passphrase.take() {
                    Some(known) => known,
                    None => state.asker.existing(&self.path)?,
                };
                let key = Key::derive(&passphrase, sealed.params.clone());
                state.passphrase = Some(passphrase);
                state.key = Some(key?);
                derived = true;
            }
            if let Some(key) = state.key.as_ref()
                && let Some(plaintext) = sealed.open(key, aad)
            {
                if derived && self.kernel_cache {
                    keycache::remember(key.params(), key.bytes());
                }
                return Ok(plaintext);
            }
            state.key = None;
            state.passphrase = None;
            if !state.asker.can_prompt() || attempt == MAX_PROMPTS {
                break;
            }
            state.asker.tell("Wrong passphrase; try again.");
        }
        Err(StoreError::WrongPassphrase {
            path: self.path.clone(),
        })
    }

    /// Opens `sealed` with a key this process or, through the session keyring, another
    /// process of the session derived for it, without scrypt. A cached key that fails is
    /// dropped from the keyring.
    fn open_with_cached_key(&self, state: &mut State, sealed: &Sealed) -> Option<Vec<u8>> {
        let aad = self.profile.as_bytes();
        if let Some(key) = state.key.as_ref().filter(|k| k.params() == &sealed.params) {
            return sealed.open(key, aad);
        }
        if !self.kernel_cache {
            return None;
        }
        let key = Key::cached(sealed.params.clone(), keycache::lookup(&sealed.params)?);
        match sealed.open(&key, aad) {
            Some(plaintext) => {
                state.key = Some(key);
                Some(plaintext)
            }
            None => {
                keycache::forget(&sealed.params);
                None
            }
        }
    }

    /// Makes sure `state.passphrase` may be used to write the file (see the module docs).
    /// A key of the file opened (from the session keyring) stands in for the passphrase.
    fn passphrase_for_writing(&self, state: &mut State) -> Result<(), StoreError> {
        if state.passphrase.is_some() || state.key.is_some() {
            return Ok(());
        }
        if let Some(bytes) = fsutil::read_limited(&self.path, MAX_FILE_BYTES)
            .ok()
            .flatten()
            && let Ok(sealed) = self.parse(&bytes)
        {
            wipe(self.decrypt(state, &sealed)?);
            return Ok(());
        }
        state.passphrase = Some(state.asker.new_file(&self.path)?);
        Ok(())
    }
}

impl BlockingStore for FileStore {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn lock(&self, wait: std::time::Duration) -> Result<Option<super::LockGuard>, StoreError> {
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        super::lock::acquire_file_lock(dir, &self.profile, wait)
    }

    fn load(&self) -> Result<Option<StoredSession>, StoreError> {
        let Some(bytes) = fsutil::read_limited(&self.path, MAX_FILE_BYTES)? else {
            return Ok(None);
        };
        let sealed = self.parse(&bytes)?;
        let plaintext = self.decrypt(&mut self.state(), &sealed)?;
        let session = envelope::decode(&plaintext, &self.profile, &self.info.location);
        wipe(plaintext);
        session.map(Some)
    }

    fn save(&self, session: &StoredSession) -> Result<(), StoreError> {
        let plaintext = envelope::encode(&self.profile, session)?;
        let mut state = self.state();
        let state = &mut *state;
        let written = self.passphrase_for_writing(state).and_then(|()| {
            // The key (and salt) of the file, when known: a fresh nonce makes each write
            // safe under it. Otherwise — a new file, or one written at another cost while
            // the passphrase is at hand — a new salt and one derivation.
            let reuse = state
                .key
                .as_ref()
                .is_some_and(|key| key.params().cost() == self.cost || state.passphrase.is_none());
            let mut derived = false;
            if !reuse {
                let Some(passphrase) = state.passphrase.as_ref() else {
                    return Err(StoreError::internal("no passphrase after asking for one"));
                };
                state.key = Some(Key::derive(passphrase, KdfParams::random(self.cost)?)?);
                derived = true;
            }
            let Some(key) = state.key.as_ref() else {
                return Err(StoreError::internal("no key after deriving one"));
            };
            fsutil::write_atomic(&self.path, &key.seal(self.profile.as_bytes(), &plaintext)?)?;
            if derived && self.kernel_cache {
                keycache::remember(key.params(), key.bytes());
            }
            Ok(())
        });
        wipe(plaintext);
        written
    }

    fn delete(&self) -> Result<(), StoreError> {
        let mut state = self.state();
        // The session keyring forgets this file's key too (logout ends the cache).
        if self.kernel_cache
            && let Some(bytes) = fsutil::read_limited(&self.path, MAX_FILE_BYTES)
                .ok()
                .flatten()
            && let Ok(sealed) = self.parse(&bytes)
        {
            keycache::forget(&sealed.params);
        }
        if let Some(key) = state.key.as_ref().filter(|_| self.kernel_cache) {
            keycache::forget(key.params());
        }
        fsutil::remove(&self.path)?;
        // The next login chooses a passphrase afresh (a lost one is a reason to delete).
        state.passphrase = None;
        state.key = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PassphraseSource;
    use crate::store::envelope::tests::sample_session;
    use std::fs;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const UNSET: &str = "TESSERA_TEST_VARIABLE_THAT_IS_NEVER_SET";

    fn store(dir: &Path, profile: &str, passphrase: &str) -> FileStore {
        let asker = Asker::scripted(PassphraseSource::Fixed(passphrase.into()), UNSET, None);
        FileStore::new(dir, profile, asker, KdfCost::CHEAP, None)
    }

    /// A store that prompts, answering from `answers` and counting the prompts.
    fn prompting(dir: &Path, answers: &[&str]) -> (FileStore, Arc<AtomicUsize>) {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let answers: Vec<String> = answers.iter().map(|a| a.to_string()).collect();
        let prompt = move |_: &str| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            Ok(answers[n].clone())
        };
        let asker = Asker::scripted(PassphraseSource::EnvOrPrompt, UNSET, Some(Box::new(prompt)));
        let store = FileStore::new(dir, "default", asker, KdfCost::CHEAP, None);
        (store, asked)
    }

    #[test]
    fn round_trip_and_no_plaintext_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let session = sample_session(2000);
        let writer = store(tmp.path(), "default", "correct horse");
        assert!(writer.load().unwrap().is_none());
        writer.save(&session).unwrap();
        assert_eq!(writer.load().unwrap().unwrap(), session);
        let reader = store(tmp.path(), "default", "correct horse");
        assert_eq!(reader.load().unwrap().unwrap(), session);
        let raw = fs::read_to_string(tmp.path().join("default.session")).unwrap();
        assert!(raw.starts_with(r#"{"format":"tessera-encrypted-session","version":1,"#));
        assert!(!raw.contains("refresh-token-value") && !raw.contains("issuer.example"));
        assert_eq!(writer.info().kind, StoreKind::File);
        assert!(writer.info().location.ends_with("default.session"));
    }

    #[test]
    fn wrong_passphrase_keeps_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        store(tmp.path(), "default", "right")
            .save(&sample_session(10))
            .unwrap();
        let path = tmp.path().join("default.session");
        let before = fs::read(&path).unwrap();
        let wrong = store(tmp.path(), "default", "wrong");
        let err = wrong.load().unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase { .. }), "{err:?}");
        assert!(!err.to_string().contains("wrong\""));
        // Saving with a passphrase that does not open the file is refused as well.
        let err = wrong.save(&sample_session(10)).unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase { .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn corrupt_file_is_reported_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("default.session");
        let store = store(tmp.path(), "default", "pw");
        store.save(&sample_session(10)).unwrap();
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..full.len() - 40]).unwrap();
        let err = store.load().unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("tessera logout --force"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), &full[..full.len() - 40]);
        // A modified ciphertext fails authentication, like a wrong passphrase.
        let mut value: serde_json::Value = serde_json::from_slice(&full).unwrap();
        let ciphertext = value["ciphertext"].as_str().unwrap().replacen('A', "B", 1);
        value["ciphertext"] = ciphertext.into();
        fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
        assert!(matches!(
            store.load(),
            Err(StoreError::WrongPassphrase { .. })
        ));
        // A save replaces a garbled file.
        fs::write(&path, b"garbage").unwrap();
        store.save(&sample_session(10)).unwrap();
        assert!(store.load().unwrap().is_some());
    }

    #[test]
    fn a_file_renamed_to_another_profile_does_not_open() {
        let tmp = tempfile::tempdir().unwrap();
        store(tmp.path(), "work", "pw")
            .save(&sample_session(10))
            .unwrap();
        fs::rename(
            tmp.path().join("work.session"),
            tmp.path().join("default.session"),
        )
        .unwrap();
        // The profile is the associated data, so the AEAD check fails first.
        let err = store(tmp.path(), "default", "pw").load().unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase { .. }), "{err:?}");
    }

    #[test]
    fn delete_is_idempotent_and_forgets_the_passphrase() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, asked) = prompting(tmp.path(), &["one", "one", "two", "two"]);
        store.delete().unwrap();
        store.save(&sample_session(10)).unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        store.delete().unwrap();
        store.delete().unwrap();
        assert!(store.load().unwrap().is_none());
        store.save(&sample_session(10)).unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 4);
        assert!(store.load().unwrap().is_some());
    }

    #[test]
    fn prompts_once_then_uses_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        store(tmp.path(), "default", "pw")
            .save(&sample_session(10))
            .unwrap();
        let (store, asked) = prompting(tmp.path(), &["typo", "pw"]);
        for _ in 0..3 {
            assert!(store.load().unwrap().is_some());
            store.save(&sample_session(10)).unwrap();
        }
        assert_eq!(
            asked.load(Ordering::SeqCst),
            2,
            "one typo, one retry, then cached"
        );
    }

    #[test]
    fn three_wrong_answers_give_up() {
        let tmp = tempfile::tempdir().unwrap();
        store(tmp.path(), "default", "pw")
            .save(&sample_session(10))
            .unwrap();
        let (store, asked) = prompting(tmp.path(), &["a", "b", "c", "pw"]);
        assert!(matches!(
            store.load(),
            Err(StoreError::WrongPassphrase { .. })
        ));
        assert_eq!(asked.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn no_file_means_no_prompt() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, asked) = prompting(tmp.path(), &[]);
        assert!(store.load().unwrap().is_none());
        store.delete().unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 0);
    }

    /// What makes a refresh fast: writes after the first reuse the key and its salt (no
    /// scrypt), each with a fresh nonce; another process still reads every version.
    #[test]
    fn writes_reuse_the_key_and_salt_with_a_fresh_nonce() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("default.session");
        let writer = store(tmp.path(), "default", "pw");
        let field = |name: &str| {
            let value: serde_json::Value =
                serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
            let found = match name {
                "salt" => &value["kdf"]["salt"],
                other => &value[other],
            };
            found.as_str().unwrap().to_owned()
        };
        let mut session = sample_session(10);
        writer.save(&session).unwrap();
        let (salt, nonce) = (field("salt"), field("nonce"));
        let mut nonces = vec![nonce];
        for n in 0..3 {
            session.access_token = tessera_engine::Secret::new(format!("rotated-{n}"));
            writer.save(&session).unwrap();
            assert_eq!(field("salt"), salt, "same key, same salt");
            assert!(!nonces.contains(&field("nonce")), "a fresh nonce per write");
            nonces.push(field("nonce"));
            assert_eq!(
                store(tmp.path(), "default", "pw").load().unwrap().unwrap(),
                session
            );
        }
        // A file written at another cost is rewritten under a new salt at this one.
        let other_cost = FileStore::new(
            tmp.path(),
            "default",
            Asker::scripted(PassphraseSource::Fixed("pw".into()), UNSET, None),
            KdfCost {
                log_n: 9,
                ..KdfCost::CHEAP
            },
            None,
        );
        other_cost.save(&session).unwrap();
        assert_ne!(field("salt"), salt);
        // After delete, a new login gets a new salt.
        writer.delete().unwrap();
        writer.save(&session).unwrap();
        assert_ne!(field("salt"), salt);
    }

    #[test]
    fn another_process_rewriting_the_file_is_read_correctly() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (store(tmp.path(), "p", "pw"), store(tmp.path(), "p", "pw"));
        let mut session = sample_session(10);
        a.save(&session).unwrap();
        assert_eq!(b.load().unwrap().unwrap(), session);
        session.access_token = tessera_engine::Secret::new("rotated");
        b.save(&session).unwrap();
        assert_eq!(a.load().unwrap().unwrap(), session);
    }
}
