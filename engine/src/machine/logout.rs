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

/// A logout call in flight.
#[derive(Clone, Debug)]
pub(crate) struct PendingCall {
    pub id: RequestId,
    pub call: ServerCallKind,
    /// For a public client's revocation: what a retry with a Bearer credential needs, if
    /// the first request is refused with 401.
    pub bearer_retry: Option<BearerRetry>,
}

/// The second try of a public client's revocation (`Debug` shows no token: `Secret`).
#[derive(Clone, Debug)]
pub(crate) struct BearerRetry {
    url: String,
    token: Secret,
    access_token: Secret,
}

impl Ctx<'_> {
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
                pending.push(PendingCall {
                    id,
                    call,
                    bearer_retry,
                });
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
            pending.push(PendingCall {
                id,
                call: ServerCallKind::ServerLogout,
                bearer_retry: None,
            });
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

    /// Sends a revocation refused with 401 again, with the access token as a Bearer
    /// credential; `false` when there is no retry to make (already made, or not a public
    /// client's revocation).
    pub(crate) fn retry_with_bearer(&mut self, pending: &mut PendingCall, status: u16) -> bool {
        if status != 401 {
            return false;
        }
        let Some(retry) = pending.bearer_retry.take() else {
            return false;
        };
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
        true
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
