//! Helpers shared by the cross-crate tests.

use std::path::{Path, PathBuf};

/// The `specs/` directory at the workspace root.
pub fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("specs")
}

/// Every transcript under `specs/`, sorted.
pub fn transcripts() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![specs_dir()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Replays (or blesses) one transcript file; blessing rewrites it in place. The file I/O
/// around the engine's pure [`run_text`](tessera_engine::transcript::run_text).
pub fn run_file(
    path: &std::path::Path,
    bless: bool,
) -> Result<tessera_engine::transcript::Outcome, tessera_engine::transcript::Failure> {
    use tessera_engine::transcript::{Failure, run_text};
    let name = path.display().to_string();
    let fail = |message: String| Failure {
        file: name.clone(),
        step: None,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let (outcome, blessed) = run_text(&name, &text, bless)?;
    if let Some(blessed) = blessed.filter(|b| *b != text) {
        std::fs::write(path, blessed).map_err(|e| fail(format!("cannot write: {e}")))?;
    }
    Ok(outcome)
}
