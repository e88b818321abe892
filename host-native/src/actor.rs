//! The session actor: owns one [`Engine`], performs its effects, re-arms its one timer.
//!
//! Each message is one input; after it, every effect is drained and performed:
//! HTTP in spawned tasks that send the answer back as a message (the handler never awaits
//! the network), storage in `spawn_blocking`. Storage writes are ordered: effects after a
//! `PersistSession` or `DeleteSession` wait until it completed, so a rotated refresh token
//! is on disk before any waiter uses the new access token. After each drain the current
//! session is published for the lock-free fast path (see [`crate::client`]).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tessera_engine::{
    Callers, Config, Effect, Engine, Error, Input, LoginMethod, Rejected, Secret, StoredSession,
};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::client::Published;
use crate::clock::now;
use crate::events::{HostEvent, LoginReport, LogoutReport, Token};
use crate::http::HttpExecutor;
use crate::loopback::PendingCallback;
use crate::store::{RefreshLockGuard, SessionStore, StoreInfo};

mod deliver;
mod perform;
mod redirect;

/// How long `LockSession` waits for a sibling process holding the refresh lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the answer to one call goes.
pub type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// A request from the application.
#[derive(Debug)]
pub enum Command {
    GetToken {
        min_ttl_secs: u64,
        reply: Reply<Token>,
    },
    TokenRejected {
        token: Secret,
        reply: Reply<Token>,
    },
    Login {
        method: LoginMethod,
        reply: Reply<LoginReport>,
    },
    Logout {
        force: bool,
        reply: Reply<LogoutReport>,
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
    /// The calls waiting for an event; which event answers which call is the engine's
    /// rule (`tessera_engine::Callers`).
    callers: Callers<Reply<Token>, Reply<LoginReport>, Reply<LogoutReport>>,
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
            callers: Callers::new(),
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
                let waiter = self.callers.wait_for_token(reply);
                self.feed(
                    myself,
                    Input::GetToken {
                        waiter,
                        min_ttl_secs,
                    },
                );
            }
            Command::TokenRejected { token, reply } => {
                let waiter = self.callers.wait_for_token(reply);
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
                self.callers.wait_for_login(reply);
                let login = Input::Login {
                    method,
                    redirect_uri,
                };
                if let Some(rejected) = self.feed(myself, login)
                    && let Some(reply) = self.callers.login_refused()
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
                // A second logout replaces the first; the first caller's reply is dropped.
                self.callers.wait_for_logout(reply);
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
