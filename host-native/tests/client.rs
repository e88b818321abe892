//! The library handle's life cycle: what a program sees when the store could not be read
//! at start, and that the last dropped `Client` stops its session actor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tessera::engine::{Config, StoredSession};
use tessera::store::{
    BlockingStore, LockGuard, MemoryStore, PassphraseSource, StoreChoice, StoreError, StoreInfo,
    open_store,
};
use tessera::{Client, ClientOptions, HostEvent};

fn config() -> Config {
    Config {
        discovery: false,
        ..Config::new("https://op.example", "app")
    }
}

/// A store that says when it is dropped, i.e. when the actor holding it has stopped.
struct Watched {
    inner: MemoryStore,
    dropped: Arc<AtomicBool>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

impl BlockingStore for Watched {
    fn info(&self) -> &StoreInfo {
        self.inner.info()
    }
    fn load(&self) -> Result<Option<StoredSession>, StoreError> {
        self.inner.load()
    }
    fn save(&self, session: &StoredSession) -> Result<(), StoreError> {
        self.inner.save(session)
    }
    fn delete(&self) -> Result<(), StoreError> {
        self.inner.delete()
    }
    fn lock(&self, wait: Duration) -> Result<Option<LockGuard>, StoreError> {
        self.inner.lock(wait)
    }
}

async fn eventually(flag: &AtomicBool) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if flag.load(Ordering::SeqCst) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_last_client_stops_its_actor() {
    let dropped = Arc::new(AtomicBool::new(false));
    let store = Watched {
        inner: MemoryStore::new(None, "memory"),
        dropped: dropped.clone(),
    };
    let client = Client::start(
        ClientOptions::new(config(), Arc::new(store) as Arc<dyn BlockingStore>).open_browser(false),
    )
    .await
    .unwrap();
    let clone = client.clone();
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!dropped.load(Ordering::SeqCst), "a clone still holds it");
    assert!(clone.status().await.is_ok(), "and it still answers");
    drop(clone);
    assert!(
        eventually(&dropped).await,
        "the actor (and its store) went away"
    );
}

/// The session file cannot be opened (another passphrase): a subscriber that arrives
/// after the start missed the event, but the problem is there to read, without a round
/// trip, and `status` says the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_storage_failure_at_start_is_visible_to_late_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open_store(
        StoreChoice::File,
        dir.path(),
        "default",
        PassphraseSource::Fixed("right".into()),
    )
    .unwrap();
    let session = StoredSession {
        version: tessera::engine::SESSION_FORMAT_VERSION,
        issuer: Some("https://op.example".into()),
        client_id: "app".into(),
        access_token: tessera::engine::Secret::new("at"),
        refresh_token: None,
        id_token: None,
        obtained_at: tessera::engine::UnixMillis(0),
        expires_at: tessera::engine::UnixMillis(0).plus_secs(3600),
        scopes: vec![],
        identity: None,
        endpoints: Default::default(),
    };
    tokio::task::spawn_blocking(move || writer.save(&session))
        .await
        .unwrap()
        .unwrap();
    let wrong = open_store(
        StoreChoice::File,
        dir.path(),
        "default",
        PassphraseSource::Fixed("wrong".into()),
    )
    .unwrap();
    let client = Client::start(ClientOptions::new(config(), wrong).open_browser(false))
        .await
        .unwrap();
    let mut late = client.events();
    let problem = client.storage_problem().expect("a storage problem");
    assert!(problem.contains("passphrase"), "{problem}");
    assert!(!problem.contains("right") && !problem.contains("wrong\""));
    assert_eq!(
        client.status().await.unwrap().storage_problem.as_deref(),
        Some(problem.as_str())
    );
    assert!(
        !matches!(late.try_recv(), Ok(HostEvent::StorageFailed { .. })),
        "events are not replayed; storage_problem() is how a late subscriber learns it"
    );
}

fn now_millis() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

/// `access_token_for` judges the cache when its future is first polled (ready at once,
/// without a runtime, when the token will do), and a `min_ttl_secs` the token cannot meet
/// still reaches the actor: without a refresh token it cannot refresh, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_future_serves_the_cache_at_its_first_poll_and_keeps_its_min_ttl() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    let now = tessera::engine::UnixMillis(now_millis());
    let session = StoredSession {
        version: tessera::engine::SESSION_FORMAT_VERSION,
        issuer: Some("https://op.example".into()),
        client_id: "app".into(),
        access_token: tessera::engine::Secret::new("at-cached"),
        refresh_token: None,
        id_token: None,
        obtained_at: now,
        expires_at: now.plus_secs(3600),
        scopes: vec![],
        identity: None,
        endpoints: Default::default(),
    };
    let store: Arc<dyn BlockingStore> = Arc::new(MemoryStore::new(Some(session), "memory"));
    let client = Client::start(ClientOptions::new(config(), store).open_browser(false))
        .await
        .unwrap();

    let mut cx = Context::from_waker(Waker::noop());
    let mut cached = std::pin::pin!(client.access_token_for(600));
    for poll in 0..2 {
        match cached.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(token)) => assert_eq!(token.access_token.expose(), "at-cached"),
            other => panic!("poll {poll}: the cached token, at once; got {other:?}"),
        }
    }

    let error = client
        .access_token_for(7200)
        .await
        .expect_err("the token expires in an hour and cannot be refreshed");
    assert!(
        matches!(error, tessera::engine::Error::LoginRequired { .. }),
        "the actor judged the two hours: {error:?}"
    );
}
