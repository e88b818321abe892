//! Turning the engine's effects into actions, and its events into replies and notices.

use super::storage::{Lock, StoreOp};
use super::{Action, Driver, LoginOutcome, LogoutOutcome, Notice, Reply};
use crate::effect::{Effect, Event, LogoutReason};
use crate::error::Error;
use crate::time::UnixMillis;

impl Driver {
    /// Moves the engine's effects into the backlog and performs them until a store
    /// operation must be answered first.
    pub(super) fn pump(&mut self, now: UnixMillis) {
        while let Some(effect) = self.engine.poll_effect() {
            self.backlog.push_back(effect);
        }
        while self.store_op.is_none() {
            let Some(effect) = self.backlog.pop_front() else {
                break;
            };
            self.perform(now, effect);
        }
    }

    fn perform(&mut self, now: UnixMillis, effect: Effect) {
        match effect {
            Effect::Http(request) => self.actions.push_back(Action::Send(request)),
            Effect::OpenBrowser { url } => self.actions.push_back(Action::OpenBrowser { url }),
            Effect::PromptForCode { url } if self.options.can_prompt_for_code => {
                self.actions.push_back(Action::PromptForCode { url });
            }
            Effect::PromptForCode { .. } => {
                let error = Error::config(
                    "this provider needs the code pasted by the user, which this host does not \
                     offer; use a redirect URI the browser launcher can capture",
                );
                self.end_login(now, error);
            }
            Effect::ShowUserCode(code) => self.actions.push_back(Action::ShowUserCode(code)),
            Effect::LoadSession => self.start(StoreOp::Load, Action::Load),
            Effect::LockSession => {
                self.lock = Lock::Acquiring {
                    deadline: now.plus_millis(self.options.lock_wait_ms),
                    retry_at: None,
                    busy_count: 0,
                    unwanted: false,
                };
                self.acquire_lock(now);
            }
            Effect::UnlockSession => self.release_lock(),
            Effect::PersistSession { session } => self.save(now, session, 1),
            Effect::DeleteSession => {
                self.write_failure = None;
                self.start(StoreOp::Delete, Action::Delete);
            }
            Effect::VerifySignature(check) => {
                self.actions.push_back(Action::VerifySignature(check));
            }
            Effect::Event(event) => self.deliver(now, event),
        }
    }

    fn deliver(&mut self, now: UnixMillis, event: Event) {
        match event {
            Event::TokenReady {
                waiters,
                access_token,
                expires_at,
            } => {
                for call in self.calls.token_answered(&waiters) {
                    let reply = Reply::Token {
                        access_token: access_token.clone(),
                        expires_at,
                    };
                    self.reply(call, reply);
                }
            }
            Event::TokenFailed { waiters, error } => {
                for call in self.calls.token_answered(&waiters) {
                    let error = error.clone();
                    self.reply(call, Reply::Failed { error });
                }
            }
            Event::DerivedTokenReady {
                waiters,
                name,
                token,
                expires_at,
            } => {
                for call in self.calls.derived_token_answered(&waiters) {
                    let reply = Reply::DerivedToken {
                        name: name.clone(),
                        token: token.clone(),
                        expires_at,
                    };
                    self.reply(call, reply);
                }
            }
            Event::DerivedTokenFailed { waiters, error, .. } => {
                for call in self.calls.derived_token_answered(&waiters) {
                    let error = error.clone();
                    self.reply(call, Reply::Failed { error });
                }
            }
            Event::LoggedIn {
                identity,
                scopes,
                expires_at,
            } => {
                self.close_redirect_unless_login_runs(now);
                self.notify(Notice::LoggedIn {
                    identity: identity.clone(),
                });
                let reply = match self.write_failure.take() {
                    None => Reply::LoggedIn(LoginOutcome {
                        identity,
                        scopes,
                        expires_at,
                    }),
                    Some(detail) => Reply::Failed {
                        error: Error::Storage {
                            detail: format!(
                                "signed in, but the session could not be stored ({detail}); it \
                                 lasts only while this process runs: fix the storage and sign \
                                 in again"
                            ),
                        },
                    },
                };
                for call in self.calls.login_ended() {
                    self.reply(call, reply.clone());
                }
            }
            Event::LoginHandedOff { url, login } => {
                for call in self.calls.login_ended() {
                    let reply = Reply::HandedOff {
                        url: url.clone(),
                        login: login.clone(),
                    };
                    self.reply(call, reply);
                }
            }
            Event::LoginFailed { error } => {
                self.close_redirect_unless_login_runs(now);
                for call in self.calls.login_ended() {
                    let error = error.clone();
                    self.reply(call, Reply::Failed { error });
                }
            }
            Event::RefreshFailed { error, retry_at } => {
                self.notify(Notice::RefreshFailed { error, retry_at });
            }
            Event::LoggedOut {
                reason,
                end_session_url,
                server_calls,
            } => {
                let requested = reason == LogoutReason::Requested;
                self.notify(Notice::LoggedOut { reason });
                if !requested {
                    return;
                }
                let reply = match self.write_failure.take() {
                    None => Reply::LoggedOut(LogoutOutcome {
                        end_session_url,
                        server_calls,
                    }),
                    Some(detail) => Reply::Failed {
                        error: Error::Storage {
                            detail: format!(
                                "logged out here, but the stored session could not be deleted \
                                 ({detail}); fix the storage and log out again"
                            ),
                        },
                    },
                };
                for call in self.calls.logout_answered() {
                    self.reply(call, reply.clone());
                }
            }
        }
    }

    fn close_redirect_unless_login_runs(&mut self, now: UnixMillis) {
        // A login replaced by a new one ends while the new one still waits for its redirect.
        if !self.engine.status(now).login_in_progress {
            self.actions.push_back(Action::CloseRedirect);
        }
    }
}
