//! Performing the driver's actions: HTTP, the launcher, the lock and storage, each in a
//! `spawn_local` task whose outcome is delivered back to the mailbox; promises settled,
//! `SessionEvent`s to the `onEvent` listeners, and the timer.

use js_sys::{Function, Reflect};
use tessera_engine::driver::{Action, DriverInput};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};

use super::{SessionMsg, SessionState, WeakMailbox};
use crate::browser::events::{self, SessionEvent};
use crate::browser::glue::{self, describe};
use crate::browser::promises::settle;

impl SessionState {
    pub(super) fn perform(&mut self, mailbox: &WeakMailbox, action: Action) {
        let mailbox = mailbox.clone();
        let store = self.adapters.store.clone();
        match action {
            Action::Send(request) => spawn_local(async move {
                let input = crate::browser::fetch::perform(request).await;
                let _ = mailbox.send(SessionMsg::Io(input));
            }),
            Action::OpenBrowser { url } => self.launch(mailbox, url),
            // Not emitted: the driver is told this host cannot prompt.
            Action::PromptForCode { .. } | Action::CloseRedirect => {}
            Action::ShowUserCode(code) => self.emit(&SessionEvent::UserCode(code)),
            Action::Load => spawn_local(async move {
                let _ = mailbox.send(SessionMsg::Io(store.load_input().await));
            }),
            Action::Save { session, replaces } => spawn_local(async move {
                let input = match store.save(&session, replaces).await {
                    Ok(version) => DriverInput::Saved { version },
                    Err((detail, conflict)) => DriverInput::StoreFailed { detail, conflict },
                };
                let _ = mailbox.send(SessionMsg::Io(input));
            }),
            Action::Delete => spawn_local(async move {
                let input = match store.delete().await {
                    Ok(()) => DriverInput::Deleted,
                    Err(detail) => DriverInput::StoreFailed {
                        detail,
                        conflict: false,
                    },
                };
                let _ = mailbox.send(SessionMsg::Io(input));
            }),
            Action::AcquireLock { wait_ms, .. } => self.lock(mailbox, wait_ms),
            Action::ReleaseLock => {
                if let Some(release) = self.lock.borrow_mut().take() {
                    let _ = release.call0(&JsValue::UNDEFINED);
                }
            }
            Action::ArmTimer { at } => self.arm_timer(mailbox, at),
            Action::CancelTimer => self.disarm_timer(),
            Action::Reply { call, reply } => {
                if let Some(at) = self.waiting.iter().position(|(id, _)| *id == call) {
                    settle(self.waiting.swap_remove(at).1, reply, &self.adapters.store);
                }
            }
            Action::Notify(notice) => {
                if let Some(event) = SessionEvent::of(notice, &self.adapters.store) {
                    self.emit(&event);
                }
            }
            // The npm package (no `rust-crypto`): WebCrypto does the arithmetic.
            Action::VerifySignature(check) => spawn_local(async move {
                let valid = glue::verify_with_webcrypto(&check).await;
                let input = DriverInput::SignatureChecked {
                    id: check.id,
                    valid,
                };
                let _ = mailbox.send(SessionMsg::Io(input));
            }),
        }
    }

    /// Opens the authorization URL with the launcher; its one redirect comes back as
    /// `Redirected`.
    fn launch(&mut self, mailbox: WeakMailbox, url: String) {
        let launch = self.launch;
        let Some(launcher) = self.adapters.launcher.clone() else {
            let detail = "no launcher: outside an extension, pass options.launcher to \
                          Session.open (a function that opens the URL and resolves with the \
                          final redirect URL)";
            let _ = mailbox.send(SessionMsg::LaunchFailed {
                launch,
                detail: detail.into(),
            });
            return;
        };
        let redirect_uri = self
            .driver
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
            let _ = mailbox.send(message);
        });
    }

    /// Takes the Web Lock, waiting up to `wait_ms` (a timeout is `LockBusy`), then reads
    /// storage (another page or worker may have refreshed).
    fn lock(&mut self, mailbox: WeakMailbox, wait_ms: u64) {
        let store = self.adapters.store.clone();
        let slot = self.lock.clone();
        spawn_local(async move {
            let acquired = JsFuture::from(glue::acquire_lock(&store.lock_name(), wait_ms as f64));
            let input = match acquired.await {
                Ok(release) => {
                    *slot.borrow_mut() = release.dyn_into::<Function>().ok();
                    let input = match store.load_input().await {
                        DriverInput::Loaded { session, version } => {
                            DriverInput::LockAcquired { session, version }
                        }
                        failed => {
                            if let Some(release) = slot.borrow_mut().take() {
                                let _ = release.call0(&JsValue::UNDEFINED);
                            }
                            let detail = match failed {
                                DriverInput::StoreFailed { detail, .. } => detail,
                                _ => "the session could not be read".into(),
                            };
                            DriverInput::LockFailed { detail }
                        }
                    };
                    let told = mailbox.send(SessionMsg::Io(input));
                    if told.is_err()
                        && let Some(release) = slot.borrow_mut().take()
                    {
                        // The session closed meanwhile: nobody else will release it.
                        let _ = release.call0(&JsValue::UNDEFINED);
                    }
                    return;
                }
                Err(error) if is_timeout(&error) => DriverInput::LockBusy,
                Err(error) => DriverInput::LockFailed {
                    detail: format!("could not take the refresh lock: {}", describe(&error)),
                },
            };
            let _ = mailbox.send(SessionMsg::Io(input));
        });
    }

    fn emit(&self, event: &SessionEvent) {
        let value = events::to_js(event);
        // A listener may add listeners: call a snapshot.
        let listeners = self.adapters.listeners.borrow().clone();
        for listener in &listeners {
            glue::notify(listener, &value);
        }
    }
}

/// The Web Lock's wait ran out (its `AbortSignal.timeout` fired).
fn is_timeout(error: &JsValue) -> bool {
    let name = Reflect::get(error, &JsValue::from_str("name")).ok();
    matches!(
        name.and_then(|n| n.as_string()).as_deref(),
        Some("TimeoutError" | "AbortError")
    )
}
