//! The transcript file format.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::effect::Effect;
use crate::error::Rejected;
use crate::input::Input;
use crate::time::UnixMillis;

/// One transcript file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    /// What the transcript shows, in a sentence or two.
    pub description: String,
    /// 64 hex digits, or any other text (its SHA-256 is used).
    pub seed: String,
    /// Wall-clock time of `Engine::new`, in Unix milliseconds.
    pub start: u64,
    pub config: Config,
    /// Effects emitted by `Engine::new`.
    #[serde(default)]
    pub on_start: Vec<Effect>,
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
}

/// One input and what must follow it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Milliseconds after `start`.
    pub at: u64,
    /// Why this step is here (optional, for readers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub input: Input,
    /// Set when `handle` must refuse the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejected>,
    /// The state after the input (may be left out while drafting; bless fills it in).
    #[serde(default)]
    pub state: String,
    /// `poll_timeout` after the input, in milliseconds after `start`; absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<u64>,
    /// The effects, in order.
    #[serde(default)]
    pub expect: Vec<Effect>,
}

impl Transcript {
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
    pub fn time_of(&self, step: &Step) -> UnixMillis {
        UnixMillis(self.start).plus_millis(step.at)
    }
}
