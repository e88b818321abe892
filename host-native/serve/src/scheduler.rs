//! Background refresh: each stored session is refreshed when its turn in the
//! [`Scheduler`](crate::schedule::Scheduler) comes, with bounded concurrency and a claim so that one replica refreshes
//! it; failures back off. A session whose grant the provider rejected is ended by the
//! engine and leaves the schedule; the API key then takes over (the credential chain).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::schedule::{Key, backoff, refresh_time};
use crate::sessions::Sessions;
use crate::store::now_ms;

/// Background refreshes running at once.
pub const CONCURRENCY: usize = 8;

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
