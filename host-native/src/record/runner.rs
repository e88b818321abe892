//! Replaying transcript files (the file I/O around the engine's pure runner).

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

/// The transcripts named: files as given, and every `*.toml` under a directory (sorted).
pub fn transcripts_in(paths: &[std::path::PathBuf]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut under = Vec::new();
            collect(path, &mut under);
            under.sort();
            found.extend(under);
        } else {
            found.push(path.clone());
        }
    }
    found
}

fn collect(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            collect(&path, found);
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
}
