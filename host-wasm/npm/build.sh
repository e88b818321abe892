#!/usr/bin/env bash
# Builds the npm package of tessera-wasm into host-wasm/pkg/ and type-checks it.
#
#   cargo build --profile wasm-release (no transcript replay: it never ships) on the pinned
#   nightly with std rebuilt (host-wasm/size/release-build.sh; WASM_STABLE=1 for stable)
#   → wasm-bindgen --target web (ES module + .d.ts; glue.js goes to snippets/)
#   → wasm-opt -Oz (npm binaryen: Debian's breaks modules)
#   → package.json, README
#   → tsc --strict on check-types.ts against the generated declarations.
#
# Needs: cargo with the wasm32-unknown-unknown target, the pinned nightly (`make wasm-nightly`), wasm-bindgen (the crate's pinned
# version: `make wasm-tools`), node and npm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/host-wasm/pkg"

if [ ! -x "$here/node_modules/.bin/wasm-opt" ] || [ ! -x "$here/node_modules/.bin/tsc" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

# shellcheck source=../size/release-build.sh
. "$root/host-wasm/size/release-build.sh"
target_dir="$(cd "$root" && cargo_target_dir)"
echo "== cargo build -p tessera-wasm --profile wasm-release --no-default-features --features session${WASM_STABLE:+ (stable)}" >&2
(cd "$root" && wasm_release_build --no-default-features --features session)

rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/wasm-release/tessera_wasm.wasm"
"$here/node_modules/.bin/wasm-opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$out/tessera_wasm_bg.wasm" -o "$out/tessera_wasm_bg.wasm"

version="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).packages.find(p=>p.name==="tessera-wasm").version))')"
cat > "$out/package.json" <<JSON
{
  "name": "tessera-wasm",
  "version": "$version",
  "description": "tessera's OAuth 2.0 / OpenID Connect engine for browsers and MV3 extensions (WebAssembly)",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "tessera_wasm.js",
  "module": "tessera_wasm.js",
  "types": "tessera_wasm.d.ts",
  "sideEffects": ["./snippets/*"],
  "files": ["tessera_wasm.js", "tessera_wasm.d.ts", "tessera_wasm_bg.wasm",
            "tessera_wasm_bg.wasm.d.ts", "snippets/", "README.md"]
}
JSON
cp "$root/host-wasm/README.md" "$out/README.md"

echo "== tsc --strict check-types.ts against $out/tessera_wasm.d.ts" >&2
"$here/node_modules/.bin/tsc" -p "$here/tsconfig.json"

ls -l "$out" "$out"/snippets/* >&2
