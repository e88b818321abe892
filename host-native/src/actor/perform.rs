//! Performing the driver's actions: HTTP, storage and the lock in spawned tasks whose
//! outcome comes back as a message, the browser, replies, events and the one timer.

use std::time::Duration;

use ractor::ActorRef;
use tessera_engine::Error;
use tessera_engine::driver::{Action, DriverInput, Notice, Reply};

use super::{SessionMsg, SessionState, StatusReport, Waiting};
use crate::clock::now;
use crate::events::{HostEvent, SharedSecret, Token};
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
                // A timer that fires after it was replaced is harmless: the driver checks
                // what is due.
                self.timer = Some(myself.send_after(delay, || SessionMsg::TimerFired));
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
    match waiting {
        Waiting::Token(sender) => drop(sender.send(match reply {
            Reply::Token {
                access_token,
                expires_at,
            } => Ok(Token {
                access_token: SharedSecret::from(&access_token),
                expires_at,
            }),
            other => Err(failure(other)),
        })),
        Waiting::Login(sender) => drop(sender.send(match reply {
            Reply::LoggedIn(login) => Ok(login),
            other => Err(failure(other)),
        })),
        Waiting::Logout(sender) => drop(sender.send(match reply {
            Reply::LoggedOut(logout) => Ok(logout),
            other => Err(failure(other)),
        })),
        Waiting::Pasted(sender) => drop(sender.send(match reply {
            Reply::Refused { rejected } => Err(rejected),
            _ => Ok(()),
        })),
        Waiting::Page(page) => page.respond(match reply {
            Reply::LoggedIn(_) => CallbackPage::Success,
            Reply::Refused { rejected } => CallbackPage::Ignored {
                message: rejected.to_string(),
            },
            Reply::Failed { error } => CallbackPage::Failed {
                message: error.to_string(),
            },
            _ => CallbackPage::Failed {
                message: "the login ended".into(),
            },
        }),
        Waiting::Status(_) | Waiting::Nobody => {}
    }
}

/// The error in a reply that is not the answer a call waits for.
fn failure(reply: Reply) -> Error {
    match reply {
        Reply::Failed { error } => error,
        Reply::Refused { rejected } => Error::RedirectRefused {
            reason: rejected.to_string(),
        },
        _ => Error::Config {
            problem: "an answer of the wrong kind".into(),
        },
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
