//! Platforms without a keyring store: the probe says so, and `--store auto` uses the
//! encrypted file. [`KeyringStore`] has no values, so nothing else here can be called.

use super::super::StoreInfo;
use super::super::error::StoreError;
use super::Probed;

#[derive(Debug)]
pub(crate) enum KeyringStore {}

pub(crate) fn probe(_profile: &str, _check_write: bool) -> Result<Probed, String> {
    Err("this platform has no keyring store in tessera (Linux, macOS and Windows do)".to_owned())
}

impl super::super::BlockingStore for KeyringStore {
    fn info(&self) -> &StoreInfo {
        match *self {}
    }
    fn load(&self) -> Result<Option<tessera_engine::StoredSession>, StoreError> {
        match *self {}
    }
    fn save(&self, _: &tessera_engine::StoredSession) -> Result<(), StoreError> {
        match *self {}
    }
    fn delete(&self) -> Result<(), StoreError> {
        match *self {}
    }
    fn lock(&self, _: std::time::Duration) -> Result<Option<super::super::LockGuard>, StoreError> {
        match *self {}
    }
}

impl KeyringStore {
    pub(crate) fn set_lock_dir(&mut self, _: &std::path::Path) {
        match *self {}
    }

    pub(crate) fn decode(
        &self,
        _: Vec<u8>,
    ) -> Result<Option<tessera_engine::StoredSession>, StoreError> {
        match *self {}
    }
}
