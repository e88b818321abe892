# Sourced by host-wasm/size/measure.sh, floor.sh and host-wasm/npm/build.sh: how the shipped
# browser module is compiled. Defines WASM_NIGHTLY, wasm_release_build and cargo_target_dir.
#
# The shipped module is built with a pinned nightly (the Makefile's `wasm-nightly` target
# and .ci/run install exactly this one, with rust-src) so that std is rebuilt for it:
#   -Zbuild-std                        std compiled with the profile below (opt-level z, LTO)
#   -Cpanic=immediate-abort            a panic is a trap: no panic messages, no formatting
#   -Zlocation-detail=none             no file/line/column of panics in the data section
#   -Zbuild-std-features=optimize_for_size   std's smaller variants (sorting, integer
#                                      formatting...): the same results; the engine sorts
#                                      only with stable sorts, whose result is unique
#   --cfg sha2_backend_soft="compact"  sha2's rolled-up SHA-256 rounds (same digests)
# None of these changes what the module does (no input may panic; a panic was already a trap).
# Not -Zfmt-debug=none (3.8 KB smaller): it empties every `{:?}`, and some reach users —
# serde's "invalid type: string \"x\"" in config errors, the storage key in storage errors,
# the ID token problem in its error text. (-Zfmt-debug=shallow keeps those but saves nothing.)
# Stable keeps working for everything else (tests, clippy) and for this build too:
# WASM_STABLE=1 builds the module with the default toolchain and the plain `wasm-release`
# profile, as before (BENCHMARKS.md reports both).
WASM_NIGHTLY=nightly-2026-05-20

# EXTRA_RUSTFLAGS, if set, is added to the nightly build's RUSTFLAGS (floor.sh: -Ctarget-cpu=mvp).
# wasm_release_build FEATURE_FLAGS... — builds tessera-wasm for wasm32-unknown-unknown with
# the `wasm-release` profile into <target dir>/wasm32-unknown-unknown/wasm-release/.
wasm_release_build() {
  if [ "${WASM_STABLE:-}" = 1 ]; then
    ${CARGO:-cargo} build -q -p tessera-wasm --target wasm32-unknown-unknown --profile wasm-release "$@"
  else
    # RUSTFLAGS with --target apply to the wasm crates only, not to build scripts.
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none --cfg sha2_backend_soft=\"compact\"${EXTRA_RUSTFLAGS:+ $EXTRA_RUSTFLAGS}" \
      rustup run "$WASM_NIGHTLY" cargo build -q -p tessera-wasm --target wasm32-unknown-unknown \
      --profile wasm-release -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size "$@"
  fi
}

# cargo_target_dir — prints cargo's target directory for this workspace (CARGO_TARGET_DIR
# or the configured one), where wasm_release_build leaves the module.
cargo_target_dir() {
  ${CARGO:-cargo} metadata --format-version 1 --no-deps \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))'
}
