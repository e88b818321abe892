//! `--record FILE`: writes a live session as a transcript in the `specs/` format.
//!
//! Every input fed to the engine is kept with its time; at the end the inputs are cleaned
//! of secrets and the file is blessed, so the expectations are what the engine does with
//! the cleaned inputs and `tessera replay FILE` passes. Secrets (tokens, codes, device
//! codes, client secrets) become stable placeholders: the same secret gets the same
//! placeholder everywhere, so comparisons the engine makes (a rotated refresh token, a
//! rejected access token) replay the same way. Personal claims (`sub`, `email`, `name`,
//! …) in ID tokens, UserInfo answers and stored identities become placeholders too
//! (`subject-1`, the same everywhere), and cookie and authorization headers of responses
//! are dropped. ID tokens are re-encoded unsigned with the cleaned claims, so the
//! engine's claim checks replay too.
//!
//! The live seed is not written: it gave the login its PKCE verifier, state and nonce.
//! The transcript gets a fresh seed, and the recorded redirect's `state` and the ID
//! token's `nonce` are rewritten to what the engine derives from it. The file is written
//! atomically with mode 0600 (issue 12, finding 8).
//!
//! `recorder.rs` collects and writes, `clean.rs` replaces secrets, `runner.rs` replays
//! transcript files.

mod clean;
mod recorder;
mod runner;

pub use recorder::Recorder;
pub use runner::{run_file, transcripts_in};
