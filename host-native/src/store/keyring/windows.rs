//! Windows: a generic credential in Credential Manager, through
//! `windows-native-keyring-store`. Its target name is `<profile>.tessera`.
//!
//! One credential holds at most 2560 bytes. A session with large tokens (an Entra ID
//! token and access token together often exceed it) cannot be saved there: the save
//! fails with a typed error that says so, and the user chooses `--store file` (ADR 013).

use std::sync::Arc;

use keyring_core::CredentialStore;

use super::super::error::one_line;
use super::SERVICE;

pub(super) const NAME: &str = "Windows Credential Manager";

pub(super) fn open() -> Result<Arc<CredentialStore>, String> {
    let store = windows_native_keyring_store::Store::new().map_err(|err| {
        format!(
            "cannot open Credential Manager ({})",
            one_line(&err.to_string())
        )
    })?;
    Ok(store)
}

/// Credential Manager takes no label; `persistence` stays the store's default.
pub(super) const TAKES_LABEL: bool = false;

pub(super) fn duplicates_hint(profile: &str) -> String {
    format!("e.g. `cmdkey /delete:{profile}.{SERVICE}`")
}
