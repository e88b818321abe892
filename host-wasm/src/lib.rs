//! tessera's browser host (WebAssembly). Not built yet: its API, the browser actors
//! and the example extension are tracked as their own issue. Until then this crate only
//! re-exports the engine, which already builds for `wasm32-unknown-unknown`.

pub use tessera_engine as engine;
