//! What the service asks of its database, whichever it is: SQLite (one process, the
//! default) or PostgreSQL (many replicas). Every method blocks; callers run them on
//! tokio's blocking pool.
//!
//! Tokens are stored sealed ([`crate::crypto`]); what is stored in the clear is what the
//! scheduler and the dashboard need without the key: who, which profile, when it expires.
//! Versions count writes, so a save can replace exactly the version it read
//! (compare-and-swap). The refresh lock is a lease row (holder, expiry) taken by one
//! conditional write: no transaction or connection is held while the provider answers.

/// One stored session row.
#[derive(Debug)]
pub struct SessionRow {
    pub version: i64,
    pub sealed: Vec<u8>,
}

/// What the scheduler and the dashboard know of a session without opening it.
#[derive(Clone, Debug)]
pub struct SessionIndex {
    pub user: String,
    pub profile: String,
    pub expires_at: i64,
    pub has_refresh_token: bool,
}

/// The database failed (unreachable, broken, full…); the text says how.
#[derive(Debug)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

/// Why a write did not happen.
#[derive(Debug)]
pub enum WriteError {
    /// Another version than the one to replace is stored.
    Conflict,
    Db(DbError),
}

impl From<DbError> for WriteError {
    fn from(e: DbError) -> Self {
        WriteError::Db(e)
    }
}

/// A change another process made to a stored session (PostgreSQL `NOTIFY`).
#[derive(Debug)]
pub struct Changed {
    pub user: String,
    pub profile: String,
}

/// The service's database.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Where it is, for messages (never with a password).
    fn location(&self) -> String;

    fn load_session(&self, user: &str, profile: &str) -> Result<Option<SessionRow>, DbError>;

    /// Stores `sealed` in place of version `replaces` (or of whatever is stored, when
    /// `None`); returns the new version.
    fn save_session(
        &self,
        index: &SessionIndex,
        sealed: &[u8],
        replaces: Option<i64>,
        now: i64,
    ) -> Result<i64, WriteError>;

    fn delete_session(&self, user: &str, profile: &str) -> Result<(), DbError>;

    /// Every stored session, without its tokens.
    fn index(&self) -> Result<Vec<SessionIndex>, DbError>;

    fn put_pending_login(
        &self,
        state_hash: &str,
        user: &str,
        profile: &str,
        sealed: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<(), DbError>;

    /// Takes (removes and returns) the pending login with this state: single use.
    fn take_pending_login(
        &self,
        state_hash: &str,
    ) -> Result<Option<(String, String, Vec<u8>)>, DbError>;

    /// Takes the refresh lease of (user, profile) for `holder` until `now + lease_ms`,
    /// when nobody holds it or its holder's lease ran out. `true` when taken.
    fn try_lease(
        &self,
        user: &str,
        profile: &str,
        holder: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, DbError>;

    fn release_lease(&self, user: &str, profile: &str, holder: &str) -> Result<(), DbError>;

    /// Claims up to `limit` sessions expiring before `cutoff` for `holder` to refresh
    /// until `now + claim_ms`; sessions another holder claimed (and whose claim has not
    /// run out) are skipped, so replicas sharing a batch never take the same one.
    fn claim_expiring(
        &self,
        cutoff: i64,
        holder: &str,
        now: i64,
        claim_ms: i64,
        limit: i64,
    ) -> Result<Vec<SessionIndex>, DbError>;

    /// Claims (user, profile) for `holder` to refresh until `now + claim_ms`, unless
    /// another holder's claim on it still runs. `true` when claimed.
    fn claim_one(
        &self,
        user: &str,
        profile: &str,
        holder: &str,
        now: i64,
        claim_ms: i64,
    ) -> Result<bool, DbError>;

    /// The fingerprint of the environment tokens last imported for `profile`.
    fn env_fingerprint(&self, profile: &str) -> Result<Option<String>, DbError>;

    fn set_env_fingerprint(&self, profile: &str, fingerprint: &str) -> Result<(), DbError>;

    /// Calls `on_change` for every session another process writes, until the process
    /// ends. Databases that only this process uses have nothing to report.
    fn watch(&self, holder: &str, on_change: Box<dyn Fn(Changed) + Send + Sync>) {
        let _ = (holder, on_change);
    }

    /// The read barrier of a database that other processes write ([`Freshness`]), once
    /// [`Backend::watch`] runs; `None` for one only this process uses.
    fn freshness(&self) -> Option<std::sync::Arc<Freshness>> {
        None
    }
}

/// A read barrier for caches that other processes can invalidate (PostgreSQL): a reader
/// that calls [`Freshness::wait`] goes on only once this process has handled every
/// change another replica committed before the call. The listener sends one round trip
/// on its `LISTEN` connection for all readers waiting at that moment; the server sends
/// the notifications it owes that connection before the round trip's answer, and the
/// listener handles each before it reads the next message (postgres.rs, `watch`).
///
/// Without a listener connection (the database is lost) or when the round trip takes
/// longer than [`Freshness::BOUND`], readers go on: cached tokens that are still valid
/// keep being served while the database is away, and no other replica can rotate them
/// meanwhile unless it still reaches the database (a partition; see ADR 011).
#[derive(Debug)]
pub struct Freshness {
    /// Readers' tickets: each reader takes the next one.
    tickets: std::sync::atomic::AtomicU64,
    /// The highest ticket whose reader's barrier is passed.
    passed: tokio::sync::watch::Sender<u64>,
    /// Wakes the listener to send a round trip.
    wanted: tokio::sync::Notify,
    /// The listener holds a connection that has `LISTEN`ed.
    listening: std::sync::atomic::AtomicBool,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            tickets: std::sync::atomic::AtomicU64::new(0),
            passed: tokio::sync::watch::Sender::new(0),
            wanted: tokio::sync::Notify::new(),
            listening: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Freshness {
    /// The longest a reader waits for the barrier.
    pub const BOUND: std::time::Duration = std::time::Duration::from_secs(2);

    /// Returns once every change committed by another process before this call has been
    /// handled (or at once without a listener; after [`Self::BOUND`] at most).
    pub async fn wait(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.listening.load(SeqCst) {
            return;
        }
        let ticket = self.tickets.fetch_add(1, SeqCst) + 1;
        let mut passed = self.passed.subscribe();
        self.wanted.notify_one();
        let _ = tokio::time::timeout(Self::BOUND, passed.wait_for(|p| *p >= ticket)).await;
    }

    /// For the listener: waits until a reader wants a round trip; returns the highest
    /// ticket the round trip about to be sent covers.
    pub async fn wanted(&self) -> u64 {
        use std::sync::atomic::Ordering::SeqCst;
        loop {
            let taken = self.tickets.load(SeqCst);
            if taken > *self.passed.borrow() {
                return taken;
            }
            self.wanted.notified().await;
        }
    }

    /// For the listener: the round trip covering tickets up to `ticket` came back.
    pub fn passed(&self, ticket: u64) {
        self.passed.send_if_modified(|p| {
            let newer = ticket > *p;
            if newer {
                *p = ticket;
            }
            newer
        });
    }

    /// For the listener: whether it holds a listening connection. When it loses it,
    /// every waiting reader goes on.
    pub fn set_listening(&self, listening: bool) {
        use std::sync::atomic::Ordering::SeqCst;
        self.listening.store(listening, SeqCst);
        if !listening {
            self.passed(self.tickets.load(SeqCst));
        }
    }
}
