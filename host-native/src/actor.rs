//! The session actor: an executor for the engine's session [`Driver`].
//!
//! Each message is one [`DriverInput`]; after it the actor performs every [`Action`] the
//! driver asks for (`perform.rs`): HTTP and storage in spawned tasks that send their
//! outcome back as a message, the refresh lock polled before every message
//! (`locking.rs`; the handler never awaits I/O), replies to callers, events, the one timer. Every decision — which event answers which call, write ordering,
//! the lock's retries, timers — is the driver's. After each message the session is
//! published for the lock-free fast path (see [`crate::published`]).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tessera_engine::Config;
use tessera_engine::driver::{Action, CallId, Command, Driver, DriverInput, DriverOptions};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::clock::now;
use crate::events::HostEvent;
use crate::http::{HttpExecutor, uses_tls};
use crate::loopback::LoopbackOptions;
use crate::published::Published;
use crate::replies::{Waiting, answer};
use crate::store::{LockGuard, Locked, SessionStore, StoreError, load_input};

mod locking;
mod perform;
mod redirect;

use locking::Locking;

/// Everything the actor reacts to.
#[derive(Debug)]
pub enum SessionMsg {
    /// A call from the application (a browser login's loopback server is started first).
    Call(Command, Waiting),
    /// What an I/O task produced (boxed: every message is as large as the largest, and
    /// a refresh storm queues a thousand calls).
    Io(Box<DriverInput>),
    /// The refresh lock being acquired may have an answer (see `locking.rs`).
    LockReady,
    TimerFired,
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
    /// An HTTP client shared with other sessions (one connection pool for many users).
    pub http: Option<HttpExecutor>,
    /// How long a refresh waits for the lock, and how long a holder keeps it at most.
    pub refresh_lock: Option<(std::time::Duration, std::time::Duration)>,
}

#[derive(Debug)]
pub struct SessionActor;

pub struct SessionState {
    driver: Driver,
    args: SessionArgs,
    http: HttpExecutor,
    waiting: HashMap<CallId, Waiting>,
    lock: Option<LockGuard>,
    locking: Locking,
    loopback: Option<JoinHandle<()>>,
    timer: Option<JoinHandle<Result<(), ractor::MessagingErr<SessionMsg>>>>,
    /// Whether this session must not be stopped now (see [`crate::shutdown`]).
    critical: crate::shutdown::Critical,
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
        let defaults = DriverOptions::default();
        let options = DriverOptions {
            journal: args.recorder.is_some(),
            lock_wait_ms: args
                .refresh_lock
                .map_or(defaults.lock_wait_ms, |(wait, _)| wait.as_millis() as u64),
            lock_lease_ms: args
                .refresh_lock
                .map_or(defaults.lock_lease_ms, |(_, lease)| {
                    lease.as_millis() as u64
                }),
            ..defaults
        };
        if let Some(recorder) = &args.recorder {
            recorder.started(&args.config, seed, start);
        }
        let http = args.http.clone().unwrap_or_default();
        let mut state = SessionState {
            driver: Driver::new(args.config.clone(), seed, start, options),
            args,
            http,
            waiting: HashMap::new(),
            lock: None,
            locking: Locking::new(myself.clone()),
            loopback: None,
            timer: None,
            critical: crate::shutdown::Critical::default(),
        };
        // The driver's first action is the load: done here, awaited.
        let loaded = match state.driver.poll_action() {
            Some(Action::Load) => load_input(state.args.store.as_ref()).await,
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
        // The lock's answer first: the refresh request waits for it, callers can wait.
        if let Some(outcome) = state.locking.poll() {
            state.lock_answered(&myself, outcome);
        }
        let input = match message {
            SessionMsg::Call(command, waiting) => {
                state.call(&myself, command, waiting).await;
                None
            }
            SessionMsg::Io(input) => Some(*input),
            SessionMsg::LockReady => None,
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
                    return answer(waiting, tessera_engine::driver::Reply::Failed { error });
                }
            }
        }
        if matches!(
            command,
            Command::Login { .. } | Command::Logout { force: false }
        ) {
            self.http
                .warm_up(uses_tls(self.driver.config(), self.driver.session()));
        }
        let call = self.driver.call(now(), command);
        self.waiting.insert(call, waiting);
        self.perform_all(myself);
    }

    /// The refresh lock was taken and the store read (`Some`), stayed busy (`None`), or
    /// failed.
    fn lock_answered(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        outcome: Result<Option<Locked>, StoreError>,
    ) {
        let input = match outcome {
            Ok(Some(Locked { guard, read })) => {
                self.lock = Some(guard);
                let (session, version) = read.map(|r| (r.session, r.version)).unzip();
                DriverInput::LockAcquired { session, version }
            }
            Ok(None) => DriverInput::LockBusy,
            Err(error) => DriverInput::LockFailed {
                detail: error.to_string(),
            },
        };
        self.feed(myself, input);
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
        self.critical.set(self.driver.in_critical_section());
        self.publish();
    }

    fn publish(&self) {
        Published::publish(&self.args.cache, self.driver.session());
        let problem = self.driver.storage_problem();
        if self
            .args
            .storage_problem
            .load()
            .as_deref()
            .map(String::as_str)
            != problem
        {
            let problem = problem.map(|p| Arc::new(p.to_owned()));
            self.args.storage_problem.store(problem);
        }
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
