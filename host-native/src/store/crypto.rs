//! The encrypted session file format: scrypt → AES-256-GCM, as JSON.
//!
//! ```json
//! {"format":"tessera-encrypted-session","version":1,
//!  "kdf":{"alg":"scrypt","log_n":17,"r":8,"p":1,"salt":"<base64>"},
//!  "nonce":"<base64>","ciphertext":"<base64>"}
//! ```
//!
//! - The key is scrypt(passphrase, salt) with N = 2^17, r = 8, p = 1 (128 MiB, ~0.5 s on
//!   a laptop core in a release build): a copied file must cost an attacker that much per
//!   guess. Files written at 2^15 (before 2026-12) still open: the header names the
//!   parameters, and the next save rewrites the file at the current cost. The salt (16 bytes) is fresh from the OS for every new file; later writes of
//!   the same file keep its key and salt (ADR 007). The nonce (96 bits) is fresh from the
//!   OS for every write, so no (key, nonce) pair repeats even if the clock, the process or
//!   the file do (random 96-bit nonces stay safe far beyond 2^32 writes under one key).
//! - The profile name is the AEAD associated data: a file renamed to another profile fails
//!   to open instead of being silently used there. (The plaintext envelope names the profile
//!   too; this makes the check hold for files not written by tessera.)
//! - Every field is parsed strictly and KDF parameters are bounded, so a garbled or hostile
//!   file yields [`StoreError::Corrupt`] instead of a panic or a 16 GiB allocation.

use std::time::Instant;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::error::{StoreError, json_detail};
use super::passphrase::Passphrase;

pub(crate) const FORMAT: &str = "tessera-encrypted-session";
pub(crate) const VERSION: u64 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// scrypt's cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KdfCost {
    pub log_n: u8,
    pub r: u32,
    pub p: u32,
}

impl KdfCost {
    /// What tessera writes: N = 2^17 (128 MiB, as current guidance for scrypt asks).
    /// Files keep the parameters they were written with (the header names them), so files
    /// written at 2^15 still open, and are rewritten at this cost on their next save.
    pub(crate) const DEFAULT: KdfCost = KdfCost {
        log_n: 17,
        r: 8,
        p: 1,
    };

    /// Cheap enough for unoptimized test builds (scrypt at log_n 15 takes ~7 s there).
    #[cfg(test)]
    pub(crate) const CHEAP: KdfCost = KdfCost {
        log_n: 8,
        r: 8,
        p: 1,
    };

    /// Whether a file may ask for this much work: at most 256 MiB and p ≤ 16.
    fn check(self) -> Result<(), String> {
        let memory_ok = self.log_n <= 24
            && self.r >= 1
            && (128u64 * u64::from(self.r)) << self.log_n <= 256 * 1024 * 1024;
        if (1..=24).contains(&self.log_n) && memory_ok && (1..=16).contains(&self.p) {
            Ok(())
        } else {
            Err(format!(
                "scrypt parameters out of range (log_n {}, r {}, p {})",
                self.log_n, self.r, self.p
            ))
        }
    }
}

/// Cost plus salt: everything but the passphrase that determines the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KdfParams {
    cost: KdfCost,
    salt: Vec<u8>,
}

impl KdfParams {
    /// The cost part.
    pub(crate) fn cost(&self) -> KdfCost {
        self.cost
    }

    /// The salt (not secret).
    pub(crate) fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// Fresh parameters for a new file.
    pub(crate) fn random(cost: KdfCost) -> Result<Self, StoreError> {
        let mut salt = vec![0; SALT_LEN];
        fill_random(&mut salt)?;
        Ok(KdfParams { cost, salt })
    }
}

/// A derived key and the parameters it came from; overwritten when dropped.
pub(crate) struct Key {
    params: KdfParams,
    bytes: [u8; KEY_LEN],
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.fill(0);
        std::hint::black_box(&self.bytes);
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// Runs scrypt. This is the expensive step (tens of ms to seconds): callers cache keys.
    pub(crate) fn derive(passphrase: &Passphrase, params: KdfParams) -> Result<Key, StoreError> {
        let cost = params.cost;
        let scrypt_params = scrypt::Params::new(cost.log_n, cost.r, cost.p, KEY_LEN)
            .map_err(|err| StoreError::internal(format!("scrypt parameters: {err}")))?;
        let started = Instant::now();
        let mut bytes = [0; KEY_LEN];
        scrypt::scrypt(
            passphrase.as_bytes(),
            &params.salt,
            &scrypt_params,
            &mut bytes,
        )
        .map_err(|err| StoreError::internal(format!("scrypt: {err}")))?;
        tracing::debug!(
            log_n = cost.log_n,
            millis = started.elapsed().as_millis() as u64,
            "derived the session file key"
        );
        Ok(Key { params, bytes })
    }

    /// A key derived earlier for `params` (by another process of the session, see
    /// `keycache.rs`). Whether it is right shows when it opens the file.
    pub(crate) fn cached(params: KdfParams, bytes: [u8; KEY_LEN]) -> Key {
        Key { params, bytes }
    }

    /// The raw key, for the session keyring cache only.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    pub(crate) fn params(&self) -> &KdfParams {
        &self.params
    }

    /// Encrypts `plaintext` with a fresh nonce and returns the whole file's bytes.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0; NONCE_LEN];
        fill_random(&mut nonce)?;
        let ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| StoreError::internal("AES-GCM encryption failed"))?;
        let file = FileJson {
            format: FORMAT.to_owned(),
            version: VERSION,
            kdf: KdfJson {
                alg: "scrypt".to_owned(),
                log_n: self.params.cost.log_n,
                r: self.params.cost.r,
                p: self.params.cost.p,
                salt: BASE64.encode(&self.params.salt),
            },
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
        };
        let mut bytes = serde_json::to_vec(&file).map_err(StoreError::internal)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    fn cipher(&self) -> Aes256Gcm {
        // The key is exactly KEY_LEN bytes, which AES-256 accepts.
        Aes256Gcm::new(&self.bytes.into())
    }
}

/// A parsed encrypted file.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub params: KdfParams,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

/// Why a file could not be parsed.
#[derive(Debug)]
pub(crate) enum Unparsable {
    Corrupt(String),
    Version(u64),
}

impl Sealed {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Sealed, Unparsable> {
        use Unparsable::Corrupt;
        #[derive(Deserialize)]
        struct Header {
            format: Option<serde_json::Value>,
            version: Option<serde_json::Value>,
        }
        let header: Header =
            serde_json::from_slice(bytes).map_err(|err| Corrupt(json_detail(&err)))?;
        match header.format.as_ref().and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => {
                let other: String = other.chars().take(64).collect();
                return Err(Corrupt(format!("its format is {other:?}, not {FORMAT:?}")));
            }
            None => return Err(Corrupt(format!("no \"format\":{FORMAT:?} marker"))),
        }
        match header.version.as_ref().and_then(|v| v.as_u64()) {
            Some(VERSION) => {}
            Some(found) => return Err(Unparsable::Version(found)),
            None => return Err(Corrupt("no numeric \"version\"".to_owned())),
        }
        let file: FileJson =
            serde_json::from_slice(bytes).map_err(|err| Corrupt(json_detail(&err)))?;
        if file.kdf.alg != "scrypt" {
            return Err(Corrupt("the key derivation is not scrypt".to_owned()));
        }
        let cost = KdfCost {
            log_n: file.kdf.log_n,
            r: file.kdf.r,
            p: file.kdf.p,
        };
        cost.check().map_err(Corrupt)?;
        let decode = |name: &str, text: &str| {
            BASE64
                .decode(text)
                .map_err(|_| Corrupt(format!("\"{name}\" is not base64")))
        };
        let salt = decode("salt", &file.kdf.salt)?;
        if !(SALT_LEN..=64).contains(&salt.len()) {
            return Err(Corrupt("the salt has a wrong length".to_owned()));
        }
        let nonce = decode("nonce", &file.nonce)?
            .try_into()
            .map_err(|_| Corrupt("the nonce is not 96 bits".to_owned()))?;
        let ciphertext = decode("ciphertext", &file.ciphertext)?;
        if ciphertext.len() < TAG_LEN {
            return Err(Corrupt("the ciphertext is truncated".to_owned()));
        }
        Ok(Sealed {
            params: KdfParams { cost, salt },
            nonce,
            ciphertext,
        })
    }

    /// Decrypts, or `None` when the key is wrong or the file was modified (GCM cannot tell
    /// these apart).
    pub(crate) fn open(&self, key: &Key, aad: &[u8]) -> Option<Vec<u8>> {
        key.cipher()
            .decrypt(
                Nonce::from_slice(&self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad,
                },
            )
            .ok()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    format: String,
    version: u64,
    kdf: KdfJson,
    nonce: String,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfJson {
    alg: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
}

fn fill_random(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf).map_err(|err| {
        StoreError::internal(format!("the OS random number generator failed: {err}"))
    })
}

/// Random hex, for temporary file names.
pub(crate) fn random_hex(len: usize) -> Result<String, StoreError> {
    let mut bytes = vec![0; len];
    fill_random(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(passphrase: &str) -> Key {
        let passphrase = Passphrase::for_tests(passphrase);
        Key::derive(&passphrase, KdfParams::random(KdfCost::CHEAP).unwrap()).unwrap()
    }

    #[test]
    fn seal_then_open() {
        let key = key("pw");
        let bytes = key.seal(b"default", b"plaintext").unwrap();
        let sealed = Sealed::parse(&bytes).unwrap();
        assert_eq!(&sealed.params, key.params());
        assert_eq!(sealed.open(&key, b"default").unwrap(), b"plaintext");
        assert!(sealed.open(&key, b"other-profile").is_none());
        let other = Key::derive(&Passphrase::for_tests("wrong"), sealed.params.clone()).unwrap();
        assert!(sealed.open(&other, b"default").is_none());
    }

    #[test]
    fn salt_and_nonce_change_on_every_write() {
        let (a, b) = (key("pw"), key("pw"));
        assert_ne!(a.params().salt, b.params().salt);
        let one = Sealed::parse(&a.seal(b"p", b"same").unwrap()).unwrap();
        let two = Sealed::parse(&a.seal(b"p", b"same").unwrap()).unwrap();
        assert_ne!(one.nonce, two.nonce);
        assert_ne!(one.ciphertext, two.ciphertext);
    }

    #[test]
    fn the_file_is_the_documented_json() {
        let bytes = key("pw").seal(b"p", b"x").unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["format"], FORMAT);
        assert_eq!(value["version"], 1);
        assert_eq!(value["kdf"]["alg"], "scrypt");
        assert_eq!(value["kdf"]["r"], 8);
        assert_eq!(
            BASE64
                .decode(value["nonce"].as_str().unwrap())
                .unwrap()
                .len(),
            12
        );
        assert_eq!(
            BASE64
                .decode(value["kdf"]["salt"].as_str().unwrap())
                .unwrap()
                .len(),
            16
        );
    }

    #[test]
    fn garbled_files_are_corrupt_not_panics() {
        let good: serde_json::Value =
            serde_json::from_slice(&key("pw").seal(b"p", b"x").unwrap()).unwrap();
        let mut cases: Vec<Vec<u8>> = vec![b"".to_vec(), b"{".to_vec(), b"null".to_vec()];
        let full = serde_json::to_vec(&good).unwrap();
        cases.push(full[..full.len() / 2].to_vec());
        for (pointer, replacement) in [
            ("/kdf/log_n", serde_json::json!(40)),
            ("/kdf/r", serde_json::json!(1_000_000)),
            ("/kdf/alg", serde_json::json!("argon2id")),
            ("/kdf/salt", serde_json::json!("!!")),
            ("/nonce", serde_json::json!("AAAA")),
            ("/ciphertext", serde_json::json!("")),
            ("/format", serde_json::json!("something-else")),
        ] {
            let mut bad = good.clone();
            *bad.pointer_mut(pointer).unwrap() = replacement;
            cases.push(serde_json::to_vec(&bad).unwrap());
        }
        for case in cases {
            assert!(
                matches!(Sealed::parse(&case), Err(Unparsable::Corrupt(_))),
                "{}",
                String::from_utf8_lossy(&case)
            );
        }
        let mut newer = good.clone();
        newer["version"] = serde_json::json!(2);
        let newer = serde_json::to_vec(&newer).unwrap();
        assert!(matches!(Sealed::parse(&newer), Err(Unparsable::Version(2))));
    }

    #[test]
    fn default_cost_is_what_the_format_documents() {
        assert_eq!(
            KdfCost::DEFAULT,
            KdfCost {
                log_n: 17,
                r: 8,
                p: 1
            }
        );
        assert!(KdfCost::DEFAULT.check().is_ok());
        assert!(
            KdfCost {
                log_n: 25,
                r: 8,
                p: 1
            }
            .check()
            .is_err()
        );
        assert!(
            KdfCost {
                log_n: 18,
                r: 16,
                p: 1
            }
            .check()
            .is_err()
        );
    }
}
