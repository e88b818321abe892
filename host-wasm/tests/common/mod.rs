//! The `specs/` corpus as embedded by `build.rs`, replayed by the build under test and
//! compared with the native replay. Shared by every suite (node, browser, service
//! worker, native).

/// One transcript: its path under `specs/`, its text, and what the engine did for it
/// when `build.rs` replayed it natively (see `tessera_wasm::effects_record`).
#[derive(Debug)]
pub struct Embedded {
    pub name: &'static str,
    pub text: &'static str,
    pub native: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/corpus.rs"));

/// Replays every embedded transcript twice: through `replay` (the runner checks the
/// transcript's own expectations) and through `effects_record` (compared byte for byte
/// with the native replay). Panics with every failure, each naming file and step;
/// returns a one-line summary with the count and a SHA-256 of all the effects (the same
/// on every host).
pub fn replay_corpus(replay: impl Fn(&str, &str) -> Result<(), String>) -> String {
    use sha2::{Digest as _, Sha256};
    let mut failures = Vec::new();
    let mut replayed = 0;
    let mut digest = Sha256::new();
    for t in CORPUS {
        let name = format!("specs/{}", t.name);
        if let Err(message) = replay(&name, t.text) {
            failures.push(message);
        }
        let this = tessera_wasm::effects_record(t.text).unwrap_or_else(|e| format!("error {e}\n"));
        digest.update(t.name.as_bytes());
        digest.update(b"\n");
        digest.update(this.as_bytes());
        if let Some(difference) = first_difference(t.native, &this) {
            failures.push(format!("{name}: {difference}"));
        }
        replayed += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {} transcripts failed:\n\n{}",
        failures.len(),
        CORPUS.len(),
        failures.join("\n\n")
    );
    assert!(replayed > 0, "no transcript embedded: check build.rs");
    assert_eq!(replayed, CORPUS.len());
    // Given by `make wasm-test` (`find specs -name '*.toml' | wc -l`), so that a broken
    // embedding cannot pass by replaying fewer files than there are.
    if let Some(expected) = option_env!("TESSERA_SPECS_COUNT") {
        let expected: usize = expected
            .trim()
            .parse()
            .expect("TESSERA_SPECS_COUNT is a number");
        assert_eq!(
            replayed, expected,
            "transcripts replayed vs files under specs/"
        );
    }
    let hex: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "specs/: {replayed} transcripts replayed, expectations hold, effects identical to \
         the native replay (sha256 {})",
        &hex[..16]
    )
}

/// The first line (`on_start` or `step N`) where two effect records differ, with both.
fn first_difference(native: &str, this: &str) -> Option<String> {
    if native == this {
        return None;
    }
    let (mut n, mut t) = (native.lines(), this.lines());
    loop {
        match (n.next(), t.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (a, b) => {
                return Some(format!(
                    "{}: differs from the native replay\n  native:     {}\n  this build: {}",
                    label(a.or(b).unwrap_or_default()),
                    a.unwrap_or("<nothing>"),
                    b.unwrap_or("<nothing>")
                ));
            }
        }
    }
}

/// Where a record line comes from, in the runner's words.
fn label(line: &str) -> String {
    let mut words = line.splitn(3, ' ');
    match (words.next(), words.next()) {
        (Some("step"), Some(number)) => format!("step {number}"),
        (Some("on_start"), _) => "the effects of Engine::new".to_owned(),
        _ => "the file".to_owned(),
    }
}

/// `replayTranscript` as JavaScript calls it; a failure is the thrown `Error`'s message.
#[cfg(target_family = "wasm")]
pub fn replay_as_js(name: &str, text: &str) -> Result<(), String> {
    use wasm_bindgen::{JsCast as _, JsValue};
    tessera_wasm::replay_transcript(name, text).map_err(|e| {
        JsValue::from(e)
            .dyn_into::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|v| format!("{v:?}"))
    })
}

/// A property of the global object as a string (e.g. `navigator.userAgent`).
#[cfg(target_family = "wasm")]
pub fn global_string(path: &[&str]) -> String {
    let mut value = js_sys::global().into();
    for key in path {
        value = js_sys::Reflect::get(&value, &wasm_bindgen::JsValue::from_str(key))
            .unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    }
    value.as_string().unwrap_or_default()
}
