#!/usr/bin/env bash
# `make demo`: the whole tessera cycle against a local, real authorization server
# (panva's oidc-provider from tests/provider), with no human input:
#   login (browser + PKCE, the browser played by tests/provider/browser.mjs)
#   → status → token → refresh → logout (revocation checked by the provider).
# Everything lives in a temporary directory and stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cargo build -q -p tessera
(cd tests/provider && [ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
provider_pid=""
cleanup() { [ -n "$provider_pid" ] && kill "$provider_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ACCESS_TOKEN_TTL=30 EXIT_ON_STDIN_CLOSE=0 node tests/provider/server.mjs >"$work/ready" 2>"$work/provider.log" &
provider_pid=$!
for _ in $(seq 50); do grep -q READY "$work/ready" 2>/dev/null && break; sleep 0.1; done
issuer=$(sed -n 's/^READY //p' "$work/ready" | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).issuer))')
echo "authorization server: $issuer (access tokens live 30 s)"

export TESSERA_CONFIG_DIR="$work/config" TESSERA_PASSPHRASE="demo passphrase"
export BROWSER="node $PWD/tests/provider/browser.mjs"
tessera() { target/debug/tessera --store file "$@"; }
active() { curl -s -X POST -H 'content-type: application/json' -d "{\"token\":\"$1\"}" "$issuer/test/introspect" | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).active))'; }
refreshes() { curl -s "$issuer/test/counters" | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).token_requests.refresh_token))'; }

say "tessera login --issuer $issuer --client-id tessera-cli"
tessera login --issuer "$issuer" --client-id tessera-cli --scope "openid profile email offline_access"

say "tessera status"
tessera status

say "tessera token"
first=$(tessera token)
echo "${first:0:12}…  (active at the provider: $(active "$first"))"

say "tessera token again: served from the stored session, no request"
second=$(tessera token)
echo "${second:0:12}…  same token: $([ "$first" = "$second" ] && echo yes || echo no); refresh requests so far: $(refreshes)"

say "tessera token --min-ttl 60: the token lives 30 s, so tessera refreshes first"
third=$(tessera token --min-ttl 60)
echo "${third:0:12}…  new token: $([ "$third" != "$first" ] && echo yes || echo no); refresh requests so far: $(refreshes)"

say "tessera logout"
tessera logout
echo "token still active at the provider: $(active "$third")"

say "tessera status (exit code 3: not logged in)"
set +e; tessera status; code=$?; set -e
echo "exit code: $code"
