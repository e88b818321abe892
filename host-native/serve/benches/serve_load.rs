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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

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

// ---- child processes ----

/// A process this bench started: killed (by its own id) when dropped.
struct Proc {
    child: Child,
    /// Kept open: the provider and the floor exit when their stdin closes.
    stdin: Option<ChildStdin>,
    /// The `READY` line's JSON.
    ready: Value,
}

impl Proc {
    /// Starts `command` with piped stdin/stdout and waits for its `READY {json}` line.
    fn start(name: &'static str, mut command: Command) -> Proc {
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        // Owned by `Proc` at once, so that a failure below still kills and reaps it.
        let mut process = Proc {
            child,
            stdin: None,
            ready: Value::Null,
        };
        process.stdin = process.child.stdin.take();
        let mut stdout = BufReader::new(process.child.stdout.take().expect("stdout"));
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).expect("read stdout");
            assert!(n > 0, "{name} exited before printing READY");
            if let Some(json) = line.trim().strip_prefix("READY ") {
                process.ready = serde_json::from_str(json).expect("READY json");
                // Drain the rest of stdout so the child never blocks on it.
                std::thread::spawn(move || {
                    let mut sink = Vec::new();
                    let _ = stdout.read_to_end(&mut sink);
                });
                return process;
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn addr(&self, key: &str) -> SocketAddr {
        let url = self.ready[key].as_str().expect("url in READY");
        let hostport = url.trim_start_matches("http://").trim_end_matches('/');
        hostport.parse().expect("127.0.0.1:port")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tessera-serve` on a fresh config directory holding `config_toml` (SQLite).
fn start_service(dir: &Path, config_toml: &str) -> Proc {
    start_service_on(dir, config_toml, None)
}

/// Starts `tessera-serve` on a fresh config directory holding `config_toml`, on
/// PostgreSQL when `database_url` is given (else SQLite in the directory).
fn start_service_on(dir: &Path, config_toml: &str, database_url: Option<&str>) -> Proc {
    std::fs::create_dir_all(dir).expect("config dir");
    std::fs::write(dir.join("config.toml"), config_toml).expect("config.toml");
    let log = std::fs::File::create(dir.join("serve.log")).expect("log file");
    let binary = std::env::var_os("SERVE_BENCH_SERVE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_tessera-serve")),
        PathBuf::from,
    );
    let mut command = Command::new(binary);
    command
        .args(["--port", "0", "--config-dir"])
        .arg(dir)
        .env("TESSERA_SERVE_TOKEN", BEARER)
        .env_remove("TESSERA_SERVE_KEY")
        .env_remove("TESSERA_CONFIG_DIR")
        .env_remove("RUST_LOG")
        .stderr(Stdio::from(log));
    if let Some(url) = database_url {
        command
            .args(["--database-url", url])
            .env("TESSERA_SERVE_KEY", SEALING_KEY);
    }
    Proc::start("tessera-serve", command)
}

/// `/proc/PID/status` fields in kB: VmRSS, VmHWM, Threads.
fn proc_status(pid: u32) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("Threads:"))
}

/// CPU time of a process so far: (user, system).
fn cpu_time(pid: u32) -> (Duration, Duration) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 14th field
    // of the line, stime the 15th, in clock ticks (USER_HZ, 100 on Linux).
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        let n = fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        Duration::from_millis(n * 10)
    };
    (ticks(11), ticks(12))
}

// ---- PostgreSQL (SERVE_BENCH_DATABASES=sqlite,postgres) ----

/// A PostgreSQL server from Debian's packages in a temporary directory (`initdb`,
/// `pg_ctl` on a free loopback port; as root, run as the `postgres` user), stopped when
/// dropped. The same set-up as the e2e tests' (tests/e2e/pg.rs).
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    fn start() -> Postgres {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (apt-get install postgresql)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("pg_ctl").exists())
            .collect();
        versions.sort();
        let bin = versions.pop().expect("pg_ctl under /usr/lib/postgresql");
        let dir = tempfile::tempdir().expect("temp dir");
        let as_postgres = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = Postgres {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // Durable commits (fsync on), unlike the tests: a refresh's save costs what it
        // would in production on this disk.
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            pg.dir.path().display()
        );
        let log = pg.dir.path().join("server.log").display().to_string();
        pg.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            output.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A fresh database; its URL.
    fn database(&self, name: &str) -> String {
        let port = self.port.to_string();
        self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-qAt",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ],
        );
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn version(&self) -> String {
        self.command("postgres")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

// ---- HTTP client (hyper, one connection per task) ----

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

fn request(
    method: Method,
    host: &HeaderValue,
    path: &str,
    body: Option<String>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host.clone())
        .header(header::AUTHORIZATION, format!("Bearer {BEARER}"));
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request")
}

async fn send(sender: &mut Sender, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body)
}

/// One request on a fresh connection, answered 2xx with JSON.
async fn call(addr: SocketAddr, method: Method, path: &str, body: Option<Value>) -> Value {
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    let mut sender = connect(addr).await;
    let (status, bytes) = send(
        &mut sender,
        request(method.clone(), &host, path, body.map(|b| b.to_string())),
    )
    .await;
    assert!(
        status.is_success(),
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

// ---- the floor (its own process) ----

async fn floor_token(headers: HeaderMap) -> axum::response::Response {
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    match offered {
        Some(token) if bool::from(token.as_bytes().ct_eq(BEARER.as_bytes())) => {
            ([(header::CONTENT_TYPE, "application/json")], FLOOR_BODY).into_response()
        }
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

fn run_floor() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        println!("READY {}", json!({ "url": url }));
        std::io::stdout().flush().expect("flush");
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            std::process::exit(0);
        });
        let app = Router::new().route("/token/test", get(floor_token));
        axum::serve(listener, app).await.expect("serve");
    });
}

// ---- the stub token endpoint (in this process) ----

async fn stub_token(
    axum::extract::State(count): axum::extract::State<Arc<AtomicU64>>,
    body: String,
) -> axum::response::Response {
    if !body.split('&').any(|p| p == "grant_type=refresh_token") {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":"unsupported_grant_type"}"#,
        )
            .into_response();
    }
    let n = count.fetch_add(1, Ordering::Relaxed);
    let answer = json!({
        "access_token": format!("stub-access-{n:08}-0123456789abcdef0123456789abcdef"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": format!("stub-refresh-{n:08}-0123456789abcdef0123456789abcdef"),
        "scope": "openid offline_access",
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        answer.to_string(),
    )
        .into_response()
}

async fn start_stub() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/token", post(stub_token))
        .with_state(count.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, count)
}

fn stub_profile(stub: SocketAddr) -> String {
    format!(
        r#"[profiles.test]
client_id = "tessera-cli"
scopes = ["openid", "offline_access"]
discovery = false
endpoints = {{ token = "http://{stub}/token", authorization = "http://{stub}/authorize" }}
"#
    )
}

// ---- part 1: cached tokens under load ----

struct Load {
    requests: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    secs: f64,
    /// The server's CPU time during the measured window: (user, system).
    server_cpu: (Duration, Duration),
}

impl Load {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// `connections` tasks, each on its own keep-alive connection, sending `path` back to
/// back for `warmup + duration`; only requests started after the warm-up count.
async fn load(
    addr: SocketAddr,
    pid: u32,
    path: &'static str,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Load {
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(addr).await);
    }
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let cpu_probe = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = cpu_time(pid);
        tokio::time::sleep_until(end.into()).await;
        let after = cpu_time(pid);
        (
            after.0.saturating_sub(before.0),
            after.1.saturating_sub(before.1),
        )
    });
    let mut tasks = tokio::task::JoinSet::new();
    for mut sender in senders {
        let host = host.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let (mut ok, mut errors) = (0u64, 0u64);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let (status, body) =
                    send(&mut sender, request(Method::GET, &host, path, None)).await;
                let took = sent.elapsed();
                if sent < measure_from {
                    continue;
                }
                if status == StatusCode::OK && body.len() > 100 {
                    ok += 1;
                    latencies.push(took.as_micros().min(u128::from(u32::MAX)) as u32);
                } else {
                    errors += 1;
                }
            }
            (ok, errors, latencies)
        });
    }
    let (mut requests, mut errors, mut latencies_us) = (0, 0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (ok, failed, latencies) = done.expect("load task");
        requests += ok;
        errors += failed;
        latencies_us.extend(latencies);
    }
    latencies_us.sort_unstable();
    Load {
        requests,
        errors,
        latencies_us,
        secs: duration.as_secs_f64(),
        server_cpu: cpu_probe.await.expect("cpu probe"),
    }
}

fn print_load(label: &str, load: &Load) {
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / load.requests.max(1) as f64;
    let (user, system) = load.server_cpu;
    println!(
        "  {label:<8} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  errors {}  server CPU {:.1} s = {:.1} µs/request ({:.1} user + {:.1} system)",
        load.rps(),
        percentile(&load.latencies_us, 0.50),
        percentile(&load.latencies_us, 0.99),
        percentile(&load.latencies_us, 1.0),
        load.errors,
        (user + system).as_secs_f64(),
        per_request(user + system),
        per_request(user),
        per_request(system),
    );
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

async fn part_cached(backends: &[Backend<'_>], floor: &Proc, summary: &mut [Summary]) {
    let connections = env_or("SERVE_BENCH_CONNECTIONS", 64usize);
    let secs = env_or("SERVE_BENCH_SECS", 10u64);
    let warmup = Duration::from_secs(env_or("SERVE_BENCH_WARMUP_SECS", 2u64));
    let rounds = env_or("SERVE_BENCH_ROUNDS", 5usize);
    for backend in backends {
        let addr = backend.service.addr("url");
        call(
            addr,
            Method::PUT,
            "/users/u/credentials/test",
            Some(json!({
                "access_token": CACHED_TOKEN,
                "refresh_token": "not-used-by-this-part",
                "expires_at": now_secs() + 7200,
            })),
        )
        .await;
        let first = call(addr, Method::GET, "/token/test?user=u", None).await;
        assert_eq!(first["access_token"], CACHED_TOKEN, "{first}");
        assert_eq!(first["source"], "oauth", "{first}");
        let floor_first = serde_json::from_str::<Value>(FLOOR_BODY).expect("floor body");
        assert_eq!(
            floor_first.as_object().map(|o| o.len()),
            first.as_object().map(|o| o.len()),
            "the floor answers the same fields"
        );
    }
    let labels: Vec<&str> = backends.iter().map(|b| b.label).collect();
    println!(
        "\n## 1. Cached GET /token/test?user=u: {connections} keep-alive connections, {}s warm-up + {secs}s per run, {rounds} rounds (floor, then the service on {}, interleaved)",
        warmup.as_secs(),
        labels.join(", then ")
    );
    for round in 1..=rounds {
        println!("round {round}");
        let floor_load = load(
            floor.addr("url"),
            floor.pid(),
            "/token/test",
            connections,
            warmup,
            Duration::from_secs(secs),
        )
        .await;
        print_load("floor", &floor_load);
        for (backend, summary) in backends.iter().zip(summary.iter_mut()) {
            let service_load = load(
                backend.service.addr("url"),
                backend.service.pid(),
                "/token/test?user=u",
                connections,
                warmup,
                Duration::from_secs(secs),
            )
            .await;
            print_load(backend.label, &service_load);
            let ratio = service_load.rps() / floor_load.rps();
            println!(
                "  {}/floor: {ratio:.2}× req/s (target ≥ 0.70×: {})",
                backend.label,
                if ratio >= 0.7 { "met" } else { "MISSED" }
            );
            summary.cached_rps.push(service_load.rps());
            summary
                .cached_p99_ms
                .push(percentile(&service_load.latencies_us, 0.99));
            summary.cached_ratio.push(ratio);
        }
    }
    for (backend, summary) in backends.iter().zip(summary.iter()) {
        let mut ratios = summary.cached_ratio.clone();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{}: ratio range {:.2}–{:.2}×, median {:.2}×",
            backend.label,
            ratios[0],
            ratios[ratios.len() - 1],
            ratios[ratios.len() / 2]
        );
    }
}

// ---- part 2: 1000 requests on an expired token ----

async fn provider_counters(provider: &str, http: &reqwest::Client) -> Value {
    http.get(format!("{provider}/test/counters"))
        .send()
        .await
        .expect("counters")
        .json()
        .await
        .expect("counters json")
}

/// The service's `tessera_refreshes_total{profile="test"}`.
async fn refreshes_metric(http: &reqwest::Client, base: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .bearer_auth(BEARER)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_refreshes_total{profile=\"test\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn part_storm(backends: &[Backend<'_>], provider: &str, summary: &mut [Summary]) {
    let callers = env_or("SERVE_BENCH_STORM", 1000usize);
    let rounds = env_or("SERVE_BENCH_STORM_ROUNDS", 3usize);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(20))
        .build()
        .expect("reqwest");
    for backend in backends {
        let base = format!("http://{}", backend.service.addr("url"));
        // Sign in through the service: its start URL, then the provider's redirects (the
        // provider approves by itself) back to the service's callback.
        let start: Value = http
            .get(format!("{base}/auth/test/start?user=storm"))
            .bearer_auth(BEARER)
            .send()
            .await
            .expect("start")
            .json()
            .await
            .expect("start json");
        let url = start["authorization_url"]
            .as_str()
            .expect("authorization_url");
        let landed = http.get(url).send().await.expect("sign-in redirects");
        assert!(
            landed.status().is_success() && landed.url().path() == "/auth/test/callback",
            "sign-in ended at {} with {}",
            landed.url(),
            landed.status()
        );
    }
    let labels: Vec<&str> = backends.iter().map(|b| b.label).collect();
    println!(
        "\n## 2. {callers} concurrent GET /token/test?user=storm on an expired token ({rounds} rounds on {}, interleaved; local oidc-provider)",
        labels.join(", ")
    );
    for round in 1..=rounds {
        for (backend, summary) in backends.iter().zip(summary.iter_mut()) {
            storm_round(backend, provider, &http, callers, round, summary).await;
        }
    }
}

/// One storm: the user's tokens re-imported as expired, then `callers` requests at once.
async fn storm_round(
    backend: &Backend<'_>,
    provider: &str,
    http: &reqwest::Client,
    callers: usize,
    round: usize,
    summary: &mut Summary,
) {
    let service = backend.service;
    let addr = service.addr("url");
    let base = format!("http://{addr}");
    // The session as stored now (valid: the export does not refresh it).
    let exported: Value = http
        .get(format!("{base}/users/storm/credentials/test"))
        .bearer_auth(BEARER)
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("export json");
    let old_access = exported["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let refresh = exported["refresh_token"].as_str().expect("refresh token");

    let counted_before = refreshes_metric(http, &base).await;
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    // Every caller first opens its connection and has one request answered on it
    // (`/healthz`), 50 at a time: a burst of 1000 connects overflows the listen queue
    // (tokio's backlog is 1024) and the retransmissions, 200 ms and more, would be
    // measured instead of the service. Then all are released at once after the import.
    let connected = Arc::new(Barrier::new(callers + 1));
    let barrier = Arc::new(Barrier::new(callers + 1));
    let connecting = Arc::new(tokio::sync::Semaphore::new(50));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (connected, barrier) = (connected.clone(), barrier.clone());
        let (host, connecting) = (host.clone(), connecting.clone());
        tasks.spawn(async move {
            let permit = connecting.acquire_owned().await.expect("semaphore");
            let mut sender = connect(addr).await;
            let (status, _) =
                send(&mut sender, request(Method::GET, &host, "/healthz", None)).await;
            assert_eq!(status, StatusCode::OK, "healthz");
            drop(permit);
            sender.ready().await.expect("ready");
            connected.wait().await;
            barrier.wait().await;
            let sent = Instant::now();
            let (status, body) = send(
                &mut sender,
                request(Method::GET, &host, "/token/test?user=storm", None),
            )
            .await;
            (sent, Instant::now(), status, body)
        });
    }
    connected.wait().await;
    http.post(format!("{provider}/test/counters/reset"))
        .send()
        .await
        .expect("reset counters");
    // Expired ten seconds ago. (The service's background scheduler sees the expired
    // import too and joins the same single flight.)
    http.put(format!("{base}/users/storm/credentials/test"))
        .bearer_auth(BEARER)
        .json(&json!({
            "access_token": old_access,
            "refresh_token": refresh,
            "expires_at": now_secs() - 10,
        }))
        .send()
        .await
        .expect("import")
        .error_for_status()
        .expect("import accepted");
    let released = Instant::now();
    barrier.wait().await;
    let mut latencies = Vec::with_capacity(callers);
    let mut last = released;
    let mut first = None::<Instant>;
    let mut last_sent = released;
    let mut tokens = std::collections::BTreeSet::new();
    let mut failures = 0;
    while let Some(done) = tasks.join_next().await {
        let (sent, answered, status, body) = done.expect("caller");
        last = last.max(answered);
        last_sent = last_sent.max(sent);
        first = Some(first.map_or(answered, |f| f.min(answered)));
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status == StatusCode::OK && answer["source"] == "oauth" {
            tokens.insert(answer["access_token"].as_str().unwrap_or("").to_owned());
            latencies.push((answered - sent).as_micros() as u32);
        } else {
            failures += 1;
            if failures < 4 {
                println!("  failed: {status} {answer}");
            }
        }
    }
    latencies.sort_unstable();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counted = refreshes_metric(http, &base).await - counted_before;
    let counters = provider_counters(provider, http).await;
    let refreshes = &counters["token_requests"]["refresh_token"];
    let got_new = tokens.len() == 1 && !tokens.contains(&old_access);
    println!(
        "  {} round {round}: provider refresh requests {refreshes} (invalid_grant {}), {} of {callers} got a token ({} distinct, new: {got_new}), failures {failures}; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; after the release: last request sent {:.1} ms, first answer {:.1} ms, last answer {:.1} ms; the service's tessera_refreshes_total rose by {counted}",
        backend.label,
        counters["refresh_invalid_grant"],
        latencies.len(),
        tokens.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        ms(last_sent - released),
        ms(first.unwrap_or(released) - released),
        ms(last - released),
    );
    summary.storm_p50_ms.push(percentile(&latencies, 0.5));
    summary.storm_p99_ms.push(percentile(&latencies, 0.99));
    summary
        .storm_refreshes
        .push(refreshes.as_u64().unwrap_or(0));
    assert_eq!(refreshes, 1, "exactly one refresh");
    assert_eq!(failures, 0, "every caller got a token");
    assert!(got_new, "every caller got the same, new token");
}

// ---- part 3: batch refresh, memory ----

/// Imports users `prefix0 … prefix{n-1}` with `concurrency` connections.
async fn import_users(
    addr: SocketAddr,
    prefix: &str,
    n: usize,
    concurrency: usize,
    expires_at: u64,
) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, host, prefix) = (next.clone(), host.clone(), prefix.to_owned());
        tasks.spawn(async move {
            let mut sender = connect(addr).await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    break;
                }
                let body = json!({
                    "access_token": format!("imported-access-{prefix}{i:06}-0123456789abcdef0123456789"),
                    "refresh_token": format!("imported-refresh-{prefix}{i:06}-0123456789abcdef0123456"),
                    "expires_at": expires_at,
                })
                .to_string();
                let path = format!("/users/{prefix}{i}/credentials/test");
                let (status, bytes) =
                    send(&mut sender, request(Method::PUT, &host, &path, Some(body))).await;
                assert!(
                    status.is_success(),
                    "import {path}: {status} {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("import task");
    }
    started.elapsed()
}

async fn part_batch(dir: &Path, stub: SocketAddr, stub_count: &AtomicU64) {
    let users = env_or("SERVE_BENCH_BATCH", 10_000usize);
    let concurrency = env_or("SERVE_BENCH_IMPORT_CONCURRENCY", 32usize);
    let service = start_service(dir, &stub_profile(stub));
    let addr = service.addr("url");
    println!(
        "\n## 3a. Batch refresh of {users} imported users (stub token endpoint in the bench process)"
    );
    // Expiring in 30 min: outside the 5 min buffer (the scheduler leaves them alone),
    // inside the batch's 60 min.
    let took = import_users(addr, "batch", users, concurrency, now_secs() + 1800).await;
    println!(
        "  import: {users} users in {:.1} s ({:.0} imports/s, {concurrency} in flight)",
        took.as_secs_f64(),
        users as f64 / took.as_secs_f64()
    );
    stub_count.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let answer = call(addr, Method::POST, "/refresh?expiring_within=3600", None).await;
    let wall = started.elapsed();
    let refreshed = answer["refreshed"].as_u64().unwrap_or(0);
    println!(
        "  POST /refresh?expiring_within=3600: {answer}\n  wall {:.2} s, {:.0} refreshes/s, stub saw {} refresh requests",
        wall.as_secs_f64(),
        refreshed as f64 / wall.as_secs_f64(),
        stub_count.load(Ordering::Relaxed)
    );
    let (rss, hwm, threads) = proc_status(service.pid());
    println!("  service after the batch: VmRSS {rss} kB, VmHWM {hwm} kB, {threads} threads");
    assert_eq!(refreshed as usize, users, "every user refreshed");
}

async fn part_memory(dir: &Path, stub: SocketAddr) {
    let users = env_or("SERVE_BENCH_IDLE", 100_000usize);
    let concurrency = env_or("SERVE_BENCH_IMPORT_CONCURRENCY", 32usize);
    let service = start_service(dir, &stub_profile(stub));
    let addr = service.addr("url");
    let pid = service.pid();
    println!("\n## 3b. Memory: {users} idle users imported into a fresh service");
    let idle_until = now_secs() + 86_400;
    // Warm-up with the same concurrency: runtime and blocking threads, SQLite's cache.
    let warm = 1000;
    import_users(addr, "warm", warm, concurrency, idle_until).await;
    let (rss0, hwm0, threads0) = proc_status(pid);
    println!(
        "  baseline (after {warm} warm-up imports): VmRSS {rss0} kB, VmHWM {hwm0} kB, {threads0} threads"
    );
    let took = import_users(addr, "idle", users, concurrency, idle_until).await;
    let (rss1, hwm1, threads1) = proc_status(pid);
    let db = std::fs::metadata(dir.join("serve.db")).map_or(0, |m| m.len());
    println!(
        "  import: {users} users in {:.1} s ({:.0} imports/s)",
        took.as_secs_f64(),
        users as f64 / took.as_secs_f64()
    );
    println!(
        "  after: VmRSS {rss1} kB, VmHWM {hwm1} kB, {threads1} threads; serve.db {:.1} MB",
        db as f64 / 1e6
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss2, hwm2, threads2) = proc_status(pid);
    println!("  2 s later: VmRSS {rss2} kB, VmHWM {hwm2} kB, {threads2} threads");
    let per = |after: u64, before: u64| (after.saturating_sub(before) * 1024) as f64 / users as f64;
    println!(
        "  per idle session: {:.0} B by VmRSS, {:.0} B by VmHWM (target ≤ 2048 B: {})",
        per(rss1, rss0),
        per(hwm1, hwm0),
        if per(rss1, rss0) <= 2048.0 {
            "met"
        } else {
            "MISSED"
        }
    );
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
