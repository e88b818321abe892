#!/usr/bin/env bash
# `make demo`: the whole tessera cycle against a local, real authorization server
# (panva's oidc-provider from tests/provider), with no human input:
#   login (browser + PKCE, the browser played by tests/provider/browser.mjs)
#   → status → token → refresh → logout (revocation checked by the provider);
# then the token service (`tessera serve`): sign-in over HTTP → token → a
# .credentials.json export → the grant revoked behind the service's back → the
# API-key fallback → logout.
# Everything lives in a temporary directory and stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cargo build -q -p tessera -p tessera-serve
(cd tests/provider && [ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
provider_pid="" serve_pid=""
cleanup() {
  local code=$?
  [ "$code" != 0 ] && [ -s "$work/serve.log" ] && { echo "-- tessera serve's log:"; tail -20 "$work/serve.log"; }
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  [ -n "$provider_pid" ] && kill "$provider_pid" 2>/dev/null
  rm -rf "$work"
}
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
# first 12 characters of a token
short() { printf '%s…' "${1:0:12}"; }
# JSON on stdin → one field (json KEY…), or the whole document with every *token value
# shortened (json -); objects print as JSON
json() { node -e '
  let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
    const keys = process.argv.slice(1);
    if (keys[0] === "-") return console.log(JSON.stringify(JSON.parse(s),
      (k, v) => typeof v === "string" && /token$/i.test(k) && v.length > 12 ? v.slice(0, 12) + "…" : v, 2)
      .replace(/\[\s+([^[\]{}]*?)\s+\]/g, (_, a) => "[" + a.split(/,\s+/).join(", ") + "]"));
    let v = JSON.parse(s); for (const k of keys) v = v?.[k];
    console.log(typeof v === "object" ? JSON.stringify(v) : v);
  })' "$@"; }
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

# ---- the token service -------------------------------------------------------------
serve_dir="$work/serve"
mkdir -p "$serve_dir"
cat >"$serve_dir/config.toml" <<EOF
[profiles.test]
issuer = "$issuer"
client_id = "tessera-cli"
scopes = ["openid", "offline_access", "email"]
api_key_env = "TEST_API_KEY"
EOF
export TESSERA_SERVE_TOKEN="demo-serve-bearer-$RANDOM$RANDOM-0123456789"

say "tessera serve --config-dir \$work/serve --port 0 --refresh-buffer 10s  (TEST_API_KEY=sk-demo-…)"
TEST_API_KEY="sk-demo-0000-fake-api-key-for-the-fallback" \
  target/debug/tessera serve --config-dir "$serve_dir" --port 0 --refresh-buffer 10s \
  >"$work/serve.ready" 2>"$work/serve.log" </dev/null &
serve_pid=$!
for _ in $(seq 100); do grep -q READY "$work/serve.ready" 2>/dev/null && break; sleep 0.1; done
grep -q READY "$work/serve.ready" || { echo "tessera serve did not start:"; cat "$work/serve.log"; exit 1; }
serve=$(sed -n 's/^READY //p' "$work/serve.ready" | json url)
echo "token service: $serve (profile \`test\`: the provider above, API key from TEST_API_KEY)"

# METHOD PATH: the service's answer; an HTTP error ends the demo, showing the answer
api() {
  local out code
  out=$(curl -sS -X "$1" -H "Authorization: Bearer $TESSERA_SERVE_TOKEN" -w '\n%{http_code}' "$serve$2")
  code=${out##*$'\n'} out=${out%$'\n'*}
  if [ "$code" -ge 400 ]; then echo "$1 $2 → HTTP $code $out" >&2; return 1; fi
  printf '%s\n' "$out"
}
# revokes a token at the provider, as someone other than the service would
revoke() {
  curl -sS -o /dev/null -w '%{http_code}' -X POST "$issuer/token/revocation" \
    -H 'content-type: application/x-www-form-urlencoded' \
    --data-urlencode "token=$1" -d "token_type_hint=$2&client_id=tessera-cli"
}

say "GET /auth/test/start?user=alice, then the browser (curl) follows authorization_url"
start=$(api GET "/auth/test/start?user=alice")
echo "authorization_url: $(echo "$start" | json authorization_url | cut -c1-60)…  expires_in: $(echo "$start" | json expires_in) s"
signed=$(curl -sSL -c "$work/jar" -b "$work/jar" -H 'Accept: application/json' "$(echo "$start" | json authorization_url)")
echo "callback answered: signed_in=$(echo "$signed" | json signed_in) user=$(echo "$signed" | json user) email=$(echo "$signed" | json identity email)"

say "GET /token/test?user=alice"
token=$(api GET "/token/test?user=alice")
access=$(echo "$token" | json access_token)
echo "$(short "$access")  source: $(echo "$token" | json source), expires_in: $(echo "$token" | json expires_in) s (active at the provider: $(active "$access"))"

say "GET /users/alice/credentials/test?shape=claude  →  \$work/.credentials.json"
api GET "/users/alice/credentials/test?shape=claude" >"$work/.credentials.json"
json - <"$work/.credentials.json"
refresh_token=$(json claudeAiOauth refreshToken <"$work/.credentials.json")
access=$(json claudeAiOauth accessToken <"$work/.credentials.json")

say "behind the service's back: alice's refresh and access tokens revoked at the provider"
echo "refresh token $(short "$refresh_token"): HTTP $(revoke "$refresh_token" refresh_token), active: $(active "$refresh_token")"
echo "access token  $(short "$access"): HTTP $(revoke "$access" access_token), active: $(active "$access")"

say "GET /token/test?user=alice&min_ttl=999999: the refresh is refused, the API key serves"
before=$(refreshes)
token=$(api GET "/token/test?user=alice&min_ttl=999999")
echo "$(short "$(echo "$token" | json access_token)")  source: $(echo "$token" | json source), expires_in: $(echo "$token" | json expires_in); refresh requests: $before → $(refreshes)"
echo "refreshes the provider answered invalid_grant: $(curl -s "$issuer/test/counters" | json refresh_invalid_grant)"

say "GET /auth/test/status?user=alice"
status=$(api GET "/auth/test/status?user=alice")
for k in connected source fallback_active fallbacks last_error; do printf '%-16s %s\n' "$k:" "$(echo "$status" | json "$k")"; done
[ "$(echo "$token" | json source)" = api_key ] && [ "$(echo "$status" | json fallback_active)" = true ] \
  || { echo "expected the API-key fallback"; exit 1; }

say "POST /auth/test/logout?user=alice  (the provider already ended the session: nothing left to revoke)"
api POST "/auth/test/logout?user=alice" | json -
