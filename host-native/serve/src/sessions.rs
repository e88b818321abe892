//! Every (user, profile) session of the service, and the credential chain.
//!
//! A session that is in use has a live [`Client`] (the native host: a session driver in
//! an actor, over this service's database): concurrent requests for one user share its
//! single-flight refresh, and its cached token answers without a message. A session that
//! is idle for [`IDLE_SECS`] has no client, only its row and its place in the
//! [`Scheduler`](crate::schedule::Scheduler), so many thousands of idle users cost little
//! memory.
//!
//! The credential chain, per user and profile: the user's own OAuth session, then tokens
//! given once in the environment (kept as the reserved user [`ENV_USER`]), then the
//! profile's API key. Every step down is logged (without secrets) and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tessera::{Client, ClientOptions, SharedHttp, Token};
use tessera_engine::{Error as EngineError, Secret, UnixMillis};

use crate::backend::Freshness;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::profiles::{Profile, Profiles};
use crate::schedule::{Key, Scheduler, refresh_time};
use crate::store::{UserStore, Vault, now_ms};

/// The user that holds a profile's tokens from the environment. User ids from requests
/// cannot contain `:`, so no request can name it.
pub const ENV_USER: &str = ":env";

/// A live client with no request for this long is stopped (its session stays stored).
pub const IDLE_SECS: i64 = 300;

/// Where a token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Oauth,
    Env,
    ApiKey,
    None,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Oauth => "oauth",
            Source::Env => "env",
            Source::ApiKey => "api_key",
            Source::None => "none",
        }
    }
}

/// A credential to hand out.
#[derive(Debug)]
pub struct Credential {
    pub token: Secret,
    /// `None` for an API key.
    pub expires_at: Option<UnixMillis>,
    pub source: Source,
}

/// What the service remembers of one session's recent history (dashboard, status).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Activity {
    pub last_refresh_at: Option<u64>,
    pub last_error: Option<String>,
    pub failures: u64,
    pub fallbacks: u64,
    pub last_source: Option<Source>,
    pub fallback_active: bool,
    /// A background refresh failed this many times in a row (backoff).
    #[serde(skip)]
    pub attempts: u32,
    /// The API rejected the token a `rejected` refresh produced: OAuth is skipped for
    /// this user until the token changes.
    #[serde(skip)]
    pub suspended_token: Option<[u8; 32]>,
    #[serde(skip)]
    pub refreshed_after_rejection: Option<[u8; 32]>,
    /// The last token counted as a refresh (callers that joined it are not counted).
    #[serde(skip)]
    pub last_token: Option<[u8; 32]>,
}

struct Live {
    client: tokio::sync::OnceCell<Client>,
    last_used: AtomicI64,
    /// Work that must keep the client (a device login polling).
    pins: AtomicUsize,
}

/// The sessions of one service.
pub struct Sessions {
    pub vault: Arc<Vault>,
    pub profiles: Arc<Profiles>,
    pub metrics: Arc<Metrics>,
    pub scheduler: Scheduler,
    http: SharedHttp,
    live: RwLock<HashMap<Key, Arc<Live>>>,
    activity: Mutex<HashMap<Key, Activity>>,
    /// The read barrier of a database other replicas write (PostgreSQL).
    freshness: Option<Arc<Freshness>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

pub fn fingerprint(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// Plans the next background refresh of a session that was just stored (login,
    /// import, start-up, another replica's write): before its refresh buffer.
    pub fn plan_refresh(&self, key: Key, expires_at: i64) {
        let buffer = self
            .profiles
            .get(&key.1)
            .and_then(|p| p.config.as_ref().ok())
            .map_or(300, |c| c.refresh_buffer_secs);
        self.scheduler
            .put(key, refresh_time(expires_at, buffer), Some(expires_at));
    }

    pub fn new(vault: Arc<Vault>, profiles: Arc<Profiles>, metrics: Arc<Metrics>) -> Self {
        let freshness = vault.db.freshness();
        Self {
            freshness,
            vault,
            profiles,
            metrics,
            scheduler: Scheduler::default(),
            http: SharedHttp::new(),
            live: RwLock::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
        }
    }

    pub fn profile(&self, name: &str) -> Result<&Profile, ApiError> {
        self.profiles
            .get(name)
            .ok_or_else(|| ApiError::unknown_profile(name, &self.profiles.names()))
    }

    /// Returns once this process has dropped every cached session that another replica
    /// replaced before the call ([`Freshness`]); at once on a database only this process
    /// uses. Call it before reading a client's cached token.
    pub async fn fresh(&self) {
        if let Some(freshness) = &self.freshness {
            freshness.wait().await;
        }
    }

    /// The live client of (user, profile), started (loading its session) if needed.
    pub async fn client(&self, user: &str, profile: &Profile) -> Result<Client, ApiError> {
        // Borrowed: a cached request must not copy the configuration it does not use.
        let config = profile.config.as_ref().map_err(|problem| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "profile_misconfigured",
                format!("profile `{}` cannot run OAuth: {problem}", profile.name),
            )
        })?;
        let key = (user.to_owned(), profile.name.clone());
        let live = self.live_entry(&key);
        live.last_used.store(now_ms(), Ordering::Relaxed);
        let client = live
            .client
            .get_or_try_init(|| async {
                let store = UserStore::new(self.vault.clone(), user, &profile.name);
                // A dead replica's lease ends just after its request would have timed
                // out, so another replica takes over the refresh soon after.
                let lease = std::time::Duration::from_millis(config.http_timeout_ms + 5_000);
                let options = ClientOptions::new(config.clone(), store)
                    .refresh_lock(std::time::Duration::from_secs(60), lease)
                    .open_browser(false)
                    .shared_http(self.http.clone());
                // Boxed, as the refresh below: inline, these cold futures made every
                // `/token` request's future ~15 KB, allocated and copied per request.
                Box::pin(Client::start(options)).await
            })
            .await
            .map_err(ApiError::internal)?;
        // The store could not be read when the client started (the database is down):
        // the client would believe nobody is signed in. Drop it and say so; the next
        // request starts a new one.
        if let Some(problem) = client.storage_problem().filter(|_| !client.has_session()) {
            let key = (user.to_owned(), profile.name.clone());
            let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
            if live
                .get(&key)
                .is_some_and(|l| l.client.get().is_some_and(|c| c.same_as(client)))
            {
                live.remove(&key);
                client.stop();
            }
            return Err(ApiError::storage(problem));
        }
        Ok(client.clone())
    }

    fn live_entry(&self, key: &Key) -> Arc<Live> {
        if let Some(live) = self.live.read().unwrap_or_else(|p| p.into_inner()).get(key) {
            return live.clone();
        }
        self.live
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Live {
                    client: tokio::sync::OnceCell::new(),
                    last_used: AtomicI64::new(now_ms()),
                    pins: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Keeps (user, profile)'s client alive until the returned guard is dropped.
    pub fn pin(&self, user: &str, profile: &str) -> Pin {
        let live = self.live_entry(&(user.to_owned(), profile.to_owned()));
        live.pins.fetch_add(1, Ordering::Relaxed);
        Pin(live)
    }

    /// Whether work keeps (user, profile)'s client (a device login polling).
    pub fn is_pinned(&self, user: &str, profile: &str) -> bool {
        self.live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(user.to_owned(), profile.to_owned()))
            .is_some_and(|l| l.pins.load(Ordering::Relaxed) > 0)
    }

    /// Stops the client of (user, profile), e.g. after its row was replaced by an import;
    /// the next request starts one that reads the new row.
    pub fn forget_client(&self, user: &str, profile: &str) {
        let removed = self
            .live
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(user.to_owned(), profile.to_owned()));
        if let Some(client) = removed.as_ref().and_then(|l| l.client.get()) {
            client.stop();
        }
    }

    /// Stops every client (another replica wrote sessions we may not have heard of).
    pub fn forget_all_clients(&self) {
        let all = std::mem::take(&mut *self.live.write().unwrap_or_else(|p| p.into_inner()));
        for live in all.values() {
            if let Some(client) = live.client.get() {
                client.stop();
            }
        }
    }

    /// Stops clients idle for longer than [`IDLE_SECS`]; returns how many are left.
    pub fn evict_idle(&self) -> usize {
        let cutoff = now_ms() - IDLE_SECS * 1000;
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, l| {
            let keep =
                l.pins.load(Ordering::Relaxed) > 0 || l.last_used.load(Ordering::Relaxed) > cutoff;
            if !keep && let Some(client) = l.client.get() {
                client.stop();
            }
            keep
        });
        live.len()
    }

    /// How many sessions have a running client.
    pub fn live_count(&self) -> usize {
        self.live.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether (user, profile) has a stored or live session worth asking.
    pub fn known(&self, user: &str, profile: &str) -> bool {
        let key = (user.to_owned(), profile.to_owned());
        self.scheduler.contains(&key)
            || self
                .live
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .is_some_and(|l| l.client.get().is_some())
    }

    /// [`Sessions::known`], or, where other replicas write the database, a session row
    /// there: a sign-in or an import on another replica counts before its notification
    /// is handled here (under load that can take longer than the read barrier waits), so
    /// the chain never passes over a signed-in user to the API key.
    pub async fn has_session(&self, user: &str, profile: &str) -> bool {
        if self.known(user, profile) {
            return true;
        }
        if self.freshness.is_none() {
            return false;
        }
        let (vault, owned_user, owned_profile) =
            (self.vault.clone(), user.to_owned(), profile.to_owned());
        let row =
            tokio::task::spawn_blocking(move || vault.db.load_session(&owned_user, &owned_profile))
                .await;
        matches!(row, Ok(Ok(Some(_))))
    }

    pub fn activity(&self, user: &str, profile: &str) -> Activity {
        self.activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(user.to_owned(), profile.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn update_activity<T>(
        &self,
        user: &str,
        profile: &str,
        change: impl FnOnce(&mut Activity) -> T,
    ) -> T {
        let mut all = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        change(
            all.entry((user.to_owned(), profile.to_owned()))
                .or_default(),
        )
    }

    /// Starts (user, profile)'s history afresh (a sign-in, an import): what is known of
    /// earlier failures no longer applies. Idle sessions keep no entry.
    pub fn reset_activity(&self, user: &str, profile: &str) {
        self.activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(user.to_owned(), profile.to_owned()));
    }

    pub fn all_activity(&self) -> HashMap<Key, Activity> {
        self.activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// An OAuth token of (user, profile) valid for `min_ttl_secs`, refreshed if need be.
    pub async fn oauth_token(
        &self,
        user: &str,
        profile: &Profile,
        min_ttl_secs: u64,
    ) -> Result<Token, EngineError> {
        // A token another replica replaced must not be served from our cache.
        self.fresh().await;
        let started = std::time::Instant::now();
        let mut attempt = 0;
        let result = loop {
            let client = self
                .client(user, profile)
                .await
                .map_err(|e| EngineError::Storage { detail: e.message })?;
            if let Some(token) = client.cached_token(min_ttl_secs) {
                return Ok(token);
            }
            let result = Box::pin(client.access_token_for(min_ttl_secs)).await;
            attempt += 1;
            // Another replica wrote this session while we waited (its NOTIFY stopped our
            // client, see `forget_client`): ask once more, on a client that reads its row.
            if matches!(result, Err(EngineError::Stopped)) && attempt < 2 {
                continue;
            }
            break result;
        };
        self.after_slow_path(user, &profile.name, &result, started);
        result
    }

    /// Books a token request that went to the driver (a refresh, or a failure).
    pub fn after_slow_path(
        &self,
        user: &str,
        profile: &str,
        result: &Result<Token, EngineError>,
        started: std::time::Instant,
    ) {
        let key = (user.to_owned(), profile.to_owned());
        match result {
            Ok(token) => {
                // Every caller that joined one refresh comes here with its token: count
                // the refresh once, by the token it produced.
                let produced = fingerprint(token.access_token.expose());
                let new = self.update_activity(user, profile, |a| {
                    a.last_error = None;
                    a.attempts = 0;
                    let new = a.last_token != Some(produced);
                    if new {
                        a.last_token = Some(produced);
                        a.last_refresh_at = Some(now_ms() as u64);
                    }
                    new
                });
                if new {
                    tracing::debug!(
                        user,
                        profile,
                        took_ms = started.elapsed().as_millis() as u64,
                        "a token from the provider"
                    );
                    self.metrics.refreshed(profile, started.elapsed());
                    self.plan_refresh(key, token.expires_at.0 as i64);
                }
            }
            Err(EngineError::NotLoggedIn) => {}
            Err(error) => {
                self.metrics.refresh_failed(profile);
                self.update_activity(user, profile, |a| {
                    a.failures += 1;
                    a.last_error = Some(error.to_string());
                });
            }
        }
    }

    /// The credential chain: the user's OAuth session, the environment's, the API key.
    pub async fn credential(
        &self,
        user: &str,
        profile: &Profile,
        min_ttl_secs: u64,
    ) -> Result<Credential, ApiError> {
        let suspended = self.activity(user, &profile.name).suspended_token;
        let mut first_error: Option<EngineError> = None;
        let mut had_oauth = false;
        for (owner, source) in [(user, Source::Oauth), (ENV_USER, Source::Env)] {
            if source == Source::Env && profile.env_tokens.is_none() {
                continue;
            }
            if !self.has_session(owner, &profile.name).await {
                continue;
            }
            had_oauth = true;
            match self.oauth_token(owner, profile, min_ttl_secs).await {
                Ok(token) if suspended == Some(fingerprint(token.access_token.expose())) => {
                    first_error.get_or_insert(EngineError::LoginRequired {
                        reason: "the API rejected this user's token even after a refresh".into(),
                    });
                }
                Ok(token) => {
                    self.served(user, &profile.name, source);
                    return Ok(Credential {
                        token: Secret::new(token.access_token.expose()),
                        expires_at: Some(token.expires_at),
                        source,
                    });
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(key) = &profile.api_key {
            if had_oauth {
                let reason = first_error
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string);
                tracing::warn!(
                    user, profile = %profile.name, %reason,
                    "OAuth is unavailable; falling back to the API key"
                );
                self.metrics.fallback(&profile.name);
                self.update_activity(user, &profile.name, |a| {
                    a.fallbacks += 1;
                    a.last_error = Some(reason);
                });
            }
            self.served(user, &profile.name, Source::ApiKey);
            return Ok(Credential {
                token: key.clone(),
                expires_at: None,
                source: Source::ApiKey,
            });
        }
        Err(match first_error {
            Some(error) => ApiError::engine(&error),
            None => ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "not_signed_in",
                format!(
                    "user {user:?} is not signed in to `{}` and it has no API key{}; sign in (/auth/{}/start) or import tokens",
                    profile.name,
                    profile
                        .api_key_env
                        .as_deref()
                        .map(|v| format!(" (set {v})"))
                        .unwrap_or_default(),
                    profile.name
                ),
            ),
        })
    }

    fn served(&self, user: &str, profile: &str, source: Source) {
        self.metrics.served(profile, source.as_str());
        self.update_activity(user, profile, |a| {
            a.last_source = Some(source);
            a.fallback_active = matches!(source, Source::ApiKey | Source::Env);
        });
    }
}

/// Keeps a client alive while held.
pub struct Pin(Arc<Live>);

impl Drop for Pin {
    fn drop(&mut self) {
        self.0.pins.fetch_sub(1, Ordering::Relaxed);
        self.0.last_used.store(now_ms(), Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin")
    }
}
