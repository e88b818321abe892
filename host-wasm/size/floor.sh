#!/usr/bin/env bash
# How small the browser module could get if whole dependencies left it: a lower bound for
# issue 17 (BENCHMARKS.md, "What the budget would take"). Usage: host-wasm/size/floor.sh
# (or `make wasm-floor`)
#
# The module is built as measure.sh builds it (release-build.sh: pinned nightly, std
# rebuilt, panics as traps), then, for each group of crates below, every function whose
# name matches is replaced by `unreachable` (wasm-snip) before wasm-bindgen and
# wasm-opt -Oz. wasm-opt then also drops everything only those functions reached, and the
# code after each call to them, so a row is *smaller* than any real replacement (JSON.parse
# and the browser's URL through a trait, integer-only numbers, no texts) could make it:
# what a row shows is a floor for the code, not an estimate. Data segments are not removed
# with the functions that read them, so the last column also leaves out all data. Only the
# .wasm is reported; the JS glue (about 7 KB gzipped, measure.sh) comes on top.
#
# Read the Engine API only table with care: each of its exports takes or gives JSON, so
# with serde cut out almost nothing stays reachable.
#
# wasm-snip 0.4 cannot read reference types, so this build adds -Ctarget-cpu=mvp; the
# unsnipped row is reported next to the others to show what that changes (within 0.1 KB of
# measure.sh's module at the time of writing). Its own target directory: the flags differ.
# Needs what measure.sh needs, and wasm-snip (`cargo install wasm-snip --version 0.4.0`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
CARGO=${CARGO:-cargo}
# shellcheck source=release-build.sh
. "$here/release-build.sh"

command -v wasm-snip >/dev/null || $CARGO install -q wasm-snip --version 0.4.0
[ -x "$here/node_modules/.bin/wasm-opt" ] || (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
wasm_opt="$here/node_modules/.bin/wasm-opt"
target_dir=$(cargo_target_dir)
out="$target_dir/wasm-floor"
mkdir -p "$out"

# Each group: wasm-snip patterns (regular expressions on function names).
json=(-p 'serde' -p 'zmij' -p 'itoa')
urls=(-p 'url\[' -p 'idna' -p 'smallvec' -p 'form_urlencoded' -p 'percent_encoding')
texts=(-p 'core\[[0-9a-f]+\]::fmt' -p 'flt2dec' -p 'dec2flt' -p 'httpdate')
engine=(-p 'tessera_engine')

kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1000 }'; }
row() { # module, label, patterns...
  local module=$1 label=$2 dir
  shift 2
  dir=$(mktemp -d "$out/snip.XXXX")
  if [ $# -gt 0 ]; then wasm-snip "$module" -o "$dir/m.wasm" "$@"; else cp "$module" "$dir/m.wasm"; fi
  wasm-bindgen --target web --remove-name-section --out-dir "$dir/pkg" "$dir/m.wasm"
  "$wasm_opt" -Oz "$dir/pkg/m_bg.wasm" -o "$dir/opt.wasm"
  # Data segments stay whole when the functions that read them go (serde's and url's texts
  # and tables among them): the last column leaves all data out, the engine's own texts too.
  "$wasm_opt" --remove-memory-init "$dir/opt.wasm" -o "$dir/code.wasm"
  echo "| $label | $(kb "$(wc -c <"$dir/opt.wasm")") | **$(kb "$(gzip -9 -c "$dir/opt.wasm" | wc -c)")** | $(kb "$(gzip -9 -c "$dir/code.wasm" | wc -c)") |"
  rm -rf "$dir"
}

for build in "npm package: Session|--no-default-features --features session" \
             "Engine API only|--no-default-features --features engine-api"; do
  name=${build%%|*} flags=${build#*|}
  echo "== $name: build with -Ctarget-cpu=mvp" >&2
  # shellcheck disable=SC2086
  CARGO_TARGET_DIR="$out/target" EXTRA_RUSTFLAGS="-Ctarget-cpu=mvp" wasm_release_build $flags
  module="$out/$(echo "$name" | tr -c 'a-zA-Z0-9\n' _).wasm"
  cp "$out/target/wasm32-unknown-unknown/wasm-release/tessera_wasm.wasm" "$module"
  echo
  echo "$name, .wasm after wasm-opt -Oz:"
  echo
  echo "| functions replaced by \`unreachable\` | wasm-opt -Oz | gzip -9 | gzip -9, code only (no data segments) |"
  echo "|---|---|---|---|"
  row "$module" "none (the module as built)"
  row "$module" "JSON: serde, serde_json, zmij, itoa" "${json[@]}"
  row "$module" "URLs: url, idna, smallvec, form_urlencoded, percent_encoding" "${urls[@]}"
  row "$module" "texts and dates: core::fmt, float printing and parsing, httpdate" "${texts[@]}"
  row "$module" "all three" "${json[@]}" "${urls[@]}" "${texts[@]}"
  row "$module" "all three and the engine's own functions" "${json[@]}" "${urls[@]}" "${texts[@]}" "${engine[@]}"
done
