//! `tessera serve`: a token service around tessera's session driver, for a desktop app's
//! local sidecar and for servers that keep many users' tokens fresh.
//!
//! ```text
//!   HTTP (axum) ──▶ guard: Host, bearer, 64 KB ──▶ routes ──▶ Sessions ──▶ Client (driver actor)
//!                                                     │           │              │
//!                                                     │           └─ Scheduler   └─ UserStore ─▶ SQLite
//!                                                     └─ pending logins (sealed) ───────────────▶ SQLite
//! ```
//!
//! The protocol is the engine's: a sign-in started over HTTP is a handed-off login
//! ([`tessera_engine::LoginMethod::Handoff`]) whose secrets wait in the database, sealed,
//! until the callback route resumes it; refreshes are the driver's single flight, under
//! a lease row in the database. The design and its decisions: docs/adr/010-token-service.md.
//!
//! In-process use: [`Service::open`], then [`Service::router`] to mount the routes in
//! your own axum server, or [`Service::credential`] to get a token without HTTP.

pub mod backend;
pub mod crypto;
pub mod dashboard;
pub mod error;
mod files;
pub mod http;
pub mod metrics;
pub mod postgres;
pub mod profiles;
pub mod schedule;
pub mod scheduler;
pub mod sessions;
pub mod sqlite;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tessera_engine::{SESSION_FORMAT_VERSION, Secret, StoredSession, UnixMillis};

use crate::backend::Backend;
use crate::crypto::Sealer;
use crate::error::{ApiError, StartError};
use crate::http::{AppState, Guard};
use crate::metrics::Metrics;
use crate::profiles::Profiles;
use crate::sessions::{Credential, ENV_USER, Sessions};
use crate::store::{Vault, now_ms};

/// How to start a service.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Profiles (`config.toml`), the key and token files, the default database.
    pub config_dir: PathBuf,
    /// The SQLite file. Default: `<config dir>/serve.db`.
    pub database: Option<PathBuf>,
    /// PostgreSQL instead of SQLite (`postgres://…`): many replicas share it.
    pub database_url: Option<String>,
    /// At most this many PostgreSQL connections. Default: 10.
    pub database_pool: u32,
    /// Host names requests may be addressed to, besides loopback ones.
    pub allowed_hosts: Vec<String>,
    /// Origins allowed by CORS. Default: none (no CORS headers at all).
    pub cors_origins: Vec<String>,
    /// Where browsers reach the service (callback URLs). Default: the bound address.
    pub public_url: Option<String>,
    /// Refresh this long before expiry (profiles may set their own). Default: 5 minutes.
    pub refresh_buffer_secs: u64,
}

impl ServeOptions {
    pub fn new(config_dir: PathBuf) -> Self {
        Self {
            config_dir,
            database: None,
            database_url: None,
            database_pool: 10,
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            public_url: None,
            refresh_buffer_secs: 300,
        }
    }
}

/// A running token service (its background tasks start with [`Service::open`]).
#[derive(Debug)]
pub struct Service {
    sessions: Arc<Sessions>,
    guard: Arc<Guard>,
    options: ServeOptions,
    /// Whether the bearer token was created at this start (and where).
    pub token_file: Option<PathBuf>,
}

impl Service {
    /// Opens the database, the key and the profiles, imports tokens given in the
    /// environment, and starts the refresh scheduler. `env` reads the environment. The
    /// database work runs on tokio's blocking pool (the PostgreSQL client blocks).
    pub async fn open(
        options: ServeOptions,
        env: impl Fn(&str) -> Option<String> + Send + 'static,
    ) -> Result<Service, StartError> {
        tokio::task::spawn_blocking(move || Self::open_blocking(options, &env))
            .await
            .map_err(|e| StartError::Database {
                location: "start-up".into(),
                detail: e.to_string(),
            })?
    }

    fn open_blocking(
        options: ServeOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Service, StartError> {
        let dir = &options.config_dir;
        files::create_private_dir(dir).map_err(|e| StartError::Database {
            location: dir.display().to_string(),
            detail: e.to_string(),
        })?;
        let sealer = Sealer::load(env("TESSERA_SERVE_KEY").as_deref(), dir)?;
        let (token, token_file) = load_token(env("TESSERA_SERVE_TOKEN"), dir)?;
        let holder = holder_name();
        let db: Box<dyn Backend> = match &options.database_url {
            Some(url) => Box::new(postgres::Postgres::connect(
                url,
                options.database_pool,
                &holder,
            )?),
            None => {
                let path = options
                    .database
                    .clone()
                    .unwrap_or_else(|| dir.join("serve.db"));
                Box::new(sqlite::Sqlite::open(&path)?)
            }
        };
        let location = db.location();
        let profiles = Profiles::load(dir, options.refresh_buffer_secs, env)?;
        let vault = Arc::new(Vault { db, sealer, holder });
        let sessions = Arc::new(Sessions::new(
            vault,
            Arc::new(profiles),
            Arc::new(Metrics::default()),
        ));
        import_env_tokens(&sessions)?;
        let index = sessions
            .vault
            .db
            .index()
            .map_err(|e| StartError::Database {
                location: location.clone(),
                detail: e.to_string(),
            })?;
        for row in index {
            sessions.plan_refresh((row.user, row.profile), row.expires_at);
        }
        // Another replica wrote a session: drop our client of it (the next request reads
        // the new row) and plan it anew.
        let watcher = Arc::downgrade(&sessions);
        let runtime = tokio::runtime::Handle::current();
        sessions.vault.db.watch(
            &sessions.vault.holder,
            Box::new(move |changed| {
                let Some(sessions) = watcher.upgrade() else {
                    return;
                };
                if changed.user.is_empty() {
                    sessions.forget_all_clients();
                    return;
                }
                sessions.forget_client(&changed.user, &changed.profile);
                let sessions = sessions.clone();
                runtime.spawn_blocking(move || {
                    if let Ok(Some(stored)) = sessions.vault.read(&changed.user, &changed.profile) {
                        let key = (changed.user, changed.profile);
                        sessions.plan_refresh(key, stored.session.expires_at.0 as i64);
                    }
                });
            }),
        );
        tokio::spawn(scheduler::run(sessions.clone()));
        let janitor = Arc::downgrade(&sessions);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let Some(sessions) = janitor.upgrade() else {
                    return;
                };
                sessions.evict_idle();
            }
        });
        let guard = Arc::new(Guard::new(token, options.allowed_hosts.clone()));
        Ok(Service {
            sessions,
            guard,
            options,
            token_file,
        })
    }

    /// The routes, for `public_url` (the base browsers use to reach them).
    pub fn router(&self, public_url: &str) -> axum::Router {
        let public_url = self
            .options
            .public_url
            .clone()
            .unwrap_or_else(|| public_url.to_owned());
        let state = AppState {
            sessions: self.sessions.clone(),
            guard: self.guard.clone(),
            public_url: public_url.trim_end_matches('/').into(),
        };
        http::router(state, &self.options.cors_origins)
    }

    /// A credential for (user, profile) through the chain, without HTTP.
    pub async fn credential(
        &self,
        user: &str,
        profile: &str,
        min_ttl_secs: u64,
    ) -> Result<Credential, ApiError> {
        let profile = self.sessions.profile(profile)?;
        self.sessions.credential(user, profile, min_ttl_secs).await
    }

    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }
}

/// `TESSERA_SERVE_TOKEN`, else `<dir>/serve.token` (created with 32 random bytes).
fn load_token(
    env: Option<String>,
    dir: &std::path::Path,
) -> Result<(Secret, Option<PathBuf>), StartError> {
    if let Some(token) = env.filter(|t| !t.trim().is_empty()) {
        if token.trim().len() < 16 {
            return Err(StartError::Token {
                detail: "TESSERA_SERVE_TOKEN is shorter than 16 characters".into(),
            });
        }
        return Ok((Secret::new(token.trim()), None));
    }
    let path = dir.join("serve.token");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 16 => Ok((Secret::new(text.trim()), Some(path))),
        Ok(_) => Err(StartError::Token {
            detail: format!("{} holds fewer than 16 characters", path.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| StartError::Token {
                detail: e.to_string(),
            })?;
            let token = URL_SAFE_NO_PAD.encode(bytes);
            files::write_secret_file(&path, token.as_bytes()).map_err(|e| StartError::Token {
                detail: format!("cannot create {}: {e}", path.display()),
            })?;
            Ok((Secret::new(token), Some(path)))
        }
        Err(e) => Err(StartError::Token {
            detail: format!("cannot read {}: {e}", path.display()),
        }),
    }
}

/// Names this process in refresh leases.
fn holder_name() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    format!("{}-{}", std::process::id(), URL_SAFE_NO_PAD.encode(bytes))
}

/// Tokens given in the environment become the session of the reserved user `:env`, once:
/// a restart with the same variables keeps the stored session (it may have been rotated
/// since); changed variables replace it.
fn import_env_tokens(sessions: &Sessions) -> Result<(), StartError> {
    for profile in sessions.profiles.iter() {
        let (Some(tokens), Ok(config)) = (&profile.env_tokens, &profile.config) else {
            continue;
        };
        let mut digest = Sha256::new();
        for part in [&tokens.access_token, &tokens.refresh_token] {
            digest.update(part.as_ref().map_or("", |s| s.expose()).as_bytes());
            digest.update([0]);
        }
        digest.update(tokens.expires_at.unwrap_or(0).to_be_bytes());
        let fingerprint = URL_SAFE_NO_PAD.encode(digest.finalize());
        let db = &sessions.vault.db;
        let fail = |e: crate::backend::DbError| StartError::Database {
            location: "env_imports".into(),
            detail: e.to_string(),
        };
        if db.env_fingerprint(&profile.name).map_err(fail)?.as_deref() == Some(&fingerprint) {
            continue;
        }
        let now = tessera::clock::now();
        let session = StoredSession {
            version: SESSION_FORMAT_VERSION,
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            access_token: tokens.access_token.clone().unwrap_or_default(),
            refresh_token: tokens.refresh_token.clone(),
            id_token: None,
            obtained_at: now,
            // Unknown expiry: treat the access token as expired, so it is refreshed first.
            expires_at: UnixMillis(tokens.expires_at.unwrap_or(now.0)),
            scopes: config.scopes.clone(),
            identity: None,
            endpoints: Default::default(),
        };
        sessions
            .vault
            .write(ENV_USER, &profile.name, &session, None)
            .map_err(|e| StartError::Database {
                location: "sessions".into(),
                detail: e.to_string(),
            })?;
        db.set_env_fingerprint(&profile.name, &fingerprint)
            .map_err(fail)?;
        tracing::info!(profile = %profile.name, prefix = %profile.env_prefix, "imported OAuth tokens from the environment");
    }
    let _ = now_ms();
    Ok(())
}
