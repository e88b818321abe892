//! Performing effects: HTTP, the launcher, the lock and storage writes, each in a
//! `spawn_local` task whose outcome comes back to the actor as a message.

use js_sys::Function;
use ractor::ActorRef;
use tessera_engine::{Effect, Input};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};

use super::{LOCK_TIMEOUT_MS, SessionMsg, SessionState};
use crate::browser::error::Failure;
use crate::browser::events::SessionEvent;
use crate::browser::glue::{self, describe};
use crate::browser::storage::Store;

impl SessionState {
    pub(super) fn perform(&mut self, myself: &ActorRef<SessionMsg>, effect: Effect) {
        match effect {
            Effect::Http(request) => {
                let actor = myself.clone();
                spawn_local(async move {
                    let input = crate::browser::fetch::perform(request).await;
                    let _ = actor.cast(SessionMsg::Io(input));
                });
            }
            Effect::OpenBrowser { url } => self.launch(myself, url),
            Effect::PromptForCode { .. } => {
                // The browser API offers no paste flow (login() takes "browser" or
                // "device"); a profile configured for it is refused here.
                let failure = Failure::new(
                    "config",
                    "this provider needs the code pasted by the user, which the browser host \
                     does not offer; use a redirect URI the launcher can capture",
                );
                self.end_login(myself, failure);
            }
            Effect::ShowUserCode(code) => self.emit(&SessionEvent::UserCode(code)),
            Effect::LoadSession => {
                let store = self.adapters.store.clone();
                let actor = myself.clone();
                spawn_local(async move {
                    let input = match store.load().await {
                        Ok(session) => Input::SessionLoaded { session },
                        Err(detail) => Input::StorageFailed { detail },
                    };
                    let _ = actor.cast(SessionMsg::Io(input));
                });
            }
            Effect::LockSession => self.lock(myself),
            Effect::UnlockSession => {
                if self.lock.borrow().is_some() {
                    self.release_lock();
                } else {
                    // Still being acquired: release it as soon as it arrives.
                    self.lock_unwanted = true;
                }
            }
            Effect::PersistSession { session } => {
                self.write(myself, async move |store: Store| store.save(&session).await)
            }
            Effect::DeleteSession => self.write(myself, async |store: Store| store.delete().await),
            Effect::Event(event) => self.deliver(event),
        }
    }

    /// Opens the authorization URL with the launcher; its one redirect comes back as
    /// `Redirected`.
    fn launch(&mut self, myself: &ActorRef<SessionMsg>, url: String) {
        let launch = self.launch;
        let actor = myself.clone();
        let Some(launcher) = self.adapters.launcher.clone() else {
            let _ = actor.cast(SessionMsg::LaunchFailed {
                launch,
                detail: "no launcher: outside an extension, pass options.launcher to \
                         Session.open (a function that opens the URL and resolves with the \
                         final redirect URL)"
                    .into(),
            });
            return;
        };
        let redirect_uri = self
            .engine
            .config()
            .redirect_uri
            .clone()
            .unwrap_or_default();
        spawn_local(async move {
            let called = launcher.call2(
                &JsValue::UNDEFINED,
                &JsValue::from_str(&url),
                &JsValue::from_str(&redirect_uri),
            );
            let message = match glue::settle(called).await {
                Ok(value) => match value.as_string() {
                    Some(url) => SessionMsg::Redirected { launch, url },
                    None => SessionMsg::LaunchFailed {
                        launch,
                        detail: "the launcher resolved with no redirect URL".into(),
                    },
                },
                Err(detail) => SessionMsg::LaunchFailed { launch, detail },
            };
            let _ = actor.cast(message);
        });
    }

    /// Takes the Web Lock, then re-reads storage (a sibling may have refreshed).
    fn lock(&mut self, myself: &ActorRef<SessionMsg>) {
        let store = self.adapters.store.clone();
        let slot = self.lock.clone();
        let actor = myself.clone();
        spawn_local(async move {
            let acquired = JsFuture::from(glue::acquire_lock(&store.lock_name(), LOCK_TIMEOUT_MS));
            let outcome = match acquired.await {
                Ok(release) => {
                    *slot.borrow_mut() = release.dyn_into::<Function>().ok();
                    store.load().await
                }
                Err(error) => Err(format!(
                    "could not take the refresh lock within {} s: {}",
                    LOCK_TIMEOUT_MS / 1000.0,
                    describe(&error)
                )),
            };
            let _ = actor.cast(SessionMsg::Locked { outcome });
        });
    }

    pub(super) fn release_lock(&mut self) {
        if let Some(release) = self.lock.borrow_mut().take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }

    fn write<F>(&mut self, myself: &ActorRef<SessionMsg>, operation: F)
    where
        F: AsyncFnOnce(Store) -> Result<(), String> + 'static,
    {
        self.writing = true;
        let store = self.adapters.store.clone();
        let actor = myself.clone();
        spawn_local(async move {
            let failure = operation(store).await.err();
            let _ = actor.cast(SessionMsg::Stored { failure });
        });
    }
}
