//! Logging in: discovery, the authorization request and its redirect, the code
//! exchange, and the device flow.

use std::collections::BTreeMap;

use statig::prelude::*;

use super::State;
use super::actions::{CallbackText, Ctx, Rejection, backed_off_interval};
use crate::effect::{Effect, Event, Method};
use crate::error::{CallbackProblem, Endpoint, Error, ErrorCode};
use crate::input::{LoginMethod, WaiterId};
use crate::protocol::authorize::{Callback, PendingAuthorization};
use crate::protocol::device::{self, DeviceGrant, SLOW_DOWN_STEP_SECS};
use crate::protocol::discovery::{self, Discovery};
use crate::protocol::handoff::HandedOffLogin;
use crate::protocol::id_token::Expected;
use crate::protocol::token::{self, TokenSet};
use crate::protocol::userinfo;
use crate::secret::Secret;
use crate::session::{SESSION_FORMAT_VERSION, StoredSession};

impl Ctx<'_> {
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
        if let Err(error) = self.core.config.check_transport(&endpoints) {
            return self.login_failed(error);
        }
        let first = match method {
            LoginMethod::Device => (
                Endpoint::DeviceAuthorization,
                "device_authorization",
                endpoints.device_authorization.clone(),
            ),
            _ => (
                Endpoint::Authorization,
                "authorization",
                endpoints.authorization.clone(),
            ),
        };
        let missing = [first, (Endpoint::Token, "token", endpoints.token.clone())]
            .into_iter()
            .find_map(|(endpoint, name, url)| url.is_none().then_some((endpoint, name)));
        if let Some((endpoint, missing)) = missing {
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
                        Transition(State::discovering(
                            request,
                            method,
                            redirect_uri,
                            Discovery::OpenId { fallback },
                        ))
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
                    self.login_failed(Error::MissingEndpoint { endpoint, advice })
                }
            };
        }
        match method {
            LoginMethod::Device => {
                let url = endpoints.device_authorization.unwrap_or_default();
                let encoded =
                    device::device_authorization(&self.core.config, self.core.token_auth());
                let request = self.core.request(
                    Endpoint::DeviceAuthorization,
                    Method::Post,
                    &url,
                    Some(encoded),
                );
                Transition(State::requesting_device_code(request))
            }
            LoginMethod::Browser | LoginMethod::Paste | LoginMethod::Handoff => {
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
                let deadline = self.now.plus_secs(self.core.config.callback_timeout_secs);
                if method == LoginMethod::Handoff {
                    return self.hand_off(url, auth, deadline);
                }
                self.core.emit(match method {
                    LoginMethod::Paste => Effect::PromptForCode { url },
                    _ => Effect::OpenBrowser { url },
                });
                Transition(State::awaiting_callback(auth, deadline))
            }
        }
    }

    /// The authorization request of a handed-off login is ready: the host keeps what the
    /// redirect must match, and this engine is free for other work meanwhile.
    fn hand_off(
        &mut self,
        url: String,
        auth: PendingAuthorization,
        expires_at: crate::time::UnixMillis,
    ) -> Outcome<State> {
        let login = HandedOffLogin::new(auth, self.core.endpoints_to_remember(), expires_at);
        self.core.event(Event::LoginHandedOff {
            url,
            login: Box::new(login),
        });
        let error = if self.core.session.is_some() {
            Error::LoginRequired {
                reason: "a sign-in was started and is not finished".to_owned(),
            }
        } else {
            Error::NotLoggedIn
        };
        self.core.release_waiters(self.now, error);
        Transition(self.resting_state())
    }

    /// The redirect of a handed-off login. It has one redirect, so anything wrong with it
    /// (late, another `state`, another issuer, an error) ends the login.
    pub(crate) fn resume_login(&mut self, login: &HandedOffLogin, url: &str) -> Outcome<State> {
        if self.now >= login.expires_at {
            return self.login_failed(Error::Callback {
                problem: CallbackProblem::Expired,
            });
        }
        if self.core.discovered.is_none() {
            self.core.discovered = Some(discovery::Metadata {
                endpoints: login.endpoints.clone(),
                iss_parameter_supported: login.auth.iss_required,
            });
        }
        let auth = &login.auth;
        let code = match Callback::from_redirect(url)
            .and_then(|c| auth.accept(&c, self.core.config.issuer.as_deref()))
        {
            Ok(code) => code,
            Err(error) => return self.login_failed(error),
        };
        self.exchange_code(auth, &code)
    }

    pub(crate) fn discovery_answered(
        &mut self,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
        method: LoginMethod,
        redirect_uri: Option<String>,
        step: Discovery,
    ) -> Outcome<State> {
        let response = self.response(Endpoint::Discovery, status, headers, body);
        let issuer = self.core.config.issuer.clone().unwrap_or_default();
        let limit = self.core.config.max_response_bytes;
        let read = discovery::read_metadata(&response, &issuer, limit);
        let fallback_url = match step {
            Discovery::OpenId { fallback } => fallback,
            Discovery::Rfc8414 => None,
            Discovery::Supplementing(openid) => {
                // The RFC 8414 document supplements the OpenID one; without it (absent,
                // broken, another issuer) the OpenID document alone serves.
                self.core.discovered = Some(match read {
                    Ok(oauth) => openid.merged_over(oauth),
                    Err(_) => *openid,
                });
                return self.start_login(method, redirect_uri);
            }
        };
        let next = match (read, fallback_url) {
            (Err(_), Some(url)) if status == 404 => (url, Discovery::Rfc8414),
            // Some servers list the device and revocation endpoints only in their RFC 8414
            // metadata: read it too, and merge.
            (Ok(openid), Some(url)) if openid.lacks_optional_endpoints() => {
                (url, Discovery::Supplementing(Box::new(openid)))
            }
            (Ok(metadata), _) => {
                self.core.discovered = Some(metadata);
                return self.start_login(method, redirect_uri);
            }
            (Err(error), _) => return self.login_failed(error),
        };
        let (url, step) = next;
        let request = self
            .core
            .request(Endpoint::Discovery, Method::Get, &url, None);
        Transition(State::discovering(request, method, redirect_uri, step))
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
        self.exchange_code(auth, &code)
    }

    fn exchange_code(&mut self, auth: &PendingAuthorization, code: &Secret) -> Outcome<State> {
        if let Err(error) = self.core.config.check_transport(&self.core.endpoints()) {
            return self.login_failed(error);
        }
        let Some(url) = self.core.endpoints().token else {
            return self.login_failed(Error::config("no token endpoint"));
        };
        let encoded = token::exchange_code(
            &self.core.config,
            self.core.token_auth(),
            code,
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
            issuer: config.expected_id_token_issuer(),
            client_id: &config.client_id,
            nonce,
            subject: None,
            now: self.provider_time(headers),
            skew_millis: config.clock_skew_secs.saturating_mul(1000),
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
            Ok(tokens) => self.verify_tokens(super::signatures::Flow::Login, tokens),
            Err(error) => self.login_failed(error),
        }
    }

    pub(super) fn complete_login(&mut self, tokens: TokenSet) -> Outcome<State> {
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
        if let Some(url) = self.core.endpoints().userinfo
            && userinfo::wanted(session.identity.as_ref())
        {
            let headers = userinfo::headers(&session.access_token);
            let id = self.core.get_with(Endpoint::Userinfo, &url, headers);
            return Transition(State::fetching_userinfo(id, session));
        }
        self.finish_login(session)
    }

    /// The UserInfo answer (or its failure, which never fails the login): the identity
    /// it adds, then the login ends as without it.
    pub(crate) fn userinfo_answered(
        &mut self,
        mut session: StoredSession,
        answer: Result<(u16, &BTreeMap<String, String>, &str), ()>,
    ) -> Outcome<State> {
        if let Ok((status, headers, body)) = answer {
            let response = self.response(Endpoint::Userinfo, status, headers, body);
            let limit = self.core.config.max_response_bytes;
            if let Ok(identity) = userinfo::read(&response, limit, session.identity.as_ref()) {
                session.identity = Some(identity);
            }
        }
        self.finish_login(session)
    }

    /// Stores the new session and tells everyone.
    fn finish_login(&mut self, session: StoredSession) -> Outcome<State> {
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
        let encoded = token::poll_device(
            &self.core.config,
            self.core.token_auth(),
            &grant.device_code,
        );
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
            issuer: config.expected_id_token_issuer(),
            client_id: &config.client_id,
            nonce: None,
            subject: None,
            now: self.provider_time(headers),
            skew_millis: config.clock_skew_secs.saturating_mul(1000),
        };
        match token::read_token_response(&response, config, &expected) {
            Ok(tokens) => self.verify_tokens(super::signatures::Flow::Login, tokens),
            Err(Error::OAuth { error, .. }) if error.code == ErrorCode::AuthorizationPending => {
                self.wait_to_poll(grant)
            }
            Err(Error::OAuth { error, .. }) if error.code == ErrorCode::SlowDown => {
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
}
