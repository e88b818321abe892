//! The schedule of background refreshes: an ordered set of (due time, session) and a map
//! from session to its due time, a few hundred bytes per session with no client until its
//! turn comes; and when a turn is due (before the refresh buffer, with jitter, so sessions
//! imported together do not refresh together) or retried (exponential backoff with
//! jitter). `scheduler.rs` runs it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use tokio::sync::Notify;

/// A stored session: (user, profile).
pub type Key = (String, String);

/// The first retry after a failed background refresh; doubled each time, up to
/// [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 5_000;
const MAX_BACKOFF_MS: i64 = 600_000;

#[derive(Debug, Default)]
struct Plan {
    queue: BTreeSet<(i64, Key)>,
    /// Each session's turn and its token's expiry.
    due: HashMap<Key, (i64, i64)>,
}

/// When each session is refreshed next.
#[derive(Debug, Default)]
pub struct Scheduler {
    plan: Mutex<Plan>,
    /// Told when a turn earlier than every planned one is added.
    pub(crate) wake: Notify,
}

impl Scheduler {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Plans (user, profile)'s next turn at `due`; its token expires at `expires_at`
    /// (`None`: as already known).
    pub(crate) fn put(&self, key: Key, due: i64, expires_at: Option<i64>) {
        let mut plan = self.plan();
        let expires_at = match plan.due.get(&key) {
            Some(&(old_due, old_expiry)) => {
                plan.queue.remove(&(old_due, key.clone()));
                expires_at.unwrap_or(old_expiry)
            }
            None => expires_at.unwrap_or(due),
        };
        plan.due.insert(key.clone(), (due, expires_at));
        let earliest = plan.queue.first().map(|(d, _)| *d);
        plan.queue.insert((due, key));
        drop(plan);
        if earliest.is_none_or(|e| due < e) {
            self.wake.notify_one();
        }
    }

    pub fn forget(&self, key: &Key) {
        let mut plan = self.plan();
        if let Some((due, _)) = plan.due.remove(key) {
            plan.queue.remove(&(due, key.clone()));
        }
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.plan().due.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.plan().due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every known session with the time its token expires.
    pub fn entries(&self) -> Vec<(Key, i64)> {
        self.plan()
            .due
            .iter()
            .map(|(k, (_, e))| (k.clone(), *e))
            .collect()
    }

    /// Sessions due by `now`, with the expiry they were planned for, removed from the
    /// queue (each is re-planned after its turn).
    pub(crate) fn take_due(&self, now: i64) -> (Vec<(Key, i64)>, Option<i64>) {
        let mut plan = self.plan();
        let mut due = Vec::new();
        while let Some((at, _)) = plan.queue.first() {
            if *at > now {
                break;
            }
            let Some((at, key)) = plan.queue.pop_first() else {
                break;
            };
            let expires_at = plan.due.get(&key).map_or(at, |(_, e)| *e);
            due.push((key, expires_at));
        }
        (due, plan.queue.first().map(|(at, _)| *at))
    }
}

/// When a token expiring at `expires_at` is refreshed: before the buffer, by up to 10% of
/// the buffer, at random.
pub(crate) fn refresh_time(expires_at: i64, buffer_secs: u64) -> i64 {
    let buffer_ms = (buffer_secs as i64).saturating_mul(1000);
    let jitter = random_up_to((buffer_ms / 10).max(1));
    expires_at - buffer_ms - jitter
}

/// A number in `0..=max`, for jitter (not for secrets).
fn random_up_to(max: i64) -> i64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    (u64::from_le_bytes(bytes) % (max.max(0) as u64 + 1)) as i64
}

pub(crate) fn backoff(attempts: u32) -> i64 {
    let base = FIRST_BACKOFF_MS
        .saturating_mul(1 << attempts.min(16))
        .min(MAX_BACKOFF_MS);
    // Between half and all of it ("equal jitter").
    base / 2 + random_up_to(base / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_sessions_come_out_in_order_and_once() {
        let scheduler = Scheduler::default();
        scheduler.put(("a".into(), "p".into()), 30, None);
        scheduler.put(("b".into(), "p".into()), 10, None);
        scheduler.put(("c".into(), "p".into()), 100, None);
        scheduler.put(("a".into(), "p".into()), 20, None);
        let (due, next) = scheduler.take_due(50);
        let users: Vec<_> = due.iter().map(|(k, _)| k.0.as_str()).collect();
        assert_eq!(users, ["b", "a"]);
        assert_eq!(next, Some(100));
        assert!(scheduler.take_due(50).0.is_empty());
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempts in 0..40 {
            let b = backoff(attempts);
            let base = (FIRST_BACKOFF_MS << attempts.min(16)).min(MAX_BACKOFF_MS);
            assert!(b >= base / 2 && b <= base, "{attempts}: {b}");
        }
    }
}
