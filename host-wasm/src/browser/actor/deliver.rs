//! Delivering the engine's events: answers to the callers waiting on promises, and
//! `SessionEvent`s to the `onEvent` listeners.

use tessera_engine::Event;

use super::SessionState;
use crate::browser::error::Failure;
use crate::browser::events::{self, LoginResult, LogoutResult, SessionEvent};
use crate::browser::glue;

impl SessionState {
    pub(super) fn deliver(&mut self, event: Event) {
        match event {
            Event::TokenReady {
                waiters,
                access_token,
                ..
            } => {
                for reply in self.callers.token_answered(waiters) {
                    let _ = reply.send(Ok(access_token.clone()));
                }
            }
            Event::TokenFailed { waiters, error } => {
                for reply in self.callers.token_answered(waiters) {
                    let _ = reply.send(Err(error.clone().into()));
                }
            }
            Event::LoggedIn {
                identity,
                scopes,
                expires_at,
            } => {
                self.emit(&SessionEvent::LoggedIn {
                    identity: identity.clone(),
                });
                let Some(reply) = self.callers.login_answered() else {
                    return;
                };
                // The session was persisted just before this event: a write that failed
                // makes the sign-in one that will not survive the worker.
                let _ = reply.send(match &self.storage_problem {
                    None => Ok(LoginResult {
                        identity,
                        scopes,
                        expires_at,
                    }),
                    Some(detail) => Err(Failure::new(
                        "storage",
                        format!(
                            "signed in, but the session could not be stored ({detail}); it \
                             lasts only until this page or worker stops: free storage space \
                             and sign in again"
                        ),
                    )),
                });
            }
            Event::LoginFailed { error } => {
                if let Some(reply) = self.callers.login_answered() {
                    let _ = reply.send(Err(error.into()));
                }
            }
            Event::RefreshFailed { error, retry_at } => {
                self.emit(&SessionEvent::refresh_failed(&error, retry_at));
            }
            Event::LoggedOut {
                reason,
                end_session_url,
                server_calls,
            } => {
                self.emit(&SessionEvent::logged_out(&reason));
                if let Some(reply) = self.callers.logout_answered(&reason) {
                    let _ = reply.send(Ok(LogoutResult {
                        end_session_url,
                        server_calls: server_calls.into_iter().map(Into::into).collect(),
                    }));
                }
            }
        }
    }

    pub(super) fn storage_failed(&mut self, detail: &str) {
        self.storage_problem = Some(detail.to_owned());
        self.emit(&SessionEvent::StorageFailed {
            detail: detail.to_owned(),
        });
    }

    pub(super) fn emit(&self, event: &SessionEvent) {
        let value = events::to_js(event);
        // A listener may add listeners: call a snapshot.
        let listeners = self.adapters.listeners.borrow().clone();
        for listener in &listeners {
            glue::notify(listener, &value);
        }
    }
}
