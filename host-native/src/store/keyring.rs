//! The session in the system keyring: service `tessera`, account = profile name.
//!
//! One store over keyring-core's `Entry`, with the platform's own credential store built
//! explicitly (never keyring-core's process-wide default store), chosen at compile time
//! for the platform and probed at run time:
//!
//! | platform | store | module |
//! |---|---|---|
//! | Linux | Secret Service (GNOME Keyring, KWallet, KeePassXC) over D-Bus | `secret_service.rs` |
//! | macOS | the login Keychain (Security framework) | `apple.rs` |
//! | Windows | Credential Manager, one generic credential | `windows.rs` |
//! | others | none: [`probe`] fails, so `--store auto` uses the encrypted file | `unsupported.rs` |
//!
//! What the stores share lives here: the probe (read, and with `check_write` a throw-away
//! write, so a keyring that refuses writes is found before a login, not after), the
//! envelope encoding, the error texts, and the refresh lock (a file in the config
//! directory, as for the file store). What differs — how to connect, what an item is
//! labelled, how a failure to connect is explained — is each platform module's.
//!
//! Threads and runtimes: the Secret Service's blocking API runs every D-Bus call on zbus's
//! own process-wide tokio runtime (`zbus::block_on`, created on first use).
//! `Runtime::block_on` panics when called from a thread that is inside a runtime, so every
//! method here must run on a plain thread or in `tokio::task::spawn_blocking`, never
//! directly in async code (the Keychain and Credential Manager calls block too, so the
//! rule holds on every platform). The probe runs on a thread of its own, so `open_store`
//! itself is safe anywhere.
//!
//! Dropping is a D-Bus operation too: zbus's blocking proxy releases itself with
//! `block_on`, so the last reference to the Secret Service connection must not be dropped
//! on a runtime's worker thread either (it was: the actor's state, and with it the store,
//! is dropped on a worker when a client stops, which printed "Cannot start a runtime from
//! within a runtime" at the exit of every keyring command). [`KeyringStore`]'s `Drop`
//! therefore hands the entry to a short-lived plain thread when it runs inside a runtime.

use super::StoreInfo;
use super::error::StoreError;

pub(crate) const SERVICE: &str = "tessera";

/// What the probe found.
#[derive(Debug)]
pub(crate) struct Probed {
    pub store: KeyringStore,
    /// Whether the keyring already holds something for this profile.
    pub has_session: bool,
    /// What the probe read, for [`super::open_and_load`]: `Some(None)` when there is no
    /// item, `None` when it could not tell (several items).
    pub read: Option<Option<Vec<u8>>>,
}

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
mod store;
#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
pub(crate) use store::*;

#[cfg(target_os = "linux")]
#[path = "keyring/secret_service.rs"]
mod platform;
#[cfg(target_os = "macos")]
#[path = "keyring/apple.rs"]
mod platform;
#[cfg(target_os = "windows")]
#[path = "keyring/windows.rs"]
mod platform;

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod unsupported;
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
pub(crate) use unsupported::*;
