//! macOS: a generic password in the user's login Keychain, through
//! `apple-native-keyring-store` (the Security framework's legacy keychain API, which any
//! unsandboxed program may use; the "protected data" store needs an app's entitlements).

use std::sync::Arc;

use keyring_core::CredentialStore;

use super::super::error::one_line;
use super::SERVICE;

pub(super) const NAME: &str = "macOS Keychain";

pub(super) fn open() -> Result<Arc<CredentialStore>, String> {
    let store = apple_native_keyring_store::keychain::Store::new().map_err(|err| {
        format!(
            "cannot open the login keychain ({})",
            one_line(&err.to_string())
        )
    })?;
    Ok(store)
}

/// The keychain store takes no label: Keychain Access shows the service and account.
pub(super) const TAKES_LABEL: bool = false;

pub(super) fn duplicates_hint(profile: &str) -> String {
    format!("e.g. `security delete-generic-password -s {SERVICE} -a {profile}`")
}
