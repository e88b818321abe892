//! The session actor: an executor for the engine's session [`Driver`].
//!
//! Each message is one [`DriverInput`]; after it the actor performs every [`Action`]
//! (`perform.rs`): HTTP, storage, the lock and the launcher in `spawn_local` tasks that
//! send their outcome back as a message (the handler never awaits the network or the
//! user), replies to the promises, events, the one `setTimeout`. Every decision — which
//! event answers which call, write ordering, the lock's retries, timers, what ends a
//! login — is the driver's.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::Function;
use ractor::concurrency::OneshotSender;
use ractor::thread_local::ThreadLocalActor;
use ractor::{ActorProcessingErr, ActorRef};
use tessera_engine::driver::{Action, CallId, Command, Driver, DriverInput, DriverOptions};
use tessera_engine::{Config, Secret, UnixMillis};

use super::error::Failure;
use super::events::{LoginResult, LogoutResult, StatusReport};
use super::storage::Store;

mod perform;
mod timer;

pub(crate) type Reply<T> = OneshotSender<Result<T, Failure>>;

/// A promise's resolver, by what it waits for.
#[derive(Debug)]
pub(crate) enum Waiting {
    Token(Reply<Secret>),
    Login(Reply<LoginResult>),
    Logout(Reply<LogoutResult>),
    Status(OneshotSender<StatusReport>),
}

/// Everything the actor reacts to.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved once per message; a box would cost more
pub(crate) enum SessionMsg {
    Call(Command, Waiting),
    /// What an I/O task produced.
    Io(DriverInput),
    /// The launcher of login number `launch` came back with the final redirect URL...
    Redirected {
        launch: u64,
        url: Redirect,
    },
    /// ...or failed (window closed, launcher missing or throwing).
    LaunchFailed {
        launch: u64,
        detail: String,
    },
    TimerFired,
}

/// A redirect URL: it carries the authorization code, so `Debug` shows its length only.
pub(crate) struct Redirect(pub String);

impl std::fmt::Debug for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
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
    driver: Driver,
    adapters: Adapters,
    waiting: HashMap<CallId, Waiting>,
    /// Releases the Web Lock, once it is held.
    lock: Rc<RefCell<Option<Function>>>,
    /// Numbers launcher calls, so the answer of a replaced login is ignored.
    launch: u64,
    timer: Option<timer::Timer>,
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
        // Browsers have no terminal to paste into.
        let options = DriverOptions {
            can_prompt_for_code: false,
            ..DriverOptions::default()
        };
        let mut state = SessionState {
            driver: Driver::new(args.config, args.seed, now(), options),
            adapters,
            waiting: HashMap::new(),
            lock: Rc::default(),
            launch: 0,
            timer: None,
        };
        // The driver's first action is the load: done here, awaited.
        let loaded = match state.driver.poll_action() {
            Some(Action::Load) => perform::load(&state.adapters.store).await,
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
        // Answers waiting calls, releases the lock, and clears the setTimeout (which would
        // keep node, or a test runner, alive after close()).
        state.feed(&myself, DriverInput::Stop);
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
                if matches!(command, Command::Login { .. }) {
                    state.launch += 1;
                }
                let call = state.driver.call(now(), command);
                state.waiting.insert(call, waiting);
                None
            }
            SessionMsg::Io(input) => Some(input),
            // One launcher call brings exactly one redirect: a refused one ends the login.
            SessionMsg::Redirected { launch, url } if launch == state.launch => {
                let command = Command::Callback {
                    url: url.0,
                    last: true,
                };
                let _ = state.driver.call(now(), command);
                None
            }
            SessionMsg::Redirected { .. } => None,
            SessionMsg::LaunchFailed { launch, detail } => {
                (launch == state.launch).then_some(DriverInput::LaunchFailed { detail })
            }
            SessionMsg::TimerFired => Some(DriverInput::TimerFired),
        };
        if let Some(input) = input {
            let _ = state.driver.handle(now(), input);
        }
        state.perform_all(&myself);
        Ok(())
    }
}

impl SessionState {
    /// One input, then every action.
    fn feed(&mut self, myself: &ActorRef<SessionMsg>, input: DriverInput) {
        let _ = self.driver.handle(now(), input);
        self.perform_all(myself);
    }

    fn perform_all(&mut self, myself: &ActorRef<SessionMsg>) {
        while let Some(action) = self.driver.poll_action() {
            self.perform(myself, action);
        }
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
            .field("driver", &self.driver)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}
