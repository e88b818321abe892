//! The browser host: a [`Session`] class for pages, workers and MV3 extensions.
//!
//! ```text
//!  JavaScript                    Rust (one thread)                         browser APIs
//!  ──────────                    ─────────────────                         ────────────
//!  Session.getAccessToken() ──▶  Mailbox ─▶ SessionState { Driver }
//!      ▲        Promise           each message is one driver input,
//!      │                          then every action is performed:
//!      └── resolve/reject ◀─────   Reply           (settles the promise)
//!                                  Send            ── spawn_local ──▶   fetch
//!                                  Load/Save/Delete── spawn_local ──▶   storage adapter
//!                                  AcquireLock     ── spawn_local ──▶   Web Locks
//!                                  OpenBrowser     ── spawn_local ──▶   launcher
//!                                  Notify          ───────────────▶    onEvent listeners
//!                                  ArmTimer        ───────────────▶    setTimeout
//!                                  VerifySignature ── spawn_local ──▶   crypto.subtle
//! ```
//!
//! Nothing here decides anything about OAuth or about the session's I/O: the engine's
//! session driver does, as for the native host (`host-native/src/actor.rs`). The
//! differences are the platform's: JS values are not `Send` and everything runs on the
//! event loop, so the session is a plain mailbox (`actor.rs`) rather than an actor
//! framework; one launcher call yields exactly one redirect, which the driver is told
//! (`last`), so a redirect it refuses ends the login instead of waiting for another.
//!
//! A service worker may be stopped at any time: nothing is kept in memory that storage
//! does not have. When it starts again, `Session.open` loads the stored session and the
//! engine takes over where the last write left it.

mod actor;
mod error;
mod events;
mod fetch;
pub(crate) mod glue;
mod promises;
mod session;
mod storage;
mod typescript;

pub use glue::{SessionStorage, default_storage, verify_with_webcrypto};
pub use session::{LoginOptions, LogoutOptions, Session, SessionOptions, TokenOptions};
