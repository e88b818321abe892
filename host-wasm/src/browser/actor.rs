//! The session's mailbox: an executor for the engine's session [`Driver`] on the browser's
//! event loop.
//!
//! Everything runs on one thread, so the "actor" is a queue of messages drained in order
//! by whoever delivers one while no drain runs: a call from JavaScript, a `fetch` or
//! storage task finishing, the `setTimeout`. Each message is one [`DriverInput`]; after it
//! every [`Action`] is performed (`perform.rs`): I/O in `spawn_local` tasks that deliver
//! their outcome back here (nothing waits on the network or the user while the state is
//! held), promises settled, events, the one timer. Every decision — which event answers
//! which call, write ordering, the lock's retries, timers, what ends a login — is the
//! driver's. No actor framework or async runtime: a listener that calls the session from
//! an event only queues its call behind the current one.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::Function;
use tessera_engine::UnixMillis;
use tessera_engine::driver::{CallId, Command, Driver, DriverInput};

use super::promises::Waiting;
use super::storage::Store;

mod perform;
mod timer;

/// Everything the session reacts to.
#[allow(clippy::large_enum_variant)] // moved once per message; a box would cost more
pub(crate) enum SessionMsg {
    Call(Command, Waiting),
    /// What an I/O task produced.
    Io(DriverInput),
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
    TimerFired,
    /// `close()`: waiting calls are answered, the lock released, the timer cleared.
    Stop,
}

/// What the host needs besides the driver: storage, the launcher, the listeners.
#[derive(Debug)]
pub(crate) struct Adapters {
    pub store: Store,
    pub launcher: Option<Function>,
    pub listeners: Rc<RefCell<Vec<Function>>>,
}

/// The driver and what its actions need.
pub(crate) struct SessionState {
    driver: Driver,
    adapters: Adapters,
    /// The promises of calls not answered yet: a few at a time, so a list (a `HashMap`
    /// brought hashbrown and SipHash into the module for nothing).
    waiting: Vec<(CallId, Waiting)>,
    /// Releases the Web Lock, once it is held.
    lock: Rc<RefCell<Option<Function>>>,
    /// Numbers launcher calls, so the answer of a replaced login is ignored.
    launch: u64,
    timer: Option<timer::Timer>,
}

/// A handle to the mailbox; cheap to clone. Tasks hold a [`WeakMailbox`].
#[derive(Clone)]
pub(crate) struct Mailbox(Rc<Inner>);

/// What tasks and timers deliver to: nothing once the session is gone.
#[derive(Clone)]
pub(crate) struct WeakMailbox(Weak<Inner>);

struct Inner {
    state: RefCell<SessionState>,
    queue: RefCell<VecDeque<SessionMsg>>,
    draining: Cell<bool>,
    closed: Cell<bool>,
}

/// The session was closed: the message was not taken.
#[derive(Debug)]
pub(crate) struct Closed;

impl Mailbox {
    /// A session around `driver`, which has had its first load answered.
    pub fn new(driver: Driver, adapters: Adapters) -> Self {
        let state = SessionState {
            driver,
            adapters,
            waiting: Vec::new(),
            lock: Rc::default(),
            launch: 0,
            timer: None,
        };
        let mailbox = Mailbox(Rc::new(Inner {
            state: RefCell::new(state),
            queue: RefCell::default(),
            draining: Cell::new(false),
            closed: Cell::new(false),
        }));
        let weak = mailbox.downgrade();
        mailbox.0.state.borrow_mut().perform_pending(&weak);
        mailbox
    }

    pub fn is_closed(&self) -> bool {
        self.0.closed.get()
    }

    pub fn send(&self, message: SessionMsg) -> Result<(), Closed> {
        deliver(&self.0, message)
    }

    pub fn downgrade(&self) -> WeakMailbox {
        WeakMailbox(Rc::downgrade(&self.0))
    }
}

impl WeakMailbox {
    pub fn send(&self, message: SessionMsg) -> Result<(), Closed> {
        match self.0.upgrade() {
            Some(inner) => deliver(&inner, message),
            None => Err(Closed),
        }
    }
}

fn deliver(inner: &Rc<Inner>, message: SessionMsg) -> Result<(), Closed> {
    if inner.closed.get() {
        return Err(Closed);
    }
    if matches!(message, SessionMsg::Stop) {
        inner.closed.set(true);
    }
    inner.queue.borrow_mut().push_back(message);
    drain(inner);
    Ok(())
}

/// Handles queued messages until none is left, unless a drain further up the stack
/// (a listener called back into the session) is already doing it.
fn drain(inner: &Rc<Inner>) {
    if inner.draining.replace(true) {
        return;
    }
    let mailbox = WeakMailbox(Rc::downgrade(inner));
    loop {
        let Some(message) = inner.queue.borrow_mut().pop_front() else {
            break;
        };
        inner.state.borrow_mut().handle(&mailbox, message);
    }
    inner.draining.set(false);
}

impl SessionState {
    fn handle(&mut self, mailbox: &WeakMailbox, message: SessionMsg) {
        let now = now();
        match message {
            SessionMsg::Call(command, waiting) => {
                if matches!(command, Command::Login { .. }) {
                    self.launch += 1;
                }
                let call = self.driver.call(now, command);
                // Call ids are unique; were one reused, the newer promise replaces the
                // older as a map would.
                match self.waiting.iter_mut().find(|(id, _)| *id == call) {
                    Some(slot) => slot.1 = waiting,
                    None => self.waiting.push((call, waiting)),
                }
            }
            SessionMsg::Io(input) => drop(self.driver.handle(now, input)),
            // One launcher call brings exactly one redirect: a refused one ends the login.
            SessionMsg::Redirected { launch, url } if launch == self.launch => {
                let _ = self.driver.call(now, Command::Callback { url, last: true });
            }
            SessionMsg::LaunchFailed { launch, detail } if launch == self.launch => {
                let _ = self
                    .driver
                    .handle(now, DriverInput::LaunchFailed { detail });
            }
            SessionMsg::Redirected { .. } | SessionMsg::LaunchFailed { .. } => {}
            SessionMsg::TimerFired => drop(self.driver.handle(now, DriverInput::TimerFired)),
            SessionMsg::Stop => drop(self.driver.handle(now, DriverInput::Stop)),
        }
        self.perform_pending(mailbox);
    }

    fn perform_pending(&mut self, mailbox: &WeakMailbox) {
        while let Some(action) = self.driver.poll_action() {
            self.perform(mailbox, action);
        }
    }
}

/// The wall clock as the engine's time.
pub(crate) fn now() -> UnixMillis {
    // Date.now() is a whole number of milliseconds, far below 2^53.
    UnixMillis(js_sys::Date::now() as u64)
}

/// Counts only: nothing here may show a token.
impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("queued", &self.0.queue.borrow().len())
            .field("closed", &self.0.closed.get())
            .finish()
    }
}

impl std::fmt::Debug for WeakMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakMailbox")
    }
}
