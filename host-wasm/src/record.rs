//! What the engine actually did for a transcript, written down as text that can be
//! compared byte for byte between builds (native, wasm in node, wasm in a browser).
//!
//! Also compiled into `build.rs` (with `#[path]`), where the engine built for the build
//! machine replays the corpus natively; the wasm tests compare their own records with
//! those.

use serde::Serialize;
use tessera_engine::transcript::{Replay, Transcript};
use tessera_engine::{Effect, Rejected};

/// One step as the engine did it: everything the replay runner compares.
#[derive(Serialize)]
struct StepRecord<'a> {
    rejected: &'a Option<Rejected>,
    state: &'a str,
    wake: Option<u64>,
    effects: &'a [Effect],
}

/// Replays the transcript's inputs (its expectations are ignored) and returns what the
/// engine did: a line `on_start <effects as JSON>`, then one line `step N <JSON>` per
/// step with the rejection, the state, the timer and the effects.
pub fn effects_record(text: &str) -> Result<String, String> {
    let transcript: Transcript =
        toml::from_str(text).map_err(|e| format!("not a valid transcript: {e}"))?;
    let replay = Replay::run(&transcript);
    let mut out = format!("on_start {}\n", json(&replay.on_start)?);
    for (index, step) in replay.steps.iter().enumerate() {
        let record = StepRecord {
            rejected: &step.rejected,
            state: &step.state,
            wake: step.wake,
            effects: &step.effects,
        };
        out.push_str(&format!("step {} {}\n", index + 1, json(&record)?));
    }
    Ok(out)
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("cannot serialize: {e}"))
}
