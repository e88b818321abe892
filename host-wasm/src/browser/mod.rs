//! The browser host: a [`Session`] class for pages, workers and MV3 extensions.
//!
//! ```text
//!  JavaScript                    Rust (one thread)                      browser APIs
//!  ──────────                    ─────────────────                      ────────────
//!  Session.getAccessToken() ──▶  SessionActor (ractor ThreadLocalActor)
//!      ▲        Promise           owns the Engine; each message is one input,
//!      │                          then every effect is performed:
//!      └── reply ◀──────────────   Http            ── spawn_local ──▶   fetch
//!                                  Persist/Delete  ── (ordered) ────▶   storage adapter
//!                                  LockSession     ── spawn_local ──▶   Web Locks
//!                                  OpenBrowser     ── spawn_local ──▶   launcher
//!                                  Event           ───────────────▶    onEvent listeners
//!                                  poll_timeout    ── send_after ───▶   setTimeout
//! ```
//!
//! Nothing here decides anything about OAuth: responses, redirects and storage contents
//! go to the engine as they are, as in the native host (`host-native/src/actor.rs`),
//! whose structure this module follows. The differences are the platform's: JS values
//! are not `Send`, so the actor is a [`ractor::thread_local::ThreadLocalActor`] and the
//! adapters reach it through [`session::Adapters`]; one launcher call yields exactly one
//! redirect, so a redirect the engine rejects ends the login instead of waiting for
//! another.
//!
//! A service worker may be stopped at any time: nothing is kept in memory that storage
//! does not have. When it starts again, `Session.open` loads the stored session and the
//! engine takes over where the last write left it.

mod actor;
mod error;
mod events;
mod fetch;
pub(crate) mod glue;
mod session;
mod storage;
mod typescript;

pub use glue::{SessionStorage, default_storage};
pub use session::{LoginOptions, LogoutOptions, Session, SessionOptions, TokenOptions};
