//! Performing effects: HTTP in spawned tasks, the browser, storage in `spawn_blocking`
//! (writes ordered), the refresh lock, and the one timer.

use std::time::Duration;

use ractor::ActorRef;
use tessera_engine::{Effect, Input};

use super::{LOCK_TIMEOUT, SessionMsg, SessionState};
use crate::clock::now;
use crate::events::HostEvent;
use crate::store::{RefreshLock, SessionStore};

impl SessionState {
    pub(super) fn perform(&mut self, myself: &ActorRef<SessionMsg>, effect: Effect) {
        match effect {
            Effect::Http(request) => {
                let http = self.http.clone();
                let actor = myself.clone();
                tracing::debug!(endpoint = %request.endpoint, id = request.id.0, "request");
                tokio::spawn(async move {
                    let input = http.perform(request).await;
                    let _ = actor.cast(SessionMsg::HttpDone(input));
                });
            }
            Effect::OpenBrowser { url } => {
                let _ = self
                    .args
                    .events
                    .send(HostEvent::OpenBrowser { url: url.clone() });
                if !self.args.open_browser {
                    return;
                }
                tokio::task::spawn_blocking(move || {
                    if let Err(error) = crate::browser::open(&url, |name| std::env::var(name).ok())
                    {
                        tracing::warn!(%error, "could not open a browser; open the URL shown");
                    }
                });
            }
            Effect::PromptForCode { url } => {
                let _ = self.args.events.send(HostEvent::PromptForCode { url });
            }
            Effect::ShowUserCode(code) => {
                let _ = self.args.events.send(HostEvent::UserCode(code));
            }
            Effect::LoadSession => {
                let store = self.args.store.clone();
                let actor = myself.clone();
                tokio::task::spawn_blocking(move || {
                    let input = match store.load() {
                        Ok(session) => Input::SessionLoaded { session },
                        Err(error) => Input::StorageFailed {
                            detail: error.to_string(),
                        },
                    };
                    let _ = actor.cast(SessionMsg::HttpDone(input));
                });
            }
            Effect::LockSession => {
                // A refresh usually follows: set up HTTPS while the lock is taken.
                self.http.warm_up(self.uses_tls());
                let store = self.args.store.clone();
                let (dir, profile) = (self.args.config_dir.clone(), self.args.profile.clone());
                let actor = myself.clone();
                tokio::task::spawn_blocking(move || {
                    let outcome = RefreshLock::acquire(&dir, &profile, LOCK_TIMEOUT)
                        .map_err(|e| e.to_string())
                        .and_then(|guard| {
                            store.load().map(|s| (guard, s)).map_err(|e| e.to_string())
                        });
                    let _ = actor.cast(SessionMsg::Locked { outcome });
                });
            }
            Effect::UnlockSession => {
                if self.lock.take().is_none() {
                    // Still being acquired: release it as soon as it arrives.
                    self.lock_unwanted = true;
                }
            }
            Effect::PersistSession { session } => {
                self.write(myself, move |store| store.save(&session))
            }
            Effect::DeleteSession => self.write(myself, |store| store.delete()),
            Effect::Event(event) => self.deliver(event),
        }
    }

    pub(super) fn write<F>(&mut self, myself: &ActorRef<SessionMsg>, operation: F)
    where
        F: FnOnce(&dyn SessionStore) -> Result<(), crate::store::StoreError> + Send + 'static,
    {
        self.writing = true;
        let store = self.args.store.clone();
        let actor = myself.clone();
        tokio::task::spawn_blocking(move || {
            let failure = operation(store.as_ref()).err().map(|e| e.to_string());
            let _ = actor.cast(SessionMsg::Stored { failure });
        });
    }

    /// One timer: the engine's next wake-up, re-armed after a drain that moved it.
    pub(super) fn arm_timer(&mut self, myself: &ActorRef<SessionMsg>) {
        let wanted = self.engine.poll_timeout();
        if wanted == self.timer_at {
            return;
        }
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        self.timer_generation += 1;
        self.timer_at = wanted;
        let Some(at) = wanted else {
            return;
        };
        let delay = Duration::from_millis(now().millis_until(at));
        let generation = self.timer_generation;
        self.timer = Some(myself.send_after(delay, move || SessionMsg::Timer { generation }));
    }
}
