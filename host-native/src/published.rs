//! What the session actor publishes for the lock-free fast path of
//! [`Client::cached_token`](crate::Client::cached_token).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tessera_engine::StoredSession;

use crate::events::SharedSecret;

/// What the actor publishes for the fast path after a drain that changed the session: the
/// session (for the engine's own validity rule) and its access token, already shared, so
/// serving it copies nothing.
#[derive(Debug)]
pub struct Published {
    pub session: StoredSession,
    pub token: SharedSecret,
}

impl Published {
    pub(crate) fn new(session: &StoredSession) -> Self {
        Published {
            token: SharedSecret::from(&session.access_token),
            session: session.clone(),
        }
    }

    /// Whether this still answers the fast path exactly as `session` would: the token
    /// and what `wants_refresh` reads. Other fields (identity, ID token) are not served
    /// from here, so a change to them alone needs no new copy.
    pub(crate) fn serves(&self, session: &StoredSession) -> bool {
        let ours = &self.session;
        ours.expires_at == session.expires_at
            && ours.obtained_at == session.obtained_at
            && ours.refresh_token.is_some() == session.refresh_token.is_some()
            && self.token == session.access_token
    }
}

impl Published {
    /// Publishes `current` when it changed. Most inputs (every caller joining a refresh in
    /// flight, for one) change nothing, and skipping the copy keeps a crowd of waiters
    /// from delaying the refresh they wait for.
    pub(crate) fn publish(cache: &ArcSwapOption<Published>, current: Option<&StoredSession>) {
        let unchanged = match (cache.load().as_deref(), current) {
            (Some(published), Some(session)) => published.serves(session),
            (None, None) => true,
            _ => false,
        };
        if !unchanged {
            cache.store(current.map(|session| Arc::new(Published::new(session))));
        }
    }
}
