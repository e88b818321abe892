//! The driver fuzz harness (`tests/fuzz/harness/`) on stable, bounded: every saved
//! regression input (`tests/fuzz/regressions/`), then pseudo-random inputs from a fixed
//! seed. `make test` runs the default count; `TESSERA_FUZZ_CASES=N` (and
//! `TESSERA_FUZZ_SEED`) run more. The long campaign is `make fuzz` (cargo-fuzz, nightly).
//!
//! A failing input is written to `target/fuzz-driver-failure.bin`: copy it into
//! `tests/fuzz/regressions/` with the fix.

#[path = "fuzz/harness/mod.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// splitmix64: a fixed, dependency-free stream of test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn check(input: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| harness::run(input))).is_err() {
        let out = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("fuzz-driver-failure.bin");
        let _ = std::fs::create_dir_all(out.parent().unwrap());
        let _ = std::fs::write(&out, input);
        panic!(
            "{what}: an invariant broke (see the panic above); input saved to {}",
            out.display()
        );
    }
}

#[test]
fn saved_regression_inputs_keep_every_invariant() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fuzz/regressions")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    for file in files {
        let input = std::fs::read(&file).expect("readable");
        check(&input, &file.display().to_string());
    }
}

#[test]
fn pseudo_random_inputs_keep_every_invariant() {
    let cases = env_u64("TESSERA_FUZZ_CASES", 20_000);
    let mut rng = Rng(env_u64("TESSERA_FUZZ_SEED", 13));
    let mut input = Vec::new();
    for case in 0..cases {
        let len = (rng.next() % 1024) as usize;
        input.clear();
        while input.len() < len {
            input.extend_from_slice(&rng.next().to_le_bytes());
        }
        input.truncate(len);
        check(&input, &format!("case {case}"));
    }
}

#[test]
fn the_secret_check_catches_a_planted_token_and_passes_clean_text() {
    harness::secret_check_self_test();
}
