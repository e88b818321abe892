//! Performing the driver's actions: HTTP, storage and the lock in spawned tasks whose
//! outcome comes back as a message, the browser, replies, events and the one timer.

use std::time::Duration;

use ractor::ActorRef;
use tessera_engine::Error;
use tessera_engine::driver::{Action, DriverInput, Notice, Reply};

use super::{SessionMsg, SessionState, StatusReport, Waiting};
use crate::clock::now;
use crate::events::{HostEvent, LoginReport, LogoutReport, SharedSecret, Token};
use crate::loopback::CallbackPage;
use crate::store::SessionStore;

impl SessionState {
    pub(super) fn perform(&mut self, myself: &ActorRef<SessionMsg>, action: Action) {
        let actor = myself.clone();
        match action {
            Action::Send(request) => {
                let http = self.http.clone();
                tracing::debug!(endpoint = %request.endpoint, id = request.id.0, "request");
                tokio::spawn(async move {
                    let input = http.perform(request).await;
                    let _ = actor.cast(SessionMsg::Io(input));
                });
            }
            Action::OpenBrowser { url } => {
                self.event(HostEvent::OpenBrowser { url: url.clone() });
                if self.args.open_browser {
                    tokio::task::spawn_blocking(move || {
                        if let Err(error) = crate::browser::open(&url, |n| std::env::var(n).ok()) {
                            tracing::warn!(%error, "could not open a browser; open the URL shown");
                        }
                    });
                }
            }
            Action::PromptForCode { url } => self.event(HostEvent::PromptForCode { url }),
            Action::ShowUserCode(code) => self.event(HostEvent::UserCode(code)),
            Action::CloseRedirect => self.stop_loopback(),
            Action::Load => {
                let loading = self.args.store.load();
                self.io(actor, async move { loaded(loading.await) });
            }
            Action::Save { session, replaces } => {
                let saving = self.args.store.save(*session, replaces);
                self.io(actor, async move {
                    match saving.await {
                        Ok(version) => DriverInput::Saved { version },
                        Err(error) => failed(&error),
                    }
                });
            }
            Action::Delete => {
                let deleting = self.args.store.delete();
                self.io(actor, async move {
                    match deleting.await {
                        Ok(()) => DriverInput::Deleted,
                        Err(error) => failed(&error),
                    }
                });
            }
            Action::AcquireLock { wait_ms, lease_ms } => {
                // A refresh usually follows: set up HTTPS while the lock is taken.
                self.http.warm_up(self.uses_tls());
                let (wait, lease) = (
                    Duration::from_millis(wait_ms),
                    Duration::from_millis(lease_ms),
                );
                let locking = self.args.store.lock(wait, lease);
                tokio::spawn(async move {
                    let outcome = locking.await.map_err(|e| e.to_string());
                    let _ = actor.cast(SessionMsg::Locked(outcome));
                });
            }
            Action::ReleaseLock => self.lock = None,
            Action::ArmTimer { at } => {
                self.disarm_timer();
                let delay = Duration::from_millis(now().millis_until(at));
                let generation = self.timer_generation;
                self.timer =
                    Some(myself.send_after(delay, move || SessionMsg::Timer { generation }));
            }
            Action::CancelTimer => self.disarm_timer(),
            Action::Reply { call, reply } => {
                if let Some(waiting) = self.waiting.remove(&call) {
                    self.reply(waiting, reply);
                }
            }
            Action::Notify(notice) => self.notify(notice),
        }
    }

    fn io(
        &self,
        actor: ActorRef<SessionMsg>,
        work: impl Future<Output = DriverInput> + Send + 'static,
    ) {
        tokio::spawn(async move {
            let _ = actor.cast(SessionMsg::Io(work.await));
        });
    }

    fn disarm_timer(&mut self) {
        self.timer_generation += 1;
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }

    fn reply(&self, waiting: Waiting, reply: Reply) {
        match (waiting, reply) {
            (
                Waiting::Status(sender),
                Reply::Status {
                    status,
                    storage_problem,
                },
            ) => {
                let store = self.args.store.info();
                let _ = sender.send(StatusReport {
                    status,
                    store,
                    storage_problem,
                });
            }
            (waiting, reply) => answer(waiting, reply),
        }
    }

    fn notify(&self, notice: Notice) {
        let event = match notice {
            Notice::LoggedIn { identity } => HostEvent::LoggedIn { identity },
            Notice::LoggedOut { reason } => HostEvent::LoggedOut { reason },
            Notice::RefreshFailed { error, retry_at } => {
                tracing::warn!(%error, "refresh failed");
                HostEvent::RefreshFailed { error, retry_at }
            }
            Notice::StorageFailed { detail } => {
                tracing::error!(%detail, "storage failed");
                HostEvent::StorageFailed { detail }
            }
            Notice::CallbackIgnored { reason } => HostEvent::CallbackIgnored { reason },
        };
        self.event(event);
    }

    fn event(&self, event: HostEvent) {
        let _ = self.args.events.send(event);
    }
}

/// Answers one caller with the driver's reply, as the type it waits for.
pub(super) fn answer(waiting: Waiting, reply: Reply) {
    let failure = |reply: Reply| match reply {
        Reply::Failed { error } => error,
        Reply::Refused { rejected } => Error::RedirectRefused {
            reason: rejected.to_string(),
        },
        _ => Error::Config {
            problem: "an answer of the wrong kind".into(),
        },
    };
    match (waiting, reply) {
        (
            Waiting::Token(sender),
            Reply::Token {
                access_token,
                expires_at,
            },
        ) => {
            let access_token = SharedSecret::from(&access_token);
            let _ = sender.send(Ok(Token {
                access_token,
                expires_at,
            }));
        }
        (Waiting::Token(sender), reply) => drop(sender.send(Err(failure(reply)))),
        (
            Waiting::Login(sender),
            Reply::LoggedIn {
                identity,
                scopes,
                expires_at,
            },
        ) => {
            let _ = sender.send(Ok(LoginReport {
                identity,
                scopes,
                expires_at,
            }));
        }
        (Waiting::Login(sender), reply) => drop(sender.send(Err(failure(reply)))),
        (
            Waiting::Logout(sender),
            Reply::LoggedOut {
                end_session_url,
                server_calls,
            },
        ) => {
            let _ = sender.send(Ok(LogoutReport {
                end_session_url,
                server_calls,
            }));
        }
        (Waiting::Logout(sender), reply) => drop(sender.send(Err(failure(reply)))),
        (Waiting::Pasted(sender), Reply::Refused { rejected }) => drop(sender.send(Err(rejected))),
        (Waiting::Pasted(sender), _) => drop(sender.send(Ok(()))),
        (Waiting::Page(page), Reply::LoggedIn { .. }) => page.respond(CallbackPage::Success),
        (Waiting::Page(page), Reply::Refused { rejected }) => {
            page.respond(CallbackPage::Ignored {
                message: rejected.to_string(),
            });
        }
        (Waiting::Page(page), Reply::Failed { error }) => {
            page.respond(CallbackPage::Failed {
                message: error.to_string(),
            });
        }
        (Waiting::Page(page), _) => {
            page.respond(CallbackPage::Failed {
                message: "the login ended".into(),
            });
        }
        (Waiting::Status(_) | Waiting::Nobody, _) => {}
    }
}

/// Reads the store, as the driver's input.
pub(super) async fn load(store: &dyn SessionStore) -> DriverInput {
    loaded(store.load().await)
}

fn loaded(read: Result<Option<crate::store::Versioned>, crate::store::StoreError>) -> DriverInput {
    match read {
        Ok(Some(read)) => DriverInput::Loaded {
            session: Some(read.session),
            version: Some(read.version),
        },
        Ok(None) => DriverInput::Loaded {
            session: None,
            version: None,
        },
        Err(error) => failed(&error),
    }
}

fn failed(error: &crate::store::StoreError) -> DriverInput {
    DriverInput::StoreFailed {
        detail: error.to_string(),
        conflict: matches!(error, crate::store::StoreError::Conflict { .. }),
    }
}
