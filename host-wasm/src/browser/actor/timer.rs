//! The session's one timer, as a `setTimeout`, cleared on `close()` (a pending one keeps
//! node, and test runners, alive).

use tessera_engine::UnixMillis;
use wasm_bindgen::prelude::*;

use super::{SessionMsg, SessionState, WeakMailbox, now};
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
    pub(super) fn arm_timer(&mut self, mailbox: WeakMailbox, at: UnixMillis) {
        self.disarm_timer();
        // A timer that fires after it was replaced is harmless: the driver checks what
        // is due.
        // Delivered from a task, not from inside the callback: handling it re-arms the
        // timer, which drops this very closure.
        let fire = Closure::<dyn FnMut()>::new(move || {
            let mailbox = mailbox.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let _ = mailbox.send(SessionMsg::TimerFired);
            });
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
