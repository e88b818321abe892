//! The session driver: everything between a host's callers and I/O and the [`Engine`].
//!
//! A host is an executor. It hands the driver what happened ([`DriverInput`]: a caller's
//! command, an HTTP response, the timer, what the store and its lock answered) and
//! performs what the driver asks ([`Action`]: send this request, arm this timer, load,
//! save or delete the session, take or release the refresh lock, answer call N, tell the
//! application). Every decision in between is made here, once, for every host:
//!
//! - which event answers which call ([`calls`](self) module), and what a caller is told
//!   when storage fails: a login whose session could not be stored fails with a storage
//!   error; a refreshed token is still handed out (it is valid) with a
//!   [`Notice::StorageFailed`]; a logout whose delete failed fails with a storage error;
//! - storage writes are ordered: nothing after a `Save` or `Delete` is done until the
//!   store answered, so a rotated refresh token is stored before any caller gets the new
//!   access token; a save under the refresh lock is retried before the lock is released;
//! - the refresh lock: taken with a bounded wait (the store reads the session once it
//!   holds it), retried after `LockBusy` with backoff until
//!   [`DriverOptions::lock_wait_ms`] have passed; a session this process could not store
//!   is not replaced by the older one the re-read finds;
//! - one timer: re-armed only when the wanted time changes, re-armed when it fires early,
//!   and a deadline that has already passed is handled at once, without a timer;
//! - stopping answers every waiting call with [`Error::Stopped`].
//!
//! ```text
//!  host ──DriverInput──▶ Driver::handle ──Input──▶ Engine ──Effect──▶ Driver ──Action──▶ host
//!                             │   ▲                                     │
//!                             │   └──── store / lock answers ◀──────────┘ (Load, Save, AcquireLock)
//!                             └──▶ poll_action() until None
//! ```
//!
//! ## Run loop
//!
//! ```
//! use tessera_engine::driver::{Action, CallId, Command, Driver, DriverInput, DriverOptions};
//! use tessera_engine::{Config, UnixMillis};
//!
//! let now = UnixMillis(1_700_000_000_000);
//! let config = Config::new("https://op.example", "my-cli");
//! let mut driver = Driver::new(config, [7; 32], now, DriverOptions::default());
//! assert_eq!(driver.poll_action(), Some(Action::Load));
//! driver.handle(now, DriverInput::Loaded { session: None, version: None });
//! driver.handle(now, DriverInput::Call { call: CallId(1), command: Command::GetToken { min_ttl_secs: 0 } });
//! while let Some(action) = driver.poll_action() {
//!     // perform it; here: Reply { call: 1, reply: Failed { error: not_logged_in } }
//!     # let _ = action;
//! }
//! ```

mod calls;
mod effects;
mod io;
mod storage;

use std::collections::VecDeque;

pub use io::{
    Action, CallId, Command, DriverInput, LoginOutcome, LogoutOutcome, Notice, Reply, Version,
};

use crate::config::Config;
use crate::effect::Effect;
use crate::error::{Error, Rejected};
use crate::input::Input;
use crate::session::StoredSession;
use crate::time::UnixMillis;
use crate::{Engine, Status};
use calls::Calls;
use storage::{Lock, StoreOp};

/// What the driver needs to know about its host.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriverOptions {
    /// How long a refresh waits for another holder of the refresh lock before it fails.
    pub lock_wait_ms: u64,
    /// How long the lock stays ours if this process dies holding it.
    pub lock_lease_ms: u64,
    /// The host can ask the user to paste a code (a terminal can, a browser worker cannot).
    pub can_prompt_for_code: bool,
    /// Keep a journal of engine inputs ([`Driver::take_journal`]), for recording.
    pub journal: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            lock_wait_ms: 60_000,
            lock_lease_ms: 120_000,
            can_prompt_for_code: true,
            journal: false,
        }
    }
}

/// How many times a save under the refresh lock is tried before the lock is released
/// with the session unsaved (another process would then refresh with a rotated token).
const SAVE_ATTEMPTS: u32 = 3;

/// One session, driven. See the module docs.
pub struct Driver {
    engine: Engine,
    options: DriverOptions,
    /// Engine effects not yet performed: they wait behind a store operation in flight.
    backlog: VecDeque<Effect>,
    actions: VecDeque<Action>,
    calls: Calls,
    /// The store operation in flight, if any.
    store_op: Option<StoreOp>,
    /// The version of the stored session as last read or written.
    stored_version: Option<Version>,
    /// The engine holds a session that storage does not (a save failed).
    unsaved: bool,
    /// Why the last write failed, for the reply that follows it.
    write_failure: Option<String>,
    lock: Lock,
    /// The time the host's timer is armed for.
    timer: Option<UnixMillis>,
    storage_problem: Option<String>,
    journal: Option<Vec<(UnixMillis, Input)>>,
    stopped: bool,
    /// The id [`Driver::call`] gives next.
    next_call: u64,
}

impl Driver {
    /// A driver around a new engine; its first action is `Load`.
    pub fn new(config: Config, seed: [u8; 32], now: UnixMillis, options: DriverOptions) -> Self {
        let engine = Engine::new(config, seed, now);
        let journal = options.journal.then(Vec::new);
        let mut driver = Self {
            engine,
            options,
            backlog: VecDeque::new(),
            actions: VecDeque::new(),
            calls: Calls::default(),
            store_op: None,
            stored_version: None,
            unsaved: false,
            write_failure: None,
            lock: Lock::Released,
            timer: None,
            storage_problem: None,
            journal,
            stopped: false,
            next_call: 1,
        };
        driver.settle(now);
        driver
    }

    /// Feeds one input. `Err` only for an I/O answer nothing asked for (an unknown
    /// request id, a store answer with no operation in flight): it is dropped.
    pub fn handle(&mut self, now: UnixMillis, input: DriverInput) -> Result<(), Rejected> {
        let result = match input {
            DriverInput::Call { call, command } => {
                self.next_call = self.next_call.max(call.0.saturating_add(1));
                self.command(now, call, command);
                Ok(())
            }
            DriverInput::CallDropped { call } => {
                self.calls.dropped(call);
                Ok(())
            }
            DriverInput::HttpResponse {
                id,
                status,
                headers,
                body,
            } => self.feed(
                now,
                Input::HttpResponse {
                    id,
                    status,
                    headers,
                    body,
                },
            ),
            DriverInput::HttpFailed { id, kind, detail } => {
                self.feed(now, Input::HttpFailed { id, kind, detail })
            }
            DriverInput::TimerFired => {
                self.timer = None;
                self.lock_retry_due(now);
                Ok(())
            }
            DriverInput::Loaded { session, version } => self.loaded(now, session, version),
            DriverInput::Saved { version } => self.saved(version),
            DriverInput::Deleted => self.deleted(),
            DriverInput::StoreFailed { detail, conflict } => {
                self.store_failed(now, detail, conflict)
            }
            DriverInput::LockAcquired { session, version } => {
                self.lock_acquired(now, session, version)
            }
            DriverInput::LockBusy => self.lock_busy(now),
            DriverInput::LockFailed { detail } => self.lock_failed(now, detail),
            DriverInput::LaunchFailed { detail } => {
                if self.engine.status(now).login_in_progress {
                    self.end_login(now, Error::LaunchFailed { detail });
                }
                Ok(())
            }
            DriverInput::SignatureChecked { id, valid } => {
                self.feed(now, Input::SignatureChecked { id, valid })
            }
            DriverInput::Stop => {
                self.stop();
                Ok(())
            }
        };
        self.settle(now);
        result
    }

    /// A caller's command, numbered here: the returned id is the one its
    /// [`Action::Reply`] carries. The same as `handle` with `DriverInput::Call`.
    pub fn call(&mut self, now: UnixMillis, command: Command) -> CallId {
        let call = CallId(self.next_call);
        let _ = self.handle(now, DriverInput::Call { call, command });
        call
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The session as the engine holds it (for a host's lock-free fast path).
    pub fn session(&self) -> Option<&StoredSession> {
        self.engine.session()
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        self.engine.config()
    }

    /// What `status` shows.
    pub fn status(&self, now: UnixMillis) -> Status {
        self.engine.status(now)
    }

    /// Whether stopping now could lose a session: a refresh request is in flight (the
    /// provider may already have rotated the refresh token) or a write is not yet
    /// answered. A host that is asked to terminate (SIGTERM, Ctrl-C) waits until this is
    /// `false`.
    pub fn in_critical_section(&self) -> bool {
        matches!(self.store_op, Some(StoreOp::Save { .. } | StoreOp::Delete))
            || matches!(
                self.engine.state_name(),
                "refreshing" | "checking_signature_for_refresh" | "fetching_keys_for_refresh"
            )
            || self
                .backlog
                .iter()
                .any(|e| matches!(e, Effect::PersistSession { .. } | Effect::DeleteSession))
    }

    /// Who checks ID-token signatures: see
    /// [`Engine::set_signature_verifier`](crate::Engine::set_signature_verifier). Without a
    /// verifier the driver asks the host ([`Action::VerifySignature`]).
    pub fn set_signature_verifier(&mut self, verifier: Option<crate::SignatureVerifier>) {
        self.engine.set_signature_verifier(verifier);
    }

    /// The last storage failure, until a write succeeds.
    pub fn storage_problem(&self) -> Option<&str> {
        self.storage_problem.as_deref()
    }

    /// The engine's state name, for transcripts and logs (not for decisions).
    pub fn state_name(&self) -> &'static str {
        self.engine.state_name()
    }

    /// The engine inputs fed since the last call (with [`DriverOptions::journal`]).
    pub fn take_journal(&mut self) -> Vec<(UnixMillis, Input)> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// When the armed timer fires, if one is armed.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.timer
    }

    fn command(&mut self, now: UnixMillis, call: CallId, command: Command) {
        if self.stopped {
            self.reply(
                call,
                Reply::Failed {
                    error: Error::Stopped,
                },
            );
            return;
        }
        match command {
            Command::GetToken { min_ttl_secs } => {
                let waiter = self.calls.wait_for_token(call);
                let input = Input::GetToken {
                    waiter,
                    min_ttl_secs,
                };
                if let Err(rejected) = self.feed(now, input) {
                    self.token_call_refused(waiter, rejected);
                }
            }
            Command::TokenRejected { access_token } => {
                let waiter = self.calls.wait_for_token(call);
                let input = Input::TokenRejected {
                    waiter,
                    access_token,
                };
                if let Err(rejected) = self.feed(now, input) {
                    self.token_call_refused(waiter, rejected);
                }
            }
            Command::GetDerivedToken { name, min_ttl_secs } => {
                let waiter = self.calls.wait_for_derived_token(call);
                let input = Input::GetDerivedToken {
                    waiter,
                    name,
                    min_ttl_secs,
                };
                if let Err(rejected) = self.feed(now, input) {
                    self.token_call_refused(waiter, rejected);
                }
            }
            Command::Login {
                method,
                redirect_uri,
            } => {
                self.calls.wait_for_login(call);
                let login = Input::Login {
                    method,
                    redirect_uri,
                };
                if let Err(rejected) = self.feed(now, login)
                    && let Some(call) = self.calls.login_refused()
                {
                    let error = Error::Config {
                        problem: rejected.to_string(),
                    };
                    self.reply(call, Reply::Failed { error });
                }
            }
            Command::Callback { url, last } => match self.feed(now, Input::Callback { url }) {
                Ok(()) if self.engine.status(now).login_in_progress => {
                    self.calls.wait_for_redirect_outcome(call);
                }
                Ok(()) => self.reply(call, Reply::Accepted),
                Err(rejected) => {
                    let reason = rejected.to_string();
                    self.notify(Notice::CallbackIgnored {
                        reason: reason.clone(),
                    });
                    self.reply(call, Reply::Refused { rejected });
                    if last && self.engine.status(now).login_in_progress {
                        self.end_login(now, Error::RedirectRefused { reason });
                    }
                }
            },
            Command::ResumeLogin { login, url } => {
                self.calls.wait_for_login(call);
                if let Err(rejected) = self.feed(now, Input::ResumeLogin { login, url })
                    && let Some(call) = self.calls.login_refused()
                {
                    self.reply(call, Reply::Refused { rejected });
                }
            }
            Command::PastedCode { text } => {
                let reply = match self.feed(now, Input::PastedCode { text }) {
                    Ok(()) => Reply::Accepted,
                    Err(rejected) => Reply::Refused { rejected },
                };
                self.reply(call, reply);
            }
            Command::Logout { force } => {
                self.calls.wait_for_logout(call);
                let _ = self.feed(now, Input::Logout { force });
            }
            Command::Cancel => {
                let _ = self.feed(now, Input::Cancel);
                self.reply(call, Reply::Accepted);
            }
            Command::Status => {
                let reply = Reply::Status {
                    status: self.engine.status(now),
                    storage_problem: self.storage_problem.clone(),
                };
                self.reply(call, reply);
            }
        }
    }

    /// A token call the engine refused (a call id in the engine's own range) is answered
    /// at once rather than left waiting.
    fn token_call_refused(&mut self, waiter: crate::input::WaiterId, rejected: Rejected) {
        let calls = [
            self.calls.token_answered(&[waiter]),
            self.calls.derived_token_answered(&[waiter]),
        ];
        for call in calls.into_iter().flatten() {
            let rejected = rejected.clone();
            self.reply(call, Reply::Refused { rejected });
        }
    }

    /// Ends the login in progress from the host's side: its newest call fails with
    /// `error`, and the engine abandons the flow.
    fn end_login(&mut self, now: UnixMillis, error: Error) {
        if let Some(call) = self.calls.login_refused() {
            self.reply(call, Reply::Failed { error });
        }
        let _ = self.feed(now, Input::Cancel);
    }

    /// One engine input, then its effects.
    fn feed(&mut self, now: UnixMillis, input: Input) -> Result<(), Rejected> {
        // Signature answers are left out: a replay checks signatures itself.
        if let Some(journal) = &mut self.journal
            && !matches!(input, Input::SignatureChecked { .. })
        {
            journal.push((now, input.clone()));
        }
        let result = self.engine.handle(now, input);
        self.pump(now);
        result
    }

    fn stop(&mut self) {
        self.stopped = true;
        for call in self.calls.all() {
            self.reply(
                call,
                Reply::Failed {
                    error: Error::Stopped,
                },
            );
        }
        // A held lock is kept until the refresh it guards is over and its answer stored
        // (or its lease ends, if this host delivers nothing more): that refresh may be in
        // flight, or about to be retried with the token a re-read found. Released now,
        // another process could refresh with the refresh token the provider is rotating,
        // and this one's answer would then be saved over the newer session.
        if matches!(self.lock, Lock::Acquiring { .. }) {
            self.lock = Lock::Released;
            self.actions.push_back(Action::ReleaseLock);
        }
    }

    /// After every input: a deadline that has already passed is handled now (at most
    /// twice, so one that stays in the past falls back to the timer), then the one timer
    /// is re-armed if the time it should fire changed.
    fn settle(&mut self, now: UnixMillis) {
        self.pump(now);
        if self.stopped {
            if self.timer.take().is_some() {
                self.actions.push_back(Action::CancelTimer);
            }
            return;
        }
        for _ in 0..2 {
            match self.engine.poll_timeout() {
                Some(due) if due <= now => {
                    let _ = self.feed(now, Input::Timeout);
                }
                _ => break,
            }
        }
        let wanted = [self.engine.poll_timeout(), self.lock.retry_at()]
            .into_iter()
            .flatten()
            .min();
        if wanted != self.timer {
            self.timer = wanted;
            self.actions.push_back(match wanted {
                Some(at) => Action::ArmTimer { at },
                None => Action::CancelTimer,
            });
        }
    }

    /// The timer fired: retry the lock if that is due, and feed the engine its timeout
    /// if that is due. A timer that fired early is re-armed by `settle`.
    fn lock_retry_due(&mut self, now: UnixMillis) {
        if self.lock.retry_at().is_some_and(|at| at <= now) {
            self.acquire_lock(now);
        }
        if self.engine.poll_timeout().is_some_and(|at| at <= now) {
            let _ = self.feed(now, Input::Timeout);
        }
    }

    fn reply(&mut self, call: CallId, reply: Reply) {
        self.actions.push_back(Action::Reply { call, reply });
    }

    fn notify(&mut self, notice: Notice) {
        self.actions.push_back(Action::Notify(notice));
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("engine", &self.engine)
            .field("store_op", &self.store_op)
            .field("lock", &self.lock)
            .field("timer", &self.timer)
            .field("actions", &self.actions.len())
            .finish_non_exhaustive()
    }
}
