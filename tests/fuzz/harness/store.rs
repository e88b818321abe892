//! The store's side: what it holds, its answers to the driver, and a sibling process
//! writing it.

use super::*;

impl World {
    pub(super) fn store(&mut self, session: StoredSession) -> Version {
        let version = Version(self.next_version);
        self.next_version += 1;
        self.stored = Some((session, version));
        version
    }

    pub(super) fn stored_session(&self) -> (Option<StoredSession>, Option<Version>) {
        match &self.stored {
            Some((s, v)) => (Some(s.clone()), Some(*v)),
            None => (None, None),
        }
    }

    pub(super) fn lock_is_ours(&self) -> bool {
        self.lock_until.is_some_and(|until| until > self.now)
    }

    /// The store answers the oldest thing it owes.
    pub(super) fn answer_store(&mut self, bytes: &mut Bytes) {
        if self.asks.is_empty() {
            return;
        }
        let ask = self.asks.remove(0);
        let fail = bytes.u8().is_multiple_of(8);
        let input = match ask {
            StoreAsk::Load if fail => DriverInput::StoreFailed {
                detail: "disk on fire".into(),
                conflict: false,
            },
            StoreAsk::Load => {
                let (session, version) = self.stored_session();
                DriverInput::Loaded { session, version }
            }
            StoreAsk::Save { session, replaces } => {
                let current = self.stored.as_ref().map(|(_, v)| *v);
                if replaces.is_some() && replaces != current {
                    DriverInput::StoreFailed {
                        detail: "version conflict".into(),
                        conflict: true,
                    }
                } else if fail {
                    DriverInput::StoreFailed {
                        detail: "disk full".into(),
                        conflict: false,
                    }
                } else {
                    self.check_not_older(&session);
                    let version = self.store(*session);
                    DriverInput::Saved { version }
                }
            }
            StoreAsk::Delete if fail => DriverInput::StoreFailed {
                detail: "read-only".into(),
                conflict: false,
            },
            StoreAsk::Delete => {
                self.stored = None;
                DriverInput::Deleted
            }
            StoreAsk::Lock(lease_ms) => match bytes.u8() % 8 {
                0 => DriverInput::LockBusy,
                1 => DriverInput::LockFailed {
                    detail: "lock file gone".into(),
                },
                _ => {
                    self.lock_until = Some(self.now.saturating_add(lease_ms));
                    let (session, version) = self.stored_session();
                    DriverInput::LockAcquired { session, version }
                }
            },
        };
        self.input(input);
    }

    /// A sibling process writes the store (it respects our lock while the lease runs).
    pub(super) fn sibling(&mut self, bytes: &mut Bytes) {
        if self.lock_is_ours() {
            return;
        }
        if self.trace {
            eprintln!("{} sibling writes", self.now - START);
        }
        match bytes.u8() % 4 {
            0 => self.stored = None,
            1 => {
                // A sibling refreshed: the next generation of the stored grant.
                let Some((mut session, _)) = self.stored.clone() else {
                    return;
                };
                let Some((grant, generation)) = session
                    .refresh_token
                    .as_ref()
                    .and_then(|t| self.refresh_tokens.get(t.expose()).copied())
                else {
                    return;
                };
                session.refresh_token =
                    Some(Secret::new(self.new_refresh_token(grant, generation + 1)));
                session.access_token = Secret::new(self.secret("AT"));
                session.obtained_at = UnixMillis(self.now);
                session.expires_at = UnixMillis(self.now + 3_600_000);
                self.store(session);
            }
            _ => {
                let session = self.new_session(bytes);
                self.store(session);
            }
        }
    }
}
