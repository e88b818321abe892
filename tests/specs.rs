//! Replays every transcript under `specs/` against the engine, one test per file.
//!
//! `TESSERA_BLESS=1 cargo test -p tessera-tests --test specs` rewrites the expectations
//! instead (review the diff before committing it).

use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let bless = std::env::var_os("TESSERA_BLESS").is_some_and(|v| v != "0");
    let root = tessera_tests::specs_dir();
    let files = tessera_tests::transcripts();
    assert!(
        !files.is_empty(),
        "no transcripts found under {}",
        root.display()
    );
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .with_extension("")
                .display()
                .to_string();
            Trial::test(name, move || {
                tessera::record::run_file(&path, bless)
                    .map(|_| ())
                    .map_err(|f| Failed::from(f.to_string()))
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
