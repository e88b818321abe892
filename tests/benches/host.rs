//! Native host: the cached-token fast path of `Client::access_token()`, side by side with
//! its floor (an `ArcSwapOption` load, a clock read and an expiry comparison, written
//! here) and with yup-oauth2's `Authenticator::token()` on a cached token.
//!
//! Run with `cargo bench -p tessera-tests --bench host`. No network: the tessera client is
//! started on an encrypted session file (written with the store's own `save`) holding a
//! token valid for an hour; yup-oauth2 is built with its own disk storage, pre-filled with
//! a token valid for an hour (its documented file format, loaded into memory at build).
//!
//! The futures are polled once with a no-op waker: a cached token must be ready on the
//! first poll (this is asserted), and polling directly keeps executor overhead out of all
//! measurements alike. Two shapes: the library's future handed to `poll_once` by value
//! (`tessera_access_token`, `yup_oauth2_token`), and awaited inside an async block, as a
//! program's `async fn` does (`…_awaited`).

use std::future::Future;
use std::hint::black_box;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use criterion::{Criterion, criterion_group, criterion_main};
use tessera::engine::{
    Config, Endpoints, SESSION_FORMAT_VERSION, Secret, StoredSession, UnixMillis,
};
use tessera::store::{PassphraseSource, StoreChoice, open_store};
use tessera::{Client, ClientOptions};

const ISSUER: &str = "https://op.example";
const CLIENT_ID: &str = "tessera-bench";
/// A realistic size: opaque tokens of big providers are 100–200 characters.
const ACCESS_TOKEN_LEN: usize = 160;

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Polls a future once; the cached paths must never wait.
fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a cached token must be ready on the first poll"),
    }
}

fn session(now: u64) -> StoredSession {
    StoredSession {
        version: SESSION_FORMAT_VERSION,
        issuer: Some(ISSUER.into()),
        client_id: CLIENT_ID.into(),
        access_token: Secret::new("a".repeat(ACCESS_TOKEN_LEN)),
        refresh_token: Some(Secret::new("r".repeat(64))),
        id_token: None,
        obtained_at: UnixMillis(now),
        expires_at: UnixMillis(now).plus_secs(3600),
        scopes: vec!["openid".into(), "offline_access".into()],
        identity: None,
        endpoints: Endpoints::default(),
    }
}

/// A tessera client on an encrypted session file holding a token valid for an hour.
fn tessera_client(runtime: &tokio::runtime::Runtime, dir: &Path) -> Client {
    let passphrase = PassphraseSource::Fixed("bench passphrase".into());
    let writer = open_store(StoreChoice::File, dir, "bench", passphrase.clone()).expect("store");
    writer.save(&session(now_millis())).expect("save");
    let store = open_store(StoreChoice::File, dir, "bench", passphrase).expect("store");
    let config = Config {
        scopes: vec!["openid".into(), "offline_access".into()],
        endpoints: Endpoints {
            token: Some(format!("{ISSUER}/token")),
            ..Endpoints::default()
        },
        discovery: false,
        ..Config::new(ISSUER, CLIENT_ID)
    };
    runtime
        .block_on(Client::start(
            ClientOptions::new(config, store).open_browser(false),
        ))
        .expect("client starts")
}

type YupAuthenticator = yup_oauth2::authenticator::DefaultAuthenticator;

/// yup-oauth2 with its disk storage pre-filled with a token valid for an hour.
fn yup_authenticator(runtime: &tokio::runtime::Runtime, dir: &Path) -> YupAuthenticator {
    let expires_at = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let token = yup_oauth2::storage::TokenInfo {
        access_token: Some("a".repeat(ACCESS_TOKEN_LEN)),
        refresh_token: Some("r".repeat(64)),
        expires_at: Some(expires_at),
        id_token: None,
    };
    let file = dir.join("yup-tokens.json");
    let stored = serde_json::json!([{
        "scopes": ["openid", "offline_access"],
        "token": token,
    }]);
    std::fs::write(&file, stored.to_string()).expect("write yup-oauth2 token file");
    let secret = yup_oauth2::ApplicationSecret {
        client_id: CLIENT_ID.into(),
        token_uri: format!("{ISSUER}/token"),
        auth_uri: format!("{ISSUER}/authorize"),
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        ..Default::default()
    };
    runtime
        .block_on(
            yup_oauth2::InstalledFlowAuthenticator::builder(
                secret,
                yup_oauth2::InstalledFlowReturnMethod::HTTPRedirect,
            )
            .persist_tokens_to_disk(file)
            .build(),
        )
        .expect("yup-oauth2 authenticator")
}

/// The floor: what any lock-free cache of a token must do at least.
#[inline(never)]
fn floor(cache: &ArcSwapOption<StoredSession>) -> Option<UnixMillis> {
    let guard = cache.load();
    let session = guard.as_deref()?;
    (session.expires_at.0 > now_millis()).then_some(session.expires_at)
}

/// The floor plus handing out an owned copy of the token (what `access_token()` returns).
#[inline(never)]
fn floor_with_copy(cache: &ArcSwapOption<StoredSession>) -> Option<(Secret, UnixMillis)> {
    let guard = cache.load();
    let session = guard.as_deref()?;
    (session.expires_at.0 > now_millis())
        .then(|| (session.access_token.clone(), session.expires_at))
}

/// The floor plus handing out a shared (reference-counted) token: what a cache that keeps
/// the token as `Arc<str>` would cost.
#[inline(never)]
fn floor_with_shared(
    cache: &ArcSwapOption<(Arc<str>, UnixMillis)>,
) -> Option<(Arc<str>, UnixMillis)> {
    let guard = cache.load();
    let (token, expires_at) = guard.as_deref()?;
    (expires_at.0 > now_millis()).then(|| (token.clone(), *expires_at))
}

fn cached_token(c: &mut Criterion) {
    // Two workers, as in the CLI; the actor is idle during the measurement (its one timer
    // fires at the refresh time, 55 minutes away).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let client = tessera_client(&runtime, dir.path());
    let yup = yup_authenticator(&runtime, dir.path());
    let scopes = ["openid", "offline_access"];
    let cache = ArcSwapOption::from(Some(Arc::new(session(now_millis()))));
    let shared: ArcSwapOption<(Arc<str>, UnixMillis)> = ArcSwapOption::from(Some(Arc::new((
        Arc::from("a".repeat(ACCESS_TOKEN_LEN)),
        UnixMillis(now_millis()).plus_secs(3600),
    ))));

    // The setups must serve what they claim to serve.
    let token = poll_once(client.access_token()).expect("tessera: cached token");
    assert_eq!(token.access_token.expose().len(), ACCESS_TOKEN_LEN);
    let token = poll_once(yup.token(&scopes)).expect("yup-oauth2: cached token");
    assert_eq!(token.token().map(str::len), Some(ACCESS_TOKEN_LEN));
    assert!(floor(&cache).is_some() && floor_with_shared(&shared).is_some());

    let mut group = c.benchmark_group("cached_token");
    group
        .measurement_time(Duration::from_secs(5))
        .sample_size(100);
    group.bench_function("floor_arcswap_load_clock_compare", |b| {
        b.iter(|| floor(black_box(&cache)))
    });
    group.bench_function("floor_plus_token_copy", |b| {
        b.iter(|| floor_with_copy(black_box(&cache)))
    });
    group.bench_function("floor_plus_shared_token", |b| {
        b.iter(|| floor_with_shared(black_box(&shared)))
    });
    group.bench_function("tessera_access_token", |b| {
        b.iter(|| poll_once(black_box(&client).access_token()))
    });
    group.bench_function("tessera_cached_token_sync", |b| {
        b.iter(|| black_box(&client).cached_token(0))
    });
    // As programs call them: awaited inside an async fn (here an async block), so the
    // library's future lives in the caller's state instead of being moved into
    // `poll_once` by value; the same shape for both libraries.
    group.bench_function("tessera_access_token_awaited", |b| {
        b.iter(|| {
            let client = black_box(&client);
            poll_once(async move { client.access_token().await })
        })
    });
    group.bench_function("yup_oauth2_token_awaited", |b| {
        b.iter(|| {
            let (yup, scopes) = (black_box(&yup), black_box(&scopes));
            poll_once(async move { yup.token(scopes).await })
        })
    });
    group.bench_function("yup_oauth2_token", |b| {
        b.iter(|| poll_once(black_box(&yup).token(black_box(&scopes))))
    });
    group.finish();
    client.stop();
}

criterion_group!(benches, cached_token);
criterion_main!(benches);
