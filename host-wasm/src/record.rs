//! What the engine (or the driver) actually did for a transcript, written down as text
//! that can be compared byte for byte between builds (native, wasm in node, wasm in a
//! browser): [`tessera_engine::transcript::record`].
//!
//! Also compiled into `build.rs` (with `#[path]`), where the engine built for the build
//! machine replays the corpus natively; the wasm tests compare their own records with
//! those.

/// See the module docs.
pub fn effects_record(text: &str) -> Result<String, String> {
    tessera_engine::transcript::record(text)
}
