//! Transcripts: the engine's behaviour written down as data (see `specs/README.md`).
//!
//! A transcript is a TOML file: a configuration, a seed, a start time, then steps. Each
//! step is one input at a time offset, followed by what the engine must do: the effects
//! in order, the resulting state, the next timer, and whether the input was rejected.
//! [`run_text`] replays one and names the first difference; with `bless` it returns the
//! text with the expectations rewritten (keeping comments and inputs). Reading and
//! writing files is the hosts' job (the engine does no I/O).

mod format;
mod replay;

pub use format::{Level, Step, Transcript};
pub use replay::{
    DriverSubject, EngineSubject, Failure, Outcome, Replay, StepResult, Subject, record, run_text,
};
