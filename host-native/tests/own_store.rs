//! A store defined here, outside tessera, plugged into `Client` through the public API
//! (`SessionStore`): every second save fails, and its refresh lock is held by "another
//! process" for the first 300 ms. 1000 callers on an expired token still cause exactly one
//! refresh at the provider, every caller gets the rotated token, and the rotated session
//! is what the store ends up holding.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tessera::engine::driver::Version;
use tessera::engine::{
    Config, Endpoints, SESSION_FORMAT_VERSION, Secret, StoredSession, UnixMillis,
};
use tessera::store::{
    LockGuard, Locked, SessionStore, StoreError, StoreFuture, StoreInfo, StoreKind, Versioned,
};
use tessera::{Client, ClientOptions};

const CALLERS: usize = 1000;

#[derive(Default)]
struct Counts {
    saves: AtomicUsize,
    failed_saves: AtomicUsize,
    lock_busy: AtomicUsize,
}

/// A session in memory, versioned by a counter.
struct FlakyStore {
    slot: Arc<Mutex<(Option<StoredSession>, u64)>>,
    counts: Arc<Counts>,
    /// Until then the lock belongs to someone else.
    held_elsewhere_until: Instant,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl SessionStore for FlakyStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: StoreKind::Environment,
            location: "a test's own store".into(),
            fallback_reason: None,
        }
    }

    fn load(&self) -> StoreFuture<Option<Versioned>> {
        let slot = self.slot.clone();
        Box::pin(async move {
            let (session, version) = slot.lock().expect("slot").clone();
            Ok(session.map(|session| Versioned {
                session,
                version: Version(version),
            }))
        })
    }

    fn save(&self, session: StoredSession, replaces: Option<Version>) -> StoreFuture<Version> {
        let (slot, counts) = (self.slot.clone(), self.counts.clone());
        Box::pin(async move {
            let attempt = counts.saves.fetch_add(1, Ordering::SeqCst) + 1;
            if attempt % 2 == 1 {
                counts.failed_saves.fetch_add(1, Ordering::SeqCst);
                return Err(StoreError::Other {
                    detail: format!("save {attempt} failed on purpose"),
                });
            }
            let mut slot = slot.lock().expect("slot");
            if replaces.is_some_and(|v| v.0 != slot.1) {
                return Err(StoreError::Conflict {
                    location: "a test's own store".into(),
                });
            }
            *slot = (Some(session), slot.1 + 1);
            Ok(Version(slot.1))
        })
    }

    fn delete(&self) -> StoreFuture<()> {
        let slot = self.slot.clone();
        Box::pin(async move {
            let mut slot = slot.lock().expect("slot");
            *slot = (None, slot.1 + 1);
            Ok(())
        })
    }

    fn lock(&self, wait: Duration, _lease: Duration) -> StoreFuture<Option<Locked>> {
        let (lock, counts, slot) = (self.lock.clone(), self.counts.clone(), self.slot.clone());
        let elsewhere = self.held_elsewhere_until;
        Box::pin(async move {
            // "Another process" holds it: say busy after a short wait, as a store that
            // cannot wait long would.
            if Instant::now() < elsewhere {
                tokio::time::sleep(wait.min(Duration::from_millis(20))).await;
                counts.lock_busy.fetch_add(1, Ordering::SeqCst);
                return Ok(None);
            }
            let Ok(guard) = tokio::time::timeout(wait, lock.lock_owned()).await else {
                return Ok(None);
            };
            let (session, version) = slot.lock().expect("slot").clone();
            let read = session.map(|session| Versioned {
                session,
                version: Version(version),
            });
            Ok(Some(Locked {
                guard: LockGuard::new(guard),
                read,
            }))
        })
    }
}

fn now() -> UnixMillis {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    UnixMillis(u64::try_from(millis).expect("fits"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_own_store_with_failing_saves_and_a_busy_lock_refreshes_once_for_1000_callers() {
    let mut server = mockito::Server::new_async().await;
    let refresh = server
        .mock("POST", "/token")
        .match_body(mockito::Matcher::Regex("refresh_token=rt-1".into()))
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(r#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#)
        .expect(1)
        .create_async()
        .await;
    let now = now();
    let expired = StoredSession {
        version: SESSION_FORMAT_VERSION,
        issuer: Some(server.url()),
        client_id: "own-store".into(),
        access_token: Secret::new("at-1"),
        refresh_token: Some(Secret::new("rt-1")),
        id_token: None,
        obtained_at: now.minus_millis(7_200_000),
        expires_at: now.minus_millis(3_600_000),
        scopes: vec!["api".into()],
        identity: None,
        endpoints: Endpoints::default(),
    };
    let counts = Arc::new(Counts::default());
    let slot = Arc::new(Mutex::new((Some(expired), 1)));
    let store = FlakyStore {
        slot: slot.clone(),
        counts: counts.clone(),
        held_elsewhere_until: Instant::now() + Duration::from_millis(300),
        lock: Arc::default(),
    };
    let config = Config {
        endpoints: Endpoints {
            token: Some(format!("{}/token", server.url())),
            ..Endpoints::default()
        },
        discovery: false,
        ..Config::new(server.url(), "own-store")
    };
    let client = Client::start(ClientOptions::new(config, store).open_browser(false))
        .await
        .expect("client starts");

    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.access_token().await })
        })
        .collect();
    for caller in callers {
        let token = caller.await.expect("join").expect("a token");
        assert_eq!(token.access_token.expose(), "at-2");
    }

    refresh.assert_async().await;
    assert!(
        counts.lock_busy.load(Ordering::SeqCst) >= 1,
        "the lock was never busy"
    );
    assert_eq!(
        counts.failed_saves.load(Ordering::SeqCst),
        1,
        "the first save fails"
    );
    assert_eq!(
        counts.saves.load(Ordering::SeqCst),
        2,
        "the save is retried once"
    );
    let stored = slot.lock().expect("slot").0.clone().expect("a session");
    assert_eq!(stored.refresh_token, Some(Secret::new("rt-2")));
    assert_eq!(client.storage_problem(), None, "the retried save succeeded");
}
