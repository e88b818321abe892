# tessera — one entry point for humans and CI. `make test` is what CI runs.
SHELL := /bin/bash
CARGO ?= cargo
ENGINE_FORBIDDEN := tokio|reqwest|ractor|keyring.*|hyper|mio|axum|async-std|getrandom|rand|wasm-bindgen|web-sys|js-sys
# The wasm-bindgen CLI must be exactly the version host-wasm pins for the crate.
WASM_BINDGEN_VERSION := $(shell sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' host-wasm/Cargo.toml)
# The dated nightly that builds the shipped browser module (std rebuilt; host-wasm/size/release-build.sh).
WASM_NIGHTLY := $(shell sed -n 's/^WASM_NIGHTLY=//p' host-wasm/size/release-build.sh)
CHROMEDRIVER ?= $(or $(shell command -v chromedriver),/usr/bin/chromedriver)
# Chromium leaves scoped_dir.* folders (tens of MB each) in $TMPDIR when it is stopped by
# a test runner; the browser targets give it a TMPDIR of its own, emptied on every run.
BROWSER_TMP := $(CURDIR)/target/browser-tmp

.PHONY: test fmt-check lint cross-check unit specs wasm engine-deps provider-test keyring-test demo bench bless fmt
.PHONY: wasm-tools wasm-nightly wasm-test wasm-size wasm-floor wasm-package wasm-package-test

## Everything CI checks, in order of speed of failure.
test: fmt-check engine-deps lint cross-check unit wasm wasm-test provider-test interop-test keyring-test wasm-package-test extension-test
	@echo "make test: all checks passed"

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## cargo clippy of the CLI, library and engine for x86_64-apple-darwin and
## x86_64-pc-windows-msvc (their keyring stores), from Linux; nothing is linked.
cross-check:
	.ci/cross-check

## Unit, per-state and property tests, and the specs/ corpus (one test per transcript).
unit:
	$(CARGO) test --workspace

specs:
	$(CARGO) test -p tessera-tests --test specs

## The engine must build for the browser at all times.
wasm:
	$(CARGO) build -p tessera-engine --target wasm32-unknown-unknown

## wasm-bindgen-cli (its test runner runs the wasm tests), installed only when the version
## differs from host-wasm's pin: about 4 minutes on 2 cores. Without its default TLS feature
## (ring, rustls): the runner only talks to chromedriver on 127.0.0.1.
wasm-tools:
	@if [ "$$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ] \
	    || ! command -v wasm-bindgen-test-runner >/dev/null; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (about 4 min)"; \
	  $(CARGO) install -q wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --no-default-features; \
	fi

## The pinned nightly with rust-src and the wasm target: the shipped module is built with
## -Zbuild-std and panic=immediate-abort (host-wasm/size/release-build.sh). Tests use stable.
wasm-nightly:
	@sysroot=$$(rustup run $(WASM_NIGHTLY) rustc --print sysroot 2>/dev/null); \
	if [ -z "$$sysroot" ] || [ ! -d "$$sysroot/lib/rustlib/src/rust/library" ] \
	    || [ ! -d "$$sysroot/lib/rustlib/wasm32-unknown-unknown" ]; then \
	  rustup toolchain install $(WASM_NIGHTLY) --profile minimal --component rust-src \
	    --target wasm32-unknown-unknown; \
	fi

## The specs/ corpus under WebAssembly — node, a headless Chromium page and a Chromium
## service worker — each transcript's effects compared byte for byte with the native
## replay (host-wasm/tests/). Chromium: apt-get install chromium chromium-driver.
wasm-test: wasm-tools
	@[ -x "$(CHROMEDRIVER)" ] || { echo "wasm-test needs chromium and chromium-driver (apt-get install -y chromium chromium-driver)"; exit 1; }
	$(CARGO) clippy -p tessera-wasm --all-targets --target wasm32-unknown-unknown -- -D warnings
	rm -rf $(BROWSER_TMP) && mkdir -p $(BROWSER_TMP)
	TMPDIR=$(BROWSER_TMP) CHROMEDRIVER=$(CHROMEDRIVER) TESSERA_SPECS_COUNT=$$(find specs -name '*.toml' | wc -l) \
	  $(CARGO) test -p tessera-wasm --target wasm32-unknown-unknown -- --nocapture

## Size of the browser build next to oauth4webapi (BENCHMARKS.md); not part of `test`.
wasm-size: wasm-tools wasm-nightly
	host-wasm/size/measure.sh

## The smallest the npm package's module could get with whole dependencies cut out: a
## floor for issue 17 (host-wasm/size/floor.sh; BENCHMARKS.md, docs/adr/019). Not in `test`.
wasm-floor: wasm-tools wasm-nightly
	host-wasm/size/floor.sh

## The npm package (host-wasm/pkg): wasm-release build, wasm-bindgen, wasm-opt, and its
## TypeScript declarations checked by tsc --strict (host-wasm/npm/build.sh).
wasm-package: wasm-tools wasm-nightly
	host-wasm/npm/build.sh

## The package's Session API in node against the local authorization server: sign-in,
## single-flight refresh, restart from storage, logout, bad input.
wasm-package-test: wasm-package
	cd tests/provider && npm ci --no-audit --no-fund --loglevel=error
	cd host-wasm/npm && node --test test/session.test.mjs

## The engine's normal dependency tree (native and wasm) has no I/O or randomness crates.
engine-deps:
	@for target in "" "--target wasm32-unknown-unknown"; do \
	  bad=$$($(CARGO) tree -p tessera-engine -e normal --prefix none $$target | awk '{print $$1}' \
	        | grep -xE '$(ENGINE_FORBIDDEN)' | sort -u | tr '\n' ' '); \
	  if [ -n "$$bad" ]; then echo "engine depends on forbidden crates ($${target:-native}): $$bad"; exit 1; fi; \
	done; echo "engine dependency tree: no I/O, runtime or RNG crates"

## The local authorization server used by end-to-end tests, checked on its own.
provider-test:
	cd tests/provider && npm ci --no-audit --no-fund --loglevel=error && node --test

## The end-to-end scenario against two more authorization servers (tests/e2e/servers,
## docs/interop.md): django-oauth-toolkit from the virtualenv target/interop-venv and
## Debian's glewlwyd, both installed by .ci/run. Ignored by a plain `cargo test`.
.PHONY: interop-test
## The second and third authorization servers (tests/e2e/servers, docs/interop.md).
interop-test:
	$(CARGO) test -p tessera-tests --test e2e -- --ignored servers::

## The keyring store against a real Secret Service (a private D-Bus session and
## gnome-keyring, started for the tests: needs the dbus and gnome-keyring packages).
keyring-test:
	# --workspace keeps the features of `make unit`, so nothing is rebuilt.
	host-native/tests/with-secret-service.sh $(CARGO) test --workspace --test store

## The whole cycle against a local authorization server, no human input.
demo:
	bash tests/demo.sh

bench:
	$(CARGO) bench -p tessera-tests --bench engine

## tessera serve under load (issue 14, BENCHMARKS.md): cached /token next to a trivial axum
## route, 1000 callers on an expired token (local provider, needs node), batch refresh of
## 10 000 users and memory per idle session (100 000 imported). About 3 minutes.
.PHONY: bench-serve
bench-serve:
	[ -d tests/provider/node_modules ] || (cd tests/provider && npm ci --no-audit --no-fund --loglevel=error)
	$(CARGO) bench -p tessera-serve --bench serve_load

## tessera serve on PostgreSQL and on SQLite side by side, in one run (BENCHMARKS.md):
## cached /token next to the floor, and the 1000-caller storm, on both databases in turns
## (a real PostgreSQL started in a temp dir; needs node). About 4 minutes.
.PHONY: bench-serve-pg
bench-serve-pg:
	[ -d tests/provider/node_modules ] || (cd tests/provider && npm ci --no-audit --no-fund --loglevel=error)
	SERVE_BENCH_PARTS=cached,storm SERVE_BENCH_DATABASES=sqlite,postgres SERVE_BENCH_ROUNDS=$${SERVE_BENCH_ROUNDS:-3} $(CARGO) bench -p tessera-serve --bench serve_load

## tessera serve on PostgreSQL: batch refresh of 10 000 users on 1 replica, then 3 (a real
## PostgreSQL started in a temp dir, a counting stub token endpoint; BENCHMARKS.md).
.PHONY: bench-replicas
bench-replicas:
	$(CARGO) test -p tessera-tests --test e2e -- --ignored replicas::bench_ --nocapture

## Rewrite every transcript's expectations with what the engine does now (review the diff!).
bless:
	TESSERA_BLESS=1 $(CARGO) test -p tessera-tests --test specs

fmt:
	$(CARGO) fmt --all

## The example MV3 extension (host-wasm/examples/extension) loaded unpacked into headless
## Chromium and driven against the local provider (host-wasm/e2e, about 30 s). Needs
## Debian's chromium: playwright-core drives /usr/bin/chromium and downloads no browser.
.PHONY: extension-package extension-test wasm-coldstart
## The example MV3 extension (host-wasm/examples/extension) with the package copied in.
extension-package: wasm-package
	rm -rf host-wasm/examples/extension/pkg
	cp -R host-wasm/pkg host-wasm/examples/extension/pkg

## The extension in headless Chromium (playwright-core on /usr/bin/chromium, nothing
## downloaded) against the local provider: sign-in with launchWebAuthFlow, API call with
## 401 retry, worker restart, one refresh for racing callers after expiry, sign-out.
## test/coldstart.test.mjs also times the first getAccessToken() after a service-worker cold
## start against oauth4webapi (bundled with host-wasm/size's esbuild; BENCHMARKS.md).
extension-test: extension-package
	@[ -x /usr/bin/chromium ] || { echo "extension-test needs chromium (apt-get install -y chromium)"; exit 1; }
	[ -d tests/provider/node_modules ] || (cd tests/provider && npm ci --no-audit --no-fund --loglevel=error)
	[ -x host-wasm/size/node_modules/.bin/esbuild ] || (cd host-wasm/size && npm ci --no-audit --no-fund --loglevel=error)
	cd host-wasm/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(BROWSER_TMP) && mkdir -p $(BROWSER_TMP)
	cd host-wasm/e2e && TMPDIR=$(BROWSER_TMP) node --test --test-concurrency=1 --test-timeout=120000

## Only the service-worker cold-start comparison (tessera-wasm against oauth4webapi, headless
## Chromium, no network; COLDSTART_ROUNDS cold starts each, default 15).
wasm-coldstart: wasm-package
	[ -x host-wasm/size/node_modules/.bin/esbuild ] || (cd host-wasm/size && npm ci --no-audit --no-fund --loglevel=error)
	cd host-wasm/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(BROWSER_TMP) && mkdir -p $(BROWSER_TMP)
	cd host-wasm/e2e && TMPDIR=$(BROWSER_TMP) node --test --test-timeout=300000 test/coldstart.test.mjs

## Issue 13, the reliability campaign (docs/reliability.md). The bounded versions run in
## `make unit` (tests/fuzz_driver.rs, tests/reliability/, the hostile-input table check);
## these are the long runs, one target each.
.PHONY: fuzz crash-cycles reuse-load
FUZZ_RUNS ?= 10000000
FUZZ_JOBS ?= 2
## The driver fuzz target (tests/fuzz, cargo-fuzz on the pinned nightly, no sanitizer: the
## code under test is safe Rust, debug assertions stay on): FUZZ_RUNS executions over
## FUZZ_JOBS processes at nice 19. Crashes land in tests/fuzz/artifacts/driver; logs in
## target/fuzz-logs (each job's last line: executions, cov, ft).
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	rustup run $(WASM_NIGHTLY) rustc --version >/dev/null 2>&1 || rustup toolchain install $(WASM_NIGHTLY) --profile minimal
	mkdir -p tests/fuzz/corpus/driver target/fuzz-logs
	cd target/fuzz-logs && nice -n 19 cargo +$(WASM_NIGHTLY) fuzz run -s none \
	  --fuzz-dir $(CURDIR)/tests/fuzz driver $(CURDIR)/tests/fuzz/corpus/driver $(CURDIR)/tests/fuzz/regressions -- \
	  -jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS) -runs=$$(( $(FUZZ_RUNS) / $(FUZZ_JOBS) )) \
	  -max_len=512 -timeout=10 -print_final_stats=1
	@for log in target/fuzz-logs/fuzz-*.log; do grep '^#' $$log | tail -1; grep 'stat::' $$log; done

## `tessera token --min-ttl 999999` killed at random moments: CRASH_CYCLES with SIGTERM,
## then as many with SIGKILL (default 500 each; half anywhere in the run, half aimed at the
## 0-60 ms after the provider received the refresh request). Needs node.
# Inside a session keyring (keyutils' keyctl) the session file's key is cached, as in a
# user's login shell: a forced refresh then takes tens of ms instead of a scrypt each.
RELIABILITY_KEYRING := $(if $(shell command -v keyctl),keyctl session - ,)
crash-cycles:
	$(CARGO) test -p tessera-tests --test reliability --no-run
	TESSERA_RELIABILITY_KEY_CACHE_SECS=3600 $(RELIABILITY_KEYRING)$(CARGO) test -p tessera-tests --test reliability -- --ignored --test-threads=1 --nocapture full_crash_cycles

## 16 processes × REUSE_CALLS `tessera token` calls (default 50) on a 2-second access
## token, rotation and reuse detection on: 0 invalid_grant, 0 failures. Needs node.
reuse-load:
	$(CARGO) test -p tessera-tests --test reliability --no-run
	TESSERA_RELIABILITY_KEY_CACHE_SECS=3600 $(RELIABILITY_KEYRING)$(CARGO) test -p tessera-tests --test reliability -- --ignored --nocapture full_reuse_load
