//! # tessera-engine
//!
//! An OAuth 2.0 / OpenID Connect client as a pure state machine: no I/O, no clock, no
//! randomness of its own. The host feeds it inputs (commands, HTTP responses, what
//! storage read, timeouts) together with the current time, and performs the effects it
//! asks for (HTTP requests, opening a browser, persisting the session, events for the
//! application). Same seed and same inputs give the same effects, byte for byte.
//!
//! ## Run loop
//!
//! ```
//! use tessera_engine::{Config, Engine, Effect, Input, UnixMillis, WaiterId};
//!
//! let now = UnixMillis(1_700_000_000_000);
//! let mut engine = Engine::new(Config::new("https://op.example", "my-cli"), [7; 32], now);
//! // Engine::new asks for the stored session first.
//! assert_eq!(engine.poll_effect(), Some(Effect::LoadSession));
//! engine.handle(now, Input::SessionLoaded { session: None }).unwrap();
//! engine.handle(now, Input::GetToken { waiter: WaiterId(1), min_ttl_secs: 0 }).unwrap();
//! while let Some(effect) = engine.poll_effect() {
//!     // perform it: here, a TokenFailed(not_logged_in) event for waiter 1
//!     # let _ = effect;
//! }
//! if let Some(_wake_at) = engine.poll_timeout() {
//!     // arm one timer; when it fires: engine.handle(now, Input::Timeout)
//! }
//! ```
//!
//! One input, then drain every effect, then re-arm the single timer. `handle` returns
//! `Err` only for inputs that do not fit the current state (see [`Rejected`]); the engine
//! is then unchanged. No input may panic.
//!
//! Hosts normally run the engine through the [`driver`], which adds callers, storage
//! writes, the refresh lock and the timer around it.
//!
//! ## Derived tokens
//!
//! Beside the session's states runs one more flow: derived tokens
//! ([`Config::derived`], [`Input::GetDerivedToken`]), fetched with an access token the
//! machine hands out as to any caller, cached until they expire, retried on 5xx. Its
//! fetches never block the session's flows (see `derived.rs`).
//!
//! ## States
//!
//! States are named for what they wait for. Superstates (double borders) hold what their
//! children share: `logging_in` serves or queues token requests while a login runs and
//! handles `Cancel`; `authenticated` takes `Login` and `Logout`; `refreshing_session`
//! makes every token request join the one refresh in flight (single flight) and defers
//! `Login`/`Logout` until it ends, so a rotated refresh token is never dropped.
//!
//! ```text
//!                         ┌──────────────────┐
//!          Engine::new ──▶│ loading_session  │  (commands are deferred until storage answers)
//!                         └──────────────────┘
//!                    SessionLoaded(None)│  │SessionLoaded(Some)
//!                  ┌────────────────────┘  └───────────────────────────────┐
//!                  ▼                                                       ▼
//!          ┌──────────────┐   Login     ╔═ logging_in ═════════════════╗  ┌─ authenticated ───────────────────────────┐
//!          │  logged_out  │────────────▶║ discovering                  ║  │ ┌──────┐ GetToken (stale)/Timeout/401     │
//!          └──────────────┘             ║ awaiting_callback ─┐         ║  │ │ idle │──────────┐                       │
//!                 ▲  ▲  LoginFailed /   ║ exchanging_code ◀──┘         ║  │ └──────┘          ▼                       │
//!                 │  │  Cancel          ║ checking_signature_for_login ║  │   ▲   ╔ refreshing_session ════════════╗  │
//!                 │  └──────────────────║ fetching_keys_for_login      ║  │   │   ║ locking_session                ║  │
//!                 │                     ║ fetching_userinfo            ║  │   └───║ refreshing                     ║  │
//!                 │                     ║ requesting_device_code       ║  │       ║ checking_signature_for_refresh ║  │
//!                 │                     ║ waiting_to_poll ◀─┐          ║  │       ║ fetching_keys_for_refresh      ║  │
//!                 │                     ║ polling_device ───┘          ║  │       ║ confirming_grant_loss          ║  │
//!                 │                     ╚══════════════════════════════╝  │       ║ finding_token_endpoint         ║  │
//!                 │                          │ token response             │       ╚════════════════════════════════╝  │
//!                 │                          └───────────────────────────▶│          │ invalid_grant confirmed        │
//!                 │  session ended ◀──────────────────────────────────────────────── ┘                                │
//!                 │                                                       └────────────────┬──────────────────────────┘
//!                 │           ┌──────────┐       Logout                                    │
//!                 └───────────│ revoking │◀────────────────────────────────────────────────┘
//!               all answered  └──────────┘
//! ```
//!
//! `Logout` passes through `locking_for_logout` (the refresh lock, and the stored session
//! read under it) on its way to `revoking`: a refresh in another process ends first, and
//! its tokens are the ones revoked.
//!
//! An ID token's signature is checked with each key at hand that fits it, one after
//! another, in `checking_signature_for_*` (`Effect::VerifySignature`, answered by the
//! engine itself when built with `rust-crypto`, else by the host). An ID token whose
//! signing key is not at hand (not remembered in the session, not fetched lately) sends a
//! login or a refresh through `fetching_keys_for_*`: the provider's key set (`jwks_uri`)
//! is fetched once, then the flow goes on as it would have. See `machine/signatures.rs`
//! and docs/adr/018.

#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod config;
mod core;
mod derived;
pub mod driver;
mod effect;
mod entropy;
mod error;
mod input;
mod machine;
mod pkce;
mod protocol;
mod secret;
mod session;
mod time;
#[cfg(feature = "transcript")]
pub mod transcript;

use statig::blocking::{IntoStateMachineExt as _, StateMachine};

pub use config::{ClientAuthMethod, Config, DerivedEndpoint, Endpoints, TokenRequestFormat};
pub use effect::{
    Effect, Event, HttpRequest, LogoutReason, Method, ServerCall, ServerCallKind, UserCode,
};
pub use error::{
    CallbackProblem, DerivedProblem, Endpoint, Error, ErrorCode, ErrorKind, IdTokenProblem,
    OAuthError, Rejected, ResponseProblem, TransportErrorKind,
};
pub use input::{Input, LoginMethod, RequestId, WaiterId};
pub use protocol::handoff::HandedOffLogin;
pub use protocol::id_token::{TRANSCRIPT_KEY_ID, unsigned_id_token};
#[cfg(feature = "rust-crypto")]
pub use protocol::id_token::{signed_id_token, transcript_key_set};
pub use protocol::jwks::SigningKey;
#[cfg(feature = "rust-crypto")]
pub use protocol::jws::verify_with_rust_crypto;
pub use protocol::jws::{CheckId, SignatureAlgorithm, SignatureCheck};
pub use secret::Secret;
pub use session::{Identity, SESSION_FORMAT_VERSION, Status, StoredSession};
pub use time::UnixMillis;

use crate::core::Core;
use crate::machine::{Ctx, Machine, Rejection};

/// Checks one signature synchronously: what [`Engine::set_signature_verifier`] installs.
pub type SignatureVerifier = fn(&SignatureCheck) -> bool;

/// One client session: a login, its tokens, and their renewal.
pub struct Engine {
    machine: StateMachine<Machine>,
    core: Core,
    /// Derived tokens: their cache and fetches, beside the machine (see `derived.rs`).
    derived: derived::Derived,
    /// Answers `VerifySignature` inside `handle`, when set.
    verifier: Option<SignatureVerifier>,
}

impl Engine {
    /// A new engine. It starts by asking for the stored session (`Effect::LoadSession`).
    ///
    /// `seed` is the only source of randomness (PKCE verifier, `state`, `nonce`): hosts
    /// pass 32 bytes from the OS; tests and transcripts pass a fixed value.
    pub fn new(config: Config, seed: [u8; 32], now: UnixMillis) -> Self {
        let mut core = Core::new(config, seed);
        let mut ctx = Ctx {
            now,
            core: &mut core,
            rejection: None,
        };
        let machine = Machine
            .uninitialized_state_machine()
            .init_with_context(&mut ctx);
        core.emit(Effect::LoadSession);
        #[cfg(feature = "rust-crypto")]
        let verifier: Option<SignatureVerifier> = Some(verify_with_rust_crypto);
        #[cfg(not(feature = "rust-crypto"))]
        let verifier: Option<SignatureVerifier> = None;
        Self {
            machine: machine.into(),
            core,
            derived: derived::Derived::default(),
            verifier,
        }
    }

    /// Who checks ID-token signatures. With a verifier, every
    /// [`Effect::VerifySignature`] is answered by it within the `handle` that asked, and
    /// never polled: the default with the `rust-crypto` feature
    /// (`verify_with_rust_crypto`). With `None` (the default without it) the host
    /// answers each with [`Input::SignatureChecked`], whenever it has the answer.
    pub fn set_signature_verifier(&mut self, verifier: Option<SignatureVerifier>) {
        self.verifier = verifier;
    }

    /// Feeds one input. `Err` means the input was refused and nothing changed.
    pub fn handle(&mut self, now: UnixMillis, input: Input) -> Result<(), Rejected> {
        let state = self.state_name();
        let first_new = self.core.outbox.len();
        let rejection = match self.derived_input(now, &input) {
            Some(rejection) => rejection,
            None => self.run_machine(now, &input),
        };
        self.answer_signature_checks(now);
        self.derived_after(now, &input, first_new);
        match rejection {
            None => Ok(()),
            Some(Rejection::UnknownRequest(id)) => Err(Rejected::UnknownRequest { id: id.0 }),
            Some(Rejection::Unexpected) => Err(Rejected::Unexpected {
                input: input.name().to_owned(),
                state: state.to_owned(),
            }),
            Some(Rejection::Invalid(error)) => Err(Rejected::Invalid {
                reason: error.to_string(),
            }),
            Some(Rejection::ReservedWaiter) => Err(Rejected::Invalid {
                reason: format!(
                    "waiter ids from {} up are the engine's own; number callers below it",
                    derived::FIRST_INTERNAL_WAITER
                ),
            }),
        }
    }

    /// One input to the machine, then the commands it deferred that it takes now.
    fn run_machine(&mut self, now: UnixMillis, input: &Input) -> Option<Rejection> {
        let rejection = self.dispatch(now, input);
        while self.machine.state().takes_deferred_commands() {
            let Some(deferred) = self.core.deferred.pop_front() else {
                break;
            };
            // Deferred commands are always accepted by the states that take them.
            let _ = self.dispatch(now, &deferred);
        }
        rejection
    }

    /// With a verifier, answers the signature checks the input asked for (each answer
    /// may ask for the next key's), in place: the effects around them keep their order.
    fn answer_signature_checks(&mut self, now: UnixMillis) {
        let Some(verify) = self.verifier else {
            return;
        };
        while let Some(at) = self
            .core
            .outbox
            .iter()
            .position(|effect| matches!(effect, Effect::VerifySignature(_)))
        {
            let Some(Effect::VerifySignature(check)) = self.core.outbox.remove(at) else {
                break;
            };
            let answer = Input::SignatureChecked {
                id: check.id,
                valid: verify(&check),
            };
            let _ = self.run_machine(now, &answer);
        }
    }

    fn dispatch(&mut self, now: UnixMillis, input: &Input) -> Option<Rejection> {
        let mut ctx = Ctx {
            now,
            core: &mut self.core,
            rejection: None,
        };
        self.machine.handle_with_context(input, &mut ctx);
        ctx.rejection
    }

    /// The next effect to perform, in order.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.core.outbox.pop_front()
    }

    /// When the engine next needs `Input::Timeout`; `None` when no timer is armed. The
    /// time may already have passed: then fire at once.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let machine = self.machine.state().wake_at(&self.core);
        [machine, self.derived.wake_at()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The current state's name (`idle`, `awaiting_callback`, …).
    pub fn state_name(&self) -> &'static str {
        self.machine.state().name()
    }

    /// The session as the engine holds it.
    pub fn session(&self) -> Option<&StoredSession> {
        self.core.session.as_ref()
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// What a host shows for `status`.
    pub fn status(&self, now: UnixMillis) -> Status {
        Status::project(
            self.state_name(),
            self.machine.state().is_logging_in(),
            self.core.session.as_ref(),
            now,
        )
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("state", &self.state_name())
            .field("session", &self.core.session)
            .field("pending_effects", &self.core.outbox.len())
            .finish()
    }
}
