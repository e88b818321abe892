//! Native host: 1000 concurrent `Client::access_token()` callers on an expired token,
//! against a loopback token endpoint that answers after 200 ms.
//!
//! Target: exactly one refresh request, and a p99 caller latency of at most 205 ms (the
//! endpoint's 200 ms plus 5 ms). Its comparison, measured in the same run: one direct
//! `reqwest` POST to the same endpoint (the 200 ms delay plus loopback HTTP).
//!
//! ```sh
//! cargo bench -p tessera-tests --bench refresh_storm                 # memory + file store
//! host-native/tests/with-secret-service.sh \
//!     cargo bench -p tessera-tests --bench refresh_storm            # + the keyring store
//! ```
//!
//! `TESSERA_BENCH_ROUNDS` (default 5) rounds per store; `TESSERA_BENCH_CALLERS` (default
//! 1000); `TESSERA_BENCH_STORES` (default `memory,file`, plus `keyring` when run under
//! `with-secret-service.sh`). Each round uses a fresh endpoint, store and client. Every
//! caller waits on one barrier and then calls `access_token()`; its latency runs from its
//! own call to its answer. The token endpoint counts every request; a round with a count
//! other than 1, or a caller error, fails the bench.
//!
//! Stores: `memory` (a `BlockingStore` kept in memory, written here: the host alone),
//! `file` (the encrypted file: the rotated session is persisted before any waiter is
//! answered, under the key derived when the session was loaded, ADR 007), `keyring` (the
//! Secret Service over D-Bus). Stores and clients are dropped wherever the round ends, as
//! in a program (the keyring store used to need keeping until the runtime was gone).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tessera::engine::{
    Config, Endpoints, SESSION_FORMAT_VERSION, Secret, StoredSession, UnixMillis,
};
use tessera::store::{
    BlockingStore, LockGuard, PassphraseSource, RefreshLock, StoreChoice, StoreError, StoreInfo,
    StoreKind, open_store,
};
use tessera::{Client, ClientOptions};
use tokio::net::TcpListener;
use tokio::sync::Barrier;

const CLIENT_ID: &str = "tessera-bench";
const DELAY: Duration = Duration::from_millis(200);
const TARGET_P99: Duration = Duration::from_millis(205);

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- the token endpoint ----

/// What the endpoint saw.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    refresh_grants: AtomicU64,
    /// When the first request arrived.
    first_at: Mutex<Option<Instant>>,
}

/// A loopback token endpoint (hyper 1, HTTP/1.1) that answers every POST after `DELAY`
/// with a new access token and a rotated refresh token.
async fn token_endpoint() -> (SocketAddr, Arc<Counters>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let counters = Arc::new(Counters::default());
    let shared = counters.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let counters = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(request, counters.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, counters, task)
}

async fn answer(
    request: Request<Incoming>,
    counters: Arc<Counters>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = counters.requests.fetch_add(1, Ordering::SeqCst) + 1;
    counters
        .first_at
        .lock()
        .expect("lock")
        .get_or_insert_with(Instant::now);
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if String::from_utf8_lossy(&body).contains("grant_type=refresh_token") {
        counters.refresh_grants.fetch_add(1, Ordering::SeqCst);
    }
    tokio::time::sleep(DELAY).await;
    let json = format!(
        r#"{{"access_token":"new-access-token-{n}","token_type":"Bearer","expires_in":3600,"refresh_token":"rotated-refresh-token-{n}","scope":"offline_access"}}"#
    );
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(json)))
        .expect("response"))
}

// ---- stores ----

/// The session in memory: isolates the host (actor, lock file, HTTP) from storage costs.
struct MemoryStore {
    info: StoreInfo,
    session: Mutex<Option<StoredSession>>,
    /// The refresh lock file's directory and profile, as the file store has them.
    lock_dir: std::path::PathBuf,
    profile: String,
}

impl BlockingStore for MemoryStore {
    fn info(&self) -> &StoreInfo {
        &self.info
    }
    fn load(&self) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.session.lock().expect("lock").clone())
    }
    fn save(&self, session: &StoredSession) -> Result<(), StoreError> {
        *self.session.lock().expect("lock") = Some(session.clone());
        Ok(())
    }
    fn delete(&self) -> Result<(), StoreError> {
        *self.session.lock().expect("lock") = None;
        Ok(())
    }
    fn lock(&self, wait: Duration) -> Result<Option<LockGuard>, StoreError> {
        match RefreshLock::acquire(&self.lock_dir, &self.profile, wait) {
            Ok(guard) => Ok(Some(LockGuard::new(guard))),
            Err(StoreError::LockTimeout { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

fn expired_session(issuer: &str) -> StoredSession {
    let now = now_millis();
    StoredSession {
        version: SESSION_FORMAT_VERSION,
        issuer: Some(issuer.into()),
        client_id: CLIENT_ID.into(),
        access_token: Secret::new("expired-access-token"),
        refresh_token: Some(Secret::new("refresh-token-0")),
        id_token: None,
        obtained_at: UnixMillis(now - 2 * 3600 * 1000),
        expires_at: UnixMillis(now - 3600 * 1000),
        scopes: vec!["offline_access".into()],
        identity: None,
        endpoints: Endpoints::default(),
    }
}

/// The store of `kind` in `dir`, holding an expired session. Blocking (called outside the
/// runtime: the keyring client runs a runtime of its own).
fn prepared_store(kind: &str, dir: &Path, profile: &str, issuer: &str) -> Arc<dyn BlockingStore> {
    let session = expired_session(issuer);
    let fixed = PassphraseSource::Fixed("bench passphrase".into());
    let store: Arc<dyn BlockingStore> = match kind {
        "memory" => Arc::new(MemoryStore {
            info: StoreInfo {
                kind: StoreKind::File,
                location: "memory (bench)".into(),
                fallback_reason: None,
            },
            session: Mutex::new(None),
            lock_dir: dir.to_path_buf(),
            profile: profile.to_owned(),
        }),
        "file" => {
            Arc::from(open_store(StoreChoice::File, dir, profile, fixed).expect("file store"))
        }
        "keyring" => Arc::from(
            open_store(StoreChoice::Keyring, dir, profile, fixed)
                .expect("keyring store (run under host-native/tests/with-secret-service.sh)"),
        ),
        other => panic!("unknown store {other:?}: use memory, file or keyring"),
    };
    store.save(&session).expect("save the expired session");
    store
}

// ---- one round ----

struct Round {
    latencies: Vec<Duration>,
    requests: u64,
    refresh_grants: u64,
    /// From the barrier's release to the refresh request reaching the endpoint.
    request_after_release: Option<Duration>,
    /// From the barrier's release to the last answer.
    wall: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// One storm. `warm`: the client first refreshes once (so its lazily built HTTP client
/// exists), then the callers ask for more lifetime than the new token has left
/// (`access_token_for(3700)`), which takes the same path as an expired token — lock,
/// re-read, one refresh, persist, serve everyone — but without building the HTTP client.
fn round(
    kind: &str,
    n: usize,
    number: usize,
    warm: bool,
    runtime: &tokio::runtime::Runtime,
) -> Round {
    let dir = tempfile::tempdir().expect("temp dir");
    let (addr, counters, server) = runtime.block_on(token_endpoint());
    let issuer = format!("http://{addr}");
    let profile = format!("storm-{}-{number}-{warm}", std::process::id());
    let store = prepared_store(kind, dir.path(), &profile, &issuer);
    let config = Config {
        scopes: vec!["offline_access".into()],
        endpoints: Endpoints {
            token: Some(format!("{issuer}/token")),
            ..Endpoints::default()
        },
        discovery: false,
        ..Config::new(issuer.clone(), CLIENT_ID)
    };
    let options = ClientOptions::new(config, store.clone()).open_browser(false);
    let min_ttl_secs = if warm { 3700 } else { 0 };
    let counted = counters.clone();
    let result = runtime.block_on(async move {
        let barrier = Arc::new(Barrier::new(n + 1));
        // The callers exist, waiting, before the client does: they call the moment it has
        // loaded the expired session.
        let client_cell = Arc::new(tokio::sync::OnceCell::<Client>::new());
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let barrier = barrier.clone();
            let cell = client_cell.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let client = cell.get().expect("client set before release");
                let started = Instant::now();
                let token = client.access_token_for(min_ttl_secs).await;
                (started.elapsed(), token)
            }));
        }
        let client = Client::start(options).await.expect("client starts");
        let mut before = 0;
        if warm {
            client.access_token().await.expect("warm-up refresh");
            before = counted.requests.load(Ordering::SeqCst);
            *counted.first_at.lock().expect("lock") = None;
        }
        let _ = client_cell.set(client.clone());
        let released = Instant::now();
        barrier.wait().await;
        let mut latencies = Vec::with_capacity(n);
        for task in tasks {
            let (latency, token) = task.await.expect("caller task");
            let token = token.unwrap_or_else(|e| panic!("{kind}: a caller failed: {e}"));
            assert!(
                token.access_token.expose().starts_with("new-access-token-"),
                "{kind}: a caller got the expired token"
            );
            latencies.push(latency);
        }
        let wall = released.elapsed();
        client.stop();
        (latencies, wall, released, before)
    });
    let (mut latencies, wall, released, before) = result;
    server.abort();
    latencies.sort();
    let first_at = *counters.first_at.lock().expect("lock");
    drop(store);
    Round {
        latencies,
        requests: counters.requests.load(Ordering::SeqCst) - before,
        refresh_grants: counters.refresh_grants.load(Ordering::SeqCst) - before,
        request_after_release: first_at.map(|at| at.saturating_duration_since(released)),
        wall,
    }
}

/// One direct POST to a fresh endpoint of the same kind: the comparison. Also returns how
/// long building the HTTP client took (built as the host builds its own, lazily, on its
/// first request), which the direct POST does not count.
fn direct_post(runtime: &tokio::runtime::Runtime) -> (Duration, Duration) {
    runtime.block_on(async {
        let (addr, _counters, server) = token_endpoint().await;
        let building = Instant::now();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("tessera-bench")
            .build()
            .expect("reqwest client");
        let build = building.elapsed();
        let started = Instant::now();
        let response = http
            .post(format!("http://{addr}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=refresh_token&refresh_token=x&client_id=tessera-bench")
            .send()
            .await
            .expect("direct POST");
        let _ = response.bytes().await.expect("body");
        let elapsed = started.elapsed();
        server.abort();
        (elapsed, build)
    })
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter in this binary.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rounds: usize = env_or("TESSERA_BENCH_ROUNDS", 5);
    let callers: usize = env_or("TESSERA_BENCH_CALLERS", 1000);
    let in_keyring_wrapper = std::env::var_os("TESSERA_TEST_REQUIRE_KEYRING").is_some();
    let stores: String = env_or(
        "TESSERA_BENCH_STORES",
        if in_keyring_wrapper {
            "memory,file,keyring"
        } else {
            "memory,file"
        }
        .to_owned(),
    );
    // As the CLI: two workers (the machine has two cores).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    println!(
        "refresh storm: {callers} concurrent access_token() callers on an expired token, \
         token endpoint on 127.0.0.1 answering after {} ms; {rounds} rounds per store",
        DELAY.as_millis()
    );
    println!();
    println!(
        "| store | round | refresh requests | p50 ms | p99 ms | max ms | min ms | request sent after release ms | all answered after release ms | direct POST ms | reqwest client build ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    let mut summary = Vec::new();
    let kinds: Vec<&str> = stores
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let variants = kinds
        .iter()
        .map(|kind| (*kind, false))
        .chain(kinds.iter().map(|kind| (*kind, true)));
    for (kind, warm) in variants {
        let label = if warm {
            format!("{kind}, warm HTTP client")
        } else {
            kind.to_owned()
        };
        let mut p99s = Vec::new();
        let mut p50s = Vec::new();
        let mut maxes = Vec::new();
        let mut floors = Vec::new();
        let mut counts = Vec::new();
        for number in 1..=rounds {
            let (floor, client_build) = direct_post(&runtime);
            let r = round(kind, callers, number, warm, &runtime);
            let (p50, p99) = (
                percentile(&r.latencies, 50.0),
                percentile(&r.latencies, 99.0),
            );
            let (min, max) = (r.latencies[0], *r.latencies.last().expect("callers"));
            println!(
                "| {label} | {number} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.requests,
                ms(p50),
                ms(p99),
                ms(max),
                ms(min),
                r.request_after_release.map_or("—".into(), ms),
                ms(r.wall),
                ms(floor),
                ms(client_build),
            );
            if r.requests != 1 || r.refresh_grants != 1 {
                eprintln!(
                    "{label} round {number}: {} requests ({} refresh grants), expected exactly 1",
                    r.requests, r.refresh_grants
                );
                failed = true;
            }
            p50s.push(p50);
            p99s.push(p99);
            maxes.push(max);
            floors.push(floor);
            counts.push(r.requests.to_string());
        }
        summary.push((label, counts.join(", "), p50s, p99s, maxes, floors));
    }
    println!();
    println!(
        "| store | refresh requests per round | p50 ms (min–max over rounds) | p99 ms (min–max) | max ms (min–max) | direct POST ms (min–max) | p99 ≤ {} ms |",
        TARGET_P99.as_millis()
    );
    println!("|---|---|---|---|---|---|---|");
    for (kind, counts, p50s, p99s, maxes, floors) in &summary {
        let span = |v: &[Duration]| {
            let lo = v.iter().min().copied().unwrap_or_default();
            let hi = v.iter().max().copied().unwrap_or_default();
            format!("{}–{}", ms(lo), ms(hi))
        };
        let met = p99s.iter().all(|p| *p <= TARGET_P99);
        println!(
            "| {kind} | {counts} | {} | {} | {} | {} | {} |",
            span(p50s),
            span(p99s),
            span(maxes),
            span(floors),
            if met { "met" } else { "missed" }
        );
    }
    drop(runtime);
    if failed {
        eprintln!("refresh storm: a round did not make exactly one refresh request");
        std::process::exit(1);
    }
}
