//! The actor's one timer: the engine's next wake-up as a `setTimeout`, re-armed after
//! every drain. Not ractor's `send_after`: aborting its task leaves the JS timer pending,
//! which keeps node (and test runners) alive after `close()`.

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
    /// When the engine wants to wake up.
    pub(super) at: UnixMillis,
}

impl SessionState {
    /// One timer: the engine's next wake-up, re-armed after every drain.
    pub(super) fn arm_timer(&mut self, myself: &ActorRef<SessionMsg>) {
        self.disarm_timer();
        self.timer_generation += 1;
        let Some(at) = self.engine.poll_timeout() else {
            return;
        };
        let generation = self.timer_generation;
        let actor = myself.clone();
        let fire = Closure::<dyn FnMut()>::new(move || {
            let _ = actor.cast(SessionMsg::Timer { generation });
        });
        let id = glue::arm_timer(now().millis_until(at) as f64, &fire);
        self.timer = Some(Timer {
            id,
            _fire: fire,
            at,
        });
    }

    pub(super) fn disarm_timer(&mut self) {
        if let Some(timer) = self.timer.take() {
            glue::disarm_timer(&timer.id);
        }
    }
}
