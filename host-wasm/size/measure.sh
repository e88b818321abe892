#!/usr/bin/env bash
# Size report of tessera's browser build, side by side with oauth4webapi (BENCHMARKS.md,
# "WebAssembly size"). Usage: host-wasm/size/measure.sh   (or `make wasm-size`)
#
# For each variant of tessera-wasm: cargo's `wasm-release` profile (opt-level z, LTO, one
# codegen unit, panic=abort) on the pinned nightly with std rebuilt, panics as traps and no
# panic locations or Debug text (release-build.sh; the npm package is also built on stable,
# WASM_STABLE=1, for comparison), wasm-bindgen --target web, wasm-opt -Oz (npm binaryen; Debian's
# is too old), the JS glue minified by esbuild, gzip -9. Each optimized module is then loaded
# in node and driven once (smoke.mjs), so a broken wasm-opt output cannot be measured.
# oauth4webapi: its whole module bundled by esbuild (--bundle --minify --format=esm), gzip -9.
# Needs: cargo, the wasm32-unknown-unknown target, the pinned nightly with rust-src
# (`make wasm-nightly`), wasm-bindgen (same version as the crate),
# node and npm. Artifacts go to <cargo target dir>/wasm-size/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
CARGO=${CARGO:-cargo}
# shellcheck source=release-build.sh
. "$here/release-build.sh"

if [ ! -x "$here/node_modules/.bin/wasm-opt" ] \
  || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
bin="$here/node_modules/.bin"
target_dir=$(cargo_target_dir)
out="$target_dir/wasm-size"
rm -rf "$out" && mkdir -p "$out"

gz() { gzip -9 -c "$1" | wc -c; }
size() { wc -c <"$1"; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1000 }'; }

rows=()
measure() { # directory, name, cargo feature flags
  local dir="$out/$1" name=$2 flags=$3
  echo "== tessera-wasm ($name): cargo build --profile wasm-release $flags${WASM_STABLE:+ (stable)}" >&2
  # shellcheck disable=SC2086
  wasm_release_build $flags
  mkdir -p "$dir"
  # Without the name section (function names for debuggers), "raw" is code and data as
  # compiled; wasm-opt drops it anyway.
  wasm-bindgen --target web --remove-name-section --out-dir "$dir/pkg" \
    "$target_dir/wasm32-unknown-unknown/wasm-release/tessera_wasm.wasm"
  "$bin/wasm-opt" -Oz "$dir/pkg/tessera_wasm_bg.wasm" -o "$dir/opt.wasm"
  # --bundle: the glue imports the platform adapters (snippets/…/glue.js); they ship too.
  "$bin/esbuild" "$dir/pkg/tessera_wasm.js" --bundle --minify --format=esm --log-level=warning \
    --outfile="$dir/glue.min.js"
  node "$here/smoke.mjs" "$dir/pkg/tessera_wasm.js" "$dir/opt.wasm" "$root/specs" >&2
  local w0 w1 w2 j0 j1 j2
  w0=$(size "$dir/pkg/tessera_wasm_bg.wasm") w1=$(size "$dir/opt.wasm") w2=$(gz "$dir/opt.wasm")
  j0=$(cat "$dir/pkg/tessera_wasm.js" "$dir"/pkg/snippets/*/src/browser/glue.js | wc -c) j1=$(size "$dir/glue.min.js") j2=$(gz "$dir/glue.min.js")
  rows+=("| tessera-wasm ($name): .wasm | $(kb "$w0") | $(kb "$w1") | $(kb "$w2") |")
  rows+=("| tessera-wasm ($name): JS glue | $(kb "$j0") | $(kb "$j1") | $(kb "$j2") |")
  rows+=("| **tessera-wasm ($name): total** | $(kb $((w0 + j0))) | $(kb $((w1 + j1))) | **$(kb $((w2 + j2)))** |")
}

measure engine "Engine API only" "--no-default-features --features engine-api"
measure api "npm package: Session" "--no-default-features --features session"
measure replay "everything: Session, Engine, transcript replay" ""
# The same npm package built by stable Rust (no build-std): what the nightly flags save.
WASM_STABLE=1 measure api-stable "npm package: Session, stable Rust" "--no-default-features --features session"

echo "== oauth4webapi" >&2
o4w=$(node -p 'require(process.argv[1]).version' "$here/node_modules/oauth4webapi/package.json")
# The whole module: every export kept. stdin resolves from the working directory.
for minify in "" --minify; do
  (cd "$here" && echo 'export * from "oauth4webapi";' | "$bin/esbuild" --bundle $minify \
    --format=esm --log-level=warning --outfile="$out/o4w${minify:+.min}.js")
done
rows+=("| oauth4webapi $o4w: full bundle (JS) | $(kb "$(size "$out/o4w.js")") | $(kb "$(size "$out/o4w.min.js")") | **$(kb "$(gz "$out/o4w.min.js")")** |")

echo
echo "wasm-bindgen $(wasm-bindgen --version | awk '{print $2}'), $("$bin/wasm-opt" --version | awk '{print $1, $3}'), esbuild $("$bin/esbuild" --version), $(rustup run "$WASM_NIGHTLY" rustc --version | awk '{print $1, $2, $4}' | tr -d ')') ($WASM_NIGHTLY; stable row: $(rustc --version | awk '{print $1, $2}'))"
echo
echo "| artifact | raw | wasm-opt -Oz / minified | gzip -9 |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
