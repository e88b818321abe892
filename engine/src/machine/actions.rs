//! What the handlers do. Each function returns the state to go to, so the handlers in
//! `mod.rs` read as a transition table.

use std::collections::BTreeMap;

use statig::prelude::*;

use super::State;
use crate::core::{AutoRefresh, Core, Lock};
use crate::effect::{Effect, Event, LogoutReason, Method};
use crate::error::{CallbackProblem, Endpoint, Error, TransportErrorKind};
use crate::input::{Input, LoginMethod, RequestId, WaiterId};
use crate::protocol::authorize::{Callback, PendingAuthorization};
use crate::protocol::device::{self, DeviceGrant, SLOW_DOWN_STEP_SECS};
use crate::protocol::discovery;
use crate::protocol::id_token::Expected;
use crate::protocol::logout;
use crate::protocol::response::Response;
use crate::protocol::token::{self, TokenSet};
use crate::secret::Secret;
use crate::session::{SESSION_FORMAT_VERSION, StoredSession};
use crate::time::UnixMillis;

/// Why an input was refused; the engine turns it into [`crate::Rejected`].
#[derive(Debug)]
pub(crate) enum Rejection {
    UnknownRequest(RequestId),
    Unexpected,
    Invalid(Error),
}

/// The context every handler gets: the time of the input and the shared core.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub now: UnixMillis,
    pub core: &'a mut Core,
    pub rejection: Option<Rejection>,
}

/// Commands come from the user or the app (as opposed to answers to effects).
pub(crate) fn is_command(input: &Input) -> bool {
    matches!(
        input,
        Input::Login { .. }
            | Input::GetToken { .. }
            | Input::TokenRejected { .. }
            | Input::Logout { .. }
            | Input::Cancel
    )
}

pub(crate) fn transport(endpoint: Endpoint, kind: TransportErrorKind, detail: &str) -> Error {
    Error::Transport {
        endpoint,
        kind,
        detail: crate::protocol::response::printable(detail, 200),
    }
}

/// RFC 8628 §3.5: on a connection problem, poll less often: double the interval, up to a
/// minute, but never below what the provider asked for.
pub(crate) fn backed_off_interval(interval_secs: u64) -> u64 {
    interval_secs
        .saturating_mul(2)
        .min(interval_secs.max(60))
        .max(1)
}

pub(crate) const REVOKE_REFRESH: &str = "revoke_refresh_token";
pub(crate) const REVOKE_ACCESS: &str = "revoke_access_token";
pub(crate) const SERVER_LOGOUT: &str = "server_logout";
/// The order logout makes its calls in.
pub(crate) const LOGOUT_CALL_ORDER: [&str; 3] = [REVOKE_REFRESH, REVOKE_ACCESS, SERVER_LOGOUT];

pub(crate) fn logout_call_endpoint(call: &str) -> Endpoint {
    if call == SERVER_LOGOUT {
        Endpoint::ServerLogout
    } else {
        Endpoint::Revocation
    }
}

/// Where a redirect came from.
pub(crate) enum CallbackText<'a> {
    Redirect(&'a str),
    Paste(&'a str),
}

impl Ctx<'_> {
    fn response<'b>(
        &self,
        endpoint: Endpoint,
        status: u16,
        headers: &'b BTreeMap<String, String>,
        body: &'b str,
    ) -> Response<'b> {
        Response {
            endpoint,
            status,
            headers,
            body,
        }
    }

    /// Where the engine rests when no flow runs.
    fn resting_state(&self) -> State {
        if self.core.session.is_some() {
            State::idle()
        } else {
            State::logged_out()
        }
    }

    pub(crate) fn defer(&mut self, input: &Input) -> Outcome<State> {
        self.core.deferred.push_back(input.clone());
        Handled
    }

    // ----- loading -----

    pub(crate) fn adopt_loaded(&mut self, session: Option<StoredSession>) -> Outcome<State> {
        match session {
            Some(session) if self.core.is_ours(&session) => {
                self.core.session = Some(session);
                self.core.reset_refresh_schedule();
                Transition(State::idle())
            }
            _ => Transition(State::logged_out()),
        }
    }

    // ----- tokens -----

    fn buffer_secs(&self) -> u64 {
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
        self.core.join(waiter, min_ttl_secs);
        self.begin_refresh()
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
        self.core.join_rejecting(waiter, rejected.clone());
        self.begin_refresh()
    }

    pub(crate) fn on_refresh_timer(&mut self) -> Outcome<State> {
        match self.core.refresh_timer() {
            Some(due) if self.now >= due => self.begin_refresh(),
            _ => Handled,
        }
    }

    fn begin_refresh(&mut self) -> Outcome<State> {
        if self.core.endpoints().token.is_none() {
            let error = Error::config(
                "no token endpoint to refresh with: set `issuer` or `endpoints.token`",
            );
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

    /// Whether the session (as it is now) still needs the refresh that was started.
    fn refresh_still_needed(&self) -> bool {
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

    fn send_refresh(&mut self) -> Outcome<State> {
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
        let encoded = token::refresh(&self.core.config, &refresh_token);
        let request = self
            .core
            .request(Endpoint::Token, Method::Post, &url, Some(encoded));
        Transition(State::refreshing(request))
    }

    fn logged_out_elsewhere(&mut self) -> Outcome<State> {
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
            issuer: config.issuer.as_deref(),
            client_id: &config.client_id,
            nonce: None,
            subject,
            now: self.now,
        };
        match token::read_token_response(&response, config, &expected) {
            Ok(tokens) => {
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
            Err(error @ Error::OAuth { .. }) if is_invalid_grant(&error) => {
                self.core.emit(Effect::LoadSession);
                Transition(State::confirming_grant_loss(error))
            }
            Err(error) => self.refresh_failed(error),
        }
    }

    /// The session after a refresh: a returned refresh token replaces the old one
    /// (rotation), otherwise the old one stays; an absent scope keeps the old scope.
    fn renewed_session(&self, previous: StoredSession, tokens: TokenSet) -> StoredSession {
        StoredSession {
            version: SESSION_FORMAT_VERSION,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.or(previous.refresh_token),
            id_token: tokens.id_token.or(previous.id_token),
            identity: tokens.identity.or(previous.identity),
            obtained_at: self.now,
            expires_at: self.now.plus_secs(tokens.lifetime_secs),
            scopes: tokens.scopes.unwrap_or(previous.scopes),
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

    // ----- login -----

    pub(crate) fn token_during_login(
        &mut self,
        waiter: WaiterId,
        min_ttl_secs: u64,
    ) -> Outcome<State> {
        let fresh = self
            .core
            .session
            .as_ref()
            .is_some_and(|s| !s.wants_refresh(self.now, min_ttl_secs, self.buffer_secs()));
        if fresh {
            self.core.serve(vec![waiter]);
        } else {
            self.core.join(waiter, min_ttl_secs);
        }
        Handled
    }

    pub(crate) fn login_failed(&mut self, error: Error) -> Outcome<State> {
        self.core.event(Event::LoginFailed {
            error: error.clone(),
        });
        let error = if self.core.session.is_some() {
            error
        } else {
            Error::NotLoggedIn
        };
        self.core.release_waiters(self.now, error);
        Transition(self.resting_state())
    }

    pub(crate) fn start_login(
        &mut self,
        method: LoginMethod,
        redirect_uri: Option<String>,
    ) -> Outcome<State> {
        let endpoints = self.core.endpoints();
        let first = match method {
            LoginMethod::Device => (
                "device_authorization",
                endpoints.device_authorization.clone(),
            ),
            _ => ("authorization", endpoints.authorization.clone()),
        };
        let missing = [first, ("token", endpoints.token.clone())]
            .into_iter()
            .find_map(|(name, url)| url.is_none().then_some(name));
        if let Some(missing) = missing {
            let config = &self.core.config;
            return match (
                &config.issuer,
                config.discovery && self.core.discovered.is_none(),
            ) {
                (Some(issuer), true) => match discovery::metadata_urls(issuer) {
                    Ok((url, fallback)) => {
                        let request =
                            self.core
                                .request(Endpoint::Discovery, Method::Get, &url, None);
                        Transition(State::discovering(request, method, redirect_uri, fallback))
                    }
                    Err(error) => self.login_failed(error),
                },
                _ => {
                    let advice = if self.core.discovered.is_some() {
                        format!(
                            "the provider's metadata names no {missing} endpoint; set `endpoints.{missing}`"
                        )
                    } else if config.issuer.is_some() {
                        format!(
                            "discovery is off and no {missing} endpoint is configured; set `endpoints.{missing}` or enable discovery"
                        )
                    } else {
                        format!(
                            "no {missing} endpoint: set `issuer` (for discovery) or `endpoints.{missing}`"
                        )
                    };
                    self.login_failed(Error::config(advice))
                }
            };
        }
        match method {
            LoginMethod::Device => {
                let url = endpoints.device_authorization.unwrap_or_default();
                let encoded = device::device_authorization(&self.core.config);
                let request = self.core.request(
                    Endpoint::DeviceAuthorization,
                    Method::Post,
                    &url,
                    Some(encoded),
                );
                Transition(State::requesting_device_code(request))
            }
            LoginMethod::Browser | LoginMethod::Paste => {
                let Some(redirect_uri) =
                    redirect_uri.or_else(|| self.core.config.redirect_uri.clone())
                else {
                    return self.login_failed(Error::config(
                        "no redirect_uri: the host passes one, or set `redirect_uri`",
                    ));
                };
                let iss_required = self
                    .core
                    .discovered
                    .as_ref()
                    .is_some_and(|m| m.iss_parameter_supported);
                let core = &mut *self.core;
                let auth = PendingAuthorization::new(
                    redirect_uri,
                    &core.config,
                    &mut core.entropy,
                    iss_required,
                );
                let url = match auth.url(
                    &core.config,
                    endpoints.authorization.as_deref().unwrap_or_default(),
                ) {
                    Ok(url) => url,
                    Err(error) => return self.login_failed(error),
                };
                self.core.emit(match method {
                    LoginMethod::Paste => Effect::PromptForCode { url },
                    _ => Effect::OpenBrowser { url },
                });
                let deadline = self.now.plus_secs(self.core.config.callback_timeout_secs);
                Transition(State::awaiting_callback(auth, deadline))
            }
        }
    }

    pub(crate) fn discovery_answered(
        &mut self,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
        method: LoginMethod,
        redirect_uri: Option<String>,
        fallback_url: Option<String>,
    ) -> Outcome<State> {
        if status == 404
            && let Some(url) = fallback_url
        {
            let request = self
                .core
                .request(Endpoint::Discovery, Method::Get, &url, None);
            return Transition(State::discovering(request, method, redirect_uri, None));
        }
        let response = self.response(Endpoint::Discovery, status, headers, body);
        let issuer = self.core.config.issuer.clone().unwrap_or_default();
        match discovery::read_metadata(&response, &issuer, self.core.config.max_response_bytes) {
            Ok(metadata) => {
                self.core.discovered = Some(metadata);
                self.start_login(method, redirect_uri)
            }
            Err(error) => self.login_failed(error),
        }
    }

    pub(crate) fn callback_received(
        &mut self,
        auth: &PendingAuthorization,
        text: CallbackText<'_>,
    ) -> Outcome<State> {
        let parsed = match text {
            CallbackText::Redirect(url) => Callback::from_redirect(url),
            CallbackText::Paste(text) => Callback::from_paste(text),
        };
        let code = match parsed.and_then(|c| auth.accept(&c, self.core.config.issuer.as_deref())) {
            Ok(code) => code,
            // Text that is not this login's redirect ends nothing: the user may paste
            // again, and a stray or forged request to the loopback port cannot cancel
            // the login.
            Err(
                error @ Error::Callback {
                    problem:
                        CallbackProblem::Unreadable
                        | CallbackProblem::StateMismatch
                        | CallbackProblem::MissingState,
                },
            ) => {
                self.rejection = Some(Rejection::Invalid(error));
                return Handled;
            }
            Err(error) => return self.login_failed(error),
        };
        let Some(url) = self.core.endpoints().token else {
            return self.login_failed(Error::config("no token endpoint"));
        };
        let encoded = token::exchange_code(
            &self.core.config,
            &code,
            &auth.pkce.verifier,
            &auth.redirect_uri,
            &auth.state,
        );
        let request = self
            .core
            .request(Endpoint::Token, Method::Post, &url, Some(encoded));
        Transition(State::exchanging_code(request, auth.clone()))
    }

    pub(crate) fn token_response_for_login(
        &mut self,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
        nonce: Option<&str>,
    ) -> Outcome<State> {
        let response = self.response(Endpoint::Token, status, headers, body);
        let config = &self.core.config;
        let expected = Expected {
            issuer: config.issuer.as_deref(),
            client_id: &config.client_id,
            nonce,
            subject: None,
            now: self.now,
        };
        match token::read_token_response(&response, config, &expected) {
            // OIDC Core §3.1.3.3: a granted `openid` scope comes with an ID token, which
            // is what proves the nonce round trip.
            Ok(tokens)
                if nonce.is_some()
                    && tokens.id_token.is_none()
                    && tokens
                        .scopes
                        .as_ref()
                        .is_none_or(|s| s.iter().any(|s| s == "openid")) =>
            {
                self.login_failed(response.missing("id_token"))
            }
            Ok(tokens) => self.complete_login(tokens),
            Err(error) => self.login_failed(error),
        }
    }

    fn complete_login(&mut self, tokens: TokenSet) -> Outcome<State> {
        let config = &self.core.config;
        let session = StoredSession {
            version: SESSION_FORMAT_VERSION,
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            id_token: tokens.id_token,
            obtained_at: self.now,
            expires_at: self.now.plus_secs(tokens.lifetime_secs),
            scopes: tokens.scopes.unwrap_or_else(|| config.scopes.clone()),
            identity: tokens.identity,
            endpoints: self.core.endpoints_to_remember(),
        };
        self.core.session = Some(session.clone());
        self.core.reset_refresh_schedule();
        self.core.emit(Effect::PersistSession {
            session: Box::new(session.clone()),
        });
        self.core.event(Event::LoggedIn {
            identity: session.identity.clone(),
            scopes: session.scopes.clone(),
            expires_at: session.expires_at,
        });
        self.core.serve_all_waiters(Error::LoginRequired {
            reason: "the provider issued the rejected token again".to_owned(),
        });
        Transition(State::idle())
    }

    pub(crate) fn device_code_answered(
        &mut self,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
    ) -> Outcome<State> {
        let response = self.response(Endpoint::DeviceAuthorization, status, headers, body);
        match device::read_device_authorization(&response, &self.core.config, self.now) {
            Ok((grant, user_code)) => {
                self.core.emit(Effect::ShowUserCode(user_code));
                self.wait_to_poll(grant)
            }
            Err(error) => self.login_failed(error),
        }
    }

    pub(crate) fn wait_to_poll(&mut self, grant: DeviceGrant) -> Outcome<State> {
        let poll_at = self.now.plus_secs(grant.interval_secs);
        Transition(State::waiting_to_poll(grant, poll_at))
    }

    pub(crate) fn poll_device(&mut self, grant: DeviceGrant) -> Outcome<State> {
        let Some(url) = self.core.endpoints().token else {
            return self.login_failed(Error::config("no token endpoint"));
        };
        let encoded = token::poll_device(&self.core.config, &grant.device_code);
        let request = self
            .core
            .request(Endpoint::Token, Method::Post, &url, Some(encoded));
        Transition(State::polling_device(grant, request))
    }

    pub(crate) fn device_poll_answered(
        &mut self,
        mut grant: DeviceGrant,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
    ) -> Outcome<State> {
        let response = self.response(Endpoint::Token, status, headers, body);
        let config = &self.core.config;
        let expected = Expected {
            issuer: config.issuer.as_deref(),
            client_id: &config.client_id,
            nonce: None,
            subject: None,
            now: self.now,
        };
        match token::read_token_response(&response, config, &expected) {
            Ok(tokens) => self.complete_login(tokens),
            Err(Error::OAuth { error, .. }) if error.code == "authorization_pending" => {
                self.wait_to_poll(grant)
            }
            Err(Error::OAuth { error, .. }) if error.code == "slow_down" => {
                // RFC 8628 §3.5 adds 5 s; some providers (GitHub) also name the new
                // interval in the error body, and the slower of the two wins.
                let named = device::interval_in(&response, self.core.config.max_response_bytes);
                let stepped = grant.interval_secs.saturating_add(SLOW_DOWN_STEP_SECS);
                grant.interval_secs = named.map_or(stepped, |n| n.max(stepped));
                self.wait_to_poll(grant)
            }
            Err(error) if error.is_transient() => {
                grant.interval_secs = backed_off_interval(grant.interval_secs);
                self.wait_to_poll(grant)
            }
            Err(error) => self.login_failed(error),
        }
    }

    // ----- logout -----

    /// Deletes the local session first (so a crash mid-way cannot leave it behind), then
    /// calls the provider with the tokens still in memory.
    pub(crate) fn logout(&mut self, force: bool) -> Outcome<State> {
        self.core.unlock();
        let session = self.core.session.take();
        self.core.emit(Effect::DeleteSession);
        let waiters = std::mem::take(&mut self.core.waiters)
            .into_iter()
            .map(|w| w.id)
            .collect();
        self.core.fail(waiters, Error::NotLoggedIn);
        let endpoints = match &session {
            Some(s) => self.core.config.endpoints.or(&self
                .core
                .discovered
                .as_ref()
                .map(|m| m.endpoints.clone())
                .unwrap_or_default()
                .or(&s.endpoints)),
            None => self.core.endpoints(),
        };
        let (Some(session), false) = (session, force) else {
            self.core.event(Event::LoggedOut {
                reason: LogoutReason::Requested,
                end_session_url: None,
                server_calls: Vec::new(),
            });
            return Transition(State::logged_out());
        };
        let mut pending = Vec::new();
        if let Some(url) = &endpoints.revocation {
            let config = &self.core.config;
            let mut revocations = Vec::new();
            if let Some(refresh_token) = &session.refresh_token {
                revocations.push((
                    REVOKE_REFRESH,
                    logout::revoke(config, refresh_token, "refresh_token"),
                ));
            }
            revocations.push((
                REVOKE_ACCESS,
                logout::revoke(config, &session.access_token, "access_token"),
            ));
            for (call, encoded) in revocations {
                let id = self
                    .core
                    .request(Endpoint::Revocation, Method::Post, url, Some(encoded));
                pending.push((id, call.to_owned()));
            }
        }
        if let Some(url) = &endpoints.server_logout {
            let mut encoded = token::client_form(&self.core.config, Vec::new());
            encoded.headers.insert(
                "authorization".to_owned(),
                format!("Bearer {}", session.access_token.expose()),
            );
            let id = self
                .core
                .request(Endpoint::ServerLogout, Method::Post, url, Some(encoded));
            pending.push((id, SERVER_LOGOUT.to_owned()));
        }
        let end_session_url = endpoints
            .end_session
            .as_deref()
            .and_then(|url| logout::end_session_url(&self.core.config, url, &session));
        if pending.is_empty() {
            self.core.event(Event::LoggedOut {
                reason: LogoutReason::Requested,
                end_session_url,
                server_calls: Vec::new(),
            });
            return Transition(State::logged_out());
        }
        Transition(State::revoking(pending, Vec::new(), end_session_url))
    }

    pub(crate) fn read_logout_answer(
        &self,
        call: &str,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
    ) -> Result<(), Error> {
        let endpoint = logout_call_endpoint(call);
        let response = self.response(endpoint, status, headers, body);
        let limit = self.core.config.max_response_bytes;
        match endpoint {
            Endpoint::ServerLogout => logout::read_server_logout(&response, limit),
            _ => logout::read_revocation(&response, limit),
        }
    }
}

fn is_invalid_grant(error: &Error) -> bool {
    matches!(error, Error::OAuth { error, .. } if error.code == "invalid_grant")
}
