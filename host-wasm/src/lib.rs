//! tessera's browser host (WebAssembly).
//!
//! Two APIs for JavaScript:
//!
//! - **`Session`** (module `browser`, built for `wasm32` only): a signed-in user for pages,
//!   workers and MV3 extensions — login through `chrome.identity.launchWebAuthFlow` (or
//!   the embedder's launcher), `getAccessToken` with single-flight refresh, logout,
//!   status, events; storage in chrome.storage or IndexedDB. See host-wasm/README.md.
//! - **`Engine`**: the bare engine, one JSON input at a time, for tools and tests. The
//!   whole `specs/` corpus replays through it under node and in headless Chromium with
//!   the same effects, byte for byte, as the native replay (`tests/`, `make wasm-test`).
//!
//! The bare engine from JavaScript (`wasm-bindgen --target web`):
//!
//! ```js
//! import init, { Engine, engineVersion, replayTranscript } from "./tessera_wasm.js";
//! await init();
//! replayTranscript("login/happy.toml", tomlText); // throws an Error naming file and step
//!
//! // The engine itself, one input at a time; inputs, effects and the config are the JSON
//! // forms documented in specs/README.md.
//! const engine = new Engine(JSON.stringify({ client_id: "app" }), seed32, Date.now());
//! engine.handle(Date.now(), JSON.stringify({ type: "session_loaded" }));
//! for (let e; (e = engine.pollEffect()) !== undefined; ) perform(JSON.parse(e));
//! const wakeAt = engine.pollTimeout(); // arm one timer, then handle {type: "timeout"}
//! ```

use wasm_bindgen::prelude::*;

pub use tessera_engine as engine;

#[cfg(all(target_arch = "wasm32", feature = "session"))]
mod browser;
#[cfg(all(target_arch = "wasm32", feature = "session"))]
pub use browser::{
    LoginOptions, LogoutOptions, Session, SessionOptions, SessionStorage, TokenOptions,
    default_storage, verify_with_webcrypto,
};

#[cfg(feature = "transcript")]
mod record;
#[cfg(feature = "transcript")]
pub use record::effects_record;

/// The engine (`tessera_engine::Engine`) for JavaScript: configuration, inputs and
/// effects cross as JSON, times as Unix milliseconds. Perform every effect, in order,
/// after each input; then arm the one timer from `pollTimeout`.
#[cfg(feature = "engine-api")]
#[wasm_bindgen]
#[derive(Debug)]
pub struct Engine {
    inner: engine::Engine,
}

#[cfg(feature = "engine-api")]
#[wasm_bindgen]
impl Engine {
    /// `config`: a `Config` as JSON (every field but `client_id` has a default);
    /// `seed`: 32 random bytes (`crypto.getRandomValues`); `now`: `Date.now()`.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &str, seed: &[u8], now: f64) -> Result<Engine, JsError> {
        let config: engine::Config =
            serde_json::from_str(config).map_err(|e| JsError::new(&format!("config: {e}")))?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| JsError::new(&format!("seed: 32 bytes expected, got {}", seed.len())))?;
        Ok(Self {
            inner: engine::Engine::new(config, seed, millis(now)?),
        })
    }

    /// Feeds one input (an `Input` as JSON). Throws when the JSON is not an input, or
    /// when the engine refuses it (then nothing changed).
    pub fn handle(&mut self, now: f64, input: &str) -> Result<(), JsError> {
        let input: engine::Input =
            serde_json::from_str(input).map_err(|e| JsError::new(&format!("input: {e}")))?;
        self.inner
            .handle(millis(now)?, input)
            .map_err(|rejected| JsError::new(&rejected.to_string()))
    }

    /// The next effect to perform, as JSON; `undefined` when there is none.
    #[wasm_bindgen(js_name = pollEffect)]
    pub fn poll_effect(&mut self) -> Result<Option<String>, JsError> {
        self.inner
            .poll_effect()
            .map(|effect| serde_json::to_string(&effect))
            .transpose()
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// When to feed `{"type":"timeout"}` (Unix milliseconds); `undefined` for never.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        // Unix milliseconds stay far below 2^53: exact as a JS number.
        self.inner.poll_timeout().map(|t| t.0 as f64)
    }

    /// The current state's name (`logged_out`, `awaiting_callback`, …).
    #[wasm_bindgen(getter, js_name = stateName)]
    pub fn state_name(&self) -> String {
        self.inner.state_name().to_owned()
    }

    /// What to show for `status`, as JSON.
    pub fn status(&self, now: f64) -> Result<String, JsError> {
        serde_json::to_string(&self.inner.status(millis(now)?))
            .map_err(|e| JsError::new(&e.to_string()))
    }
}

/// A JS time (`Date.now()`) as the engine's Unix milliseconds.
#[cfg(feature = "engine-api")]
fn millis(now: f64) -> Result<engine::UnixMillis, JsError> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if now.is_finite() && (0.0..=MAX_SAFE).contains(&now) {
        // In range and truncated on purpose: sub-millisecond parts do not matter.
        Ok(engine::UnixMillis(now as u64))
    } else {
        Err(JsError::new(&format!(
            "time: Unix milliseconds expected, got {now}"
        )))
    }
}

/// The version of tessera (the engine and its hosts are versioned together).
#[wasm_bindgen(js_name = engineVersion)]
pub fn engine_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Replays one transcript (the text of a file under `specs/`) and checks every
/// expectation. Throws an `Error` whose message names the file, the step and the first
/// difference, as the native runner does.
#[cfg(feature = "transcript")]
#[wasm_bindgen(js_name = replayTranscript)]
pub fn replay_transcript(name: &str, text: &str) -> Result<(), JsError> {
    replay(name, text).map_err(|failure| JsError::new(&failure.to_string()))
}

/// Replays a transcript's inputs and returns what the engine did, one line per step
/// (see [`effects_record`]), for comparing builds or showing a draft's behaviour.
#[cfg(feature = "transcript")]
#[wasm_bindgen(js_name = replayEffects)]
pub fn replay_effects(text: &str) -> Result<String, JsError> {
    effects_record(text).map_err(|message| JsError::new(&message))
}

/// [`replay_transcript`] for Rust callers (and native tests: a `JsError` needs a JS
/// engine).
#[cfg(feature = "transcript")]
pub fn replay(name: &str, text: &str) -> Result<(), engine::transcript::Failure> {
    engine::transcript::run_text(name, text, false).map(|_| ())
}
