//! The session file's derived key, cached in the Linux kernel's session keyring.
//!
//! scrypt makes every process that opens the session file pay ~90 ms (by design: a copied
//! file must cost an attacker that much per guess). Within one login session the derived
//! key is kept by the kernel instead (keyrings(7)), like gpg-agent keeps a passphrase:
//! later processes of the session read it with one syscall. ADR 007 weighs it.
//!
//! - Only a real **session keyring** (`_ses`, made by pam_keyinit at login or by `keyctl
//!   session`) is used, never the user-wide fallback (`_uid_ses.<uid>`) a process without
//!   one resolves to, and nothing is created: without a session keyring nothing is cached
//!   and nothing is said (the file works as before, one derivation per process).
//! - The key is a `user` key readable only by its possessors (processes of this session);
//!   other users and the user's other sessions cannot read it.
//! - It expires after `TESSERA_KEY_CACHE_SECS` (default 600 s; 0, or text that is not a
//!   number, turns the cache off) counted from the derivation, and is revoked when the session file is deleted (logout)
//!   or when it fails to open the file.
//! - Its description names the file's KDF parameters and salt (not secret), so a key
//!   always belongs to one file version: a new login (new salt) never finds an old key.
//!
//! Every failure here is silent (logged at debug level): the cache is an optimisation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::crypto::KdfParams;

/// `TESSERA_KEY_CACHE_SECS`: how long a derived key stays cached; 0 turns the cache off.
pub const KEY_CACHE_SECS_ENV: &str = "TESSERA_KEY_CACHE_SECS";
const DEFAULT_SECS: usize = 600;

/// How long keys are cached, `None` when caching is off.
fn lifetime() -> Option<usize> {
    lifetime_from(std::env::var(KEY_CACHE_SECS_ENV).ok().as_deref())
}

/// The cache lifetime `TESSERA_KEY_CACHE_SECS` asks for. Unreadable text turns the cache
/// off (with a warning): a typo must not keep a key around longer than meant.
fn lifetime_from(setting: Option<&str>) -> Option<usize> {
    let secs = match setting.map(str::trim) {
        None | Some("") => DEFAULT_SECS,
        Some(text) => text.parse().unwrap_or_else(|_| {
            tracing::warn!(
                "{KEY_CACHE_SECS_ENV} is not a whole number of seconds; the key cache is off"
            );
            0
        }),
    };
    (secs > 0).then_some(secs)
}

/// The key's description in the keyring.
fn description(params: &KdfParams) -> String {
    let cost = params.cost();
    format!(
        "tessera:session-file-key:v1:{}:{}:{}:{}",
        cost.log_n,
        cost.r,
        cost.p,
        BASE64.encode(params.salt())
    )
}

#[cfg(target_os = "linux")]
mod kernel {
    use linux_keyutils::{Key, KeyRing, KeyRingIdentifier};

    /// The session keyring, if this process has a real one (see the module docs).
    pub fn session_keyring() -> Option<KeyRing> {
        let keyring = KeyRing::from_special_id(KeyRingIdentifier::Session, false).ok()?;
        let metadata = keyring.metadata().ok()?;
        if metadata.get_description() == "_ses" || !metadata.get_description().starts_with('_') {
            Some(keyring)
        } else {
            tracing::debug!(
                keyring = metadata.get_description(),
                "no session keyring: the session file key is not cached"
            );
            None
        }
    }

    pub fn find(description: &str) -> Option<Key> {
        session_keyring()?.search(description).ok()
    }

    pub fn read(key: &Key) -> Option<[u8; 32]> {
        let mut bytes = [0u8; 32];
        match key.read(&mut bytes) {
            Ok(32) => Some(bytes),
            _ => None,
        }
    }

    pub fn add(description: &str, bytes: &[u8; 32], secs: usize) -> Result<(), String> {
        let keyring = session_keyring().ok_or("no session keyring")?;
        let key = keyring
            .add_key(description, bytes)
            .map_err(|e| format!("{e:?}"))?;
        if let Err(error) = key.set_timeout(secs) {
            // A key that would not expire is not kept.
            let _ = key.invalidate();
            return Err(format!("{error:?}"));
        }
        Ok(())
    }

    pub fn remove(key: Key) {
        let _ = key.invalidate();
    }
}

#[cfg(not(target_os = "linux"))]
mod kernel {
    pub enum Key {}
    pub fn find(_: &str) -> Option<Key> {
        None
    }
    pub fn read(key: &Key) -> Option<[u8; 32]> {
        match *key {}
    }
    pub fn add(_: &str, _: &[u8; 32], _: usize) -> Result<(), String> {
        Err("only on Linux".into())
    }
    pub fn remove(key: Key) {
        match key {}
    }
}

/// The cached key for a file with these parameters, if the session holds one.
pub(crate) fn lookup(params: &KdfParams) -> Option<[u8; 32]> {
    lifetime()?;
    let key = kernel::find(&description(params))?;
    let bytes = kernel::read(&key);
    if bytes.is_some() {
        tracing::debug!("the session file key came from the kernel session keyring");
    }
    bytes
}

/// Caches a freshly derived key for the session.
pub(crate) fn remember(params: &KdfParams, bytes: &[u8; 32]) {
    let Some(secs) = lifetime() else {
        return;
    };
    match kernel::add(&description(params), bytes, secs) {
        Ok(()) => tracing::debug!(secs, "cached the session file key in the session keyring"),
        Err(reason) => tracing::debug!(%reason, "the session file key is not cached"),
    }
}

/// Drops the cached key of a file with these parameters (deleted, or the key failed).
pub(crate) fn forget(params: &KdfParams) {
    if let Some(key) = kernel::find(&description(params)) {
        kernel::remove(key);
    }
}

#[cfg(test)]
mod lifetime_tests {
    use super::*;

    #[test]
    fn unreadable_settings_turn_the_cache_off() {
        assert_eq!(lifetime_from(None), Some(DEFAULT_SECS));
        assert_eq!(lifetime_from(Some("")), Some(DEFAULT_SECS));
        assert_eq!(lifetime_from(Some(" 30 ")), Some(30));
        assert_eq!(lifetime_from(Some("0")), None);
        assert_eq!(lifetime_from(Some("ten minutes")), None);
        assert_eq!(lifetime_from(Some("-5")), None);
    }
}
