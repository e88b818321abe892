#!/usr/bin/env bash
# `tessera token` process start-up with a cached, valid token, side by side (one hyperfine
# run per store) with a minimal Rust binary that reads a JSON file and prints one field
# (tests/benches/bin/print_field.rs). Target: tessera ≤ 1.5× the minimal binary.
#
#   tests/benches/startup.sh                                            # encrypted file store
#   host-native/tests/with-secret-service.sh tests/benches/startup.sh   # + the keyring store
#
# Release builds (CARGO_TARGET_DIR is honoured; default: ./target). The session is made by
# a real `tessera login` against the local oidc-provider (tests/provider, access tokens
# living 1 h so no run refreshes; checked with the provider's counters afterwards), the
# browser played by tests/provider/browser.mjs. Only 127.0.0.1 is contacted.
#
# The file store is measured twice: as a process without a session keyring runs it (one
# scrypt per run), and inside `keyctl session -` (a fresh kernel session keyring, as
# pam_keyinit gives every login), where the first run caches the derived key for the
# others (ADR 007). The second needs keyctl (apt-get install keyutils); skipped without.
#
# TESSERA_BEFORE_BIN=PATH adds an earlier build of `tessera` to every hyperfine run, for
# before/after rows measured side by side; with a store, on a session of its own (its own
# login, as the stored format may differ between the two builds).
#
# Environment: STORES (default `file`, or `file keyring` inside with-secret-service.sh),
# RUNS (default 200), WARMUP (default 10), ANALYSE=1 (also strace -c, perf stat and a -vv
# run per store), OUT (directory for hyperfine's exports; default a temporary one, removed).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

runs=${RUNS:-200}
warmup=${WARMUP:-10}
if [ -n "${TESSERA_TEST_REQUIRE_KEYRING:-}" ]; then
    stores=${STORES:-file keyring}
else
    stores=${STORES:-file}
fi
for tool in hyperfine node; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found (apt-get install -y $tool)" >&2; exit 2; }
done

target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p tessera --bin tessera --bin tessera-full
cargo build --release -q -p tessera-tests --example print_field
tessera_bin=$target/release/tessera
print_field=$target/release/examples/print_field
(cd tests/provider && { [ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund --loglevel=error; })

work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-startup.XXXXXX")
out=${OUT:-$work/out}
mkdir -p "$out"
provider_pid=""
cleanup() {
    [ -n "$provider_pid" ] && kill "$provider_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

ACCESS_TOKEN_TTL=3600 EXIT_ON_STDIN_CLOSE=0 node tests/provider/server.mjs >"$work/ready" 2>"$work/provider.log" &
provider_pid=$!
for _ in $(seq 100); do grep -q READY "$work/ready" 2>/dev/null && break; sleep 0.1; done
issuer=$(sed -n 's/^READY //p' "$work/ready" | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).issuer))')
case "$issuer" in http://127.0.0.1:*) ;; *) echo "$0: provider did not start: $issuer" >&2; exit 1 ;; esac
counter() { node -e '
    fetch(process.argv[1] + "/test/counters").then(r => r.json())
      .then(c => console.log(c.token_requests.refresh_token ?? 0))' "$issuer"; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(hyperfine --version)"
echo "tessera: $tessera_bin"
before_bin=${TESSERA_BEFORE_BIN:-}
[ -z "$before_bin" ] || echo "before: $before_bin"
# hyperfine arguments for the same command with the earlier build (none without one):
# `before NAME ARGS` sets the array `earlier`.
before() {
    earlier=()
    if [ -n "$before_bin" ]; then earlier=(-n "before: $1" "$before_bin $2"); fi
}
# The earlier build's own session for `store`, made by its own `login` in its own
# configuration directory: stored formats change between commits (issue 12 raised the
# session file's scrypt cost), so each build reads only what it wrote. Prints the
# `--config-dir` argument for its rows.
before_session() {
    local dir="$work/config-$1-before"
    "$before_bin" --config-dir "$dir" --store "$1" login --issuer "$issuer" --client-id tessera-cli \
        --scope "openid offline_access" >/dev/null 2>"$work/login-$1-before.log" \
        || { cat "$work/login-$1-before.log" >&2; exit 1; }
    echo "--config-dir $dir"
}
echo "provider: $issuer (access tokens live 3600 s)"

export TESSERA_PASSPHRASE="startup bench passphrase"
export BROWSER="node $root/tests/provider/browser.mjs"
# A backtrace would be symbolized on every panic message (see BENCHMARKS.md): as users run it.
unset RUST_LOG RUST_BACKTRACE RUST_LIB_BACKTRACE TESSERA_PROFILE TESSERA_ACCESS_TOKEN \
    TESSERA_KEY_CACHE_SECS

ratio() {
    node -e '
        const r = require(process.argv[1]).results;
        const ms = x => (x * 1000).toFixed(2);
        const base = r[0];
        for (const t of r.slice(1)) {
          console.log(`${t.command}: ${(t.mean / base.mean).toFixed(1)}× the minimal binary ` +
            `(mean ${ms(t.mean)} ± ${ms(t.stddev)} ms vs ${ms(base.mean)} ± ${ms(base.stddev)} ms; ` +
            `median ${ms(t.median)} vs ${ms(base.median)} ms; target ≤ 1.5×)`);
        }' "$1"
}

# No store at all: the token comes from the environment (the credential chain's first
# link), so this is the process start-up of `tessera token` without storage.
echo
echo "== no store: TESSERA_ACCESS_TOKEN (start-up without storage)"
env_dir="$work/config-env"
mkdir -p "$env_dir"
printf '{"access_token":"%s"}\n' "env-token-0123456789" >"$env_dir/token.json"
before "tessera token (TESSERA_ACCESS_TOKEN)" "token"
TESSERA_CONFIG_DIR="$env_dir" TESSERA_ACCESS_TOKEN=env-token-0123456789 \
    TESSERA_EXPIRES_AT=$(( $(date +%s) + 3600 )) \
    hyperfine -N --warmup "$warmup" --runs "$runs" \
    --export-json "$out/startup-env.json" --export-markdown "$out/startup-env.md" \
    -n "print_field (JSON file, one field)" "$print_field $env_dir/token.json access_token" \
    -n "tessera token (TESSERA_ACCESS_TOKEN)" "$tessera_bin token" \
    -n "tessera --version (loading and argument parsing only)" "$tessera_bin --version" \
    "${earlier[@]}"
ratio "$out/startup-env.json"

for store in $stores; do
    export TESSERA_CONFIG_DIR="$work/config-$store"
    export BROWSER_LOG="$work/browser-$store.log"
    echo
    echo "== store: $store"
    "$tessera_bin" --store "$store" login --issuer "$issuer" --client-id tessera-cli \
        --scope "openid offline_access" >/dev/null 2>"$work/login-$store.log" \
        || { cat "$work/login-$store.log" >&2; exit 1; }
    "$tessera_bin" --store "$store" status
    token=$("$tessera_bin" --store "$store" token)
    # The comparison's input: the same token in a small JSON file.
    printf '{"access_token":"%s","token_type":"Bearer","expires_at":%s}\n' \
        "$token" "$(date +%s)" >"$work/token-$store.json"
    [ "$("$print_field" "$work/token-$store.json" access_token)" = "$token" ]
    before_dir=""
    [ -z "$before_bin" ] || before_dir="$(before_session "$store") "
    before=$(counter)

    before "tessera --store $store token" "$before_dir--store $store token"
    hyperfine -N --warmup "$warmup" --runs "$runs" \
        --export-json "$out/startup-$store.json" --export-markdown "$out/startup-$store.md" \
        -n "print_field (JSON file, one field)" "$print_field $work/token-$store.json access_token" \
        -n "tessera --store $store token" "$tessera_bin --store $store token" \
        "${earlier[@]}"

    if [ "$store" = file ]; then
        if command -v keyctl >/dev/null; then
            echo
            echo "== store: file, inside a login session (kernel session keyring: keyctl session -)"
            before "tessera --store file token (key cached in the session keyring)" "$before_dir--store file token"
            keyctl session - hyperfine -N --warmup "$warmup" --runs "$runs" \
                --export-json "$out/startup-file-session.json" \
                --export-markdown "$out/startup-file-session.md" \
                -n "print_field (JSON file, one field)" "$print_field $work/token-$store.json access_token" \
                -n "tessera --store file token (key cached in the session keyring)" \
                "$tessera_bin --store file token" "${earlier[@]}"
            ratio "$out/startup-file-session.json"
        else
            echo "(keyctl not found: the session-keyring row is skipped; apt-get install keyutils)"
        fi
    fi

    after=$(counter)
    [ "$("$tessera_bin" --store "$store" token)" = "$token" ] \
        || { echo "$0: the token changed during the run (a refresh?)" >&2; exit 1; }
    [ "$before" = "$after" ] \
        || { echo "$0: the provider saw $((after - before)) refreshes during the run" >&2; exit 1; }
    ratio "$out/startup-$store.json"
    echo "refresh requests at the provider during the run: $((after - before))"

    if [ "${ANALYSE:-}" = 1 ]; then
        echo "-- where the time goes ($store)"
        if command -v perf >/dev/null; then
            perf stat -r 30 -e task-clock,context-switches,cpu-migrations,page-faults \
                "$tessera_bin" --store "$store" token 2>&1 >/dev/null | sed -n '/Performance/,$p' || true
            perf stat -r 30 -e task-clock,context-switches,cpu-migrations,page-faults \
                "$print_field" "$work/token-$store.json" access_token 2>&1 >/dev/null | sed -n '/Performance/,$p' || true
        fi
        if command -v perf >/dev/null; then
            # Where the CPU time goes: 20 runs sampled, top symbols.
            for _ in $(seq 20); do echo "$tessera_bin --store $store token >/dev/null 2>&1"; done >"$work/runs.sh"
            perf record -q -F 2000 -o "$work/perf-$store.data" -- sh "$work/runs.sh" 2>/dev/null || true
            perf report -q -i "$work/perf-$store.data" --no-children --stdio -g none \
                --sort comm,dso,sym 2>/dev/null | grep -E '^ +[0-9]' | head -n 15 || true
        fi
        if command -v strace >/dev/null; then
            strace -f -c -o "$work/strace-$store.txt" "$tessera_bin" --store "$store" token >/dev/null
            head -n 22 "$work/strace-$store.txt"
            strace -f -c -o "$work/strace-pf.txt" "$print_field" "$work/token-$store.json" access_token >/dev/null
            tail -n 3 "$work/strace-pf.txt"
        fi
        RUST_LOG="tessera=debug,info" "$tessera_bin" --store "$store" token 2>&1 >/dev/null \
            | sed -E 's/\x1b\[[0-9;]*m//g' || true
    fi
done
if [ -z "${OUT:-}" ]; then
    echo
    for f in "$out"/startup-*.md; do cat "$f"; echo; done
fi
