//! The session actor: owns one [`Engine`], performs its effects, re-arms its one timer.
//!
//! Each message is one input; after it, every effect is drained and performed: HTTP,
//! storage, the lock and the launcher in `spawn_local` tasks that send their outcome back
//! as a message (the handler never awaits the network or the user). Storage writes are
//! ordered: effects after a `PersistSession` or `DeleteSession` wait until it completed,
//! so a rotated refresh token is stored before any caller uses the new access token.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use js_sys::Function;
use ractor::concurrency::OneshotSender;
use ractor::thread_local::ThreadLocalActor;
use ractor::{ActorProcessingErr, ActorRef};
use tessera_engine::{
    Callers, Config, Effect, Engine, Input, LoginMethod, Rejected, Secret, StoredSession,
    UnixMillis,
};

use super::error::Failure;
use super::events::{LoginResult, LogoutResult, StatusReport};
use super::storage::Store;

mod deliver;
mod perform;
mod timer;

/// How long `LockSession` waits for another page or worker holding the refresh lock.
const LOCK_TIMEOUT_MS: f64 = 60_000.0;

pub(crate) type Reply<T> = OneshotSender<Result<T, Failure>>;

/// A request from the `Session` class.
#[derive(Debug)]
pub(crate) enum Command {
    GetToken {
        min_ttl_secs: u64,
        reply: Reply<Secret>,
    },
    TokenRejected {
        token: Secret,
        reply: Reply<Secret>,
    },
    Login {
        method: LoginMethod,
        reply: Reply<LoginResult>,
    },
    Logout {
        force: bool,
        reply: Reply<LogoutResult>,
    },
    Status {
        reply: OneshotSender<StatusReport>,
    },
}

/// Everything the actor reacts to. `Debug` withholds the redirect URL (it carries the
/// authorization code).
pub(crate) enum SessionMsg {
    Command(Command),
    /// An HTTP exchange or a storage read finished.
    Io(Input),
    /// A storage write finished; `failure` when it did not.
    Stored {
        failure: Option<String>,
    },
    /// The refresh lock was taken (its release is in `SessionState::lock`) and storage
    /// re-read, or one of them failed.
    Locked {
        outcome: Result<Option<StoredSession>, String>,
    },
    /// The launcher of login number `launch` came back with the final redirect URL...
    Redirected {
        launch: u64,
        url: String,
    },
    /// ...or failed (window closed, launcher missing or throwing).
    LaunchFailed {
        launch: u64,
        detail: String,
    },
    Timer {
        generation: u64,
    },
}

impl std::fmt::Debug for SessionMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionMsg::Command(command) => f.debug_tuple("Command").field(command).finish(),
            SessionMsg::Io(input) => f.debug_tuple("Io").field(input).finish(),
            SessionMsg::Stored { failure } => {
                f.debug_struct("Stored").field("failure", failure).finish()
            }
            SessionMsg::Locked { outcome } => f
                .debug_struct("Locked")
                .field("ok", &outcome.is_ok())
                .finish(),
            SessionMsg::Redirected { launch, url } => f
                .debug_struct("Redirected")
                .field("launch", launch)
                .field("url_bytes", &url.len())
                .finish(),
            SessionMsg::LaunchFailed { launch, detail } => f
                .debug_struct("LaunchFailed")
                .field("launch", launch)
                .field("detail", detail)
                .finish(),
            SessionMsg::Timer { generation } => f
                .debug_struct("Timer")
                .field("generation", generation)
                .finish(),
        }
    }
}

/// The JavaScript side of a session: not `Send`, so it cannot travel in the actor's
/// (Send) start arguments; `Session::open` parks it under a ticket that `pre_start`
/// redeems on the same thread.
#[derive(Debug)]
pub(crate) struct Adapters {
    pub store: Store,
    pub launcher: Option<Function>,
    pub listeners: Rc<RefCell<Vec<Function>>>,
}

thread_local! {
    static PARKED: RefCell<HashMap<u64, Adapters>> = RefCell::new(HashMap::new());
    static NEXT_TICKET: RefCell<u64> = const { RefCell::new(0) };
}

/// Redeems [`Adapters`] parked by [`park`].
#[derive(Debug)]
pub(crate) struct Ticket(u64);

pub(crate) fn park(adapters: Adapters) -> Ticket {
    let id = NEXT_TICKET.with(|next| {
        let mut next = next.borrow_mut();
        *next += 1;
        *next
    });
    PARKED.with(|parked| parked.borrow_mut().insert(id, adapters));
    Ticket(id)
}

/// What the actor is started with.
#[derive(Debug)]
pub(crate) struct SessionArgs {
    pub config: Config,
    pub seed: [u8; 32],
    pub adapters: Ticket,
}

#[derive(Debug, Default)]
pub(crate) struct SessionActor;

pub(crate) struct SessionState {
    engine: Engine,
    adapters: Adapters,
    /// Effects not yet performed, in order.
    queue: VecDeque<Effect>,
    /// A storage write is in flight; the queue waits for it.
    writing: bool,
    /// Releases the Web Lock taken for `LockSession`, once it is held.
    lock: Rc<RefCell<Option<Function>>>,
    /// `UnlockSession` arrived while the lock was still being acquired.
    lock_unwanted: bool,
    /// The calls waiting for an event; which event answers which call is the engine's
    /// rule (`tessera_engine::Callers`).
    callers: Callers<Reply<Secret>, Reply<LoginResult>, Reply<LogoutResult>>,
    /// Numbers launcher calls, so the answer of a replaced login is ignored.
    launch: u64,
    timer: Option<timer::Timer>,
    timer_generation: u64,
    /// The last storage failure, until a storage write succeeds.
    storage_problem: Option<String>,
}

impl ThreadLocalActor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    /// Loads the stored session before the actor takes messages, so `Session.open`
    /// resolves with the session as storage has it.
    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        let adapters = PARKED
            .with(|parked| parked.borrow_mut().remove(&args.adapters.0))
            .ok_or("the session's adapters were not found")?;
        let mut state = SessionState {
            engine: Engine::new(args.config, args.seed, now()),
            adapters,
            queue: VecDeque::new(),
            writing: false,
            lock: Rc::default(),
            lock_unwanted: false,
            callers: Callers::new(),
            launch: 0,
            timer: None,
            timer_generation: 0,
            storage_problem: None,
        };
        // Engine::new asks for the stored session first.
        while let Some(effect) = state.engine.poll_effect() {
            if effect != Effect::LoadSession {
                state.queue.push_back(effect);
            }
        }
        let input = match state.adapters.store.load().await {
            Ok(session) => Input::SessionLoaded { session },
            Err(detail) => {
                state.storage_failed(&detail);
                Input::StorageFailed { detail }
            }
        };
        state.feed(&myself, input);
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        // A pending setTimeout would keep node (or a test runner) alive after close().
        state.disarm_timer();
        state.release_lock();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        message: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionMsg::Command(command) => state.command(&myself, command),
            SessionMsg::Io(input) => {
                state.feed(&myself, input);
            }
            SessionMsg::Stored { failure } => {
                state.writing = false;
                if let Some(detail) = &failure {
                    state.storage_failed(detail);
                }
                state.storage_problem = failure;
                state.pump(&myself);
            }
            SessionMsg::Locked { outcome } => match outcome {
                Ok(session) if state.lock_unwanted => {
                    drop(session);
                    state.lock_unwanted = false;
                    state.release_lock();
                }
                Ok(session) => {
                    state.feed(&myself, Input::SessionLocked { session });
                }
                Err(detail) => {
                    state.lock_unwanted = false;
                    state.release_lock();
                    state.feed(&myself, Input::StorageFailed { detail });
                }
            },
            SessionMsg::Redirected { launch, url } if launch == state.launch => {
                if let Some(rejected) = state.feed(&myself, Input::Callback { url }) {
                    // One launcher call brings exactly one redirect: nothing else can come
                    // for this login, so a redirect the engine refused ends it.
                    state.end_login(
                        &myself,
                        Failure::new(
                            "protocol",
                            format!("the sign-in redirect was not accepted: {rejected}"),
                        ),
                    );
                }
            }
            SessionMsg::LaunchFailed { launch, detail } if launch == state.launch => {
                state.end_login(
                    &myself,
                    Failure::new("interrupted", format!("sign-in did not finish: {detail}")),
                );
            }
            SessionMsg::Redirected { .. } | SessionMsg::LaunchFailed { .. } => {}
            SessionMsg::Timer { generation } if generation == state.timer_generation => {
                match &state.timer {
                    // Browsers cap delays at ~24.8 days: a long wait fires early.
                    Some(timer) if now() < timer.at => state.arm_timer(&myself),
                    _ => {
                        state.feed(&myself, Input::Timeout);
                    }
                }
            }
            SessionMsg::Timer { .. } => {}
        }
        Ok(())
    }
}

impl SessionState {
    /// One input, then drain and perform.
    fn feed(&mut self, myself: &ActorRef<SessionMsg>, input: Input) -> Option<Rejected> {
        let rejected = self.engine.handle(now(), input).err();
        self.pump(myself);
        rejected
    }

    fn command(&mut self, myself: &ActorRef<SessionMsg>, command: Command) {
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
                self.callers.wait_for_login(reply);
                self.launch += 1;
                let login = Input::Login {
                    method,
                    redirect_uri: None,
                };
                if let Some(rejected) = self.feed(myself, login)
                    && let Some(reply) = self.callers.login_refused()
                {
                    let _ = reply.send(Err(Failure::new("config", rejected.to_string())));
                }
            }
            Command::Logout { force, reply } => {
                // A second logout replaces the first; the first caller's reply is dropped.
                self.callers.wait_for_logout(reply);
                self.feed(myself, Input::Logout { force });
            }
            Command::Status { reply } => {
                let _ = reply.send(StatusReport {
                    status: self.engine.status(now()),
                    storage_problem: self.storage_problem.clone(),
                });
            }
        }
    }

    /// Fails the current `login()` with `failure` and tells the engine the flow is over.
    fn end_login(&mut self, myself: &ActorRef<SessionMsg>, failure: Failure) {
        if let Some(reply) = self.callers.login_refused() {
            let _ = reply.send(Err(failure));
        }
        self.feed(myself, Input::Cancel);
    }

    /// Drains the engine into the queue and performs effects until a storage write must
    /// complete first.
    fn pump(&mut self, myself: &ActorRef<SessionMsg>) {
        while let Some(effect) = self.engine.poll_effect() {
            self.queue.push_back(effect);
        }
        while !self.writing {
            let Some(effect) = self.queue.pop_front() else {
                break;
            };
            self.perform(myself, effect);
        }
        self.arm_timer(myself);
    }
}

/// The wall clock as the engine's time.
pub(crate) fn now() -> UnixMillis {
    // Date.now() is a whole number of milliseconds, far below 2^53.
    UnixMillis(js_sys::Date::now() as u64)
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
