//! The harness for `faults.rs`: a real native host (client, actor, reqwest executor, an
//! encrypted session file in a temp dir) pointed at mock servers on 127.0.0.1.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tessera::engine::{
    Config, Endpoints, Error, LoginMethod, SESSION_FORMAT_VERSION, Secret, StoredSession,
    UnixMillis,
};
use tessera::store::{BlockingStore, PassphraseSource, RefreshLock, StoreChoice, open_store};
use tessera::{Client, ClientOptions, HostEvent, LoginReport, Token};
use tokio::sync::broadcast;

pub const CLIENT_ID: &str = "tessera-faults";
pub const PROFILE: &str = "faults";
/// How long any single wait in these tests may take before the test fails (instead of
/// hanging).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The wall clock, as the host reads it.
pub fn now() -> UnixMillis {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis();
    UnixMillis(u64::try_from(millis).expect("millis fit"))
}

/// A session for [`CLIENT_ID`] obtained `age_secs` ago and expiring in `expires_in_secs`
/// (negative: already expired).
pub fn session(access: &str, refresh: &str, age_secs: u64, expires_in_secs: i64) -> StoredSession {
    let now = now();
    let expires_at = if expires_in_secs >= 0 {
        now.plus_secs(expires_in_secs.unsigned_abs())
    } else {
        now.minus_millis(expires_in_secs.unsigned_abs() * 1000)
    };
    StoredSession {
        version: SESSION_FORMAT_VERSION,
        issuer: None,
        client_id: CLIENT_ID.to_owned(),
        access_token: Secret::new(access),
        refresh_token: Some(Secret::new(refresh)),
        id_token: None,
        obtained_at: now.minus_millis(age_secs * 1000),
        expires_at,
        scopes: vec!["api".to_owned()],
        identity: None,
        endpoints: Endpoints::default(),
    }
}

/// A token response body.
pub fn tokens_json(access: &str, refresh: &str, expires_in: u64) -> String {
    format!(
        r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":{expires_in},"refresh_token":"{refresh}","scope":"api"}}"#
    )
}

/// A configuration with explicit endpoints under `base` and no discovery (no issuer).
pub fn config(base: &str) -> Config {
    Config {
        issuer: None,
        client_id: CLIENT_ID.to_owned(),
        scopes: vec!["api".to_owned()],
        discovery: false,
        redirect_uri: Some("https://client.example/callback".to_owned()),
        endpoints: Endpoints {
            authorization: Some(format!("{base}/authorize")),
            token: Some(format!("{base}/token")),
            device_authorization: Some(format!("{base}/device")),
            ..Endpoints::default()
        },
        ..Config::default()
    }
}

/// A client with its encrypted session file in a temp dir of its own.
pub struct Host {
    pub client: Client,
    pub store: Arc<dyn BlockingStore>,
    /// Subscribed right after start, before any test step.
    pub events: broadcast::Receiver<HostEvent>,
    _dir: tempfile::TempDir,
}

impl Host {
    /// Stores `stored` (if any) in a fresh encrypted file, then starts a client on it.
    ///
    /// The refresh lock is held (as a sibling process would) until the client exists and
    /// `events` is subscribed: `Client::events` can only subscribe after `Client::start`,
    /// and a session in its refresh window is refreshed in the background at once, so
    /// without the lock a fast failure could be reported before anyone listens.
    pub async fn start(config: Config, stored: Option<StoredSession>) -> Host {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = file_store(dir.path());
        if let Some(session) = stored {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.save(&session))
                .await
                .expect("join")
                .expect("seed the session file");
        }
        let sibling = RefreshLock::acquire(dir.path(), PROFILE, Duration::ZERO).expect("lock");
        let client = Client::start(ClientOptions::new(config, store.clone()).open_browser(false))
            .await
            .expect("client starts");
        let events = client.events();
        drop(sibling);
        Host {
            client,
            store,
            events,
            _dir: dir,
        }
    }

    /// What the encrypted file holds now (decrypted with the passphrase, off the runtime).
    pub async fn stored(&self) -> Option<StoredSession> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.load())
            .await
            .expect("join")
            .expect("the session file is readable")
    }

    /// `Client::access_token_for`, failing the test instead of hanging.
    pub async fn token_for(&self, min_ttl_secs: u64) -> Result<Token, Error> {
        within(self.client.access_token_for(min_ttl_secs)).await
    }

    /// `Client::access_token`, failing the test instead of hanging.
    pub async fn token(&self) -> Result<Token, Error> {
        within(self.client.access_token()).await
    }

    /// `Client::token_rejected`, failing the test instead of hanging.
    pub async fn rejected(&self, token: impl Into<Secret>) -> Result<Token, Error> {
        within(self.client.token_rejected(token)).await
    }

    /// The next event `pick` accepts; earlier ones are skipped.
    pub async fn event<T>(&mut self, mut pick: impl FnMut(HostEvent) -> Option<T>) -> T {
        let events = &mut self.events;
        tokio::time::timeout(PATIENCE, async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        if let Some(found) = pick(event) {
                            return found;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => panic!("the event channel closed"),
                }
            }
        })
        .await
        .expect("the expected event arrives")
    }

    /// A paste login: waits for the prompt, pastes `code`, returns how the login ended.
    pub async fn paste_login(&mut self, code: &str) -> Result<LoginReport, Error> {
        let login = tokio::spawn({
            let client = self.client.clone();
            async move { client.login(LoginMethod::Paste).await }
        });
        self.event(|e| matches!(e, HostEvent::PromptForCode { .. }).then_some(()))
            .await;
        within(self.client.paste(code.to_owned()))
            .await
            .expect("the pasted code is readable");
        within(login).await.expect("join")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.client.stop();
    }
}

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("finishes in time")
}

fn file_store(dir: &Path) -> Arc<dyn BlockingStore> {
    let store = open_store(
        StoreChoice::File,
        dir,
        PROFILE,
        PassphraseSource::Fixed("correct horse battery staple".to_owned()),
    )
    .expect("file store");
    Arc::from(store)
}

/// When each request reached a mock (wall clock), for counting and timing requests that
/// `Mock::expect` cannot tell apart.
#[derive(Clone, Default)]
pub struct Hits(Arc<Mutex<Vec<UnixMillis>>>);

impl Hits {
    /// A body callback for `Mock::with_body_from_request` that records the hit first.
    pub fn body(&self, body: &str) -> impl Fn(&mockito::Request) -> Vec<u8> + use<> {
        let (hits, body) = (self.0.clone(), body.as_bytes().to_vec());
        move |_| {
            hits.lock().expect("hits").push(now());
            body.clone()
        }
    }

    pub fn times(&self) -> Vec<UnixMillis> {
        self.0.lock().expect("hits").clone()
    }

    pub fn count(&self) -> usize {
        self.0.lock().expect("hits").len()
    }
}

/// A mock for any POST no other mock claims; create it last. `assert` on it fails if an
/// unexpected request arrived (a second refresh, an extra poll, a request with another
/// refresh token), which the other mocks' counts alone cannot see: mockito hands a request
/// that matches nothing to no mock at all.
pub async fn stray_posts(server: &mut mockito::ServerGuard) -> mockito::Mock {
    server
        .mock("POST", mockito::Matcher::Any)
        .with_status(400)
        .with_header("content-type", "application/json")
        .with_body(r#"{"error":"invalid_request","error_description":"unexpected request"}"#)
        .expect(0)
        .create_async()
        .await
}

/// A TCP server on 127.0.0.1 that accepts connections and never writes a byte (it is not
/// an HTTP server: it only holds the sockets open until dropped).
pub struct Blackhole {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Blackhole {
    pub fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (accepted, stop) = (accepted.clone(), stop.clone());
            move || {
                let mut held: Vec<TcpStream> = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        held.push(stream);
                    }
                }
            }
        });
        Blackhole {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread sees `stop` and drops the held sockets.
        if let Ok(mut wake) = TcpStream::connect(self.addr) {
            let _ = wake.read(&mut [0u8; 0]);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.local_addr().expect("address").port()
}
