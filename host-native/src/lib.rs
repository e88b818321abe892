//! tessera's native host: runs the [`tessera_engine`] state machine for the `tessera` CLI
//! and for Rust programs.
//!
//! So far this crate offers transcript replay (`tessera replay`); the actor host, the
//! storage back ends and the rest of the CLI are tracked as their own issue.

pub use tessera_engine as engine;
