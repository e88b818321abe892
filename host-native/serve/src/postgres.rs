//! PostgreSQL, for many replicas sharing one database (issue 15, ADR 011): the schema and
//! the versioned migrations of [`crate::sqlite`], rust-postgres's synchronous client in an
//! r2d2 pool, used from tokio's blocking pool.
//!
//! - Leases and claims compare with the database's clock, so replicas on machines whose
//!   clocks differ agree on when a lease ran out.
//! - No transaction or pooled connection is held while the provider answers: the refresh
//!   lock is a lease row taken by one conditional upsert, and a dead replica's lease ends
//!   at its expiry (there is no lock to clean up by hand).
//! - Every write of a session `NOTIFY`s the others (`tessera_sessions`), so a replica
//!   drops its cached copy when another one rotated it.

use std::time::Duration;

use postgres::{Client, NoTls};
use r2d2::Pool;
use r2d2_postgres::PostgresConnectionManager;

use crate::backend::{Backend, Changed, DbError, Freshness, SessionIndex, SessionRow, WriteError};
use crate::error::StartError;

/// Milliseconds since the epoch, by the database's clock.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
const CHANNEL: &str = "tessera_sessions";
/// Serializes migrations of replicas starting together.
const MIGRATION_LOCK: i64 = 0x7e55_e7a0;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"CREATE TABLE sessions (
            "user" TEXT NOT NULL,
            profile TEXT NOT NULL,
            version BIGINT NOT NULL,
            sealed BYTEA NOT NULL,
            expires_at BIGINT NOT NULL,
            has_refresh_token BOOLEAN NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY ("user", profile)
        );
        CREATE TABLE pending_logins (
            state_hash TEXT PRIMARY KEY,
            "user" TEXT NOT NULL,
            profile TEXT NOT NULL,
            sealed BYTEA NOT NULL,
            expires_at BIGINT NOT NULL
        );
        CREATE TABLE leases (
            "user" TEXT NOT NULL,
            profile TEXT NOT NULL,
            holder TEXT NOT NULL,
            expires_at BIGINT NOT NULL,
            PRIMARY KEY ("user", profile)
        );
        CREATE TABLE env_imports (
            profile TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL
        );"#,
    ),
    (
        2,
        "ALTER TABLE sessions ADD COLUMN claimed_by TEXT;
         ALTER TABLE sessions ADD COLUMN claim_until BIGINT NOT NULL DEFAULT 0;
         CREATE INDEX sessions_expiry ON sessions (expires_at);",
    ),
];

pub struct Postgres {
    /// Always `Some` but while dropping (see `Drop`).
    pool: Option<Pool<PostgresConnectionManager<NoTls>>>,
    /// Where, for messages: host, port and database, never the password.
    location: String,
    holder: String,
    /// The same connection string, for the async `LISTEN` connection.
    listen_config: tokio_postgres::Config,
    freshness: std::sync::Arc<Freshness>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn db(e: impl std::fmt::Display) -> DbError {
    DbError(format!("PostgreSQL: {e}"))
}

impl Postgres {
    /// Connects (`url`: `postgres://…` or `host=… dbname=…`), with at most `pool_size`
    /// connections, and applies pending migrations. `holder` names this process in
    /// leases, claims and notifications.
    pub fn connect(url: &str, pool_size: u32, holder: &str) -> Result<Self, StartError> {
        let config: postgres::Config = url.parse().map_err(|e| StartError::Database {
            location: "the database URL".into(),
            detail: format!("not a PostgreSQL connection string: {e}"),
        })?;
        let listen_config: tokio_postgres::Config =
            url.parse().map_err(|e| StartError::Database {
                location: "the database URL".into(),
                detail: format!("not a PostgreSQL connection string: {e}"),
            })?;
        let location = describe(&config);
        let fail = |detail: String| StartError::Database {
            location: location.clone(),
            detail,
        };
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .build(manager)
            .map_err(|e| fail(format!("unreachable: {e}")))?;
        let mut conn = pool.get().map_err(|e| fail(format!("unreachable: {e}")))?;
        migrate(&mut conn).map_err(fail)?;
        drop(conn);
        Ok(Self {
            pool: Some(pool),
            location,
            holder: holder.to_owned(),
            listen_config,
            freshness: Default::default(),
        })
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, DbError> {
        let Some(pool) = &self.pool else {
            return Err(DbError("PostgreSQL: the pool is closed".into()));
        };
        pool.get()
            .map_err(|e| DbError(format!("PostgreSQL unavailable ({}): {e}", self.location)))
    }
}

/// The synchronous client closes its connections with a runtime of its own, which tokio
/// forbids inside its runtime: the pool is dropped on a plain thread.
impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let name = config.get_dbname().unwrap_or("(default)");
    format!("postgres {host}:{port}/{name}")
}

fn migrate(conn: &mut Client) -> Result<(), String> {
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    let mut tx = conn.transaction().map_err(|e| e.to_string())?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| e.to_string())?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .map_err(|e| e.to_string())?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .map_err(|e| e.to_string())?
        .get(0);
    if current > known {
        return Err(format!(
            "the database has schema version {current}, newer than this tessera-serve knows ({known}); run a newer tessera-serve"
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql)
            .map_err(|e| format!("migration {version}: {e}"))?;
        tx.execute(
            &format!("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, {NOW_MS})"),
            &[version],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
}

fn index_row(row: &postgres::Row) -> SessionIndex {
    SessionIndex {
        user: row.get(0),
        profile: row.get(1),
        expires_at: row.get(2),
        has_refresh_token: row.get(3),
    }
}

impl Backend for Postgres {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn load_session(&self, user: &str, profile: &str) -> Result<Option<SessionRow>, DbError> {
        let row = self
            .conn()?
            .query_opt(
                r#"SELECT version, sealed FROM sessions WHERE "user" = $1 AND profile = $2"#,
                &[&user, &profile],
            )
            .map_err(db)?;
        Ok(row.map(|row| SessionRow {
            version: row.get(0),
            sealed: row.get(1),
        }))
    }

    fn save_session(
        &self,
        index: &SessionIndex,
        sealed: &[u8],
        replaces: Option<i64>,
        now: i64,
    ) -> Result<i64, WriteError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let current: Option<i64> = tx
            .query_opt(
                r#"SELECT version FROM sessions WHERE "user" = $1 AND profile = $2 FOR UPDATE"#,
                &[&index.user, &index.profile],
            )
            .map_err(db)?
            .map(|row| row.get(0));
        if replaces.is_some() && replaces != current {
            return Err(WriteError::Conflict);
        }
        let version = current.unwrap_or(0) + 1;
        tx.execute(
            r#"INSERT INTO sessions ("user", profile, version, sealed, expires_at, has_refresh_token, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT ("user", profile) DO UPDATE SET version = $3, sealed = $4,
                   expires_at = $5, has_refresh_token = $6, updated_at = $7,
                   claimed_by = NULL, claim_until = 0"#,
            &[
                &index.user,
                &index.profile,
                &version,
                &sealed,
                &index.expires_at,
                &index.has_refresh_token,
                &now,
            ],
        )
        .map_err(db)?;
        notify(&mut tx, &self.holder, &index.user, &index.profile)?;
        tx.commit().map_err(db)?;
        Ok(version)
    }

    fn delete_session(&self, user: &str, profile: &str) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        tx.execute(
            r#"DELETE FROM sessions WHERE "user" = $1 AND profile = $2"#,
            &[&user, &profile],
        )
        .map_err(db)?;
        notify(&mut tx, &self.holder, user, profile)?;
        tx.commit().map_err(db)
    }

    fn index(&self) -> Result<Vec<SessionIndex>, DbError> {
        let rows = self
            .conn()?
            .query(
                r#"SELECT "user", profile, expires_at, has_refresh_token FROM sessions ORDER BY "user", profile"#,
                &[],
            )
            .map_err(db)?;
        Ok(rows.iter().map(index_row).collect())
    }

    fn put_pending_login(
        &self,
        state_hash: &str,
        user: &str,
        profile: &str,
        sealed: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        conn.execute("DELETE FROM pending_logins WHERE expires_at < $1", &[&now])
            .map_err(db)?;
        conn.execute(
            r#"INSERT INTO pending_logins (state_hash, "user", profile, sealed, expires_at) VALUES ($1, $2, $3, $4, $5)"#,
            &[&state_hash, &user, &profile, &sealed, &expires_at],
        )
        .map_err(db)?;
        Ok(())
    }

    fn take_pending_login(
        &self,
        state_hash: &str,
    ) -> Result<Option<(String, String, Vec<u8>)>, DbError> {
        let row = self
            .conn()?
            .query_opt(
                r#"DELETE FROM pending_logins WHERE state_hash = $1 RETURNING "user", profile, sealed"#,
                &[&state_hash],
            )
            .map_err(db)?;
        Ok(row.map(|row| (row.get(0), row.get(1), row.get(2))))
    }

    fn try_lease(
        &self,
        user: &str,
        profile: &str,
        holder: &str,
        _now: i64,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        let changed = self
            .conn()?
            .execute(
                &format!(
                    r#"INSERT INTO leases ("user", profile, holder, expires_at) VALUES ($1, $2, $3, {NOW_MS} + $4)
                       ON CONFLICT ("user", profile) DO UPDATE SET holder = $3, expires_at = EXCLUDED.expires_at
                       WHERE leases.expires_at <= {NOW_MS} OR leases.holder = $3"#
                ),
                &[&user, &profile, &holder, &lease_ms],
            )
            .map_err(db)?;
        Ok(changed == 1)
    }

    fn release_lease(&self, user: &str, profile: &str, holder: &str) -> Result<(), DbError> {
        self.conn()?
            .execute(
                r#"DELETE FROM leases WHERE "user" = $1 AND profile = $2 AND holder = $3"#,
                &[&user, &profile, &holder],
            )
            .map_err(db)?;
        Ok(())
    }

    fn claim_expiring(
        &self,
        cutoff: i64,
        holder: &str,
        _now: i64,
        claim_ms: i64,
        limit: i64,
    ) -> Result<Vec<SessionIndex>, DbError> {
        let rows = self
            .conn()?
            .query(
                &format!(
                    r#"UPDATE sessions SET claimed_by = $1, claim_until = {NOW_MS} + $2
                       WHERE ("user", profile) IN (
                           SELECT "user", profile FROM sessions
                           WHERE expires_at < $3 AND has_refresh_token AND claim_until <= {NOW_MS}
                           ORDER BY expires_at LIMIT $4
                           FOR UPDATE SKIP LOCKED)
                       RETURNING "user", profile, expires_at, has_refresh_token"#
                ),
                &[&holder, &claim_ms, &cutoff, &limit],
            )
            .map_err(db)?;
        Ok(rows.iter().map(index_row).collect())
    }

    fn claim_one(
        &self,
        user: &str,
        profile: &str,
        holder: &str,
        _now: i64,
        claim_ms: i64,
    ) -> Result<bool, DbError> {
        let changed = self
            .conn()?
            .execute(
                &format!(
                    r#"UPDATE sessions SET claimed_by = $3, claim_until = {NOW_MS} + $4
                       WHERE "user" = $1 AND profile = $2 AND (claim_until <= {NOW_MS} OR claimed_by = $3)"#
                ),
                &[&user, &profile, &holder, &claim_ms],
            )
            .map_err(db)?;
        Ok(changed == 1)
    }

    fn env_fingerprint(&self, profile: &str) -> Result<Option<String>, DbError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT fingerprint FROM env_imports WHERE profile = $1",
                &[&profile],
            )
            .map_err(db)?;
        Ok(row.map(|row| row.get(0)))
    }

    fn set_env_fingerprint(&self, profile: &str, fingerprint: &str) -> Result<(), DbError> {
        self.conn()?
            .execute(
                "INSERT INTO env_imports (profile, fingerprint) VALUES ($1, $2)
                 ON CONFLICT (profile) DO UPDATE SET fingerprint = $2",
                &[&profile, &fingerprint],
            )
            .map_err(db)?;
        Ok(())
    }

    /// A task with its own connection (not the pool's) listening on the channel, which
    /// also passes the read barrier ([`Freshness`]): when a reader waits, it sends an
    /// empty query on that connection; the server sends the notifications it owes the
    /// connection before that query's answer, and this task handles each notification
    /// before it reads on. When the connection is lost, it reconnects and reports
    /// everything as changed (it may have missed notifications meanwhile).
    fn watch(&self, holder: &str, on_change: Box<dyn Fn(Changed) + Send + Sync>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("cannot listen for other replicas' writes: no runtime");
            return;
        };
        let config = self.listen_config.clone();
        let holder = holder.to_owned();
        let freshness = self.freshness.clone();
        runtime.spawn(async move {
            let mut first = true;
            loop {
                match listen(&config, &holder, &freshness, &on_change, first).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "PostgreSQL notifications: reconnecting")
                    }
                }
                freshness.set_listening(false);
                first = false;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    fn freshness(&self) -> Option<std::sync::Arc<Freshness>> {
        Some(self.freshness.clone())
    }
}

/// One listening connection, until it fails: `LISTEN`, then notifications and barrier
/// round trips.
async fn listen(
    config: &tokio_postgres::Config,
    holder: &str,
    freshness: &Freshness,
    on_change: &(dyn Fn(Changed) + Send + Sync),
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    // The connection is read here, in this task: a notification is handled before the
    // messages after it are read, so before the barrier's answer behind it.
    let handle = |message: tokio_postgres::AsyncMessage| {
        let tokio_postgres::AsyncMessage::Notification(note) = message else {
            return;
        };
        let mut parts = note.payload().splitn(3, '\n');
        let (Some(from), Some(user), Some(profile)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if from != holder {
            on_change(Changed {
                user: user.to_owned(),
                profile: profile.to_owned(),
            });
        }
    };
    // Drives the connection while `work` waits on it.
    macro_rules! drive {
        ($work:expr) => {{
            let work = $work;
            tokio::pin!(work);
            loop {
                tokio::select! {
                    biased;
                    message = std::future::poll_fn(|cx| connection.poll_message(cx)) => {
                        match message {
                            Some(Ok(message)) => handle(message),
                            Some(Err(e)) => return Err(e),
                            None => return Ok(()),
                        }
                    }
                    done = &mut work => break done,
                }
            }
        }};
    }
    let statement = format!("LISTEN {CHANNEL}");
    drive!(client.batch_execute(&statement))?;
    if !first {
        on_change(Changed {
            user: String::new(),
            profile: String::new(),
        });
    }
    freshness.set_listening(true);
    loop {
        let ticket = drive!(freshness.wanted());
        match drive!(tokio::time::timeout(
            Freshness::BOUND,
            client.simple_query("")
        )) {
            Ok(Ok(_)) => freshness.passed(ticket),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                tracing::warn!("PostgreSQL notifications: the connection stopped answering");
                return Ok(());
            }
        }
    }
}

fn notify(
    tx: &mut postgres::Transaction<'_>,
    holder: &str,
    user: &str,
    profile: &str,
) -> Result<(), DbError> {
    let payload = format!("{holder}\n{user}\n{profile}");
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .map_err(db)?;
    Ok(())
}
