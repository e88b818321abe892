//! Background refresh: each stored session is refreshed shortly before it enters the
//! refresh buffer, with jitter (so sessions imported together do not refresh together)
//! and bounded concurrency; failures back off exponentially with jitter. A session whose
//! grant the provider rejected is ended by the engine and leaves the schedule; the API
//! key then takes over (the credential chain).
//!
//! The schedule is an ordered set of (due time, session) and a map from session to its
//! due time: a few hundred bytes per session, with no client until its turn comes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::sessions::{Key, Sessions};
use crate::store::now_ms;

/// Background refreshes running at once.
pub const CONCURRENCY: usize = 8;
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
    wake: Notify,
}

impl Scheduler {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Plans (user, profile)'s next turn at `due`; its token expires at `expires_at`
    /// (`None`: as already known).
    fn put(&self, key: Key, due: i64, expires_at: Option<i64>) {
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
    fn take_due(&self, now: i64) -> (Vec<(Key, i64)>, Option<i64>) {
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
fn refresh_time(expires_at: i64, buffer_secs: u64) -> i64 {
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

fn backoff(attempts: u32) -> i64 {
    let base = FIRST_BACKOFF_MS
        .saturating_mul(1 << attempts.min(16))
        .min(MAX_BACKOFF_MS);
    // Between half and all of it ("equal jitter").
    base / 2 + random_up_to(base / 2)
}

/// Runs the schedule until the process ends.
pub async fn run(sessions: Arc<Sessions>) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let now = now_ms();
        let (due, next) = sessions.scheduler.take_due(now);
        for (key, expires_at) in due {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let sessions = sessions.clone();
            tokio::spawn(async move {
                if !claimed(&sessions, &key).await {
                    // Another replica is refreshing it; its write will tell us the new
                    // expiry (NOTIFY). Look again later in case it does not.
                    sessions.scheduler.put(key, now_ms() + CLAIM_MS, None);
                    drop(permit);
                    return;
                }
                if let Err(error) = refresh_one(&sessions, key.clone(), expires_at).await {
                    tracing::warn!(user = %key.0, profile = %key.1, %error, "background refresh failed; retrying later");
                }
                drop(permit);
            });
        }
        let sleep = next.map_or(Duration::from_secs(3600), |at| {
            Duration::from_millis((at - now_ms()).clamp(0, 3_600_000) as u64)
        });
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = sessions.scheduler.wake.notified() => {}
        }
    }
}

/// How long a replica's claim on a session's refresh keeps the others off it.
pub const CLAIM_MS: i64 = 60_000;

/// Whether this replica may refresh `key` now (no other replica claimed it).
async fn claimed(sessions: &Arc<Sessions>, key: &Key) -> bool {
    let (vault, key) = (sessions.vault.clone(), key.clone());
    tokio::task::spawn_blocking(move || {
        match vault
            .db
            .claim_one(&key.0, &key.1, &vault.holder, now_ms(), CLAIM_MS)
        {
            Ok(true) => true,
            // Claimed elsewhere, or gone: a session no longer stored is for
            // `refresh_one` to drop from the schedule.
            Ok(false) => !matches!(vault.db.load_session(&key.0, &key.1), Ok(Some(_))),
            // The database is unreachable: refreshing is still safe (the lease decides),
            // and the refresh will report the failure.
            Err(_) => true,
        }
    })
    .await
    .unwrap_or(true)
}

/// Refreshes one session now (its turn came, or a batch asked), then plans its next turn.
/// `Ok(true)`: a fresh token is stored; `Ok(false)`: nothing is stored any more.
/// Only a token that still expires by `planned_expiry` (ms) is refreshed: one that a
/// caller, the session's own timer or another replica has replaced meanwhile is left.
pub async fn refresh_one(
    sessions: &Sessions,
    key: Key,
    planned_expiry: i64,
) -> Result<bool, String> {
    let (user, profile_name) = (&key.0, &key.1);
    let Some(profile) = sessions.profiles.get(profile_name) else {
        sessions.scheduler.forget(&key);
        return Ok(false);
    };
    let buffer = profile
        .config
        .as_ref()
        .map_or(300, |c| c.refresh_buffer_secs);
    let client = match sessions.client(user, profile).await {
        Ok(client) => client,
        Err(e) => {
            reschedule_after_failure(sessions, &key);
            return Err(e.message);
        }
    };
    let status = client.status().await.map_err(|e| e.to_string())?;
    if !status.status.logged_in {
        sessions.scheduler.forget(&key);
        return Ok(false);
    }
    // Ask for a little more lifetime than the planned token has, so the driver refreshes
    // it (once, shared with any request that needs it too), and not a newer one.
    let min_ttl = u64::try_from((planned_expiry - now_ms()).max(0) / 1000 + 1).unwrap_or(1);
    let started = std::time::Instant::now();
    let result = client.access_token_for(min_ttl).await;
    sessions.after_slow_path(user, profile_name, &result, started);
    match result {
        Ok(token) => {
            let expires_at = token.expires_at.0 as i64;
            sessions
                .scheduler
                .put(key, refresh_time(expires_at, buffer), Some(expires_at));
            Ok(true)
        }
        Err(error) => {
            let still_stored = client.status().await.is_ok_and(|s| s.status.logged_in);
            if still_stored {
                reschedule_after_failure(sessions, &key);
                Err(error.to_string())
            } else {
                // The provider ended the grant: the engine deleted the session. The API
                // key, if any, takes over.
                sessions.scheduler.forget(&key);
                tracing::warn!(
                    user = %user, profile = %profile_name, error = %error,
                    fallback = profile.api_key.is_some(),
                    "the provider ended this user's OAuth session; {}",
                    if profile.api_key.is_some() { "the API key takes over" } else { "the user must sign in again" }
                );
                sessions.update_activity(user, profile_name, |a| {
                    a.last_error = Some(error.to_string());
                });
                Ok(false)
            }
        }
    }
}

fn reschedule_after_failure(sessions: &Sessions, key: &Key) {
    let attempts = sessions.update_activity(&key.0, &key.1, |a| {
        a.attempts = a.attempts.saturating_add(1);
        a.attempts
    });
    sessions
        .scheduler
        .put(key.clone(), now_ms() + backoff(attempts - 1), None);
}

/// Plans a session that was just stored (login, import, start-up).
pub fn plan(sessions: &Sessions, key: Key, expires_at: i64) {
    let buffer = sessions
        .profiles
        .get(&key.1)
        .and_then(|p| p.config.as_ref().ok())
        .map_or(300, |c| c.refresh_buffer_secs);
    sessions
        .scheduler
        .put(key, refresh_time(expires_at, buffer), Some(expires_at));
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
