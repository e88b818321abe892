//! `--record FILE`: writes a live session as a transcript in the `specs/` format.
//!
//! Every input fed to the engine is kept with its time; at the end the inputs are cleaned
//! of secrets and the file is blessed, so the expectations are what the engine does with
//! the cleaned inputs and `tessera replay FILE` passes. Secrets (tokens, codes, device
//! codes, client secrets) become stable placeholders: the same secret gets the same
//! placeholder everywhere, so comparisons the engine makes (a rotated refresh token, a
//! rejected access token) replay the same way. ID tokens are re-encoded unsigned with the
//! same claims, so the engine's claim checks replay too.
//!
//! `recorder.rs` collects and writes, `clean.rs` replaces secrets, `runner.rs` replays
//! transcript files.

mod clean;
mod recorder;
mod runner;

pub use recorder::Recorder;
pub use runner::{run_file, transcripts_in};
