//! The library API: a handle to one session actor.
//!
//! [`Client::access_token`] first looks at the session the actor last published (an
//! `ArcSwap` load and a clock read); only when that token is too close to expiry does
//! it ask the actor, which refreshes once for every caller waiting (single flight).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwapOption;
use ractor::{Actor, ActorRef};
use tessera_engine::driver::Command;
use tessera_engine::{Config, Error, LoginMethod, Rejected, Secret};
use tokio::sync::{broadcast, oneshot};

use crate::actor::{SessionActor, SessionArgs, SessionMsg};
use crate::clock::now;
use crate::events::{DerivedToken, HandedOff, HostEvent, LoginReport, LogoutReport, Token};
use crate::loopback::LoopbackOptions;
use crate::published::Published;
use crate::replies::{StatusReport, Waiting};
use crate::store::{Blocking, BlockingStore, SessionStore};

/// How to start a [`Client`]: [`ClientOptions::new`] with the two things every client
/// needs, then the builder methods for the rest. The fields stay public for reading and
/// changing, but the struct is `#[non_exhaustive]`, so options added later do not break
/// programs that build it.
///
/// ```
/// # fn demo(dir: std::path::PathBuf) -> Result<(), tessera::store::StoreError> {
/// use tessera::ClientOptions;
/// use tessera::engine::Config;
/// use tessera::store::{PassphraseSource, StoreChoice, open_store};
///
/// let store = open_store(StoreChoice::File, &dir, "work", PassphraseSource::Env)?;
/// let options = ClientOptions::new(Config::new("https://id.example.com", "my-app"), store)
///     .open_browser(false);
/// assert!(!options.open_browser);
/// # Ok(()) }
/// ```
#[non_exhaustive]
pub struct ClientOptions {
    pub config: Config,
    /// Where the session and its refresh lock live: one of tessera's stores
    /// ([`open_store`](crate::store::open_store)), or a [`SessionStore`] of your own.
    pub store: Arc<dyn SessionStore>,
    /// Loopback redirect server for browser logins. Default: an ephemeral port on
    /// 127.0.0.1, path `/callback`.
    pub loopback: LoopbackOptions,
    /// Open the browser for browser logins (else only report the URL as an event).
    /// Default: true.
    pub open_browser: bool,
    /// Record the session as a transcript (`--record`). Default: none.
    pub recorder: Option<crate::record::Recorder>,
    /// The HTTP client, shared with other clients: one connection pool and one TLS
    /// configuration for many sessions (a service). Default: this client's own.
    pub http: Option<SharedHttp>,
    /// The refresh lock: how long a refresh waits for another holder, and how long a
    /// holder keeps it at most if it dies (its lease). Default: 60 s and 120 s. A
    /// service whose replicas must take over a dead one's refresh quickly shortens the
    /// lease to just over the provider's timeout.
    pub refresh_lock: Option<(std::time::Duration, std::time::Duration)>,
}

/// An HTTP client that several [`Client`]s share ([`ClientOptions::shared_http`]).
#[derive(Clone, Debug, Default)]
pub struct SharedHttp(crate::http::HttpExecutor);

impl SharedHttp {
    pub fn new() -> Self {
        Self::default()
    }
}

impl ClientOptions {
    /// Options for `config` on `store`, with every other option at its default.
    pub fn new(config: Config, store: impl IntoSessionStore) -> Self {
        ClientOptions {
            config,
            store: store.into_session_store(),
            loopback: LoopbackOptions {
                port: 0,
                path: "/callback".to_owned(),
            },
            open_browser: true,
            recorder: None,
            http: None,
            refresh_lock: None,
        }
    }

    /// The loopback redirect server of browser logins.
    pub fn loopback(mut self, loopback: LoopbackOptions) -> Self {
        self.loopback = loopback;
        self
    }

    /// Whether browser logins open the browser (else only report the URL).
    pub fn open_browser(mut self, open: bool) -> Self {
        self.open_browser = open;
        self
    }

    /// The refresh lock's wait and lease (see [`ClientOptions::refresh_lock`]).
    pub fn refresh_lock(mut self, wait: std::time::Duration, lease: std::time::Duration) -> Self {
        self.refresh_lock = Some((wait, lease));
        self
    }

    /// Shares `http` (its connections and TLS set-up) with the other clients given it.
    pub fn shared_http(mut self, http: SharedHttp) -> Self {
        self.http = Some(http);
        self
    }

    /// Records the session as a transcript.
    pub fn recorder(mut self, recorder: crate::record::Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("store", &self.store.info().location)
            .finish_non_exhaustive()
    }
}

/// The future of [`Client::access_token`]: its first poll serves the cached token when it
/// will do (no message to the actor), else it asks the actor and waits for its answer.
///
/// Two words (the client and one optional box), so it moves in registers, not through
/// memory: a larger future, written field by field and then copied whole into the poller,
/// stalled the cached path on store forwarding (~18 ns, BENCHMARKS.md).
#[must_use = "futures do nothing unless awaited"]
pub struct TokenFuture<'a> {
    client: &'a Client,
    /// `None`: not polled yet, for a token valid now. Boxed otherwise.
    state: Option<Box<Asking<'a>>>,
}

enum Asking<'a> {
    /// Not polled yet, for a token valid at least this many more seconds.
    Unasked { min_ttl_secs: u64 },
    /// Waiting for the actor.
    Waiting(Pin<Box<dyn Future<Output = Result<Token, Error>> + Send + 'a>>),
}

impl Future for TokenFuture<'_> {
    type Output = Result<Token, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let min_ttl_secs = match this.state.as_deref_mut() {
            None => 0,
            Some(Asking::Unasked { min_ttl_secs }) => *min_ttl_secs,
            Some(Asking::Waiting(waiting)) => return waiting.as_mut().poll(cx),
        };
        this.ask(min_ttl_secs, cx)
    }
}

impl<'a> TokenFuture<'a> {
    /// The first poll: the cache, else the actor.
    #[inline]
    fn ask(&mut self, min_ttl_secs: u64, cx: &mut Context<'_>) -> Poll<Result<Token, Error>> {
        match self.client.cached_token(min_ttl_secs) {
            Some(token) => Poll::Ready(Ok(token)),
            None => self.ask_actor(min_ttl_secs, cx),
        }
    }

    /// Out of line, so that the cached path stays small enough to inline into the caller.
    #[cold]
    #[inline(never)]
    fn ask_actor(&mut self, min_ttl_secs: u64, cx: &mut Context<'_>) -> Poll<Result<Token, Error>> {
        let mut waiting = Box::pin(self.client.refreshed_token(min_ttl_secs));
        let poll = waiting.as_mut().poll(cx);
        self.state = Some(Box::new(Asking::Waiting(waiting)));
        poll
    }
}

impl std::fmt::Debug for TokenFuture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.state.as_deref() {
            None | Some(Asking::Unasked { .. }) => "TokenFuture::Unasked",
            Some(Asking::Waiting(_)) => "TokenFuture::Waiting",
        })
    }
}

/// What every clone of a [`Client`] shares; the last one dropped stops the actor.
#[derive(Debug)]
struct Handle {
    actor: ActorRef<SessionMsg>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.actor.stop(None);
    }
}

/// Why the client could not start or could not reach its actor.
#[derive(Debug)]
pub enum ClientError {
    /// The actor could not be started or has stopped.
    Actor(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Actor(detail) => write!(f, "the session task is not running: {detail}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// One OAuth session (a profile), shared by every clone of this handle. Dropping the last
/// clone stops the session's actor (as [`Client::stop`] does).
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
    cache: Arc<ArcSwapOption<Published>>,
    storage_problem: Arc<ArcSwapOption<String>>,
    events: broadcast::Sender<HostEvent>,
    refresh_buffer_secs: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("actor", &self.handle.actor.get_id())
            .finish()
    }
}

const _: () = assert!(std::mem::size_of::<TokenFuture<'static>>() == 16);

impl Client {
    /// Starts the session actor; the stored session is loaded before this returns.
    pub async fn start(options: ClientOptions) -> Result<Client, ClientError> {
        let cache = Arc::new(ArcSwapOption::empty());
        let storage_problem = Arc::new(ArcSwapOption::empty());
        let (events, _) = broadcast::channel(64);
        let refresh_buffer_secs = options.config.refresh_buffer_secs;
        let args = SessionArgs {
            config: options.config,
            store: options.store,
            loopback: options.loopback,
            open_browser: options.open_browser,
            recorder: options.recorder,
            http: options.http.map(|h| h.0),
            refresh_lock: options.refresh_lock,
            cache: cache.clone(),
            storage_problem: storage_problem.clone(),
            events: events.clone(),
        };
        let (actor, _) = Actor::spawn(None, SessionActor, args)
            .await
            .map_err(|e| ClientError::Actor(e.to_string()))?;
        Ok(Client {
            handle: Arc::new(Handle { actor }),
            cache,
            storage_problem,
            events,
            refresh_buffer_secs,
        })
    }

    /// Subscribes to what the user should see (browser URL, device code, failures).
    ///
    /// Events sent before subscribing are not replayed. The one that matters most — the
    /// stored session could not be read when the client started — stays visible through
    /// [`Client::storage_problem`] (and [`Client::status`]).
    pub fn events(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    /// The last storage failure (e.g. the session file could not be read when the client
    /// started, or a write failed), until a write succeeds. Without a round trip.
    pub fn storage_problem(&self) -> Option<String> {
        self.storage_problem.load().as_deref().cloned()
    }

    /// A valid access token, refreshing first if needed.
    ///
    /// When the cached token will do, the returned future is ready on its first poll,
    /// without allocating, and nothing is sent to the actor (see [`Client::cached_token`]).
    #[inline]
    pub fn access_token(&self) -> TokenFuture<'_> {
        self.access_token_for(0)
    }

    /// A token valid for at least `min_ttl_secs` more seconds.
    ///
    /// A thin wrapper over the synchronous fast path: the cache is checked when the future
    /// is first polled, and only a miss builds (and boxes) the future that asks the actor.
    /// A non-zero `min_ttl_secs` is kept in a small box until then, so that the future
    /// stays two words.
    #[inline]
    pub fn access_token_for(&self, min_ttl_secs: u64) -> TokenFuture<'_> {
        let state = (min_ttl_secs > 0).then(|| Box::new(Asking::Unasked { min_ttl_secs }));
        TokenFuture {
            client: self,
            state,
        }
    }

    /// The fast path, synchronous: the token the actor last published when it will do, or
    /// `None` when only the actor can answer ([`Client::access_token_for`] asks it). An
    /// `ArcSwap` load, a clock read, the engine's rule ([`StoredSession::wants_refresh`],
    /// so both paths agree) and a reference-count increment.
    #[inline(always)]
    pub fn cached_token(&self, min_ttl_secs: u64) -> Option<Token> {
        let guard = self.cache.load();
        let published = guard.as_deref()?;
        if published
            .session
            .wants_refresh(now(), min_ttl_secs, self.refresh_buffer_secs)
        {
            return None;
        }
        Some(Token {
            access_token: published.token.clone(),
            expires_at: published.session.expires_at,
        })
    }

    /// The slow path: the actor answers (refreshing once for every caller waiting).
    async fn refreshed_token(&self, min_ttl_secs: u64) -> Result<Token, Error> {
        self.ask(Command::GetToken { min_ttl_secs }, Waiting::Token)
            .await?
    }

    /// A resource server answered 401 to `token`: refresh once (if it is still the
    /// current token) and return the token to retry with.
    pub async fn token_rejected(&self, token: impl Into<Secret>) -> Result<Token, Error> {
        let command = Command::TokenRejected {
            access_token: token.into(),
        };
        self.ask(command, Waiting::Token).await?
    }

    /// The derived token `name` (an endpoint of the configuration's
    /// [`derived`](tessera_engine::Config::derived)): cached until it expires, else fetched
    /// with an access token valid 5 more minutes (refreshed first if needed). Errors are
    /// [`Error::Derived`] (not configured, not entitled, not offered, unavailable after
    /// retries, a bad answer) or the access token's own (not logged in, …).
    pub async fn derived_token(&self, name: &str) -> Result<DerivedToken, Error> {
        self.derived_token_for(name, 0).await
    }

    /// [`Client::derived_token`] valid for at least `min_ttl_secs` more seconds.
    pub async fn derived_token_for(
        &self,
        name: &str,
        min_ttl_secs: u64,
    ) -> Result<DerivedToken, Error> {
        let command = Command::GetDerivedToken {
            name: name.to_owned(),
            min_ttl_secs,
        };
        self.ask(command, Waiting::DerivedToken).await?
    }

    /// Runs a login to its end.
    pub async fn login(&self, method: LoginMethod) -> Result<LoginReport, Error> {
        let command = Command::Login {
            method,
            redirect_uri: None,
        };
        self.ask(command, Waiting::Login).await?
    }

    /// Starts a login whose redirect arrives on `redirect_uri`, served by the caller (a
    /// service's own route): answers at once with the URL for the user and what the
    /// redirect must match, for the caller to keep (encrypted) until
    /// [`Client::resume_login`]. This client is free for other calls meanwhile.
    pub async fn hand_off_login(&self, redirect_uri: String) -> Result<HandedOff, Error> {
        let command = Command::Login {
            method: LoginMethod::Handoff,
            redirect_uri: Some(redirect_uri),
        };
        self.ask(command, Waiting::HandedOff).await?
    }

    /// The redirect of a handed-off login, with what [`Client::hand_off_login`] gave: the
    /// code is exchanged and the session stored. Any client of the same configuration
    /// can resume it (after a restart, on another replica).
    pub async fn resume_login(
        &self,
        login: tessera_engine::HandedOffLogin,
        redirect: String,
    ) -> Result<LoginReport, Error> {
        let command = Command::ResumeLogin {
            login: Box::new(login),
            url: redirect,
        };
        self.ask(command, Waiting::Login).await?
    }

    /// Hands the actor what the user pasted during a paste login. `Err` means it was not
    /// readable (the login still waits; ask again).
    pub async fn paste(&self, text: String) -> Result<(), Rejected> {
        match self
            .ask(Command::PastedCode { text }, Waiting::Pasted)
            .await
        {
            Ok(result) => result,
            Err(error) => Err(Rejected::Invalid {
                reason: error.to_string(),
            }),
        }
    }

    /// Abandons a login in progress.
    pub fn cancel(&self) {
        let _ = self
            .handle
            .actor
            .cast(SessionMsg::Call(Command::Cancel, Waiting::Nobody));
    }

    /// Ends the session: revokes (unless `force`) and deletes it.
    pub async fn logout(&self, force: bool) -> Result<LogoutReport, Error> {
        self.ask(Command::Logout { force }, Waiting::Logout).await?
    }

    /// The session as the engine sees it, where it is stored, and any storage problem.
    pub async fn status(&self) -> Result<StatusReport, Error> {
        self.ask(Command::Status, Waiting::Status).await
    }

    /// Whether the session holds tokens (as last published; without a round trip).
    pub fn has_session(&self) -> bool {
        self.cache.load().is_some()
    }

    /// Whether `other` is a clone of this handle (the same session actor).
    pub fn same_as(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.handle, &other.handle)
    }

    /// Stops the actor (for every clone of this handle). Dropping the last clone does too.
    pub fn stop(&self) {
        self.handle.actor.stop(None);
    }

    /// Sends `command` with a reply handle; a stopped actor answers `Error::Stopped`.
    async fn ask<T>(
        &self,
        command: Command,
        waiting: impl FnOnce(oneshot::Sender<T>) -> Waiting,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.handle
            .actor
            .cast(SessionMsg::Call(command, waiting(reply)))
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)
    }
}

/// What [`ClientOptions::new`] takes as the store: tessera's blocking stores (as
/// [`open_store`](crate::store::open_store) returns them), or any [`SessionStore`].
pub trait IntoSessionStore {
    fn into_session_store(self) -> Arc<dyn SessionStore>;
}

impl IntoSessionStore for Box<dyn BlockingStore> {
    fn into_session_store(self) -> Arc<dyn SessionStore> {
        Arc::new(Blocking::from(self))
    }
}

impl IntoSessionStore for Arc<dyn BlockingStore> {
    fn into_session_store(self) -> Arc<dyn SessionStore> {
        Arc::new(Blocking(self))
    }
}

impl IntoSessionStore for Arc<dyn SessionStore> {
    fn into_session_store(self) -> Arc<dyn SessionStore> {
        self
    }
}

impl<S: SessionStore> IntoSessionStore for S {
    fn into_session_store(self) -> Arc<dyn SessionStore> {
        Arc::new(self)
    }
}
