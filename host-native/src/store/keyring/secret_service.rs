//! Linux: the Secret Service (GNOME Keyring, KWallet, KeePassXC) over D-Bus, through
//! `zbus-secret-service-keyring-store`.

use std::sync::Arc;

use keyring_core::{CredentialStore, Error};

use super::super::error::one_line;
use super::SERVICE;

pub(super) const NAME: &str = "Secret Service";

/// Connects to the Secret Service on the session bus.
pub(super) fn open() -> Result<Arc<CredentialStore>, String> {
    let store = zbus_secret_service_keyring_store::Store::new().map_err(connect_reason)?;
    Ok(store)
}

/// Items carry a label, which keyring managers (Seahorse, KWallet) show.
pub(super) const TAKES_LABEL: bool = true;

pub(super) fn duplicates_hint(profile: &str) -> String {
    format!("e.g. `secret-tool clear service {SERVICE} username {profile}`")
}

/// Why the Secret Service could not be reached, in one line.
fn connect_reason(err: Error) -> String {
    let text = one_line(&err.to_string());
    let text = text
        .trim_start_matches("Platform failure: ")
        .trim_start_matches("zbus error: ");
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() && text.contains("Failed to connect")
    {
        "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)".to_owned()
    } else if text.contains("ServiceUnknown") {
        "no Secret Service on the D-Bus session bus (org.freedesktop.secrets is not provided)"
            .to_owned()
    } else if text.contains("Failed to connect") {
        format!("cannot reach the D-Bus session bus ({text})")
    } else {
        format!("cannot open a Secret Service session ({text})")
    }
}
