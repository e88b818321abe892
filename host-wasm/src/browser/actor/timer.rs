//! The actor's one timer, as a `setTimeout`. Not ractor's `send_after`: aborting its task
//! leaves the JS timer pending, which keeps node (and test runners) alive after `close()`.

use ractor::ActorRef;
use tessera_engine::UnixMillis;
use wasm_bindgen::prelude::*;

use super::{SessionMsg, SessionState, now};
use crate::browser::glue;

/// The one armed `setTimeout`.
pub(super) struct Timer {
    id: JsValue,
    /// What it calls; must live until it fires or is cleared.
    _fire: Closure<dyn FnMut()>,
}

impl SessionState {
    /// Arms the timer for `at` (the driver re-arms one that fires early: browsers cap
    /// long delays at ~24.8 days).
    pub(super) fn arm_timer(&mut self, myself: &ActorRef<SessionMsg>, at: UnixMillis) {
        self.disarm_timer();
        let actor = myself.clone();
        // A timer that fires after it was replaced is harmless: the driver checks what
        // is due.
        let fire = Closure::<dyn FnMut()>::new(move || {
            let _ = actor.cast(SessionMsg::TimerFired);
        });
        let id = glue::arm_timer(now().millis_until(at) as f64, &fire);
        self.timer = Some(Timer { id, _fire: fire });
    }

    pub(super) fn disarm_timer(&mut self) {
        if let Some(timer) = self.timer.take() {
            glue::disarm_timer(&timer.id);
        }
    }
}
