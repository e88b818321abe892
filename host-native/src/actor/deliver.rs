//! Delivering the engine's events: replies to waiting callers and host events.

use tessera_engine::Event;

use super::SessionState;
use crate::clock::now;
use crate::events::{HostEvent, LoginReport, LogoutReport, SharedSecret, Token};
use crate::loopback::CallbackPage;

impl SessionState {
    pub(super) fn deliver(&mut self, event: Event) {
        match event {
            Event::TokenReady {
                waiters,
                access_token,
                expires_at,
            } => {
                // One shared copy for every waiter.
                let access_token = SharedSecret::from(&access_token);
                for reply in self.callers.token_answered(waiters) {
                    let _ = reply.send(Ok(Token {
                        access_token: access_token.clone(),
                        expires_at,
                    }));
                }
            }
            Event::TokenFailed { waiters, error } => {
                for reply in self.callers.token_answered(waiters) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            Event::LoggedIn {
                identity,
                scopes,
                expires_at,
            } => {
                self.stop_loopback();
                if let Some(page) = self.callback_page.take() {
                    page.respond(CallbackPage::Success);
                }
                let report = LoginReport {
                    identity: identity.clone(),
                    scopes,
                    expires_at,
                };
                let _ = self.args.events.send(HostEvent::LoggedIn { identity });
                if let Some(reply) = self.callers.login_answered() {
                    let _ = reply.send(Ok(report));
                }
            }
            Event::LoginFailed { error } => {
                // A login replaced by a new one fails while the new one runs: keep its
                // loopback server.
                if !self.engine.status(now()).login_in_progress {
                    self.stop_loopback();
                }
                if let Some(page) = self.callback_page.take() {
                    page.respond(CallbackPage::Failed {
                        message: error.to_string(),
                    });
                }
                if let Some(reply) = self.callers.login_answered() {
                    let _ = reply.send(Err(error));
                }
            }
            Event::RefreshFailed { error, retry_at } => {
                tracing::warn!(%error, "refresh failed");
                let _ = self
                    .args
                    .events
                    .send(HostEvent::RefreshFailed { error, retry_at });
            }
            Event::LoggedOut {
                reason,
                end_session_url,
                server_calls,
            } => {
                let _ = self.args.events.send(HostEvent::LoggedOut {
                    reason: reason.clone(),
                });
                if let Some(reply) = self.callers.logout_answered(&reason) {
                    let _ = reply.send(Ok(LogoutReport {
                        end_session_url,
                        server_calls,
                    }));
                }
            }
        }
    }
}
