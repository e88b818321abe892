//! Embeds the transcript corpus (`../specs`) for the tests, since wasm has no file
//! system, together with what the engine did for each transcript when replayed
//! *natively* here (the engine as a build-dependency runs on the build machine). The
//! wasm tests replay the same texts and compare, byte for byte.
//!
//! Generates `$OUT_DIR/corpus.rs`: `CORPUS: &[Embedded]`, sorted by name. Only the tests
//! include it; the library itself carries no transcripts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[path = "src/record.rs"]
#[allow(dead_code)]
mod record;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let specs = manifest.join("..").join("specs");
    println!("cargo:rerun-if-changed={}", specs.display());
    println!("cargo:rerun-if-changed=src/record.rs");

    let mut files = Vec::new();
    walk(&specs, &mut files);
    files.sort();
    assert!(
        !files.is_empty(),
        "no transcripts under {}",
        specs.display()
    );

    let mut out = String::from(
        "/// Every transcript under `specs/`, embedded by `build.rs`, with its native replay.\n\
         pub static CORPUS: &[Embedded] = &[\n",
    );
    for path in &files {
        let name = path
            .strip_prefix(&specs)
            .expect("under specs")
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        // A transcript the engine cannot replay is recorded as its error, not a build
        // failure: the tests then report it with its name.
        let native = record::effects_record(&text).unwrap_or_else(|e| format!("error {e}\n"));
        writeln!(
            out,
            "    Embedded {{ name: {name:?}, text: include_str!({:?}), native: {native:?} }},",
            path.display().to_string()
        )
        .expect("write to a String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("corpus.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            walk(&path, found);
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
}
