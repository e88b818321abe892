//! The states of a session and the transitions between them.
//!
//! The state diagram is in the crate documentation (`lib.rs`, "States"), where rustdoc
//! shows it.
//!
//! Superstates (double borders) hold what their children share: `logging_in` serves or
//! queues token requests while a login runs and handles `Cancel`; `authenticated` takes
//! `Login` and `Logout`; `refreshing_session` makes every token request join the one
//! refresh in flight (single flight) and defers `Login`/`Logout` until it ends, so a
//! rotated refresh token is never dropped. `engine`, the top, rejects what nothing else
//! handled. Each handler's doc lists its transitions.

mod actions;
mod info;
mod login;
mod logout;
mod refresh;
mod signatures;

use statig::prelude::*;

use crate::core::Lock;
use crate::effect::{Event, LogoutReason, ServerCallKind};
use crate::error::Error;
use crate::input::{Input, LoginMethod, RequestId};
use crate::protocol::authorize::PendingAuthorization;
use crate::protocol::device::DeviceGrant;
use crate::session::StoredSession;
use crate::time::UnixMillis;

pub(crate) use actions::{Ctx, Rejection, transport};
use signatures::Flow;

/// The statig machine. All shared data lives in [`Core`], passed as context, so the
/// engine can read and drain it between inputs.
#[derive(Debug, Default)]
pub(crate) struct Machine;

#[state_machine(initial = "State::loading_session()", state(derive(Debug, Clone)))]
impl Machine {
    /// Waiting for storage to answer `LoadSession`.
    ///
    /// - `SessionLoaded` ⇒ [`idle`](Self::idle) with a usable session, else [`logged_out`](Self::logged_out)
    /// - `StorageFailed` ⇒ [`logged_out`](Self::logged_out)
    /// - commands ⇒ deferred until one of those
    #[state(superstate = "engine")]
    fn loading_session(context: &mut Ctx<'_>, event: &Input) -> Outcome<State> {
        match event {
            Input::SessionLoaded { session } => context.adopt_loaded(session.clone()),
            Input::StorageFailed { .. } => Transition(State::logged_out()),
            _ if actions::is_command(event) => context.defer(event),
            _ => Super,
        }
    }

    /// No session.
    ///
    /// - `Login` ⇒ a `logging_in` state (or stays, with `LoginFailed`, on a config error);
    ///   a `Handoff` login comes back here with `LoginHandedOff`
    /// - `ResumeLogin` ⇒ [`exchanging_code`](Self::exchanging_code), or `LoginFailed`
    /// - `GetToken`, `TokenRejected` ⇒ `TokenFailed(not_logged_in)`
    /// - `Logout` ⇒ [`locking_for_logout`](Self::locking_for_logout) (whatever storage holds is
    ///   deleted, and revoked)
    #[state(superstate = "engine")]
    fn logged_out(context: &mut Ctx<'_>, event: &Input) -> Outcome<State> {
        match event {
            Input::Login {
                method,
                redirect_uri,
            } => context.start_login(*method, redirect_uri.clone()),
            Input::ResumeLogin { login, url } => context.resume_login(login, url),
            Input::GetToken { waiter, .. } | Input::TokenRejected { waiter, .. } => {
                context.core.fail(vec![*waiter], Error::NotLoggedIn);
                Handled
            }
            Input::Logout { force } => context.logout(*force),
            Input::Cancel => Handled,
            _ => Super,
        }
    }

    /// A session exists and no refresh is running.
    ///
    /// - `GetToken` ⇒ `TokenReady`, or [`locking_session`](Self::locking_session) when the
    ///   token is too close to expiry for the caller (or in its refresh window)
    /// - `TokenRejected` ⇒ the newer token if there is one, else a forced refresh
    /// - `Timeout` at the refresh time ⇒ [`locking_session`](Self::locking_session)
    #[state(superstate = "authenticated")]
    fn idle(context: &mut Ctx<'_>, event: &Input) -> Outcome<State> {
        match event {
            Input::GetToken {
                waiter,
                min_ttl_secs,
            } => context.get_token(*waiter, *min_ttl_secs),
            Input::TokenRejected {
                waiter,
                access_token,
            } => context.token_rejected(*waiter, access_token),
            Input::Timeout => context.on_refresh_timer(),
            _ => Super,
        }
    }

    /// Waiting for the cross-process lock and a fresh read of storage.
    ///
    /// - `SessionLocked` with a session a sibling already refreshed ⇒ [`idle`](Self::idle)
    /// - `SessionLocked` otherwise ⇒ [`refreshing`](Self::refreshing)
    /// - `SessionLocked(None)` (another process logged out) ⇒ [`logged_out`](Self::logged_out)
    /// - `StorageFailed` ⇒ [`idle`](Self::idle) with the failure reported
    #[state(superstate = "refreshing_session")]
    fn locking_session(context: &mut Ctx<'_>, event: &Input) -> Outcome<State> {
        match event {
            Input::SessionLocked { session } => {
                context.core.lock = Lock::Held;
                context.after_lock(session.clone())
            }
            Input::StorageFailed { detail } => context.refresh_failed(Error::Storage {
                detail: detail.clone(),
            }),
            _ => Super,
        }
    }

    /// The session has no token endpoint (imported tokens): the provider's metadata is
    /// fetched first.
    ///
    /// - metadata with a token endpoint ⇒ as `idle` starting a refresh: [`locking_session`](Self::locking_session)
    /// - 404 at the OpenID location ⇒ the RFC 8414 location, once
    /// - anything else ⇒ `RefreshFailed` ⇒ [`idle`](Self::idle)
    #[state(superstate = "refreshing_session")]
    fn finding_token_endpoint(
        context: &mut Ctx<'_>,
        request: &mut RequestId,
        fallback: &mut Option<String>,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } if id == request => {
                context.refresh_metadata_answered(*status, headers, body, fallback.clone())
            }
            Input::HttpFailed { id, kind, detail } if id == request => context.refresh_failed(
                actions::transport(crate::error::Endpoint::Discovery, *kind, detail),
            ),
            _ => Super,
        }
    }

    /// A refresh request is in flight.
    ///
    /// - success ⇒ `PersistSession`, `UnlockSession`, `TokenReady` ⇒ [`idle`](Self::idle)
    /// - a rejection (`invalid_grant`, or 400/401 with any body) ⇒ `LoadSession` ⇒
    ///   [`confirming_grant_loss`](Self::confirming_grant_loss)
    /// - any other failure ⇒ [`idle`](Self::idle) with backoff if transient
    #[state(superstate = "refreshing_session")]
    fn refreshing(context: &mut Ctx<'_>, request: &mut RequestId, event: &Input) -> Outcome<State> {
        match event {
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } if id == request => context.refresh_answered(*status, headers, body),
            Input::HttpFailed { id, kind, detail } if id == request => context.refresh_failed(
                actions::transport(crate::error::Endpoint::Token, *kind, detail),
            ),
            _ => Super,
        }
    }

    /// The refresh's ID token names a key not at hand: the provider's key set is fetched.
    ///
    /// - a key that verifies it ⇒ as a successful refresh ⇒ [`idle`](Self::idle)
    /// - no such key, or a bad signature ⇒ `RefreshFailed` ⇒ [`idle`](Self::idle)
    /// - no usable answer ⇒ the tokens are kept without that ID token ⇒ [`idle`](Self::idle)
    #[state(superstate = "refreshing_session")]
    fn fetching_keys_for_refresh(
        context: &mut Ctx<'_>,
        request: &mut RequestId,
        tokens: &mut crate::protocol::token::TokenSet,
        event: &Input,
    ) -> Outcome<State> {
        match signatures::keys_answer(event, *request) {
            Some(answer) => context.signing_keys_answered(Flow::Refresh, tokens.clone(), answer),
            None => Super,
        }
    }

    /// The refresh's ID token is being checked with a key at hand (`VerifySignature`),
    /// under the refresh lock.
    ///
    /// - valid ⇒ as a successful refresh ⇒ [`idle`](Self::idle)
    /// - not valid ⇒ the next key that fits, here; none left ⇒ as with no key at hand:
    ///   [`fetching_keys_for_refresh`](Self::fetching_keys_for_refresh) (once, and not
    ///   within 30 s of the last fetch), else `RefreshFailed` ⇒ [`idle`](Self::idle)
    #[state(superstate = "refreshing_session")]
    fn checking_signature_for_refresh(
        context: &mut Ctx<'_>,
        checking: &mut signatures::Checking,
        event: &Input,
    ) -> Outcome<State> {
        context
            .signature_checked(Flow::Refresh, checking, event)
            .unwrap_or(Super)
    }

    /// The provider rejected the refresh token; storage is re-read once in case a sibling
    /// process rotated the refresh token meanwhile.
    ///
    /// - a newer refresh token in storage ⇒ [`refreshing`](Self::refreshing) with it, or
    ///   [`idle`](Self::idle) if its access token already suffices
    /// - otherwise ⇒ `DeleteSession`, `LoggedOut(session_ended)` ⇒ [`logged_out`](Self::logged_out)
    #[state(superstate = "refreshing_session")]
    fn confirming_grant_loss(
        context: &mut Ctx<'_>,
        error: &mut Error,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::SessionLoaded { session } => {
                context.after_reread(session.clone(), error.clone())
            }
            Input::StorageFailed { .. } => context.end_session(error.clone()),
            _ => Super,
        }
    }

    /// Every token request joins the refresh in flight; `Login`, `Logout` and `Cancel`
    /// wait until it ends.
    #[superstate(superstate = "authenticated")]
    fn refreshing_session(context: &mut Ctx<'_>, event: &Input) -> Outcome<State> {
        match event {
            Input::GetToken {
                waiter,
                min_ttl_secs,
            } => {
                context.core.join(*waiter, *min_ttl_secs);
                Handled
            }
            Input::TokenRejected {
                waiter,
                access_token,
            } => {
                context.core.join_rejecting(*waiter, access_token.clone());
                Handled
            }
            Input::Login { .. }
            | Input::ResumeLogin { .. }
            | Input::Logout { .. }
            | Input::Cancel => context.defer(event),
            Input::Timeout => Handled,
            _ => Super,
        }
    }

    /// A session exists.
    ///
    /// - `Login` ⇒ a `logging_in` state; the session stays until the new one replaces it
    /// - `Logout` ⇒ [`revoking`](Self::revoking), or [`logged_out`](Self::logged_out) when
    ///   forced or there is nothing to call
    #[superstate(superstate = "engine")]
    fn authenticated(context: &mut Ctx<'_>, event: &Input) -> Outcome<State> {
        match event {
            Input::Login {
                method,
                redirect_uri,
            } => context.start_login(*method, redirect_uri.clone()),
            Input::ResumeLogin { login, url } => context.resume_login(login, url),
            Input::Logout { force } => context.logout(*force),
            Input::Cancel => Handled,
            _ => Super,
        }
    }

    /// Fetching the provider's metadata before a login.
    ///
    /// - metadata ⇒ the login continues (see [`logged_out`](Self::logged_out))
    /// - OpenID metadata without a device or revocation endpoint ⇒ the RFC 8414 document
    ///   too (`step` holds the OpenID one), merged under it, whatever it answers
    /// - 404 at the OpenID location ⇒ the RFC 8414 location, once
    /// - anything else ⇒ `LoginFailed`
    #[state(superstate = "logging_in")]
    fn discovering(
        context: &mut Ctx<'_>,
        request: &mut RequestId,
        method: &mut LoginMethod,
        redirect_uri: &mut Option<String>,
        step: &mut crate::protocol::discovery::Discovery,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } if id == request => context.discovery_answered(
                *status,
                headers,
                body,
                *method,
                redirect_uri.clone(),
                step.clone(),
            ),
            Input::HttpFailed { id, kind, detail } if id == request => match step {
                // The supplement is optional: the OpenID document alone serves.
                crate::protocol::discovery::Discovery::Supplementing(openid) => {
                    context.core.discovered = Some((**openid).clone());
                    context.start_login(*method, redirect_uri.clone())
                }
                _ => context.login_failed(actions::transport(
                    crate::error::Endpoint::Discovery,
                    *kind,
                    detail,
                )),
            },
            _ => Super,
        }
    }

    /// The browser is open (or the user was asked to paste); waiting for the redirect.
    ///
    /// - `Callback` / `PastedCode` that checks out ⇒ [`exchanging_code`](Self::exchanging_code)
    /// - a wrong `state`, wrong `iss`, or an `error` ⇒ `LoginFailed`
    /// - unreadable text ⇒ rejected; still waiting (the user may paste again)
    /// - `Timeout` at the deadline ⇒ `LoginFailed(callback_timeout)`
    #[state(superstate = "logging_in")]
    fn awaiting_callback(
        context: &mut Ctx<'_>,
        auth: &mut PendingAuthorization,
        deadline: &mut UnixMillis,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::Callback { url } => {
                context.callback_received(auth, actions::CallbackText::Redirect(url))
            }
            Input::PastedCode { text } => {
                context.callback_received(auth, actions::CallbackText::Paste(text))
            }
            Input::Timeout if context.now >= *deadline => {
                context.login_failed(Error::CallbackTimeout)
            }
            _ => Super,
        }
    }

    /// The code exchange is in flight.
    ///
    /// - tokens ⇒ `PersistSession`, `LoggedIn` ⇒ [`idle`](Self::idle)
    /// - an ID token and a key at hand that fits it ⇒ [`checking_signature_for_login`](Self::checking_signature_for_login)
    /// - an ID token whose key is not at hand ⇒ [`fetching_keys_for_login`](Self::fetching_keys_for_login)
    /// - anything else ⇒ `LoginFailed` (codes are single-use: no retry)
    #[state(superstate = "logging_in")]
    fn exchanging_code(
        context: &mut Ctx<'_>,
        request: &mut RequestId,
        auth: &mut PendingAuthorization,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } if id == request => {
                let nonce = auth.nonce.as_ref().map(|n| n.expose().to_owned());
                context.token_response_for_login(*status, headers, body, nonce.as_deref())
            }
            Input::HttpFailed { id, kind, detail } if id == request => context.login_failed(
                actions::transport(crate::error::Endpoint::Token, *kind, detail),
            ),
            _ => Super,
        }
    }

    /// The login's ID token is being checked with a key at hand (`VerifySignature`).
    ///
    /// - valid ⇒ as `exchanging_code` with tokens
    /// - not valid ⇒ the next key that fits, here; none left ⇒ as with no key at hand:
    ///   [`fetching_keys_for_login`](Self::fetching_keys_for_login) (once, and not within
    ///   30 s of the last fetch), else `LoginFailed`
    #[state(superstate = "logging_in")]
    fn checking_signature_for_login(
        context: &mut Ctx<'_>,
        checking: &mut signatures::Checking,
        event: &Input,
    ) -> Outcome<State> {
        context
            .signature_checked(Flow::Login, checking, event)
            .unwrap_or(Super)
    }

    /// The login's ID token names a key not at hand: the provider's key set is fetched.
    ///
    /// - a key that verifies it ⇒ as `exchanging_code` with tokens
    /// - no such key, a bad signature, or no usable answer ⇒ `LoginFailed`
    #[state(superstate = "logging_in")]
    fn fetching_keys_for_login(
        context: &mut Ctx<'_>,
        request: &mut RequestId,
        tokens: &mut crate::protocol::token::TokenSet,
        event: &Input,
    ) -> Outcome<State> {
        match signatures::keys_answer(event, *request) {
            Some(answer) => context.signing_keys_answered(Flow::Login, tokens.clone(), answer),
            None => Super,
        }
    }

    /// Tokens arrived but say nothing recognisable about the user; the UserInfo endpoint
    /// is asked before the login ends.
    ///
    /// - any answer, or none ⇒ `PersistSession`, `LoggedIn` ⇒ [`idle`](Self::idle) (a
    ///   failing UserInfo never fails the login)
    #[state(superstate = "logging_in")]
    fn fetching_userinfo(
        context: &mut Ctx<'_>,
        request: &mut RequestId,
        session: &mut StoredSession,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } if id == request => {
                context.userinfo_answered(session.clone(), Ok((*status, headers, body)))
            }
            Input::HttpFailed { id, .. } if id == request => {
                context.userinfo_answered(session.clone(), Err(()))
            }
            _ => Super,
        }
    }

    /// The device authorization request is in flight.
    ///
    /// - a device code ⇒ `ShowUserCode` ⇒ [`waiting_to_poll`](Self::waiting_to_poll)
    /// - anything else ⇒ `LoginFailed`
    #[state(superstate = "logging_in")]
    fn requesting_device_code(
        context: &mut Ctx<'_>,
        request: &mut RequestId,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } if id == request => context.device_code_answered(*status, headers, body),
            Input::HttpFailed { id, kind, detail } if id == request => context.login_failed(
                actions::transport(crate::error::Endpoint::DeviceAuthorization, *kind, detail),
            ),
            _ => Super,
        }
    }

    /// Waiting out the polling interval while the user approves on another device.
    ///
    /// - `Timeout` at `poll_at` ⇒ [`polling_device`](Self::polling_device)
    /// - `Timeout` at the code's expiry ⇒ `LoginFailed(device_code_expired)`
    #[state(superstate = "logging_in")]
    fn waiting_to_poll(
        context: &mut Ctx<'_>,
        grant: &mut DeviceGrant,
        poll_at: &mut UnixMillis,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::Timeout if context.now >= grant.deadline => {
                context.login_failed(Error::DeviceCodeExpired)
            }
            Input::Timeout if context.now >= *poll_at => context.poll_device(grant.clone()),
            _ => Super,
        }
    }

    /// A device token request is in flight.
    ///
    /// - tokens ⇒ `LoggedIn` ⇒ [`idle`](Self::idle)
    /// - `authorization_pending` ⇒ [`waiting_to_poll`](Self::waiting_to_poll)
    /// - `slow_down` ⇒ interval + 5 s ⇒ [`waiting_to_poll`](Self::waiting_to_poll)
    /// - transient failure ⇒ interval doubled ⇒ [`waiting_to_poll`](Self::waiting_to_poll)
    /// - `access_denied`, `expired_token`, other errors ⇒ `LoginFailed`
    /// - `Timeout` at the code's expiry ⇒ `LoginFailed(device_code_expired)`
    #[state(superstate = "logging_in")]
    fn polling_device(
        context: &mut Ctx<'_>,
        grant: &mut DeviceGrant,
        request: &mut RequestId,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } if id == request => {
                context.device_poll_answered(grant.clone(), *status, headers, body)
            }
            Input::HttpFailed { id, .. } if id == request => {
                let mut grant = grant.clone();
                grant.interval_secs = actions::backed_off_interval(grant.interval_secs);
                context.wait_to_poll(grant)
            }
            Input::Timeout if context.now >= grant.deadline => {
                context.login_failed(Error::DeviceCodeExpired)
            }
            _ => Super,
        }
    }

    /// A login is running.
    ///
    /// - `GetToken` ⇒ the current token if it suffices, else the caller waits for the login
    /// - `Login` ⇒ this login fails (`cancelled`) and the new one starts
    /// - `Cancel` ⇒ `LoginFailed(cancelled)` ⇒ back to [`idle`](Self::idle) or [`logged_out`](Self::logged_out)
    /// - `Logout` ⇒ this login fails, then as `Logout` from where it started
    #[superstate(superstate = "engine")]
    fn logging_in(context: &mut Ctx<'_>, event: &Input) -> Outcome<State> {
        match event {
            Input::GetToken {
                waiter,
                min_ttl_secs,
            } => context.token_during_login(*waiter, *min_ttl_secs),
            Input::TokenRejected {
                waiter,
                access_token,
            } => {
                context.core.join_rejecting(*waiter, access_token.clone());
                Handled
            }
            Input::Login {
                method,
                redirect_uri,
            } => {
                context.core.event(Event::LoginFailed {
                    error: Error::Cancelled,
                });
                context.start_login(*method, redirect_uri.clone())
            }
            Input::ResumeLogin { login, url } => {
                context.core.event(Event::LoginFailed {
                    error: Error::Cancelled,
                });
                context.resume_login(login, url)
            }
            Input::Cancel => context.login_failed(Error::Cancelled),
            Input::Logout { force } => {
                context.core.event(Event::LoginFailed {
                    error: Error::Cancelled,
                });
                context.logout(*force)
            }
            _ => Super,
        }
    }

    /// A logout waits for the refresh lock and a fresh read of storage, so a refresh in
    /// another process ends (and stores its rotated tokens) before the session is deleted
    /// and those tokens revoked.
    ///
    /// - `SessionLocked` ⇒ `DeleteSession`, `UnlockSession` ⇒ [`revoking`](Self::revoking)
    ///   (the stored tokens), or [`logged_out`](Self::logged_out) when forced or there is
    ///   nothing to call
    /// - `StorageFailed` (the lock could not be taken) ⇒ the same with the session in memory
    /// - `GetToken` ⇒ `TokenFailed(not_logged_in)`; `Login` waits until this ends
    #[state(superstate = "engine")]
    fn locking_for_logout(
        context: &mut Ctx<'_>,
        force: &mut bool,
        event: &Input,
    ) -> Outcome<State> {
        match event {
            Input::SessionLocked { session } => {
                context.logout_locked(Some(session.clone()), *force)
            }
            Input::StorageFailed { .. } => {
                context.core.lock = crate::core::Lock::Released;
                context.logout_locked(None, *force)
            }
            Input::GetToken { waiter, .. } | Input::TokenRejected { waiter, .. } => {
                context.core.fail(vec![*waiter], Error::NotLoggedIn);
                Handled
            }
            Input::Login { .. } | Input::ResumeLogin { .. } | Input::Cancel => context.defer(event),
            Input::Logout { .. } | Input::Timeout => Handled,
            _ => Super,
        }
    }

    /// The local session is deleted; revocation and server logout calls are in flight.
    ///
    /// - the last answer ⇒ `LoggedOut` with each call's outcome ⇒ [`logged_out`](Self::logged_out)
    /// - `GetToken` ⇒ `TokenFailed(not_logged_in)`; `Login` waits until this ends
    #[state(superstate = "engine")]
    fn revoking(
        context: &mut Ctx<'_>,
        pending: &mut Vec<logout::PendingCall>,
        calls: &mut Vec<crate::effect::ServerCall>,
        end_session_url: &mut Option<String>,
        event: &Input,
    ) -> Outcome<State> {
        let answered = match event {
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } => match pending
                .iter()
                .position(|p| p.id == *id && p.held_back.is_none())
            {
                Some(i) if *status == 401 && context.answer_401(pending, i) => {
                    return Handled;
                }
                // The same Bearer credential revoked the refresh token a moment ago: now
                // it does not authenticate, so the access token is invalid already.
                Some(i) if *status == 401 && pending[i].refused_means_revoked => Some((i, Ok(()))),
                Some(i) => Some((
                    i,
                    context.read_logout_answer(pending[i].call, *status, headers, body),
                )),
                None => None,
            },
            Input::HttpFailed { id, kind, detail } => {
                pending.iter().position(|p| p.id == *id).map(|i| {
                    let endpoint = actions::logout_call_endpoint(pending[i].call);
                    (i, Err(actions::transport(endpoint, *kind, detail)))
                })
            }
            Input::GetToken { waiter, .. } | Input::TokenRejected { waiter, .. } => {
                context.core.fail(vec![*waiter], Error::NotLoggedIn);
                return Handled;
            }
            Input::Login { .. } | Input::ResumeLogin { .. } | Input::Cancel => {
                return context.defer(event);
            }
            Input::Logout { .. } | Input::Timeout => return Handled,
            _ => return Super,
        };
        let Some((index, result)) = answered else {
            return Super;
        };
        let done = pending.remove(index);
        if done.call == ServerCallKind::RevokeRefreshToken {
            context.refresh_revocation_ended(pending, done.retried && result.is_ok());
        }
        calls.push(crate::effect::ServerCall {
            call: done.call,
            error: result.err(),
        });
        if !pending.is_empty() {
            return Handled;
        }
        // Report in the order the calls were made, whatever order the answers came in.
        calls.sort_by_key(|c| c.call);
        context.core.event(Event::LoggedOut {
            reason: LogoutReason::Requested,
            end_session_url: end_session_url.take(),
            server_calls: std::mem::take(calls),
        });
        Transition(State::logged_out())
    }

    /// The top: rejects responses nobody waits for and inputs no state takes.
    #[superstate]
    fn engine(context: &mut Ctx<'_>, event: &Input) -> Outcome<State> {
        match event {
            Input::Timeout => Handled,
            Input::HttpResponse { id, .. } | Input::HttpFailed { id, .. } => {
                context.rejection = Some(Rejection::UnknownRequest(*id));
                Handled
            }
            _ => {
                context.rejection = Some(Rejection::Unexpected);
                Handled
            }
        }
    }
}
