//! The session actor: an executor for the engine's session [`Driver`].
//!
//! Each message is one [`DriverInput`]; after it the actor performs every [`Action`] the
//! driver asks for (`perform.rs`): HTTP, storage and the lock in spawned tasks that send
//! their outcome back as a message (the handler never awaits I/O), replies to callers,
//! events, the one timer. Every decision — which event answers which call, write ordering,
//! the lock's retries, timers — is the driver's. After each message the session is
//! published for the lock-free fast path (see [`crate::published`]).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tessera_engine::driver::{Action, CallId, Command, Driver, DriverInput, DriverOptions};
use tessera_engine::{Config, Error, Rejected};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::clock::now;
use crate::events::{HostEvent, LoginReport, LogoutReport, Token};
use crate::http::HttpExecutor;
use crate::loopback::PendingCallback;
use crate::published::Published;
use crate::store::{LockGuard, SessionStore, StoreInfo};

mod perform;
mod redirect;

/// Where the answer to one call goes.
pub type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// A caller's reply handle, by what it waits for.
#[derive(Debug)]
pub enum Waiting {
    Token(Reply<Token>),
    Login(Reply<LoginReport>),
    Logout(Reply<LogoutReport>),
    Pasted(oneshot::Sender<Result<(), Rejected>>),
    Status(oneshot::Sender<StatusReport>),
    /// The browser waiting on the loopback server for its result page.
    Page(PendingCallback),
    /// Nobody waits (a cancel).
    Nobody,
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

/// Everything the actor reacts to.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved once per message; a box would cost more
pub enum SessionMsg {
    /// A call from the application (a browser login's loopback server is started first).
    Call(Command, Waiting),
    /// What an I/O task produced.
    Io(DriverInput),
    /// The refresh lock was taken (`Some`), stayed busy (`None`) or failed.
    Locked(Result<Option<LockGuard>, String>),
    TimerFired,
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
    pub loopback: LoopbackOptions,
    /// Open the user's browser for `OpenBrowser` (else only report the URL).
    pub open_browser: bool,
    pub cache: Arc<ArcSwapOption<Published>>,
    /// The last storage failure, for `Client::storage_problem`.
    pub storage_problem: Arc<ArcSwapOption<String>>,
    pub events: broadcast::Sender<HostEvent>,
    /// Records every engine input (`--record`).
    pub recorder: Option<crate::record::Recorder>,
}

#[derive(Debug)]
pub struct SessionActor;

pub struct SessionState {
    driver: Driver,
    args: SessionArgs,
    http: HttpExecutor,
    waiting: HashMap<CallId, Waiting>,
    lock: Option<LockGuard>,
    loopback: Option<JoinHandle<()>>,
    timer: Option<JoinHandle<Result<(), ractor::MessagingErr<SessionMsg>>>>,
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
        let options = DriverOptions {
            journal: args.recorder.is_some(),
            ..DriverOptions::default()
        };
        if let Some(recorder) = &args.recorder {
            recorder.started(&args.config, seed, start);
        }
        let mut state = SessionState {
            driver: Driver::new(args.config.clone(), seed, start, options),
            args,
            http: HttpExecutor::default(),
            waiting: HashMap::new(),
            lock: None,
            loopback: None,
            timer: None,
        };
        // The driver's first action is the load: done here, awaited.
        let loaded = match state.driver.poll_action() {
            Some(Action::Load) => perform::load(state.args.store.as_ref()).await,
            _ => return Err("the session driver did not start with a load".into()),
        };
        state.feed(&myself, loaded);
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        state.feed(&myself, DriverInput::Stop);
        state.stop_loopback();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        message: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        let input = match message {
            SessionMsg::Call(command, waiting) => {
                state.call(&myself, command, waiting).await;
                None
            }
            SessionMsg::Io(input) => Some(input),
            SessionMsg::Locked(Ok(Some(guard))) => {
                state.lock = Some(guard);
                Some(DriverInput::LockAcquired)
            }
            SessionMsg::Locked(Ok(None)) => Some(DriverInput::LockBusy),
            SessionMsg::Locked(Err(detail)) => Some(DriverInput::LockFailed { detail }),
            SessionMsg::TimerFired => Some(DriverInput::TimerFired),
        };
        if let Some(input) = input {
            state.feed(&myself, input);
        }
        Ok(())
    }
}

impl SessionState {
    /// Hands the call to the driver and keeps its reply handle under the driver's number.
    /// A browser login first starts the loopback server, whose address is the redirect URI.
    async fn call(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        mut command: Command,
        waiting: Waiting,
    ) {
        if let Command::Login {
            method: tessera_engine::LoginMethod::Browser,
            redirect_uri,
        } = &mut command
        {
            match self.start_loopback(myself).await {
                Ok(uri) => *redirect_uri = Some(uri),
                Err(error) => {
                    return perform::answer(
                        waiting,
                        tessera_engine::driver::Reply::Failed { error },
                    );
                }
            }
        }
        if matches!(
            command,
            Command::Login { .. } | Command::Logout { force: false }
        ) {
            self.http.warm_up(self.uses_tls());
        }
        let call = self.driver.call(now(), command);
        self.waiting.insert(call, waiting);
        self.perform_all(myself);
    }

    /// One input, then every action.
    fn feed(&mut self, myself: &ActorRef<SessionMsg>, input: DriverInput) {
        if let Err(rejected) = self.driver.handle(now(), input) {
            tracing::debug!(%rejected, "input rejected");
        }
        self.perform_all(myself);
    }

    /// Every action the driver has; then the fast path and the storage problem are
    /// published.
    fn perform_all(&mut self, myself: &ActorRef<SessionMsg>) {
        while let Some(action) = self.driver.poll_action() {
            self.perform(myself, action);
        }
        if let Some(recorder) = &self.args.recorder {
            for (at, input) in self.driver.take_journal() {
                recorder.input(at, &input);
            }
        }
        self.publish();
    }

    /// Publishes the session for the fast path, when it changed. Most inputs (every
    /// caller joining a refresh in flight, for one) change nothing, and skipping the copy
    /// keeps a crowd of waiters from delaying the refresh they wait for.
    fn publish(&self) {
        let current = self.driver.session();
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
        let problem = self.driver.storage_problem();
        if self
            .args
            .storage_problem
            .load()
            .as_deref()
            .map(String::as_str)
            != problem
        {
            self.args
                .storage_problem
                .store(problem.map(|p| Arc::new(p.to_owned())));
        }
    }

    /// Whether the provider is reached over HTTPS (so warming up the HTTP client should
    /// also load the root certificates).
    fn uses_tls(&self) -> bool {
        let config = self.driver.config();
        let stored = self
            .driver
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
}

/// For logs: never shows a token.
impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("driver", &self.driver)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl std::fmt::Debug for SessionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionArgs")
            .field("store", &self.store.info().location)
            .finish_non_exhaustive()
    }
}
