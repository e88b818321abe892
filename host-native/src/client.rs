//! The library API: a handle to one session actor.
//!
//! [`Client::access_token`] first looks at the session the actor last published (an
//! `ArcSwap` load and a clock read); only when that token is too close to expiry does
//! it ask the actor, which refreshes once for every caller waiting (single flight).

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use ractor::{Actor, ActorRef};
use tessera_engine::{Config, Error, LoginMethod, Rejected, Secret, StoredSession};
use tokio::sync::{broadcast, oneshot};

use crate::actor::{Command, LoopbackOptions, SessionActor, SessionArgs, SessionMsg, StatusReport};
use crate::clock::now;
use crate::events::{HostEvent, LoginReport, LogoutReport, Token};
use crate::store::SessionStore;

/// How to start a [`Client`].
pub struct ClientOptions {
    pub config: Config,
    pub store: Arc<dyn SessionStore>,
    /// Where the refresh lock file lives (shared by every process of this profile).
    pub config_dir: PathBuf,
    pub profile: String,
    /// Loopback redirect server for browser logins.
    pub loopback: LoopbackOptions,
    /// Open the browser for browser logins (else only report the URL as an event).
    pub open_browser: bool,
    /// Record the session as a transcript (`--record`).
    pub recorder: Option<crate::record::Recorder>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("profile", &self.profile)
            .field("config_dir", &self.config_dir)
            .field("store", &self.store.info().location)
            .finish_non_exhaustive()
    }
}

/// Why the client could not start or could not reach its actor.
#[derive(Debug)]
pub enum ClientError {
    /// The actor could not be started or has stopped.
    Actor(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Actor(detail) => write!(f, "the session task is not running: {detail}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// One OAuth session (a profile), shared by every clone of this handle.
#[derive(Clone)]
pub struct Client {
    actor: ActorRef<SessionMsg>,
    cache: Arc<ArcSwapOption<StoredSession>>,
    events: broadcast::Sender<HostEvent>,
    refresh_buffer_secs: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("actor", &self.actor.get_id())
            .finish()
    }
}

impl Client {
    /// Starts the session actor; the stored session is loaded before this returns.
    pub async fn start(options: ClientOptions) -> Result<Client, ClientError> {
        let cache = Arc::new(ArcSwapOption::empty());
        let (events, _) = broadcast::channel(64);
        let refresh_buffer_secs = options.config.refresh_buffer_secs;
        let args = SessionArgs {
            config: options.config,
            store: options.store,
            config_dir: options.config_dir,
            profile: options.profile,
            loopback: options.loopback,
            open_browser: options.open_browser,
            recorder: options.recorder,
            cache: cache.clone(),
            events: events.clone(),
        };
        let (actor, _) = Actor::spawn(None, SessionActor, args)
            .await
            .map_err(|e| ClientError::Actor(e.to_string()))?;
        Ok(Client {
            actor,
            cache,
            events,
            refresh_buffer_secs,
        })
    }

    /// Subscribes to what the user should see (browser URL, device code, failures).
    pub fn events(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    /// A valid access token, refreshing first if needed.
    pub async fn access_token(&self) -> Result<Token, Error> {
        self.access_token_for(0).await
    }

    /// A token valid for at least `min_ttl_secs` more seconds.
    pub async fn access_token_for(&self, min_ttl_secs: u64) -> Result<Token, Error> {
        if let Some(token) = self.cached_token(min_ttl_secs) {
            return Ok(token);
        }
        self.ask(|reply| Command::GetToken {
            min_ttl_secs,
            reply,
        })
        .await?
    }

    /// The fast path: no message to the actor when the published token will do. The rule
    /// is the engine's ([`StoredSession::wants_refresh`]), so both paths agree.
    pub fn cached_token(&self, min_ttl_secs: u64) -> Option<Token> {
        let guard = self.cache.load();
        let session = guard.as_deref()?;
        if session.wants_refresh(now(), min_ttl_secs, self.refresh_buffer_secs) {
            return None;
        }
        Some(Token {
            access_token: session.access_token.clone(),
            expires_at: session.expires_at,
        })
    }

    /// A resource server answered 401 to `token`: refresh once (if it is still the
    /// current token) and return the token to retry with.
    pub async fn token_rejected(&self, token: Secret) -> Result<Token, Error> {
        self.ask(|reply| Command::TokenRejected { token, reply })
            .await?
    }

    /// Runs a login to its end.
    pub async fn login(&self, method: LoginMethod) -> Result<LoginReport, Error> {
        self.ask(|reply| Command::Login { method, reply }).await?
    }

    /// Hands the actor what the user pasted during a paste login. `Err` means it was not
    /// readable (the login still waits; ask again).
    pub async fn paste(&self, text: String) -> Result<(), Rejected> {
        match self.ask(|reply| Command::PastedCode { text, reply }).await {
            Ok(result) => result,
            Err(error) => Err(Rejected::Invalid {
                reason: error.to_string(),
            }),
        }
    }

    /// Abandons a login in progress.
    pub fn cancel(&self) {
        let _ = self.actor.cast(SessionMsg::Command(Command::Cancel));
    }

    /// Ends the session: revokes (unless `force`) and deletes it.
    pub async fn logout(&self, force: bool) -> Result<LogoutReport, Error> {
        self.ask(|reply| Command::Logout { force, reply }).await?
    }

    /// The session as the engine sees it, where it is stored, and any storage problem.
    pub async fn status(&self) -> Result<StatusReport, Error> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// Stops the actor.
    pub fn stop(&self) {
        self.actor.stop(None);
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.actor
            .cast(SessionMsg::Command(command(reply)))
            .map_err(|_| Error::Storage {
                detail: "the session task has stopped".into(),
            })?;
        answer.await.map_err(|_| Error::Storage {
            detail: "the session task stopped before answering".into(),
        })
    }
}
