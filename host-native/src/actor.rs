//! The session actor: owns one [`Engine`], performs its effects, re-arms its one timer.
//!
//! Each message is one input; after it, every effect is drained and performed:
//! HTTP in spawned tasks that send the answer back as a message (the handler never awaits
//! the network), storage in `spawn_blocking`. Storage writes are ordered: effects after a
//! `PersistSession` or `DeleteSession` wait until it completed, so a rotated refresh token
//! is on disk before any waiter uses the new access token. After each drain the current
//! session is published for the lock-free fast path (see [`crate::client`]).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tessera_engine::{
    Config, Effect, Engine, Error, Event, Input, LoginMethod, LogoutReason, Rejected, Secret,
    StoredSession, WaiterId,
};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::client::Published;
use crate::clock::now;
use crate::events::{HostEvent, LoginReport, LogoutReport, SharedSecret, Token};
use crate::http::HttpExecutor;
use crate::loopback::{CallbackPage, LoopbackServer, PendingCallback};
use crate::store::{RefreshLock, RefreshLockGuard, SessionStore, StoreInfo};

/// How long `LockSession` waits for a sibling process holding the refresh lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// A request from the application.
#[derive(Debug)]
pub enum Command {
    GetToken {
        min_ttl_secs: u64,
        reply: oneshot::Sender<Result<Token, Error>>,
    },
    TokenRejected {
        token: Secret,
        reply: oneshot::Sender<Result<Token, Error>>,
    },
    Login {
        method: LoginMethod,
        reply: oneshot::Sender<Result<LoginReport, Error>>,
    },
    Logout {
        force: bool,
        reply: oneshot::Sender<Result<LogoutReport, Error>>,
    },
    PastedCode {
        text: String,
        reply: oneshot::Sender<Result<(), Rejected>>,
    },
    Cancel,
    Status {
        reply: oneshot::Sender<StatusReport>,
    },
}

/// What `status` shows: the engine's projection, where the session is stored, and the
/// last storage problem (e.g. an unreadable session file) so the user learns why they
/// appear logged out.
#[derive(Clone, Debug)]
pub struct StatusReport {
    pub status: tessera_engine::Status,
    pub store: StoreInfo,
    pub storage_problem: Option<String>,
}

/// Everything the actor reacts to. `Debug` withholds the redirect URL (it carries the
/// authorization code).
pub enum SessionMsg {
    Command(Command),
    /// An HTTP effect finished.
    HttpDone(Input),
    /// A storage write finished; `failure` when it did not.
    Stored {
        failure: Option<String>,
    },
    /// The refresh lock was taken (or could not be) and storage re-read.
    Locked {
        outcome: Result<(RefreshLockGuard, Option<StoredSession>), String>,
    },
    /// The loopback server received a request on the redirect path.
    Callback {
        url: String,
        page: PendingCallback,
    },
    Timer {
        generation: u64,
    },
}

impl std::fmt::Debug for SessionMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionMsg::Command(command) => f.debug_tuple("Command").field(command).finish(),
            SessionMsg::HttpDone(input) => f.debug_tuple("HttpDone").field(input).finish(),
            SessionMsg::Stored { failure } => {
                f.debug_struct("Stored").field("failure", failure).finish()
            }
            SessionMsg::Locked { outcome } => f
                .debug_struct("Locked")
                .field("ok", &outcome.is_ok())
                .finish(),
            SessionMsg::Callback { url, .. } => f
                .debug_struct("Callback")
                .field("url_bytes", &url.len())
                .finish(),
            SessionMsg::Timer { generation } => f
                .debug_struct("Timer")
                .field("generation", generation)
                .finish(),
        }
    }
}

/// Where the loopback server listens.
#[derive(Clone, Debug)]
pub struct LoopbackOptions {
    /// 0 for an ephemeral port.
    pub port: u16,
    pub path: String,
}

/// What the actor is started with.
pub struct SessionArgs {
    pub config: Config,
    pub store: Arc<dyn SessionStore>,
    pub config_dir: PathBuf,
    pub profile: String,
    pub loopback: LoopbackOptions,
    /// Open the user's browser for `OpenBrowser` (else only report the URL).
    pub open_browser: bool,
    pub cache: Arc<ArcSwapOption<Published>>,
    /// The last storage failure, for `Client::storage_problem`.
    pub storage_problem: Arc<ArcSwapOption<String>>,
    pub events: broadcast::Sender<HostEvent>,
    /// Records every input (`--record`).
    pub recorder: Option<crate::record::Recorder>,
}

pub struct SessionActor;

pub struct SessionState {
    engine: Engine,
    args: SessionArgs,
    http: HttpExecutor,
    /// Effects not yet performed, in order.
    queue: VecDeque<Effect>,
    /// A storage write is in flight; the queue waits for it.
    writing: bool,
    lock: Option<RefreshLockGuard>,
    /// `UnlockSession` arrived while the lock was still being acquired.
    lock_unwanted: bool,
    waiters: HashMap<WaiterId, oneshot::Sender<Result<Token, Error>>>,
    next_waiter: u64,
    /// Callers of `login`, oldest first: each `logged_in`/`login_failed` answers the
    /// oldest (a login replaced by a newer one fails first, with `cancelled`).
    login_replies: VecDeque<oneshot::Sender<Result<LoginReport, Error>>>,
    logout_reply: Option<oneshot::Sender<Result<LogoutReport, Error>>>,
    loopback: Option<JoinHandle<()>>,
    callback_page: Option<PendingCallback>,
    timer: Option<JoinHandle<Result<(), ractor::MessagingErr<SessionMsg>>>>,
    timer_generation: u64,
    /// The deadline the armed timer is for (`None`: no timer, or it fired).
    timer_at: Option<tessera_engine::UnixMillis>,
    /// The last storage failure, until a storage write succeeds.
    storage_problem: Option<String>,
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    /// Loads the stored session before the actor takes messages, so the fast path has
    /// the token as soon as the client exists.
    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no OS randomness: {e}"))?;
        let start = now();
        let engine = Engine::new(args.config.clone(), seed, start);
        if let Some(recorder) = &args.recorder {
            recorder.started(&args.config, seed, start);
        }
        let mut state = SessionState {
            engine,
            args,
            http: HttpExecutor::default(),
            queue: VecDeque::new(),
            writing: false,
            lock: None,
            lock_unwanted: false,
            waiters: HashMap::new(),
            next_waiter: 1,
            login_replies: VecDeque::new(),
            logout_reply: None,
            loopback: None,
            callback_page: None,
            timer: None,
            timer_generation: 0,
            timer_at: None,
            storage_problem: None,
        };
        // Engine::new asks for the stored session first.
        while let Some(effect) = state.engine.poll_effect() {
            if effect != Effect::LoadSession {
                state.queue.push_back(effect);
            }
        }
        let store = state.args.store.clone();
        let loaded = tokio::task::spawn_blocking(move || store.load())
            .await
            .map_err(|e| e.to_string())?;
        let input = match loaded {
            Ok(session) => Input::SessionLoaded { session },
            Err(error) => {
                let detail = error.to_string();
                let _ = state.args.events.send(HostEvent::StorageFailed {
                    detail: detail.clone(),
                });
                state.set_storage_problem(Some(detail.clone()));
                Input::StorageFailed { detail }
            }
        };
        state.feed(&myself, input);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        message: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionMsg::Command(command) => state.command(&myself, command).await,
            SessionMsg::HttpDone(input) => {
                state.feed(&myself, input);
            }
            SessionMsg::Stored { failure } => {
                state.writing = false;
                if let Some(detail) = &failure {
                    tracing::error!(%detail, "could not store the session");
                    let _ = state.args.events.send(HostEvent::StorageFailed {
                        detail: detail.clone(),
                    });
                }
                state.set_storage_problem(failure);
                state.pump(&myself);
            }
            SessionMsg::Locked { outcome } => match outcome {
                Ok((guard, session)) => {
                    if state.lock_unwanted {
                        state.lock_unwanted = false;
                        drop(guard);
                    } else {
                        state.lock = Some(guard);
                        state.feed(&myself, Input::SessionLocked { session });
                    }
                }
                Err(detail) => {
                    state.lock_unwanted = false;
                    state.feed(&myself, Input::StorageFailed { detail });
                }
            },
            SessionMsg::Callback { url, page } => state.callback(&myself, url, page),
            SessionMsg::Timer { generation } => {
                if generation == state.timer_generation {
                    // Fired: the next drain arms a timer even for the same deadline.
                    state.timer_at = None;
                    state.feed(&myself, Input::Timeout);
                }
            }
        }
        Ok(())
    }
}

impl SessionState {
    /// Remembers the last storage failure (or its end) for `status` and publishes it for
    /// `Client::storage_problem`.
    fn set_storage_problem(&mut self, problem: Option<String>) {
        if self.storage_problem != problem {
            self.args
                .storage_problem
                .store(problem.clone().map(Arc::new));
            self.storage_problem = problem;
        }
    }

    /// Whether the provider is reached over HTTPS (so warming up the HTTP client should
    /// also load the root certificates): the configured token endpoint or issuer, or the
    /// token endpoint discovery stored with the session.
    fn uses_tls(&self) -> bool {
        let config = &self.args.config;
        let stored = self
            .engine
            .session()
            .and_then(|s| s.endpoints.token.as_deref());
        [
            config.endpoints.token.as_deref(),
            config.issuer.as_deref(),
            stored,
        ]
        .into_iter()
        .flatten()
        .any(|url| url.starts_with("https:"))
    }

    /// One input, then drain and perform.
    fn feed(&mut self, myself: &ActorRef<SessionMsg>, input: Input) -> Option<Rejected> {
        let at = now();
        if let Some(recorder) = &self.args.recorder {
            recorder.input(at, &input);
        }
        let rejected = self.engine.handle(at, input).err();
        if let Some(rejected) = &rejected {
            tracing::debug!(%rejected, state = self.engine.state_name(), "input rejected");
        }
        self.pump(myself);
        rejected
    }

    async fn command(&mut self, myself: &ActorRef<SessionMsg>, command: Command) {
        match command {
            Command::GetToken {
                min_ttl_secs,
                reply,
            } => {
                let waiter = self.waiter(reply);
                self.feed(
                    myself,
                    Input::GetToken {
                        waiter,
                        min_ttl_secs,
                    },
                );
            }
            Command::TokenRejected { token, reply } => {
                let waiter = self.waiter(reply);
                self.feed(
                    myself,
                    Input::TokenRejected {
                        waiter,
                        access_token: token,
                    },
                );
            }
            Command::Login { method, reply } => {
                self.http.warm_up(self.uses_tls());
                let redirect_uri = match method {
                    LoginMethod::Browser => match self.start_loopback(myself).await {
                        Ok(uri) => Some(uri),
                        Err(error) => {
                            let _ = reply.send(Err(error));
                            return;
                        }
                    },
                    _ => None,
                };
                self.login_replies.push_back(reply);
                let login = Input::Login {
                    method,
                    redirect_uri,
                };
                if let Some(rejected) = self.feed(myself, login)
                    && let Some(reply) = self.login_replies.pop_back()
                {
                    let _ = reply.send(Err(Error::Config {
                        problem: rejected.to_string(),
                    }));
                }
            }
            Command::Logout { force, reply } => {
                if !force {
                    self.http.warm_up(self.uses_tls());
                }
                self.logout_reply = Some(reply);
                self.feed(myself, Input::Logout { force });
            }
            Command::PastedCode { text, reply } => {
                let rejected = self.feed(myself, Input::PastedCode { text });
                let _ = reply.send(rejected.map_or(Ok(()), Err));
            }
            Command::Cancel => {
                self.feed(myself, Input::Cancel);
            }
            Command::Status { reply } => {
                let _ = reply.send(StatusReport {
                    status: self.engine.status(now()),
                    store: self.args.store.info().clone(),
                    storage_problem: self.storage_problem.clone(),
                });
            }
        }
    }

    fn waiter(&mut self, reply: oneshot::Sender<Result<Token, Error>>) -> WaiterId {
        let id = WaiterId(self.next_waiter);
        self.next_waiter += 1;
        self.waiters.insert(id, reply);
        id
    }

    async fn start_loopback(&mut self, myself: &ActorRef<SessionMsg>) -> Result<String, Error> {
        self.stop_loopback();
        let options = &self.args.loopback;
        let mut server = LoopbackServer::bind(options.port, &options.path)
            .await
            .map_err(|e| Error::Config {
                problem: format!(
                    "cannot listen on 127.0.0.1:{} for the redirect: {e}",
                    options.port
                ),
            })?;
        let redirect_uri = server.redirect_uri();
        let actor = myself.clone();
        self.loopback = Some(tokio::spawn(async move {
            while let Some(page) = server.next_callback().await {
                let url = page.url.clone();
                if actor.cast(SessionMsg::Callback { url, page }).is_err() {
                    break;
                }
            }
        }));
        Ok(redirect_uri)
    }

    fn stop_loopback(&mut self) {
        if let Some(task) = self.loopback.take() {
            task.abort();
        }
    }

    fn callback(&mut self, myself: &ActorRef<SessionMsg>, url: String, page: PendingCallback) {
        match self.feed(myself, Input::Callback { url }) {
            Some(rejected) => {
                let message = rejected.to_string();
                let _ = self.args.events.send(HostEvent::CallbackIgnored {
                    reason: message.clone(),
                });
                page.respond(CallbackPage::Ignored { message });
            }
            // The page waits until the exchange tells whether the login worked.
            None if self.engine.state_name() == "exchanging_code" => {
                self.callback_page = Some(page)
            }
            None => page.respond(CallbackPage::Failed {
                message: "the login ended".into(),
            }),
        }
    }

    /// Drains the engine into the queue and performs effects until a storage write must
    /// complete first.
    ///
    /// A deadline that has already passed (a session loaded after its refresh was due) is
    /// handled here and now rather than through a timer message, which would queue behind
    /// every caller that arrived meanwhile; once per drain, so a deadline that stays in the
    /// past falls back to the timer.
    fn pump(&mut self, myself: &ActorRef<SessionMsg>) {
        for _ in 0..2 {
            while let Some(effect) = self.engine.poll_effect() {
                self.queue.push_back(effect);
            }
            while !self.writing {
                let Some(effect) = self.queue.pop_front() else {
                    break;
                };
                self.perform(myself, effect);
            }
            let at = now();
            if self.engine.poll_timeout().is_none_or(|due| due > at) {
                break;
            }
            if let Some(recorder) = &self.args.recorder {
                recorder.input(at, &Input::Timeout);
            }
            if let Err(rejected) = self.engine.handle(at, Input::Timeout) {
                tracing::debug!(%rejected, "timeout rejected");
            }
        }
        self.publish();
        self.arm_timer(myself);
    }

    /// Publishes the session for the fast path, when it changed. Most drains (every
    /// caller joining a refresh in flight, for one) change nothing, and skipping the copy
    /// keeps a crowd of waiters from delaying the refresh they wait for.
    fn publish(&self) {
        let current = self.engine.session();
        let unchanged = match (self.args.cache.load().as_deref(), current) {
            (Some(published), Some(session)) => published.serves(session),
            (None, None) => true,
            _ => false,
        };
        if !unchanged {
            self.args
                .cache
                .store(current.map(|session| Arc::new(Published::new(session))));
        }
    }

    fn perform(&mut self, myself: &ActorRef<SessionMsg>, effect: Effect) {
        match effect {
            Effect::Http(request) => {
                let http = self.http.clone();
                let actor = myself.clone();
                tracing::debug!(endpoint = %request.endpoint, id = request.id.0, "request");
                tokio::spawn(async move {
                    let input = http.perform(request).await;
                    let _ = actor.cast(SessionMsg::HttpDone(input));
                });
            }
            Effect::OpenBrowser { url } => {
                let _ = self
                    .args
                    .events
                    .send(HostEvent::OpenBrowser { url: url.clone() });
                if !self.args.open_browser {
                    return;
                }
                tokio::task::spawn_blocking(move || {
                    if let Err(error) = crate::browser::open(&url, |name| std::env::var(name).ok())
                    {
                        tracing::warn!(%error, "could not open a browser; open the URL shown");
                    }
                });
            }
            Effect::PromptForCode { url } => {
                let _ = self.args.events.send(HostEvent::PromptForCode { url });
            }
            Effect::ShowUserCode(code) => {
                let _ = self.args.events.send(HostEvent::UserCode(code));
            }
            Effect::LoadSession => {
                let store = self.args.store.clone();
                let actor = myself.clone();
                tokio::task::spawn_blocking(move || {
                    let input = match store.load() {
                        Ok(session) => Input::SessionLoaded { session },
                        Err(error) => Input::StorageFailed {
                            detail: error.to_string(),
                        },
                    };
                    let _ = actor.cast(SessionMsg::HttpDone(input));
                });
            }
            Effect::LockSession => {
                // A refresh usually follows: set up HTTPS while the lock is taken.
                self.http.warm_up(self.uses_tls());
                let store = self.args.store.clone();
                let (dir, profile) = (self.args.config_dir.clone(), self.args.profile.clone());
                let actor = myself.clone();
                tokio::task::spawn_blocking(move || {
                    let outcome = RefreshLock::acquire(&dir, &profile, LOCK_TIMEOUT)
                        .map_err(|e| e.to_string())
                        .and_then(|guard| {
                            store.load().map(|s| (guard, s)).map_err(|e| e.to_string())
                        });
                    let _ = actor.cast(SessionMsg::Locked { outcome });
                });
            }
            Effect::UnlockSession => {
                if self.lock.take().is_none() {
                    // Still being acquired: release it as soon as it arrives.
                    self.lock_unwanted = true;
                }
            }
            Effect::PersistSession { session } => {
                self.write(myself, move |store| store.save(&session))
            }
            Effect::DeleteSession => self.write(myself, |store| store.delete()),
            Effect::Event(event) => self.deliver(event),
        }
    }

    fn write<F>(&mut self, myself: &ActorRef<SessionMsg>, operation: F)
    where
        F: FnOnce(&dyn SessionStore) -> Result<(), crate::store::StoreError> + Send + 'static,
    {
        self.writing = true;
        let store = self.args.store.clone();
        let actor = myself.clone();
        tokio::task::spawn_blocking(move || {
            let failure = operation(store.as_ref()).err().map(|e| e.to_string());
            let _ = actor.cast(SessionMsg::Stored { failure });
        });
    }

    fn deliver(&mut self, event: Event) {
        match event {
            Event::TokenReady {
                waiters,
                access_token,
                expires_at,
            } => {
                // One shared copy for every waiter.
                let access_token = SharedSecret::from(&access_token);
                for waiter in waiters {
                    if let Some(reply) = self.waiters.remove(&waiter) {
                        let _ = reply.send(Ok(Token {
                            access_token: access_token.clone(),
                            expires_at,
                        }));
                    }
                }
            }
            Event::TokenFailed { waiters, error } => {
                for waiter in waiters {
                    if let Some(reply) = self.waiters.remove(&waiter) {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
            Event::LoggedIn {
                identity,
                scopes,
                expires_at,
            } => {
                self.stop_loopback();
                if let Some(page) = self.callback_page.take() {
                    page.respond(CallbackPage::Success);
                }
                let report = LoginReport {
                    identity: identity.clone(),
                    scopes,
                    expires_at,
                };
                let _ = self.args.events.send(HostEvent::LoggedIn { identity });
                if let Some(reply) = self.login_replies.pop_front() {
                    let _ = reply.send(Ok(report));
                }
            }
            Event::LoginFailed { error } => {
                // A login replaced by a new one fails while the new one runs: keep its
                // loopback server.
                if !self.engine.status(now()).login_in_progress {
                    self.stop_loopback();
                }
                if let Some(page) = self.callback_page.take() {
                    page.respond(CallbackPage::Failed {
                        message: error.to_string(),
                    });
                }
                if let Some(reply) = self.login_replies.pop_front() {
                    let _ = reply.send(Err(error));
                }
            }
            Event::RefreshFailed { error, retry_at } => {
                tracing::warn!(%error, "refresh failed");
                let _ = self
                    .args
                    .events
                    .send(HostEvent::RefreshFailed { error, retry_at });
            }
            Event::LoggedOut {
                reason,
                end_session_url,
                server_calls,
            } => {
                let _ = self.args.events.send(HostEvent::LoggedOut {
                    reason: reason.clone(),
                });
                match (reason, self.logout_reply.take()) {
                    (LogoutReason::Requested, Some(reply)) => {
                        let _ = reply.send(Ok(LogoutReport {
                            end_session_url,
                            server_calls,
                        }));
                    }
                    (_, reply) => self.logout_reply = reply,
                }
            }
        }
    }

    /// One timer: the engine's next wake-up, re-armed after a drain that moved it.
    fn arm_timer(&mut self, myself: &ActorRef<SessionMsg>) {
        let wanted = self.engine.poll_timeout();
        if wanted == self.timer_at {
            return;
        }
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        self.timer_generation += 1;
        self.timer_at = wanted;
        let Some(at) = wanted else {
            return;
        };
        let delay = Duration::from_millis(now().millis_until(at));
        let generation = self.timer_generation;
        self.timer = Some(myself.send_after(delay, move || SessionMsg::Timer { generation }));
    }
}

/// For logs: never shows a token.
impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("engine", &self.engine)
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl std::fmt::Debug for SessionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionArgs")
            .field("profile", &self.profile)
            .field("config_dir", &self.config_dir)
            .finish()
    }
}

impl std::fmt::Debug for SessionActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionActor")
    }
}
