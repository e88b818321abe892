//! Handing out tokens and refreshing them: single flight, the cross-process lock,
//! rotation, and what a failed refresh leads to.

use std::collections::BTreeMap;

use statig::prelude::*;

use super::State;
use super::actions::Ctx;
use crate::core::{AutoRefresh, Lock};
use crate::effect::{Effect, Event, LogoutReason, Method};
use crate::error::{Endpoint, Error, ErrorCode};
use crate::input::WaiterId;
use crate::protocol::discovery;
use crate::protocol::id_token::Expected;
use crate::protocol::token::{self, TokenSet};
use crate::secret::Secret;
use crate::session::{SESSION_FORMAT_VERSION, StoredSession};

impl Ctx<'_> {
    pub(super) fn buffer_secs(&self) -> u64 {
        self.core.config.refresh_buffer_secs
    }

    pub(crate) fn get_token(&mut self, waiter: WaiterId, min_ttl_secs: u64) -> Outcome<State> {
        let (now, buffer) = (self.now, self.buffer_secs());
        let Some(session) = &self.core.session else {
            self.core.fail(vec![waiter], Error::NotLoggedIn);
            return Transition(State::logged_out());
        };
        // After a failed refresh, callers the current token still satisfies get it until
        // the retry is due, so a provider in trouble is not asked again on every call.
        let held_off = match self.core.auto_refresh {
            AutoRefresh::Paused => true,
            AutoRefresh::RetryAt(at) => now < at,
            AutoRefresh::Scheduled => false,
        };
        if !session.wants_refresh(now, min_ttl_secs, buffer)
            || (held_off && session.is_usable(now, min_ttl_secs))
        {
            self.core.serve(vec![waiter]);
            return Handled;
        }
        if session.refresh_token.is_none() {
            let reason = "the access token expired and there is no refresh token".to_owned();
            self.core
                .fail(vec![waiter], Error::LoginRequired { reason });
            return Handled;
        }
        if let Some(error) = self.waiting_to_retry() {
            self.core.fail(vec![waiter], error);
            return Handled;
        }
        self.core.join(waiter, min_ttl_secs);
        self.begin_refresh()
    }

    /// The last refresh error while a transient failure's backoff runs: until the retry is
    /// due, callers the current token cannot satisfy get that error at once instead of
    /// asking a provider in trouble again.
    fn waiting_to_retry(&self) -> Option<Error> {
        match self.core.auto_refresh {
            AutoRefresh::RetryAt(at) if self.now < at => self.core.last_refresh_error.clone(),
            _ => None,
        }
    }

    pub(crate) fn token_rejected(&mut self, waiter: WaiterId, rejected: &Secret) -> Outcome<State> {
        let Some(session) = &self.core.session else {
            self.core.fail(vec![waiter], Error::NotLoggedIn);
            return Transition(State::logged_out());
        };
        if session.access_token != *rejected {
            // A newer token exists already; the caller retries with it.
            return self.get_token(waiter, 0);
        }
        if session.refresh_token.is_none() {
            let reason =
                "the provider rejected the access token and there is no refresh token".to_owned();
            self.core
                .fail(vec![waiter], Error::LoginRequired { reason });
            return Handled;
        }
        if let Some(error) = self.waiting_to_retry() {
            self.core.fail(vec![waiter], error);
            return Handled;
        }
        self.core.join_rejecting(waiter, rejected.clone());
        self.begin_refresh()
    }

    pub(crate) fn on_refresh_timer(&mut self) -> Outcome<State> {
        match self.core.refresh_timer() {
            Some(due) if self.now >= due => self.begin_refresh(),
            _ => Handled,
        }
    }

    pub(super) fn begin_refresh(&mut self) -> Outcome<State> {
        let endpoints = self.core.endpoints();
        // A session that came without its endpoints (imported tokens, tokens from the
        // environment): the provider's metadata names the token endpoint.
        if endpoints.token.is_none()
            && self.core.config.discovery
            && self.core.discovered.is_none()
            && let Some(issuer) = self.core.config.issuer.clone()
        {
            return match discovery::metadata_urls(&issuer) {
                Ok((url, fallback)) => {
                    let request = self
                        .core
                        .request(Endpoint::Discovery, Method::Get, &url, None);
                    Transition(State::finding_token_endpoint(request, fallback))
                }
                Err(error) => self.refresh_failed(error),
            };
        }
        let unusable = match endpoints.token {
            None => Some(Error::config(
                "no token endpoint to refresh with: set `issuer` or `endpoints.token`",
            )),
            Some(_) => self.core.config.check_transport(&endpoints).err(),
        };
        if let Some(error) = unusable {
            self.core.auto_refresh = AutoRefresh::Paused;
            let waiters = std::mem::take(&mut self.core.waiters)
                .into_iter()
                .map(|w| w.id)
                .collect();
            self.core.fail(waiters, error);
            return Handled;
        }
        self.core.emit(Effect::LockSession);
        self.core.lock = Lock::Requested;
        Transition(State::locking_session())
    }

    /// The metadata a refresh needed: with a token endpoint the refresh goes on; a 404 at
    /// the OpenID location tries the RFC 8414 one; anything else fails the refresh.
    pub(crate) fn refresh_metadata_answered(
        &mut self,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
        fallback: Option<String>,
    ) -> Outcome<State> {
        let response = self.response(Endpoint::Discovery, status, headers, body);
        let issuer = self.core.config.issuer.clone().unwrap_or_default();
        let limit = self.core.config.max_response_bytes;
        match (
            discovery::read_metadata(&response, &issuer, limit),
            fallback,
        ) {
            (Ok(metadata), _) => {
                self.core.discovered = Some(metadata);
                self.begin_refresh()
            }
            (Err(_), Some(url)) if status == 404 => {
                let request = self
                    .core
                    .request(Endpoint::Discovery, Method::Get, &url, None);
                Transition(State::finding_token_endpoint(request, None))
            }
            (Err(error), _) => self.refresh_failed(error),
        }
    }

    /// Whether the session (as it is now) still needs the refresh that was started.
    pub(super) fn refresh_still_needed(&self) -> bool {
        let ttl = self.core.most_demanding_ttl();
        self.core
            .session
            .as_ref()
            .is_none_or(|s| s.wants_refresh(self.now, ttl, self.buffer_secs()))
    }

    pub(crate) fn after_lock(&mut self, stored: Option<StoredSession>) -> Outcome<State> {
        let stored = stored.filter(|s| self.core.is_ours(s));
        let Some(stored) = stored else {
            return self.logged_out_elsewhere();
        };
        let ours = self.core.session.as_ref();
        let changed = ours.is_none_or(|s| {
            s.access_token != stored.access_token || s.refresh_token != stored.refresh_token
        });
        if changed {
            self.core.session = Some(stored);
            if !self.refresh_still_needed() {
                // A sibling process refreshed while we waited for the lock.
                self.core.unlock();
                self.core.reset_refresh_schedule();
                self.core.release_waiters(self.now, Error::NotLoggedIn);
                return Transition(State::idle());
            }
        }
        self.send_refresh()
    }

    pub(super) fn send_refresh(&mut self) -> Outcome<State> {
        let endpoints = self.core.endpoints();
        let (Some(url), Some(refresh_token)) = (
            endpoints.token,
            self.core
                .session
                .as_ref()
                .and_then(|s| s.refresh_token.clone()),
        ) else {
            let reason = "there is no refresh token".to_owned();
            return self.refresh_failed(Error::LoginRequired { reason });
        };
        let encoded = token::refresh(&self.core.config, self.core.token_auth(), &refresh_token);
        let request = self
            .core
            .request(Endpoint::Token, Method::Post, &url, Some(encoded));
        Transition(State::refreshing(request))
    }

    pub(super) fn logged_out_elsewhere(&mut self) -> Outcome<State> {
        self.core.unlock();
        self.core.session = None;
        let reason = "another process logged out".to_owned();
        self.core
            .release_waiters(self.now, Error::LoginRequired { reason });
        self.core.event(Event::LoggedOut {
            reason: LogoutReason::LoggedOutElsewhere,
            end_session_url: None,
            server_calls: Vec::new(),
        });
        Transition(State::logged_out())
    }

    pub(crate) fn refresh_answered(
        &mut self,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
    ) -> Outcome<State> {
        let response = self.response(Endpoint::Token, status, headers, body);
        let config = &self.core.config;
        let subject = self
            .core
            .session
            .as_ref()
            .and_then(|s| s.identity.as_ref())
            .and_then(|i| i.subject.as_deref());
        let expected = Expected {
            issuer: config.expected_id_token_issuer(),
            client_id: &config.client_id,
            nonce: None,
            subject,
            now: self.provider_time(headers),
            skew_millis: config.clock_skew_secs.saturating_mul(1000),
        };
        match token::read_token_response(&response, config, &expected) {
            Ok(tokens) => self.verify_tokens(super::signatures::Flow::Refresh, tokens),
            Err(error) if is_rejection(&error) => {
                self.core.emit(Effect::LoadSession);
                Transition(State::confirming_grant_loss(error))
            }
            Err(error) => self.refresh_failed(error),
        }
    }

    /// The refreshed tokens are stored (before anyone gets them) and every waiter served.
    pub(crate) fn refresh_succeeded(&mut self, tokens: TokenSet) -> Outcome<State> {
        let Some(previous) = self.core.session.clone() else {
            return self.logged_out_elsewhere();
        };
        let session = self.renewed_session(previous, tokens);
        self.core.session = Some(session.clone());
        self.core.emit(Effect::PersistSession {
            session: Box::new(session),
        });
        self.core.unlock();
        self.core.reset_refresh_schedule();
        self.core.serve_all_waiters(Error::LoginRequired {
            reason: "the provider issued the rejected token again".to_owned(),
        });
        Transition(State::idle())
    }

    /// The session after a refresh: a returned refresh token replaces the old one
    /// (rotation), otherwise the old one stays; an absent scope keeps the old scope.
    pub(super) fn renewed_session(
        &self,
        previous: StoredSession,
        tokens: TokenSet,
    ) -> StoredSession {
        StoredSession {
            version: SESSION_FORMAT_VERSION,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.or(previous.refresh_token),
            id_token: tokens.id_token.or(previous.id_token),
            identity: tokens.identity.or(previous.identity),
            obtained_at: self.now,
            expires_at: self.now.plus_secs(tokens.lifetime_secs),
            scopes: tokens.scopes.unwrap_or(previous.scopes),
            // A session that had to discover its endpoints keeps what was found.
            endpoints: if previous.endpoints == crate::config::Endpoints::default() {
                self.core.endpoints_to_remember()
            } else {
                let mut endpoints = previous.endpoints.clone();
                if let Some(key) = &self.core.verified_with {
                    endpoints.signing_keys = vec![key.clone()];
                }
                endpoints
            },
            ..previous
        }
    }

    pub(crate) fn refresh_failed(&mut self, error: Error) -> Outcome<State> {
        self.core.unlock();
        let usable_now = self
            .core
            .session
            .as_ref()
            .is_some_and(|s| s.is_usable(self.now, 0));
        let retry_at = if error.is_transient() && usable_now {
            let at = self.now.plus_millis(self.core.next_backoff_millis());
            let expires_at = self.core.session.as_ref().map_or(at, |s| s.expires_at);
            (at < expires_at).then_some(at)
        } else {
            None
        };
        self.core.auto_refresh = retry_at.map_or(AutoRefresh::Paused, AutoRefresh::RetryAt);
        self.core.last_refresh_error = Some(error.clone());
        self.core.release_waiters(self.now, error.clone());
        self.core.event(Event::RefreshFailed { error, retry_at });
        Transition(State::idle())
    }

    pub(crate) fn after_reread(
        &mut self,
        stored: Option<StoredSession>,
        error: Error,
    ) -> Outcome<State> {
        let ours = self
            .core
            .session
            .as_ref()
            .and_then(|s| s.refresh_token.clone());
        match stored.filter(|s| self.core.is_ours(s)) {
            Some(stored) if stored.refresh_token.is_some() && stored.refresh_token != ours => {
                self.core.session = Some(stored);
                if self.refresh_still_needed() {
                    self.send_refresh()
                } else {
                    self.core.unlock();
                    self.core.reset_refresh_schedule();
                    self.core.release_waiters(self.now, Error::NotLoggedIn);
                    Transition(State::idle())
                }
            }
            _ => self.end_session(error),
        }
    }

    /// The refresh token is dead: delete the session (under the lock, so siblings see
    /// it) and tell everyone why.
    pub(crate) fn end_session(&mut self, error: Error) -> Outcome<State> {
        self.core.session = None;
        self.core.emit(Effect::DeleteSession);
        self.core.unlock();
        let reason = "the provider rejected the refresh token".to_owned();
        self.core
            .release_waiters(self.now, Error::LoginRequired { reason });
        self.core.event(Event::LoggedOut {
            reason: LogoutReason::SessionEnded { error },
            end_session_url: None,
            server_calls: Vec::new(),
        });
        Transition(State::logged_out())
    }
}

/// Whether the provider rejected the refresh token itself: `invalid_grant` (or GitHub's
/// `bad_refresh_token`) with any status, or HTTP 400 or 401 with any body (another code, HTML, nothing: some servers say
/// `invalid_grant` that way). Sending the same token again cannot succeed, so after a
/// re-read (a sibling may have rotated it) the session ends. Transient failures (5xx,
/// 429, no response) are not rejections: the session stays.
fn is_rejection(error: &Error) -> bool {
    match error {
        Error::OAuth { error, status, .. } => {
            // GitHub says `bad_refresh_token`, with HTTP 200.
            error.code == ErrorCode::InvalidGrant
                || error.code.as_str() == "bad_refresh_token"
                || matches!(status, 400 | 401)
        }
        Error::Response { status, .. } => matches!(status, 400 | 401),
        _ => false,
    }
}
