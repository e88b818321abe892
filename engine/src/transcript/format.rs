//! The transcript file format.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::driver::DriverOptions;
use crate::effect::Effect;
use crate::error::Rejected;
use crate::input::Input;
use crate::time::UnixMillis;

/// What a transcript drives: the engine alone (inputs and effects), or the session
/// driver around it (driver inputs and actions, with storage and lock steps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Engine,
    Driver,
}

/// Only the level, read first to know how to read the rest.
#[derive(Deserialize)]
pub(super) struct Header {
    #[serde(default)]
    pub level: Level,
}

/// One transcript file: engine inputs and effects by default, or with `level = "driver"`
/// [`DriverInput`](crate::driver::DriverInput)s and [`Action`](crate::driver::Action)s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "I: Deserialize<'de>, O: Deserialize<'de>")
)]
pub struct Transcript<I = Input, O = Effect> {
    /// What the transcript shows, in a sentence or two.
    pub description: String,
    /// 64 hex digits, or any other text (its SHA-256 is used).
    pub seed: String,
    /// Wall-clock time of `Engine::new`, in Unix milliseconds.
    pub start: u64,
    #[serde(default)]
    pub level: Level,
    pub config: Config,
    /// The driver's options (driver level only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverOptions>,
    /// Effects (or actions) emitted at start.
    #[serde(default)]
    pub on_start: Vec<O>,
    #[serde(default, rename = "step")]
    pub steps: Vec<Step<I, O>>,
}

/// One input and what must follow it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "I: Deserialize<'de>, O: Deserialize<'de>")
)]
pub struct Step<I = Input, O = Effect> {
    /// Milliseconds after `start`.
    pub at: u64,
    /// Why this step is here (optional, for readers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub input: I,
    /// Set when `handle` must refuse the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejected>,
    /// The state after the input (may be left out while drafting; bless fills it in).
    #[serde(default)]
    pub state: String,
    /// `poll_timeout` after the input, in milliseconds after `start`; absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<u64>,
    /// The effects (or actions), in order.
    #[serde(default)]
    pub expect: Vec<O>,
}

impl<I, O> Transcript<I, O> {
    /// The 32-byte seed.
    pub fn seed_bytes(&self) -> [u8; 32] {
        let text = self.seed.trim();
        let hex: Option<Vec<u8>> = (text.len() == 64)
            .then(|| {
                (0..32)
                    .map(|i| {
                        text.get(2 * i..2 * i + 2)
                            .and_then(|b| u8::from_str_radix(b, 16).ok())
                    })
                    .collect()
            })
            .flatten();
        match hex {
            Some(bytes) => bytes
                .try_into()
                .unwrap_or_else(|_| Sha256::digest(text.as_bytes()).into()),
            None => Sha256::digest(text.as_bytes()).into(),
        }
    }

    /// The wall-clock time of a step.
    pub fn time_of(&self, step: &Step<I, O>) -> UnixMillis {
        UnixMillis(self.start).plus_millis(step.at)
    }
}
