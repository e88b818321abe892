//! Performing the driver's actions: HTTP and storage in spawned tasks whose outcome comes
//! back as a message, the lock (polled by the actor, `locking.rs`), the browser, replies,
//! events and the one timer.

use std::time::Duration;

use ractor::ActorRef;
use tessera_engine::driver::{Action, DriverInput, Reply};

use super::{SessionMsg, SessionState};
use crate::clock::now;
use crate::events::HostEvent;
use crate::http::uses_tls;
use crate::replies::{StatusReport, Waiting, answer};
use crate::store::{failed_input, loaded_input};

impl SessionState {
    pub(super) fn perform(&mut self, myself: &ActorRef<SessionMsg>, action: Action) {
        let actor = myself.clone();
        match action {
            Action::Send(request) => {
                let http = self.http.clone();
                tracing::debug!(endpoint = %request.endpoint, id = request.id.0, "request");
                tokio::spawn(async move {
                    let input = http.perform(request).await;
                    let _ = actor.cast(SessionMsg::Io(Box::new(input)));
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
                self.io(actor, async move { loaded_input(loading.await) });
            }
            Action::Save { session, replaces } => {
                let saving = self.args.store.save(*session, replaces);
                self.io(actor, async move {
                    match saving.await {
                        Ok(version) => DriverInput::Saved { version },
                        Err(error) => failed_input(&error),
                    }
                });
            }
            Action::Delete => {
                let deleting = self.args.store.delete();
                self.io(actor, async move {
                    match deleting.await {
                        Ok(()) => DriverInput::Deleted,
                        Err(error) => failed_input(&error),
                    }
                });
            }
            Action::AcquireLock { wait_ms, lease_ms } => {
                // A refresh usually follows: set up HTTPS while the lock is taken.
                self.http
                    .warm_up(uses_tls(self.driver.config(), self.driver.session()));
                let (wait, lease) = (
                    Duration::from_millis(wait_ms),
                    Duration::from_millis(lease_ms),
                );
                self.locking.start(self.args.store.lock(wait, lease));
            }
            Action::ReleaseLock => {
                self.locking.abandon();
                self.lock = None;
            }
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
            Action::Notify(notice) => self.event(HostEvent::from(notice)),
            // Not asked in practice: the engine answers its signature checks itself with
            // this same function (its `rust-crypto` verifier, docs/adr/018).
            Action::VerifySignature(check) => {
                let valid = tessera_engine::verify_with_rust_crypto(&check);
                let input = DriverInput::SignatureChecked {
                    id: check.id,
                    valid,
                };
                let _ = actor.cast(SessionMsg::Io(Box::new(input)));
            }
        }
    }

    fn io(
        &self,
        actor: ActorRef<SessionMsg>,
        work: impl Future<Output = DriverInput> + Send + 'static,
    ) {
        tokio::spawn(async move {
            let _ = actor.cast(SessionMsg::Io(Box::new(work.await)));
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

    fn event(&self, event: HostEvent) {
        let _ = self.args.events.send(event);
    }
}
