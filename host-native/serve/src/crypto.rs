//! Tokens at rest: AES-256-GCM with a random 96-bit nonce per write, and associated data
//! that binds each record to its user, profile and kind, so a row copied to another user
//! (or a pending login passed off as a session) does not open.
//!
//! The key is 32 bytes: `TESSERA_SERVE_KEY` (base64), or `<config dir>/serve.key`, created
//! at first start with mode 0600.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::StartError;

const NONCE_LEN: usize = 12;

/// Seals and opens records. `Debug` shows nothing of the key.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

/// What a record is, for its associated data.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Session,
    PendingLogin,
}

fn aad(kind: Kind, user: &str, profile: &str) -> Vec<u8> {
    let kind = match kind {
        Kind::Session => "session",
        Kind::PendingLogin => "pending-login",
    };
    // Lengths first, so ("a:b", "c") and ("a", "b:c") differ.
    format!(
        "tessera-serve/v1|{kind}|{}:{user}|{}:{profile}",
        user.len(),
        profile.len()
    )
    .into_bytes()
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// The key from `env_key` (base64 of 32 bytes), else the key file in `dir`, created
    /// when missing.
    pub fn load(env_key: Option<&str>, dir: &Path) -> Result<Self, StartError> {
        if let Some(text) = env_key {
            return decode_key(text.trim())
                .map(|key| Self::new(&key))
                .ok_or_else(|| StartError::Key {
                    detail: "TESSERA_SERVE_KEY is not the base64 of 32 bytes (make one with `openssl rand -base64 32`)".into(),
                });
        }
        let path = dir.join("serve.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => decode_key(text.trim())
                .map(|key| Self::new(&key))
                .ok_or_else(|| StartError::Key {
                    detail: format!("{} does not hold the base64 of 32 bytes", path.display()),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| StartError::Key {
                    detail: format!("no randomness for a new key: {e}"),
                })?;
                crate::files::write_secret_file(&path, STANDARD.encode(key).as_bytes()).map_err(
                    |e| StartError::Key {
                        detail: format!("cannot create {}: {e}", path.display()),
                    },
                )?;
                Ok(Self::new(&key))
            }
            Err(e) => Err(StartError::Key {
                detail: format!("cannot read {}: {e}", path.display()),
            }),
        }
    }

    /// `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, kind: Kind, user: &str, profile: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // The OS generator does not fail on the platforms tessera runs on; if it ever
        // did, a fixed nonce would be fatal to GCM, so stop rather than go on.
        getrandom::fill(&mut nonce).expect("the operating system's random generator failed");
        let aad = aad(kind, user, profile);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext, or `None` when the record was not sealed with this key for this
    /// user, profile and kind (tampered, copied, another key).
    pub fn open(&self, kind: Kind, user: &str, profile: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let aad = aad(kind, user, profile);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .ok()
    }
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    STANDARD.decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_opens_only_for_its_user_profile_and_kind() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal(Kind::Session, "alice", "work", b"tokens");
        assert_eq!(
            sealer
                .open(Kind::Session, "alice", "work", &sealed)
                .as_deref(),
            Some(&b"tokens"[..])
        );
        assert!(sealer.open(Kind::Session, "bob", "work", &sealed).is_none());
        assert!(
            sealer
                .open(Kind::Session, "alice", "home", &sealed)
                .is_none()
        );
        assert!(
            sealer
                .open(Kind::PendingLogin, "alice", "work", &sealed)
                .is_none()
        );
        assert!(
            Sealer::new(&[8; 32])
                .open(Kind::Session, "alice", "work", &sealed)
                .is_none()
        );
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(
            sealer
                .open(Kind::Session, "alice", "work", &tampered)
                .is_none()
        );
        assert!(
            sealer
                .open(Kind::Session, "alice", "work", &sealed[..5])
                .is_none()
        );
    }

    #[test]
    fn two_seals_of_the_same_tokens_differ() {
        let sealer = Sealer::new(&[7; 32]);
        assert_ne!(
            sealer.seal(Kind::Session, "a", "p", b"x"),
            sealer.seal(Kind::Session, "a", "p", b"x")
        );
    }
}
