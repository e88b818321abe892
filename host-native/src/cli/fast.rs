//! `tessera token` without a runtime, when the stored token will do.
//!
//! Most `tessera token` calls find a token that is still valid. Starting tokio, the session
//! actor and its engine for them costs more than everything else the command does (see
//! BENCHMARKS.md, "start-up"), so [`token`] runs first, on the main thread: it reads the
//! profile and the store synchronously and prints the token when the engine's own rule
//! ([`StoredSession::servable_token`]) says an engine would serve it as loaded. Anything
//! else — no session, a token to refresh, a storage error, `--record` — goes to the normal
//! path, which decides as before; the store opened here is handed over (with what it
//! read), so a passphrase is never asked for twice and the keyring is not probed twice.

use std::path::Path;
use std::sync::Mutex;

use tessera::engine::StoredSession;
use tessera::store::{
    self, BlockingStore, Loaded, PassphraseSource, StoreChoice, StoreError, StoreInfo,
};

use super::Exit;
use super::args::{Cli, Command, TokenArgs};
use super::output;
use super::session;

/// A store opened (and read once) before the runtime started, or why it could not be.
pub use super::Preopened;

/// What the fast path did.
pub enum Fast {
    /// The token was printed.
    Served(Exit),
    /// The normal path must answer; it reuses the store if one was opened.
    Continue(Option<Preopened>),
}

/// How the fast path opens and reads the store: [`any_store`] in the whole CLI,
/// [`file_only`] in the front binary. `None`: this opener does not handle that store.
/// A function, not a flag, so the front's copy of [`token`] does not reference the
/// keyring and the linker leaves it out of that binary.
pub type Opener = fn(StoreChoice, &Path, &str) -> Option<Opened>;

/// The store and what it read at once, or why it could not be opened.
pub type Opened = Result<(Box<dyn BlockingStore>, Loaded), StoreError>;

/// Any store, keyring included, with a passphrase prompt if needed (`tessera-full`).
pub fn any_store(choice: StoreChoice, dir: &Path, profile: &str) -> Option<Opened> {
    Some(store::open_and_load(
        choice,
        dir,
        profile,
        PassphraseSource::EnvOrPrompt,
    ))
}

/// The encrypted file only, and only with the passphrase from the environment or the
/// kernel's key cache (`tessera`, the front binary): it links no keyring client, and it
/// must not prompt for a passphrase that `tessera-full` might then ask for again.
#[allow(dead_code)] // `tessera-full` compiles this module too and never calls it.
pub fn file_only(choice: StoreChoice, dir: &Path, profile: &str) -> Option<Opened> {
    (choice == StoreChoice::File)
        .then(|| store::open_file_and_load(dir, profile, PassphraseSource::Env))
}

/// Serves `tessera token` from storage when the stored token will do (see the module docs).
pub fn token(cli: &Cli, open: Opener) -> Fast {
    let Command::Token(TokenArgs {
        min_ttl,
        derived: None,
    }) = cli.command
    else {
        // Derived tokens are cached in the session's memory only: always the full path.
        return Fast::Continue(None);
    };
    if cli.global.record.is_some() {
        return Fast::Continue(None);
    }
    // Configuration problems are reported by the normal path.
    let Ok(spec) = session::load_profile(cli) else {
        return Fast::Continue(None);
    };
    let spec = session::with_env_client(spec);
    let Ok(config) = spec.engine_config() else {
        return Fast::Continue(None);
    };
    let now = tessera::clock::now();
    if let Some(session) = session::session_from_env(&config) {
        return match session.servable_token(&config, now, min_ttl) {
            Some(token) => served(token.expose(), "TESSERA_ACCESS_TOKEN"),
            None => Fast::Continue(None),
        };
    }
    let choice = session::store_choice(cli, &spec);
    let dir = session::config_dir(cli);
    let Some(opened) = open(choice, &dir, &cli.global.profile) else {
        return Fast::Continue(None);
    };
    let (store, loaded) = match opened {
        Ok(opened) => opened,
        Err(error) => return Fast::Continue(Some(Err(error))),
    };
    if let Ok(Some(session)) = &loaded
        && let Some(token) = session.servable_token(&config, now, min_ttl)
    {
        return served(token.expose(), &store.info().to_string());
    }
    Fast::Continue(Some(Ok(Box::new(Preloaded::new(store, loaded)))))
}

fn served(token: &str, from: &str) -> Fast {
    tracing::debug!(%from, "served the stored token without starting a session");
    output::line(token);
    Fast::Served(Exit::Ok)
}

/// A store whose first `load` answers what the fast path already read; later calls (the
/// re-read under the refresh lock, for one) go to the store.
struct Preloaded {
    inner: Box<dyn BlockingStore>,
    first: Mutex<Option<Result<Option<StoredSession>, StoreError>>>,
}

impl Preloaded {
    fn new(
        inner: Box<dyn BlockingStore>,
        loaded: Result<Option<StoredSession>, StoreError>,
    ) -> Self {
        Preloaded {
            inner,
            first: Mutex::new(Some(loaded)),
        }
    }
}

impl BlockingStore for Preloaded {
    fn info(&self) -> &StoreInfo {
        self.inner.info()
    }

    fn load(&self) -> Result<Option<StoredSession>, StoreError> {
        let first = self
            .first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        first.unwrap_or_else(|| self.inner.load())
    }

    fn save(&self, session: &StoredSession) -> Result<(), StoreError> {
        self.forget_first();
        self.inner.save(session)
    }

    fn delete(&self) -> Result<(), StoreError> {
        self.forget_first();
        self.inner.delete()
    }

    fn lock(
        &self,
        wait: std::time::Duration,
    ) -> Result<Option<tessera::store::LockGuard>, StoreError> {
        self.inner.lock(wait)
    }
}

impl Preloaded {
    /// After a write the first read is stale.
    fn forget_first(&self) {
        self.first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}
