//! Logging out: delete locally first, then revoke and call the provider.

use std::collections::BTreeMap;

use statig::prelude::*;

use super::State;
use super::actions::Ctx;
use super::actions::logout_call_endpoint;
use crate::config::ClientAuthMethod;
use crate::effect::ServerCallKind;
use crate::effect::{Effect, Event, LogoutReason, Method};
use crate::error::{Endpoint, Error};
use crate::input::RequestId;
use crate::protocol::logout;
use crate::protocol::token::{self};
use crate::secret::Secret;
use crate::session::StoredSession;

/// A logout call in flight.
#[derive(Clone, Debug)]
pub(crate) struct PendingCall {
    pub id: RequestId,
    pub call: ServerCallKind,
    /// For a public client's revocation: what a retry with a Bearer credential needs, if
    /// the first request is refused with 401.
    pub bearer_retry: Option<BearerRetry>,
    /// The access token's Bearer retry, held back until the refresh token's revocation has
    /// ended (see [`Ctx::answer_401`]); no request of this call is in flight meanwhile.
    pub held_back: Option<BearerRetry>,
    /// This call is a Bearer retry.
    pub retried: bool,
    /// The refresh token was revoked with the same Bearer credential: a 401 to this
    /// call's Bearer retry then means the access token no longer authenticates, i.e. the
    /// server invalidated it with its grant (RFC 7009 §2.1).
    pub refused_means_revoked: bool,
}

impl PendingCall {
    fn new(id: RequestId, call: ServerCallKind, bearer_retry: Option<BearerRetry>) -> Self {
        PendingCall {
            id,
            call,
            bearer_retry,
            held_back: None,
            retried: false,
            refused_means_revoked: false,
        }
    }
}

/// The second try of a public client's revocation (`Debug` shows no token: `Secret`).
#[derive(Clone, Debug)]
pub(crate) struct BearerRetry {
    url: String,
    token: Secret,
    access_token: Secret,
}

impl Ctx<'_> {
    /// Takes the refresh lock first: another process (tab, replica) may be refreshing this
    /// session, and its provider may have rotated the refresh token already. Under the
    /// lock that refresh has ended and stored its session, which this logout then reads,
    /// deletes and revokes; and no refresh starts until it is gone. Callers waiting for a
    /// token are told at once that a logout is under way.
    pub(crate) fn logout(&mut self, force: bool) -> Outcome<State> {
        let waiters = std::mem::take(&mut self.core.waiters)
            .into_iter()
            .map(|w| w.id)
            .collect();
        self.core.fail(waiters, Error::NotLoggedIn);
        self.core.unlock();
        self.core.emit(Effect::LockSession);
        self.core.lock = crate::core::Lock::Requested;
        Transition(State::locking_for_logout(force))
    }

    /// The lock's answer: the session storage holds now (`None` when the lock could not
    /// be taken: the session in memory is logged out, as before locks).
    pub(crate) fn logout_locked(
        &mut self,
        stored: Option<Option<StoredSession>>,
        force: bool,
    ) -> Outcome<State> {
        if let Some(stored) = stored {
            self.core.lock = crate::core::Lock::Held;
            self.core.session = stored.filter(|s| self.core.is_ours(s));
        }
        self.logout_now(force)
    }

    /// Deletes the local session first (so a crash mid-way cannot leave it behind), then
    /// releases the lock and calls the provider with the tokens still in memory.
    fn logout_now(&mut self, force: bool) -> Outcome<State> {
        let session = self.core.session.take();
        self.core.emit(Effect::DeleteSession);
        self.core.unlock();
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
        if let Err(error) = self.core.config.check_transport(&endpoints) {
            // The tokens are not sent over plain http: the logout reports the revocation
            // as not done, so hosts say they may still be valid.
            self.core.event(Event::LoggedOut {
                reason: LogoutReason::Requested,
                end_session_url: None,
                server_calls: vec![crate::effect::ServerCall {
                    call: ServerCallKind::RevokeAccessToken,
                    error: Some(error),
                }],
            });
            return Transition(State::logged_out());
        }
        let mut pending = Vec::new();
        if let Some(url) = &endpoints.revocation {
            let config = &self.core.config;
            // From `endpoints`: the session, which may hold the discovered methods, is
            // already deleted.
            let auth = config.revocation_auth(&endpoints);
            let mut revocations = Vec::new();
            if let Some(refresh_token) = &session.refresh_token {
                revocations.push((
                    ServerCallKind::RevokeRefreshToken,
                    logout::revoke(config, auth, refresh_token, "refresh_token"),
                ));
            }
            revocations.push((
                ServerCallKind::RevokeAccessToken,
                logout::revoke(config, auth, &session.access_token, "access_token"),
            ));
            // A public client cannot authenticate; some servers then accept the access
            // token as a Bearer credential instead (RFC 7009 §2.1 leaves it open).
            let public = auth == ClientAuthMethod::None;
            for (call, encoded) in revocations {
                let bearer_retry = public.then(|| BearerRetry {
                    url: url.clone(),
                    token: match call {
                        ServerCallKind::RevokeRefreshToken => session.refresh_token.clone(),
                        _ => None,
                    }
                    .unwrap_or_else(|| session.access_token.clone()),
                    access_token: session.access_token.clone(),
                });
                let id = self
                    .core
                    .request(Endpoint::Revocation, Method::Post, url, Some(encoded));
                pending.push(PendingCall::new(id, call, bearer_retry));
            }
        }
        if let Some(url) = &endpoints.server_logout {
            // Its credential is the Bearer token; the client's id (and secret) ride in the body.
            let auth = match self.core.config.client_secret {
                Some(_) => ClientAuthMethod::ClientSecretPost,
                None => ClientAuthMethod::None,
            };
            let mut encoded = token::client_form(&self.core.config, auth, Vec::new());
            encoded.headers.insert(
                "authorization".to_owned(),
                format!("Bearer {}", session.access_token.expose()),
            );
            let id = self
                .core
                .request(Endpoint::ServerLogout, Method::Post, url, Some(encoded));
            pending.push(PendingCall::new(id, ServerCallKind::ServerLogout, None));
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

    /// A 401 to a public client's revocation: retry it with the access token as a Bearer
    /// credential, now or, for the access token while the refresh token's revocation is
    /// still open, after it. The two retries must not race: revoking the refresh token may
    /// invalidate the access token the other retry presents, and revoking the access token
    /// first may leave the refresh token's retry unauthenticated, and the refresh token
    /// alive (seen with glewlwyd). `true` when the 401 was taken care of this way.
    pub(crate) fn answer_401(&mut self, pending: &mut [PendingCall], index: usize) -> bool {
        let Some(retry) = pending[index].bearer_retry.take() else {
            return false;
        };
        let refresh_open = pending
            .iter()
            .any(|p| p.call == ServerCallKind::RevokeRefreshToken);
        if pending[index].call == ServerCallKind::RevokeAccessToken && refresh_open {
            pending[index].held_back = Some(retry);
        } else {
            self.send_bearer_retry(&mut pending[index], retry);
        }
        true
    }

    /// After the refresh token's revocation ended (`revoked_with_bearer`: by a Bearer
    /// retry that succeeded): the access token's call learns it, and its held-back retry
    /// goes out.
    pub(crate) fn refresh_revocation_ended(
        &mut self,
        pending: &mut [PendingCall],
        revoked_with_bearer: bool,
    ) {
        for call in pending
            .iter_mut()
            .filter(|p| p.call == ServerCallKind::RevokeAccessToken)
        {
            call.refused_means_revoked = revoked_with_bearer;
            if let Some(retry) = call.held_back.take() {
                self.send_bearer_retry(call, retry);
            }
        }
    }

    fn send_bearer_retry(&mut self, pending: &mut PendingCall, retry: BearerRetry) {
        let hint = match pending.call {
            ServerCallKind::RevokeRefreshToken => "refresh_token",
            _ => "access_token",
        };
        let mut encoded = logout::revoke(
            &self.core.config,
            ClientAuthMethod::None,
            &retry.token,
            hint,
        );
        encoded.headers.insert(
            "authorization".to_owned(),
            format!("Bearer {}", retry.access_token.expose()),
        );
        pending.id = self.core.request(
            Endpoint::Revocation,
            Method::Post,
            &retry.url,
            Some(encoded),
        );
        pending.retried = true;
    }

    pub(crate) fn read_logout_answer(
        &self,
        call: ServerCallKind,
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
