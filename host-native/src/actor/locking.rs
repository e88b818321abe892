//! The refresh lock being acquired, polled by the actor itself.
//!
//! In a refresh storm a thousand callers' messages arrive right behind the first one. A
//! task spawned to await the store's lock would itself be scheduled behind the callers'
//! tasks, and its answer would then wait behind their messages: the refresh request left
//! 1–2 ms late (BENCHMARKS.md, issue 10). So the actor keeps the acquisition and polls it
//! before every message it handles; its waker sends a [`SessionMsg::LockReady`] for when
//! the mailbox is idle. The store still does the work where it always does (a blocking
//! thread for the file store, the database for PostgreSQL).

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use ractor::ActorRef;

use super::SessionMsg;
use crate::store::{Locked, StoreError, StoreFuture};

pub(super) struct Locking {
    acquiring: Option<StoreFuture<Option<Locked>>>,
    waker: Waker,
}

/// Wakes the actor when the acquisition can make progress.
struct Wakeup(ActorRef<SessionMsg>);

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        let _ = self.0.cast(SessionMsg::LockReady);
    }
}

impl Locking {
    pub(super) fn new(actor: ActorRef<SessionMsg>) -> Self {
        Locking {
            acquiring: None,
            waker: Waker::from(Arc::new(Wakeup(actor))),
        }
    }

    /// Starts acquiring (a previous acquisition, if any, is abandoned). The actor is woken
    /// once at once: its first poll hands the store the waker.
    pub(super) fn start(&mut self, acquiring: StoreFuture<Option<Locked>>) {
        self.acquiring = Some(acquiring);
        self.waker.wake_by_ref();
    }

    /// Abandons the acquisition: a lock it still takes is dropped, so released.
    pub(super) fn abandon(&mut self) {
        self.acquiring = None;
    }

    /// The store's answer, once it has one.
    pub(super) fn poll(&mut self) -> Option<Result<Option<Locked>, StoreError>> {
        let acquiring = self.acquiring.as_mut()?;
        let Poll::Ready(outcome) = acquiring
            .as_mut()
            .poll(&mut Context::from_waker(&self.waker))
        else {
            return None;
        };
        self.acquiring = None;
        Some(outcome)
    }
}

impl std::fmt::Debug for Locking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locking")
            .field("acquiring", &self.acquiring.is_some())
            .finish()
    }
}
