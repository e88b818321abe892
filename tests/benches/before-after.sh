#!/usr/bin/env bash
# The native host's benchmarks for an earlier commit and for the working tree, interleaved
# (before, after, before, after, …) so both see the same machine load, ROUNDS times:
#
#   tests/benches/before-after.sh 18503b0            # ROUNDS=3 by default
#
# Each round runs, for both builds: the cached-token criterion bench (tests/benches/host.rs:
# the floor, Client::access_token(), cached_token(0), yup-oauth2, each against the floor
# measured in the same process), the 1000-caller refresh storm on the memory and file
# stores (tests/benches/refresh_storm.rs, TESSERA_BENCH_ROUNDS=3), and once, at the end,
# `tessera token` start-up with both binaries in the same hyperfine runs
# (tests/benches/startup.sh with TESSERA_BEFORE_BIN). Output: $OUT (default
# target/before-after), one log per bench and build and round; a summary is printed.
#
# The earlier commit is checked out with `git worktree` under target/before-after/tree
# and built into target/before-after/target (a second full release build: ~10 min on
# 2 cores). Only 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
rev=${1:?usage: $0 REV}
rounds=${ROUNDS:-3}
benches=${BENCHES:-host storm startup}   # any of: host storm startup
has() { case " $benches " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
out=${OUT:-$root/target/before-after}
tree=$out/tree
before_target=$out/target
after_target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$out"

if [ ! -d "$tree" ]; then
    git worktree add --detach "$tree" "$rev" >/dev/null
fi
(cd "$tree" && git checkout -q --detach "$rev")

build() { # DIR TARGET
    (cd "$1" && CARGO_TARGET_DIR=$2 cargo bench -q -p tessera-tests --bench host --bench refresh_storm --no-run \
        && CARGO_TARGET_DIR=$2 cargo build -q --release -p tessera --bins \
        && CARGO_TARGET_DIR=$2 cargo build -q --release -p tessera-tests --example print_field)
}
echo "building $rev into $before_target"
build "$tree" "$before_target"
echo "building the working tree into $after_target"
build "$root" "$after_target"

bench_bin() { # TARGET NAME: the newest bench executable of that name
    ls -t "$1"/release/deps/"$2"-* | grep -v '\.d$' | head -n 1
}
(cd tests/provider && { [ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund --loglevel=error; })

for round in $(seq "$rounds"); do
    for side in before after; do
        if [ "$side" = before ]; then target=$before_target; dir=$tree; else target=$after_target; dir=$root; fi
        if has host; then
            echo "== round $round: $side: host (criterion), load $(cut -d' ' -f1 /proc/loadavg)"
            (cd "$dir/tests" && "$(bench_bin "$target" host)" --bench >"$out/host-$side-$round.log" 2>&1)
        fi
        if has storm; then
            echo "== round $round: $side: refresh_storm (memory, file), load $(cut -d' ' -f1 /proc/loadavg)"
            (cd "$dir/tests" && TESSERA_BENCH_ROUNDS=3 TESSERA_BENCH_STORES=memory,file \
                "$(bench_bin "$target" refresh_storm)" --bench >"$out/storm-$side-$round.log" 2>&1)
        fi
    done
done

if has startup; then
    echo "== tessera token start-up, both binaries in each hyperfine run"
    TESSERA_BEFORE_BIN=$before_target/release/tessera OUT=$out/startup \
        tests/benches/startup.sh >"$out/startup.log" 2>&1
fi

echo
echo "== summary (criterion: mean time; ratios are against the floor of the same process)"
for f in $(ls "$out"/host-*.log 2>/dev/null); do
    node -e '
      const text = require("fs").readFileSync(process.argv[1], "utf8");
      const mean = name => {
        const m = text.match(new RegExp(name + "\\s+time:\\s+\\[[^ ]+ [^ ]+ ([0-9.]+) ([nµm]s)"));
        if (!m) return NaN;
        return parseFloat(m[1]) * ({ns: 1, "µs": 1e3, ms: 1e6})[m[2]];
      };
      const floor = mean("floor_arcswap_load_clock_compare");
      const row = n => `${n} ${(mean(n) / floor).toFixed(2)}x`;
      console.log(process.argv[1].split("/").pop(), `floor ${floor.toFixed(1)} ns;`,
        ["tessera_access_token", "tessera_cached_token_sync", "yup_oauth2_token"].map(row).join("; "));
    ' "$f"
done
for f in $(ls "$out"/storm-*.log 2>/dev/null); do
    echo "$(basename "$f"):"; grep -E '^\| (memory|file) ' "$f" || true
done
grep -E 'the minimal binary' "$out/startup.log" 2>/dev/null || true
