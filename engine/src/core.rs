//! What every state shares: configuration, the session, waiting callers, and the queue of
//! effects. States hold only what belongs to one flow (see [`crate::machine`]).

use std::collections::VecDeque;

use crate::config::{ClientAuthMethod, Config, Endpoints};
use crate::effect::{Effect, Event, HttpRequest, Method};
use crate::entropy::Entropy;
use crate::error::{Endpoint, Error};
use crate::input::{Input, RequestId, WaiterId};
use crate::protocol::discovery::Metadata;
use crate::protocol::token::Encoded;
use crate::secret::Secret;
use crate::session::StoredSession;
use crate::time::UnixMillis;

/// A caller waiting for a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub id: WaiterId,
    pub min_ttl_secs: u64,
    /// The token this caller saw rejected (a 401): it must not be handed back.
    pub rejected: Option<Secret>,
}

/// The cross-process refresh lock, as far as the engine knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    Released,
    /// `LockSession` was emitted; `SessionLocked` has not arrived yet.
    Requested,
    Held,
}

/// When the next background refresh happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AutoRefresh {
    /// At the session's refresh-due time.
    Scheduled,
    /// After a transient failure, at this time (always before the token expires).
    RetryAt(UnixMillis),
    /// Not until a caller asks (the last failure was not transient, or the token expired).
    Paused,
}

#[derive(Debug)]
pub(crate) struct Core {
    pub config: Config,
    pub entropy: Entropy,
    pub session: Option<StoredSession>,
    /// Metadata discovered during this run.
    pub discovered: Option<Metadata>,
    pub waiters: Vec<Waiter>,
    pub outbox: VecDeque<Effect>,
    /// Commands that arrived while the current state could not take them.
    pub deferred: VecDeque<Input>,
    pub lock: Lock,
    pub auto_refresh: AutoRefresh,
    /// Consecutive transient refresh failures, for the backoff.
    pub refresh_failures: u32,
    /// Why the last refresh failed (until one succeeds).
    pub last_refresh_error: Option<Error>,
    /// The provider's signing keys fetched during this run, and when.
    pub signing_keys: Vec<crate::protocol::jwks::SigningKey>,
    pub keys_fetched_at: Option<UnixMillis>,
    /// The key that verified the latest ID token: remembered with the session, so a later
    /// process need not fetch the key set again.
    pub verified_with: Option<crate::protocol::jwks::SigningKey>,
    next_request: u64,
    /// The id the next `VerifySignature` gets (apart from request ids, so that the
    /// requests of a run are numbered the same whoever checks signatures).
    next_check: u64,
}

impl Core {
    pub(crate) fn new(config: Config, seed: [u8; 32]) -> Self {
        Self {
            config,
            entropy: Entropy::new(seed),
            session: None,
            discovered: None,
            waiters: Vec::new(),
            outbox: VecDeque::new(),
            deferred: VecDeque::new(),
            lock: Lock::Released,
            auto_refresh: AutoRefresh::Scheduled,
            refresh_failures: 0,
            last_refresh_error: None,
            signing_keys: Vec::new(),
            keys_fetched_at: None,
            verified_with: None,
            next_request: 1,
            next_check: 1,
        }
    }

    /// Asks for one signature check; returns its id.
    pub(crate) fn check_signature(
        &mut self,
        algorithm: crate::SignatureAlgorithm,
        key: crate::SigningKey,
        signing_input: &str,
        signature: &str,
    ) -> crate::CheckId {
        let id = crate::CheckId(self.next_check);
        self.next_check += 1;
        self.emit(Effect::VerifySignature(crate::SignatureCheck {
            id,
            algorithm,
            key,
            signing_input: signing_input.to_owned(),
            signature: signature.to_owned(),
        }));
        id
    }

    pub(crate) fn emit(&mut self, effect: Effect) {
        self.outbox.push_back(effect);
    }

    pub(crate) fn event(&mut self, event: Event) {
        self.emit(Effect::Event(event));
    }

    /// Configured endpoints, then discovered ones, then those remembered in the session.
    pub(crate) fn endpoints(&self) -> Endpoints {
        let discovered = self
            .discovered
            .as_ref()
            .map(|m| m.endpoints.clone())
            .unwrap_or_default();
        let remembered = self
            .session
            .as_ref()
            .map(|s| s.endpoints.clone())
            .unwrap_or_default();
        self.config.endpoints.or(&discovered.or(&remembered))
    }

    /// How to authenticate to the token (and device authorization) endpoint.
    pub(crate) fn token_auth(&self) -> ClientAuthMethod {
        self.config
            .client_auth(self.endpoints().token_auth_methods.as_deref())
    }

    /// Endpoints worth remembering in a new session (what discovery found), with the key
    /// that verified its ID token.
    pub(crate) fn endpoints_to_remember(&self) -> Endpoints {
        let mut endpoints = match &self.discovered {
            Some(metadata) => metadata.endpoints.clone(),
            None => self
                .session
                .as_ref()
                .map(|s| s.endpoints.clone())
                .unwrap_or_default(),
        };
        if let Some(key) = &self.verified_with {
            endpoints.signing_keys = vec![key.clone()];
        }
        endpoints
    }

    /// Queues an HTTP request and returns its id.
    pub(crate) fn request(
        &mut self,
        endpoint: Endpoint,
        method: Method,
        url: &str,
        encoded: Option<Encoded>,
    ) -> RequestId {
        let (headers, body) = match encoded {
            Some(e) => (e.headers, Some(e.body)),
            None => (
                std::collections::BTreeMap::from([(
                    "accept".to_owned(),
                    "application/json".to_owned(),
                )]),
                None,
            ),
        };
        self.send(endpoint, method, url, headers, body)
    }

    /// Queues a GET request with these headers and returns its id.
    pub(crate) fn get_with(
        &mut self,
        endpoint: Endpoint,
        url: &str,
        headers: std::collections::BTreeMap<String, String>,
    ) -> RequestId {
        self.send(endpoint, Method::Get, url, headers, None)
    }

    /// Queues a request as given and returns its id.
    pub(crate) fn send(
        &mut self,
        endpoint: Endpoint,
        method: Method,
        url: &str,
        headers: std::collections::BTreeMap<String, String>,
        body: Option<String>,
    ) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.emit(Effect::Http(HttpRequest {
            id,
            endpoint,
            method,
            url: url.to_owned(),
            headers,
            body,
            timeout_ms: self.config.http_timeout_ms,
            max_response_bytes: self.config.max_response_bytes,
        }));
        id
    }

    /// Whether a loaded session belongs to this client and this engine can read it.
    pub(crate) fn is_ours(&self, session: &StoredSession) -> bool {
        session.belongs_to(&self.config)
    }

    pub(crate) fn join(&mut self, id: WaiterId, min_ttl_secs: u64) {
        self.waiters.push(Waiter {
            id,
            min_ttl_secs,
            rejected: None,
        });
    }

    /// A caller whose resource server rejected `token` waits for a different one.
    pub(crate) fn join_rejecting(&mut self, id: WaiterId, token: Secret) {
        self.waiters.push(Waiter {
            id,
            min_ttl_secs: 0,
            rejected: Some(token),
        });
    }

    /// The longest lifetime any waiter asks for.
    pub(crate) fn most_demanding_ttl(&self) -> u64 {
        self.waiters
            .iter()
            .map(|w| w.min_ttl_secs)
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn serve(&mut self, waiters: Vec<WaiterId>) {
        if waiters.is_empty() {
            return;
        }
        if let Some(session) = &self.session {
            let event = Event::TokenReady {
                waiters,
                access_token: session.access_token.clone(),
                expires_at: session.expires_at,
            };
            self.event(event);
        } else {
            self.fail(waiters, Error::NotLoggedIn);
        }
    }

    pub(crate) fn fail(&mut self, waiters: Vec<WaiterId>, error: Error) {
        if !waiters.is_empty() {
            self.event(Event::TokenFailed { waiters, error });
        }
    }

    /// Releases every waiter: those the current token satisfies get it (one event), the
    /// rest get `error` (one event).
    pub(crate) fn release_waiters(&mut self, now: UnixMillis, error: Error) {
        let waiters = std::mem::take(&mut self.waiters);
        let (served, failed): (Vec<Waiter>, Vec<Waiter>) = waiters.into_iter().partition(|w| {
            self.session.as_ref().is_some_and(|s| {
                s.is_usable(now, w.min_ttl_secs) && w.rejected.as_ref() != Some(&s.access_token)
            })
        });
        self.serve(served.into_iter().map(|w| w.id).collect());
        self.fail(failed.into_iter().map(|w| w.id).collect(), error);
    }

    /// Releases every waiter with a token just obtained (login or refresh): it is the
    /// freshest the provider will give, so callers asking for more lifetime than the
    /// provider grants get it rather than an error. Only a caller who saw this very token
    /// rejected gets `error`.
    pub(crate) fn serve_all_waiters(&mut self, error: Error) {
        let waiters = std::mem::take(&mut self.waiters);
        let current = self.session.as_ref().map(|s| &s.access_token);
        let (rejected, served): (Vec<Waiter>, Vec<Waiter>) = waiters
            .into_iter()
            .partition(|w| w.rejected.is_some() && w.rejected.as_ref() == current);
        self.serve(served.into_iter().map(|w| w.id).collect());
        self.fail(rejected.into_iter().map(|w| w.id).collect(), error);
    }

    /// Emits `UnlockSession` if the lock was requested or is held.
    pub(crate) fn unlock(&mut self) {
        if self.lock != Lock::Released {
            self.emit(Effect::UnlockSession);
            self.lock = Lock::Released;
        }
    }

    /// When the background refresh timer fires, if it is armed.
    pub(crate) fn refresh_timer(&self) -> Option<UnixMillis> {
        let session = self.session.as_ref()?;
        session.refresh_token.as_ref()?;
        match self.auto_refresh {
            AutoRefresh::Scheduled => Some(session.refresh_due_at(self.config.refresh_buffer_secs)),
            AutoRefresh::RetryAt(at) => Some(at),
            AutoRefresh::Paused => None,
        }
    }

    /// Capped exponential backoff: 1 s, 2 s, 4 s … up to `max_retry_backoff_secs`.
    pub(crate) fn next_backoff_millis(&mut self) -> u64 {
        self.refresh_failures = self.refresh_failures.saturating_add(1);
        let exponent = self.refresh_failures.saturating_sub(1).min(20);
        (1000u64 << exponent).min(self.config.max_retry_backoff_secs.saturating_mul(1000))
    }

    /// Forget failures after a success or a new session.
    pub(crate) fn reset_refresh_schedule(&mut self) {
        self.refresh_failures = 0;
        self.last_refresh_error = None;
        self.auto_refresh = AutoRefresh::Scheduled;
    }
}
