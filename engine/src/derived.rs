//! Derived tokens: a region of the engine beside the session machine.
//!
//! A derived token (see [`Config::derived`](crate::Config::derived) and
//! `protocol/derived.rs` for the exchange) is fetched with an access token valid for at
//! least [`ACCESS_TOKEN_MIN_TTL_SECS`] more seconds. Rather than repeat the session
//! machine's rules for getting one (refresh first, single flight, the refresh lock, a
//! login in progress, no session), this flow asks the machine as a caller would, under a
//! waiter id from a range hosts may not use, and takes the machine's answer out of its
//! events before a host sees them. The derived endpoint's answers and the retry timer are
//! handled here and never reach the machine: a derived token is fetched while the session
//! refreshes, and a refresh never waits for a derived token.
//!
//! One fetch (a *flight*) per name at a time; callers asking meanwhile join it and all get
//! its outcome. A flight is in one of three phases, named for what it waits for:
//!
//! - `AwaitingAccessToken`: the machine's answer to the flow's token request;
//! - `Requesting`: the derived endpoint's answer;
//! - `WaitingToRetry`: the time of the next attempt after a 5xx, a 429 or no answer
//!   (1 s, then 2 s, within `max_retry_backoff_secs`; [`MAX_ATTEMPTS`] requests in all).
//!
//! A 401 renews the access token once (as `TokenRejected` would) and tries again. A token
//! obtained is cached until it expires: a caller it still satisfies gets it without a
//! request. The cache is emptied when the session ends or another login replaces it; a
//! flight under way is then failed (session ended) or started again with the new
//! session's access token (new login).

use std::fmt;

use crate::Engine;
use crate::effect::{Effect, Event, Method};
use crate::error::{DerivedProblem, Endpoint, Error, TransportErrorKind};
use crate::input::{Input, RequestId, WaiterId};
use crate::machine::Rejection;
use crate::protocol::derived::{self, Answer};
use crate::protocol::response::{Response, printable};
use crate::secret::Secret;
use crate::time::UnixMillis;

/// Waiter ids from here up are the flow's own token requests; inputs from hosts may not
/// use them (they are refused).
pub(crate) const FIRST_INTERNAL_WAITER: u64 = 1 << 63;

/// How long the access token must stay valid when a derived token is fetched with it:
/// the derived endpoint may check it a while after the request left.
pub const ACCESS_TOKEN_MIN_TTL_SECS: u64 = 300;

/// Requests per flight, the first included, before a 5xx, a 429 or no answer is final.
pub const MAX_ATTEMPTS: u32 = 3;

/// How many rounds of taking the machine's answers one input may cause (each round can
/// ask the machine again, which answers in the next); two are ever needed.
const MAX_ROUNDS: usize = 8;

/// The flow's state: the cache and the flights.
#[derive(Debug, Default)]
pub(crate) struct Derived {
    cache: ByName<Cached>,
    flights: ByName<Flight>,
    /// The next internal waiter id, counted from [`FIRST_INTERNAL_WAITER`].
    next_waiter: u64,
}

/// Values by derived-token name, in name order: a `Vec` of pairs sorted by name, with the
/// part of `BTreeMap`'s interface the flow uses. A configuration names a few derived
/// tokens; a `BTreeMap` per value type would bring its node code into the browser package
/// for each (BENCHMARKS.md, issue 17). `Debug` prints it as a map, as before.
struct ByName<V>(Vec<(String, V)>);

impl<V> Default for ByName<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> ByName<V> {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    fn get(&self, name: &str) -> Option<&V> {
        self.find(name).ok().map(|at| &self.0[at].1)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.find(name).ok().map(|at| &mut self.0[at].1)
    }

    fn insert(&mut self, name: String, value: V) {
        match self.find(&name) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (name, value)),
        }
    }

    fn remove(&mut self, name: &str) -> Option<V> {
        self.find(name).ok().map(|at| self.0.remove(at).1)
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    /// In name order.
    fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.0.iter().map(|(name, value)| (name, value))
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, value)| value)
    }
}

impl<V: fmt::Debug> fmt::Debug for ByName<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A derived token obtained, until it expires.
#[derive(Clone, Debug)]
struct Cached {
    token: Secret,
    expires_at: UnixMillis,
    /// The user of the session it was fetched for (`sub`, when known): a session another
    /// process put in place for someone else is never served it.
    subject: Option<String>,
}

/// One fetch of one derived token.
#[derive(Debug)]
struct Flight {
    /// The callers waiting for it.
    waiters: Vec<WaiterId>,
    /// Requests sent so far.
    attempts: u32,
    /// The access token was renewed after a 401 (done once per flight).
    renewed: bool,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    AwaitingAccessToken {
        waiter: WaiterId,
    },
    Requesting {
        request: RequestId,
        sent_with: Secret,
    },
    WaitingToRetry {
        at: UnixMillis,
    },
}

/// What the flow found among the machine's effects, in their order.
enum Happening {
    /// The machine's answer to one of the flow's token requests.
    AccessToken(WaiterId, Result<Secret, Error>),
    /// A login finished: another session (perhaps another user) is in place.
    LoggedIn,
    /// The session ended.
    LoggedOut,
}

pub(crate) fn is_internal(waiter: WaiterId) -> bool {
    waiter.0 >= FIRST_INTERNAL_WAITER
}

impl Derived {
    /// The name of the flight whose request this is.
    fn requesting(&self, id: RequestId) -> Option<String> {
        self.flights.iter().find_map(|(name, flight)| {
            matches!(flight.phase, Phase::Requesting { request, .. } if request == id)
                .then(|| name.clone())
        })
    }

    /// When the next retry is due.
    pub(crate) fn wake_at(&self) -> Option<UnixMillis> {
        self.flights
            .values()
            .filter_map(|flight| match flight.phase {
                Phase::WaitingToRetry { at } => Some(at),
                _ => None,
            })
            .min()
    }
}

impl Engine {
    /// Handles `input` if it is the flow's: `Some` with the rejection, if any; `None` when
    /// the input is the machine's.
    pub(crate) fn derived_input(
        &mut self,
        now: UnixMillis,
        input: &Input,
    ) -> Option<Option<Rejection>> {
        match input {
            Input::GetDerivedToken { waiter, .. }
            | Input::GetToken { waiter, .. }
            | Input::TokenRejected { waiter, .. }
                if is_internal(*waiter) =>
            {
                Some(Some(Rejection::ReservedWaiter))
            }
            Input::GetDerivedToken {
                waiter,
                name,
                min_ttl_secs,
            } => {
                self.derived_requested(now, *waiter, name, *min_ttl_secs);
                Some(None)
            }
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } => {
                let name = self.derived.requesting(*id)?;
                let response = Response {
                    endpoint: Endpoint::Derived,
                    status: *status,
                    headers,
                    body,
                };
                let answer = derived::read(&response, now, self.core.config.max_response_bytes);
                self.derived_answered(now, &name, answer);
                Some(None)
            }
            Input::HttpFailed { id, kind, detail } => {
                let name = self.derived.requesting(*id)?;
                let error = crate::machine::transport(Endpoint::Derived, *kind, detail);
                let answer = if *kind == TransportErrorKind::Redirect {
                    let attempts = self.derived.flights.get(&name).map_or(1, |f| f.attempts);
                    Answer::Failed(DerivedProblem::Unavailable {
                        attempts,
                        last: Box::new(error),
                    })
                } else {
                    Answer::Transient(error)
                };
                self.derived_answered(now, &name, answer);
                Some(None)
            }
            _ => None,
        }
    }

    /// After every input: retries that are due, then the machine's answers to the flow
    /// and the session's changes among the effects from `first_new` on.
    pub(crate) fn derived_after(&mut self, now: UnixMillis, input: &Input, first_new: usize) {
        if matches!(input, Input::Timeout) {
            let due: Vec<String> = self
                .derived
                .flights
                .iter()
                .filter(|(_, f)| matches!(f.phase, Phase::WaitingToRetry { at } if at <= now))
                .map(|(name, _)| name.clone())
                .collect();
            for name in due {
                self.ask_for_access_token(now, &name, None);
            }
        }
        let mut from = first_new;
        for _ in 0..MAX_ROUNDS {
            let happenings = self.take_happenings(from);
            from = self.core.outbox.len();
            if happenings.is_empty() {
                break;
            }
            for happening in happenings {
                self.apply(now, happening);
            }
        }
    }

    fn derived_requested(&mut self, now: UnixMillis, waiter: WaiterId, name: &str, ttl: u64) {
        let Some(endpoint) = self.core.config.derived.get(name) else {
            let known = self
                .core
                .config
                .derived
                .keys()
                .map(|k| printable(k, 64))
                .collect();
            let problem = DerivedProblem::NotConfigured { known };
            return self.derived_failed(name, vec![waiter], derived_error(name, problem));
        };
        if let Some(problem) = self.unusable_url(name, &endpoint.url) {
            return self.derived_failed(name, vec![waiter], problem);
        }
        let subject = self.session_subject();
        let cached = self
            .derived
            .cache
            .get(name)
            .filter(|c| {
                self.core.session.is_some()
                    && c.subject == subject
                    && c.expires_at > now.plus_secs(ttl)
            })
            .cloned();
        if let Some(cached) = cached {
            return self.derived_ready(name, vec![waiter], cached);
        }
        if let Some(flight) = self.derived.flights.get_mut(name) {
            flight.waiters.push(waiter);
            return;
        }
        let flight = Flight {
            waiters: vec![waiter],
            attempts: 0,
            renewed: false,
            // Replaced at once by `ask_for_access_token`.
            phase: Phase::AwaitingAccessToken { waiter },
        };
        self.derived.flights.insert(name.to_owned(), flight);
        self.ask_for_access_token(now, name, None);
    }

    /// Who the session is for, as far as it says.
    fn session_subject(&self) -> Option<String> {
        self.core
            .session
            .as_ref()
            .and_then(|s| s.identity.as_ref())
            .and_then(|i| i.subject.clone())
    }

    /// A configuration error when the endpoint's URL is not one tokens may be sent to.
    fn unusable_url(&self, name: &str, url: &str) -> Option<Error> {
        let what = format!(
            "the endpoint of the derived token `{}`",
            printable(name, 64)
        );
        match crate::protocol::parse_url(url) {
            Err(error) => Some(crate::protocol::not_a_url(&what, error)),
            Ok(_) if !self.core.config.is_secure(url) => Some(Error::config(format!(
                "{what} (`{}`) is not https: the access token sent there could be read on \
                 the way; use its https URL (plain http is accepted only for 127.0.0.1, \
                 [::1] and localhost, or with insecure_http for a lab)",
                printable(url, 200)
            ))),
            Ok(_) => None,
        }
    }

    /// Asks the machine for an access token for the flight `name` (`rejected`: the one
    /// the derived endpoint refused, to be renewed).
    fn ask_for_access_token(&mut self, now: UnixMillis, name: &str, rejected: Option<Secret>) {
        let waiter = WaiterId(FIRST_INTERNAL_WAITER.saturating_add(self.derived.next_waiter));
        self.derived.next_waiter = self.derived.next_waiter.wrapping_add(1) % FIRST_INTERNAL_WAITER;
        let Some(flight) = self.derived.flights.get_mut(name) else {
            return;
        };
        flight.phase = Phase::AwaitingAccessToken { waiter };
        let input = match rejected {
            Some(access_token) => Input::TokenRejected {
                waiter,
                access_token,
            },
            None => Input::GetToken {
                waiter,
                min_ttl_secs: ACCESS_TOKEN_MIN_TTL_SECS,
            },
        };
        // Token requests are taken in every state (answered, joined or deferred).
        let _ = self.run_machine(now, &input);
    }

    /// Removes the machine's answers to the flow's token requests from the effects at
    /// `from` and after, and notes the session's changes among them.
    fn take_happenings(&mut self, from: usize) -> Vec<Happening> {
        let mut happenings = Vec::new();
        let from = from.min(self.core.outbox.len());
        let new: Vec<Effect> = self.core.outbox.drain(from..).collect();
        for effect in new {
            let kept = match effect {
                Effect::Event(Event::TokenReady {
                    waiters,
                    access_token,
                    expires_at,
                }) => {
                    let (ours, theirs) = split(waiters);
                    for waiter in ours {
                        happenings.push(Happening::AccessToken(waiter, Ok(access_token.clone())));
                    }
                    (!theirs.is_empty()).then_some(Effect::Event(Event::TokenReady {
                        waiters: theirs,
                        access_token,
                        expires_at,
                    }))
                }
                Effect::Event(Event::TokenFailed { waiters, error }) => {
                    let (ours, theirs) = split(waiters);
                    for waiter in ours {
                        happenings.push(Happening::AccessToken(waiter, Err(error.clone())));
                    }
                    (!theirs.is_empty()).then_some(Effect::Event(Event::TokenFailed {
                        waiters: theirs,
                        error,
                    }))
                }
                Effect::Event(Event::LoggedIn { .. }) => {
                    happenings.push(Happening::LoggedIn);
                    Some(effect)
                }
                Effect::Event(Event::LoggedOut { .. }) => {
                    happenings.push(Happening::LoggedOut);
                    Some(effect)
                }
                other => Some(other),
            };
            self.core.outbox.extend(kept);
        }
        happenings
    }

    fn apply(&mut self, now: UnixMillis, happening: Happening) {
        match happening {
            Happening::AccessToken(waiter, result) => {
                let Some(name) = self.derived.flights.iter().find_map(|(name, flight)| {
                    matches!(flight.phase, Phase::AwaitingAccessToken { waiter: w } if w == waiter)
                        .then(|| name.clone())
                }) else {
                    return; // A flight that ended or started again meanwhile.
                };
                match result {
                    Ok(access_token) => self.send(&name, access_token),
                    Err(error) => {
                        if let Some(flight) = self.derived.flights.remove(&name) {
                            self.derived_failed(&name, flight.waiters, error);
                        }
                    }
                }
            }
            Happening::LoggedIn => {
                self.derived.cache.clear();
                for name in self.flights_past_their_access_token() {
                    if let Some(flight) = self.derived.flights.get_mut(&name) {
                        flight.attempts = 0;
                        flight.renewed = false;
                    }
                    self.ask_for_access_token(now, &name, None);
                }
            }
            Happening::LoggedOut => {
                self.derived.cache.clear();
                for name in self.flights_past_their_access_token() {
                    if let Some(flight) = self.derived.flights.remove(&name) {
                        self.derived_failed(&name, flight.waiters, Error::NotLoggedIn);
                    }
                }
            }
        }
    }

    /// Flights that have their access token from the session as it was (the machine
    /// answers the others).
    fn flights_past_their_access_token(&self) -> Vec<String> {
        self.derived
            .flights
            .iter()
            .filter(|(_, f)| !matches!(f.phase, Phase::AwaitingAccessToken { .. }))
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn send(&mut self, name: &str, access_token: Secret) {
        let Some(url) = self.core.config.derived.get(name).map(|e| e.url.clone()) else {
            return;
        };
        let headers = derived::headers(&access_token);
        let request = self
            .core
            .send(Endpoint::Derived, Method::Post, &url, headers, None);
        if let Some(flight) = self.derived.flights.get_mut(name) {
            flight.attempts = flight.attempts.saturating_add(1);
            flight.phase = Phase::Requesting {
                request,
                sent_with: access_token,
            };
        }
    }

    fn derived_answered(&mut self, now: UnixMillis, name: &str, answer: Answer) {
        let Some(flight) = self.derived.flights.get_mut(name) else {
            return;
        };
        let sent_with = match &flight.phase {
            Phase::Requesting { sent_with, .. } => sent_with.clone(),
            _ => return,
        };
        let failed = |problem| derived_error(name, problem);
        let outcome = match answer {
            Answer::Token { token, expires_at } => {
                let subject = self
                    .core
                    .session
                    .as_ref()
                    .and_then(|s| s.identity.as_ref())
                    .and_then(|i| i.subject.clone());
                let cached = Cached {
                    token,
                    expires_at,
                    subject,
                };
                self.derived.cache.insert(name.to_owned(), cached.clone());
                Ok(cached)
            }
            Answer::AccessTokenRefused if !flight.renewed => {
                flight.renewed = true;
                return self.ask_for_access_token(now, name, Some(sent_with));
            }
            Answer::AccessTokenRefused => Err(failed(DerivedProblem::Unauthorized)),
            Answer::Transient(_) if flight.attempts < MAX_ATTEMPTS => {
                let exponent = flight.attempts.saturating_sub(1).min(20);
                let cap = self.core.config.max_retry_backoff_secs.saturating_mul(1000);
                let at = now.plus_millis((1000u64 << exponent).min(cap));
                flight.phase = Phase::WaitingToRetry { at };
                return;
            }
            Answer::Transient(last) => Err(failed(DerivedProblem::Unavailable {
                attempts: flight.attempts,
                last: Box::new(last),
            })),
            Answer::Failed(problem) => Err(failed(problem)),
        };
        let Some(flight) = self.derived.flights.remove(name) else {
            return;
        };
        match outcome {
            Ok(cached) => self.derived_ready(name, flight.waiters, cached),
            Err(error) => self.derived_failed(name, flight.waiters, error),
        }
    }

    fn derived_ready(&mut self, name: &str, waiters: Vec<WaiterId>, cached: Cached) {
        self.core.event(Event::DerivedTokenReady {
            waiters,
            name: name.to_owned(),
            token: cached.token,
            expires_at: cached.expires_at,
        });
    }

    fn derived_failed(&mut self, name: &str, waiters: Vec<WaiterId>, error: Error) {
        self.core.event(Event::DerivedTokenFailed {
            waiters,
            name: name.to_owned(),
            error,
        });
    }
}

fn derived_error(name: &str, problem: DerivedProblem) -> Error {
    Error::Derived {
        name: printable(name, 64),
        problem,
    }
}

/// The flow's waiters and the hosts'.
fn split(waiters: Vec<WaiterId>) -> (Vec<WaiterId>, Vec<WaiterId>) {
    waiters.into_iter().partition(|w| is_internal(*w))
}

#[cfg(test)]
mod tests {
    use super::ByName;

    #[test]
    fn by_name_is_a_map_in_name_order() {
        let mut map = ByName::default();
        map.insert("b".to_owned(), 2);
        map.insert("a".to_owned(), 1);
        map.insert("c".to_owned(), 3);
        map.insert("b".to_owned(), 20);
        assert_eq!(format!("{map:?}"), r#"{"a": 1, "b": 20, "c": 3}"#);
        assert_eq!(map.get("b"), Some(&20));
        *map.get_mut("a").unwrap() += 10;
        assert_eq!(map.remove("c"), Some(3));
        assert_eq!(map.remove("c"), None);
        assert_eq!(map.get("c"), None);
        assert_eq!(map.values().copied().collect::<Vec<_>>(), vec![11, 20]);
        map.clear();
        assert_eq!(format!("{map:?}"), "{}");
    }
}
