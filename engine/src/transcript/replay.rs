//! Replaying a transcript against the engine (or the driver around it), and blessing it.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml_edit::{DocumentMut, Item, Table, Value};

use super::format::{Header, Level, Step, Transcript};
use crate::Engine;
use crate::driver::{Action, Driver, DriverInput};
use crate::effect::Effect;
use crate::error::Rejected;
use crate::input::Input;
use crate::time::UnixMillis;

/// What a transcript drives: the engine, or the driver. One step is one input.
pub trait Subject: Sized {
    type In: DeserializeOwned + Clone;
    type Out: DeserializeOwned + Serialize + PartialEq;
    fn start(transcript: &Transcript<Self::In, Self::Out>) -> (Self, Vec<Self::Out>);
    fn step(&mut self, now: UnixMillis, input: Self::In) -> StepResult<Self::Out>;
    fn input_name(input: &Self::In) -> &'static str;
}

/// What the subject actually did for one step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepResult<O = Effect> {
    pub rejected: Option<Rejected>,
    pub state: String,
    pub wake: Option<u64>,
    pub effects: Vec<O>,
}

/// What the subject did for a whole transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay<O = Effect> {
    pub on_start: Vec<O>,
    pub steps: Vec<StepResult<O>>,
}

/// The engine as a transcript's subject.
#[derive(Debug)]
pub struct EngineSubject {
    engine: Engine,
    start: u64,
}

impl Subject for EngineSubject {
    type In = Input;
    type Out = Effect;

    fn start(transcript: &Transcript) -> (Self, Vec<Effect>) {
        let start = UnixMillis(transcript.start);
        let mut engine = Engine::new(transcript.config.clone(), transcript.seed_bytes(), start);
        let on_start = std::iter::from_fn(|| engine.poll_effect()).collect();
        let subject = Self {
            engine,
            start: transcript.start,
        };
        (subject, on_start)
    }

    fn step(&mut self, now: UnixMillis, input: Input) -> StepResult {
        let rejected = self.engine.handle(now, input).err();
        StepResult {
            rejected,
            state: self.engine.state_name().to_owned(),
            wake: self
                .engine
                .poll_timeout()
                .map(|t| t.0.saturating_sub(self.start)),
            effects: std::iter::from_fn(|| self.engine.poll_effect()).collect(),
        }
    }

    fn input_name(input: &Input) -> &'static str {
        input.name()
    }
}

/// The session driver as a transcript's subject.
#[derive(Debug)]
pub struct DriverSubject {
    driver: Driver,
    start: u64,
}

impl Subject for DriverSubject {
    type In = DriverInput;
    type Out = Action;

    fn start(transcript: &Transcript<DriverInput, Action>) -> (Self, Vec<Action>) {
        let start = UnixMillis(transcript.start);
        let options = transcript.driver.clone().unwrap_or_default();
        let mut driver = Driver::new(
            transcript.config.clone(),
            transcript.seed_bytes(),
            start,
            options,
        );
        let on_start = std::iter::from_fn(|| driver.poll_action()).collect();
        let subject = Self {
            driver,
            start: transcript.start,
        };
        (subject, on_start)
    }

    fn step(&mut self, now: UnixMillis, input: DriverInput) -> StepResult<Action> {
        let rejected = self.driver.handle(now, input).err();
        StepResult {
            rejected,
            state: self.driver.state_name().to_owned(),
            wake: self
                .driver
                .poll_timeout()
                .map(|t| t.0.saturating_sub(self.start)),
            effects: std::iter::from_fn(|| self.driver.poll_action()).collect(),
        }
    }

    fn input_name(input: &DriverInput) -> &'static str {
        input.name()
    }
}

impl<O> Replay<O> {
    /// Runs the transcript's inputs through a fresh subject.
    pub fn run<S: Subject<Out = O>>(transcript: &Transcript<S::In, O>) -> Self {
        let (mut subject, on_start) = S::start(transcript);
        let steps = transcript
            .steps
            .iter()
            .map(|step| subject.step(transcript.time_of(step), step.input.clone()))
            .collect();
        Self { on_start, steps }
    }
}

/// What the subject did for a transcript (its expectations are ignored), as text to
/// compare byte for byte between builds: a line `on_start <JSON>`, then one line
/// `step N <JSON>` per step with the rejection, the state, the timer and the effects.
pub fn record(text: &str) -> Result<String, String> {
    let header: Header =
        toml::from_str(text).map_err(|e| format!("not a valid transcript: {e}"))?;
    match header.level {
        Level::Engine => record_as::<EngineSubject>(text),
        Level::Driver => record_as::<DriverSubject>(text),
    }
}

fn record_as<S: Subject>(text: &str) -> Result<String, String> {
    let transcript: Transcript<S::In, S::Out> =
        toml::from_str(text).map_err(|e| format!("not a valid transcript: {e}"))?;
    let replay = Replay::run::<S>(&transcript);
    let mut out = format!("on_start {}\n", json(&replay.on_start)?);
    for (index, step) in replay.steps.iter().enumerate() {
        out.push_str(&format!("step {} {}\n", index + 1, json(step)?));
    }
    Ok(out)
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("cannot serialize: {e}"))
}

/// How a replay ended when nothing differed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Blessed,
}

/// The first difference (or why the file could not be replayed at all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub file: String,
    /// 1-based step number; `None` for the file itself or the effects of `Engine::new`.
    pub step: Option<usize>,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(step) => write!(f, "{}: step {step}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for Failure {}

/// Replays transcript text (engine or driver level). With `bless`, returns the text with
/// every expectation replaced by what was done (inputs, notes and comments are kept).
pub fn run_text(name: &str, text: &str, bless: bool) -> Result<(Outcome, Option<String>), Failure> {
    let header: Header = toml::from_str(text).map_err(|e| Failure {
        file: name.to_owned(),
        step: None,
        message: format!("not a valid transcript: {e}"),
    })?;
    match header.level {
        Level::Engine => run_as::<EngineSubject>(name, text, bless),
        Level::Driver => run_as::<DriverSubject>(name, text, bless),
    }
}

fn run_as<S: Subject>(
    name: &str,
    text: &str,
    bless: bool,
) -> Result<(Outcome, Option<String>), Failure> {
    let fail = |step, message: String| Failure {
        file: name.to_owned(),
        step,
        message,
    };
    let transcript: Transcript<S::In, S::Out> =
        toml::from_str(text).map_err(|e| fail(None, format!("not a valid transcript: {e}")))?;
    let replay = Replay::run::<S>(&transcript);
    if bless {
        let blessed = bless_text(text, &replay).map_err(|e| fail(None, e))?;
        return Ok((Outcome::Blessed, Some(blessed)));
    }
    compare_effects("the start", &transcript.on_start, &replay.on_start)
        .map_err(|m| fail(None, m))?;
    for (index, (step, actual)) in transcript.steps.iter().zip(&replay.steps).enumerate() {
        compare_step(step, actual).map_err(|m| {
            fail(
                Some(index + 1),
                format!(
                    "(at {} ms, input `{}`) {m}",
                    step.at,
                    S::input_name(&step.input)
                ),
            )
        })?;
    }
    Ok((Outcome::Passed, None))
}

fn compare_step<I, O: Serialize + PartialEq>(
    expected: &Step<I, O>,
    actual: &StepResult<O>,
) -> Result<(), String> {
    if expected.rejected != actual.rejected {
        return Err(format!(
            "rejection differs\n  expected: {}\n  actual:   {}",
            show(&expected.rejected),
            show(&actual.rejected)
        ));
    }
    compare_effects("the input", &expected.expect, &actual.effects)?;
    if expected.state != actual.state {
        return Err(format!(
            "state differs: expected `{}`, actual `{}`",
            expected.state, actual.state
        ));
    }
    if expected.wake != actual.wake {
        return Err(format!(
            "timer differs: expected wake at {:?} ms, actual {:?} ms",
            expected.wake, actual.wake
        ));
    }
    Ok(())
}

fn compare_effects<O: Serialize + PartialEq>(
    after: &str,
    expected: &[O],
    actual: &[O],
) -> Result<(), String> {
    for (index, (e, a)) in expected.iter().zip(actual).enumerate() {
        if e != a {
            return Err(format!(
                "effect {} of {} after {after} differs\n  expected: {}\n  actual:   {}",
                index + 1,
                actual.len(),
                show(e),
                show(a)
            ));
        }
    }
    if expected.len() != actual.len() {
        let extra = if actual.len() > expected.len() {
            format!("first unexpected: {}", show(&actual[expected.len()]))
        } else {
            format!("first missing: {}", show(&expected[actual.len()]))
        };
        return Err(format!(
            "expected {} effects after {after}, got {}; {extra}",
            expected.len(),
            actual.len()
        ));
    }
    Ok(())
}

/// One line of TOML-ish text for a value in a message.
fn show<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

fn bless_text<O: Serialize>(text: &str, replay: &Replay<O>) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    doc.remove("on_start");
    if !replay.on_start.is_empty() {
        let mut item = effects_item(&replay.on_start)?;
        if let Some(tables) = item.as_array_of_tables_mut() {
            // Before the steps, where a reader expects it.
            tables.iter_mut().for_each(|t| t.set_position(Some(0)));
        }
        doc.insert("on_start", item);
    }
    let Some(steps) = doc.get_mut("step").and_then(Item::as_array_of_tables_mut) else {
        return Ok(doc.to_string());
    };
    for (table, actual) in steps.iter_mut().zip(&replay.steps) {
        for key in ["rejected", "state", "wake", "expect"] {
            table.remove(key);
        }
        if let Some(rejected) = &actual.rejected {
            table.insert("rejected", Item::Value(inline(rejected)?));
        }
        table.insert("state", toml_edit::value(actual.state.clone()));
        if let Some(wake) = actual.wake {
            table.insert(
                "wake",
                toml_edit::value(i64::try_from(wake).unwrap_or(i64::MAX)),
            );
        }
        if !actual.effects.is_empty() {
            table.insert("expect", effects_item(&actual.effects)?);
        }
    }
    Ok(doc.to_string())
}

/// Effects as an array of tables whose nested values are inline, one effect per block.
fn effects_item<O: Serialize>(effects: &[O]) -> Result<Item, String> {
    let mut array = toml_edit::ArrayOfTables::new();
    for effect in effects {
        let Value::InlineTable(inline) = inline(effect)? else {
            return Err("an effect did not serialize as a table".to_owned());
        };
        let mut table: Table = inline.into_table();
        table.set_implicit(false);
        array.push(table);
    }
    Ok(Item::ArrayOfTables(array))
}

fn inline<T: serde::Serialize>(value: &T) -> Result<Value, String> {
    toml_edit::ser::to_string(&Wrapper { v: value })
        .map_err(|e| e.to_string())
        .and_then(|s| s.parse::<DocumentMut>().map_err(|e| e.to_string()))
        .and_then(|doc| {
            let item = doc.get("v").cloned().ok_or("missing value")?;
            match item {
                Item::Value(v) => Ok(v),
                Item::Table(t) => Ok(Value::InlineTable(t.into_inline_table())),
                _ => Err("unsupported value".to_owned()),
            }
        })
}

#[derive(serde::Serialize)]
struct Wrapper<'a, T> {
    v: &'a T,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRAFT: &str = r#"
description = "A token request without a session fails."
seed = "runner-test"
start = 1700000000000

[config]
client_id = "c"

[[step]]
at = 0
# storage is empty
input = { type = "session_loaded" }

[[step]]
at = 5
input = { type = "get_token", waiter = 1 }
"#;

    fn blessed() -> String {
        let (outcome, text) = run_text("draft.toml", DRAFT, true).expect("blessable");
        assert_eq!(outcome, Outcome::Blessed);
        text.expect("blessed text")
    }

    #[test]
    fn bless_fills_expectations_and_keeps_comments() {
        let text = blessed();
        assert!(text.contains("# storage is empty"), "{text}");
        assert!(text.contains(r#"event = "token_failed""#), "{text}");
        assert_eq!(
            run_text("draft.toml", &text, false).expect("passes").0,
            Outcome::Passed
        );
    }

    #[test]
    fn a_changed_expectation_names_file_and_step() {
        let broken = blessed().replace("waiters = [1]", "waiters = [2]");
        let failure = run_text("specs/x.toml", &broken, false).expect_err("must fail");
        assert_eq!(failure.step, Some(2));
        let message = failure.to_string();
        assert!(
            message.starts_with("specs/x.toml: step 2: (at 5 ms, input `get_token`)"),
            "{message}"
        );
        assert!(
            message.contains("expected") && message.contains("actual"),
            "{message}"
        );
    }

    #[test]
    fn a_wrong_state_and_a_missing_effect_are_reported() {
        let text = blessed();
        let wrong_state = text.replacen(r#"state = "logged_out""#, r#"state = "idle""#, 1);
        let failure = run_text("x", &wrong_state, false).expect_err("must fail");
        assert!(failure.message.contains("state differs"), "{failure}");
        let missing = text.replace("[[step.expect]]", "[[step.ignored]]");
        assert!(run_text("x", &missing, false).is_err());
    }

    #[test]
    fn a_typo_in_a_key_is_an_error_not_ignored() {
        let typo = DRAFT.replace("waiter = 1", "waiterr = 1");
        let failure = run_text("x", &typo, false).expect_err("must fail");
        assert!(
            failure.message.contains("not a valid transcript"),
            "{failure}"
        );
    }
}
