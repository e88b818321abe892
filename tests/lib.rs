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
