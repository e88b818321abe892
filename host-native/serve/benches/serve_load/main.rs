//! `tessera serve` under load (issue 14), three measurements in one run:
//!
//! 1. **Cached token.** `GET /token/test?user=u` on 64 keep-alive connections for a fixed
//!    time, against the *floor*: a trivial axum route in its own process (this binary,
//!    re-run with `SERVE_BENCH_ROLE=floor`: the same multi-thread tokio runtime as
//!    `tessera-serve`, one route `GET /token/test` that checks the bearer token in
//!    constant time and answers a static JSON body of the same shape and size). Both are
//!    driven by the same load generator (this process), interleaved round by round.
//!    Target: ≥ 0.7× the floor's requests/s.
//! 2. **Refresh storm.** A user signed in through the service against the local
//!    oidc-provider (`tests/provider`), its tokens re-imported as expired, then 1000
//!    requests on 1000 open connections released at once. The provider must count
//!    exactly one refresh and every request must get the new token.
//! 3. **Batch refresh and memory.** 10 000 imported users refreshed by
//!    `POST /refresh?expiring_within=3600` against a stub token endpoint in this process
//!    (so the provider is not the bottleneck); then, in a fresh service, the resident set
//!    before and after importing 100 000 idle users. Target: ≤ 2 KB per idle session.
//!
//! The service under test is the real `tessera-serve` binary (built by `cargo bench` with
//! the bench profile, which inherits `release`), one process per part. Everything binds
//! and calls 127.0.0.1 only.
//!
//! ```sh
//! make bench-serve          # = cargo bench -p tessera-serve --bench serve_load
//! ```
//!
//! Knobs (environment): `SERVE_BENCH_SECS` (10) and `SERVE_BENCH_WARMUP_SECS` (2) per load
//! run, `SERVE_BENCH_ROUNDS` (5) floor/service pairs, `SERVE_BENCH_CONNECTIONS` (64),
//! `SERVE_BENCH_STORM` (1000) and `SERVE_BENCH_STORM_ROUNDS` (3), `SERVE_BENCH_BATCH`
//! (10 000), `SERVE_BENCH_IDLE` (100 000), `SERVE_BENCH_IMPORT_CONCURRENCY` (32),
//! `SERVE_BENCH_PARTS` (`cached,storm,batch,memory`), `SERVE_BENCH_SERVE_BIN` (another
//! `tessera-serve` binary to measure, e.g. an earlier build), `SERVE_BENCH_DATABASES`
//! (`sqlite`; `sqlite,postgres` runs parts 1 and 2 on both, side by side in one run: a
//! PostgreSQL started in a temporary directory as the e2e tests do, one service per
//! database running throughout, measured in turns round by round — `make bench-serve-pg`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

mod batch;
mod cached;
mod client;
mod floor;
mod load;
mod postgres;
mod procs;
mod storm;
mod stub;

use batch::{part_batch, part_memory};
use cached::part_cached;
use floor::run_floor;
use postgres::Postgres;
use procs::{Proc, start_service, start_service_on};
use storm::part_storm;
use stub::start_stub;

/// The service's (and the floor's) bearer token.
const BEARER: &str = "serve-bench-bearer-token-0123456789";
/// The access token user `u` holds in part 1, and the floor's static answer of the same
/// shape and size as the service's.
const CACHED_TOKEN: &str = "cached-access-token-for-the-serve-load-benchmark-0123456789abcdef";
const FLOOR_BODY: &str = r#"{"access_token":"cached-access-token-for-the-serve-load-benchmark-0123456789abcdef","expires_at":1900000000,"expires_in":7199,"source":"oauth","token_type":"Bearer"}"#;

/// The sealing key of the services on PostgreSQL (base64 of 32 bytes).
const SEALING_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One service under test: its database's name and its process.
struct Backend<'a> {
    label: &'static str,
    service: &'a Proc,
}

/// What the side-by-side summary prints per database.
#[derive(Default)]
struct Summary {
    cached_rps: Vec<f64>,
    cached_p99_ms: Vec<f64>,
    cached_ratio: Vec<f64>,
    storm_p50_ms: Vec<f64>,
    storm_p99_ms: Vec<f64>,
    storm_refreshes: Vec<u64>,
}

fn range(values: &[f64], decimals: usize) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.decimals$}–{hi:.decimals$}")
}

fn machine() {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    println!(
        "machine: {cpus} CPUs ({model}), load average {}",
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn main() {
    if std::env::var("SERVE_BENCH_ROLE").as_deref() == Ok("floor") {
        run_floor();
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let parts =
        std::env::var("SERVE_BENCH_PARTS").unwrap_or_else(|_| "cached,storm,batch,memory".into());
    let wants = |part: &str| parts.split(',').any(|p| p.trim() == part);
    machine();
    let scratch = tempfile::tempdir().expect("temp dir");
    // The bench's own runtime: load generator, stub endpoint.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    if wants("cached") || wants("storm") {
        let databases = std::env::var("SERVE_BENCH_DATABASES").unwrap_or_else(|_| "sqlite".into());
        let postgres = databases
            .split(',')
            .any(|d| d.trim() == "postgres")
            .then(Postgres::start);
        if let Some(pg) = &postgres {
            println!("PostgreSQL: {}", pg.version());
        }
        let root = workspace_root();
        let mut provider_command = Command::new("node");
        provider_command
            .arg(root.join("tests/provider/server.mjs"))
            .env("ACCESS_TOKEN_TTL", "3600")
            .stderr(Stdio::null());
        let provider = Proc::start("oidc-provider", provider_command);
        let issuer = provider.ready["issuer"]
            .as_str()
            .expect("issuer")
            .to_owned();
        let config = format!(
            "[profiles.test]\nissuer = \"{issuer}\"\nclient_id = \"tessera-cli\"\nscopes = [\"openid\", \"offline_access\"]\n"
        );
        // One service per database, all running throughout; measured in turns.
        let mut services: Vec<(&'static str, Proc)> = Vec::new();
        for database in databases.split(',').map(str::trim) {
            match database {
                "sqlite" => {
                    services.push(("sqlite", start_service(&scratch.path().join("a"), &config)))
                }
                "postgres" => {
                    let url = postgres.as_ref().expect("started above").database("bench");
                    services.push((
                        "postgres",
                        start_service_on(&scratch.path().join("a-pg"), &config, Some(&url)),
                    ));
                }
                other => panic!("SERVE_BENCH_DATABASES: unknown database {other:?}"),
            }
        }
        let backends: Vec<Backend> = services
            .iter()
            .map(|(label, service)| Backend { label, service })
            .collect();
        let mut summary: Vec<Summary> = backends.iter().map(|_| Summary::default()).collect();
        if wants("cached") {
            let mut floor_command = Command::new(std::env::current_exe().expect("current exe"));
            floor_command.env("SERVE_BENCH_ROLE", "floor");
            let floor = Proc::start("floor", floor_command);
            runtime.block_on(part_cached(&backends, &floor, &mut summary));
        }
        if wants("storm") {
            runtime.block_on(part_storm(&backends, &issuer, &mut summary));
        }
        println!("\n## Side by side (ranges over the rounds above)");
        println!(
            "| database | cached req/s | cached / floor | cached p99 ms | storm refreshes | storm p50 ms | storm p99 ms |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (backend, summary) in backends.iter().zip(&summary) {
            println!(
                "| {} | {} | {} | {} | {:?} | {} | {} |",
                backend.label,
                range(&summary.cached_rps, 0),
                range(&summary.cached_ratio, 2),
                range(&summary.cached_p99_ms, 2),
                summary.storm_refreshes,
                range(&summary.storm_p50_ms, 1),
                range(&summary.storm_p99_ms, 1),
            );
        }
    }
    if wants("batch") || wants("memory") {
        let (stub, stub_count) = runtime.block_on(start_stub());
        if wants("batch") {
            runtime.block_on(part_batch(&scratch.path().join("b"), stub, &stub_count));
        }
        if wants("memory") {
            runtime.block_on(part_memory(&scratch.path().join("c"), stub));
        }
    }
    machine();
}
