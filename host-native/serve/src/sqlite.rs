//! The embedded default database: SQLite, one file, WAL, `synchronous=FULL` (a save the
//! service acknowledged survives a crash). One process uses it; see [`crate::backend`]
//! for what is stored and why.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::backend::{Backend, DbError, SessionIndex, SessionRow, WriteError};
use crate::error::StartError;

/// The schema, one step per version. A database newer than the last step is refused.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE sessions (
        user TEXT NOT NULL,
        profile TEXT NOT NULL,
        version INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        expires_at INTEGER NOT NULL,
        has_refresh_token INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (user, profile)
    ) WITHOUT ROWID;
    CREATE TABLE pending_logins (
        state_hash TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        profile TEXT NOT NULL,
        sealed BLOB NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE leases (
        user TEXT NOT NULL,
        profile TEXT NOT NULL,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (user, profile)
    ) WITHOUT ROWID;
    CREATE TABLE env_imports (
        profile TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL
    );",
    ),
    // Batch refreshes shared by replicas claim the sessions they refresh.
    (
        2,
        "ALTER TABLE sessions ADD COLUMN claimed_by TEXT;
         ALTER TABLE sessions ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;",
    ),
];

#[derive(Debug)]
pub struct Sqlite {
    conn: Mutex<Connection>,
    location: String,
}

impl Sqlite {
    /// Opens (creating) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StartError> {
        let fail = |detail: String| StartError::Database {
            location: path.display().to_string(),
            detail,
        };
        if let Some(dir) = path.parent() {
            crate::files::create_private_dir(dir).map_err(|e| fail(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Self::prepare(conn, path.display().to_string()).map_err(fail)
    }

    /// A private in-memory database (tests, benchmarks).
    pub fn in_memory() -> Result<Self, StartError> {
        let conn = Connection::open_in_memory().map_err(|e| StartError::Database {
            location: ":memory:".into(),
            detail: e.to_string(),
        })?;
        Self::prepare(conn, ":memory:".into()).map_err(|detail| StartError::Database {
            location: ":memory:".into(),
            detail,
        })
    }

    fn prepare(mut conn: Connection, location: String) -> Result<Self, String> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| e.to_string())?;
        // A refreshed token is acknowledged only once it is durable.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| e.to_string())?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            location,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (it has its
        // own transactions), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A path for messages.
    pub fn path(&self) -> &str {
        &self.location
    }
}

fn db(e: rusqlite::Error) -> DbError {
    DbError(e.to_string())
}

impl Backend for Sqlite {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn load_session(&self, user: &str, profile: &str) -> Result<Option<SessionRow>, DbError> {
        self.conn()
            .query_row(
                "SELECT version, sealed FROM sessions WHERE user = ?1 AND profile = ?2",
                params![user, profile],
                |row| {
                    Ok(SessionRow {
                        version: row.get(0)?,
                        sealed: row.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(db)
    }

    fn save_session(
        &self,
        index: &SessionIndex,
        sealed: &[u8],
        replaces: Option<i64>,
        now: i64,
    ) -> Result<i64, WriteError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        let current: Option<i64> = tx
            .query_row(
                "SELECT version FROM sessions WHERE user = ?1 AND profile = ?2",
                params![index.user, index.profile],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)?;
        if replaces.is_some() && replaces != current {
            return Err(WriteError::Conflict);
        }
        let version = current.unwrap_or(0) + 1;
        tx.execute(
            "INSERT INTO sessions (user, profile, version, sealed, expires_at, has_refresh_token, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (user, profile) DO UPDATE SET version = ?3, sealed = ?4,
                 expires_at = ?5, has_refresh_token = ?6, updated_at = ?7,
                 claimed_by = NULL, claim_until = 0",
            params![
                index.user,
                index.profile,
                version,
                sealed,
                index.expires_at,
                index.has_refresh_token,
                now
            ],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(version)
    }

    fn delete_session(&self, user: &str, profile: &str) -> Result<(), DbError> {
        self.conn()
            .execute(
                "DELETE FROM sessions WHERE user = ?1 AND profile = ?2",
                params![user, profile],
            )
            .map_err(db)?;
        Ok(())
    }

    fn index(&self) -> Result<Vec<SessionIndex>, DbError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT user, profile, expires_at, has_refresh_token FROM sessions ORDER BY user, profile",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([], |row| {
                Ok(SessionIndex {
                    user: row.get(0)?,
                    profile: row.get(1)?,
                    expires_at: row.get(2)?,
                    has_refresh_token: row.get(3)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
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
        let conn = self.conn();
        conn.execute(
            "DELETE FROM pending_logins WHERE expires_at < ?1",
            params![now],
        )
        .map_err(db)?;
        conn.execute(
            "INSERT INTO pending_logins (state_hash, user, profile, sealed, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![state_hash, user, profile, sealed, expires_at],
        )
        .map_err(db)?;
        Ok(())
    }

    fn take_pending_login(
        &self,
        state_hash: &str,
    ) -> Result<Option<(String, String, Vec<u8>)>, DbError> {
        self.conn()
            .query_row(
                "DELETE FROM pending_logins WHERE state_hash = ?1 RETURNING user, profile, sealed",
                params![state_hash],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(db)
    }

    fn try_lease(
        &self,
        user: &str,
        profile: &str,
        holder: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        let changed = self
            .conn()
            .execute(
                "INSERT INTO leases (user, profile, holder, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user, profile) DO UPDATE SET holder = ?3, expires_at = ?4
                 WHERE leases.expires_at <= ?5 OR leases.holder = ?3",
                params![user, profile, holder, now + lease_ms, now],
            )
            .map_err(db)?;
        Ok(changed == 1)
    }

    fn release_lease(&self, user: &str, profile: &str, holder: &str) -> Result<(), DbError> {
        self.conn()
            .execute(
                "DELETE FROM leases WHERE user = ?1 AND profile = ?2 AND holder = ?3",
                params![user, profile, holder],
            )
            .map_err(db)?;
        Ok(())
    }

    fn claim_expiring(
        &self,
        cutoff: i64,
        holder: &str,
        now: i64,
        claim_ms: i64,
        limit: i64,
    ) -> Result<Vec<SessionIndex>, DbError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "UPDATE sessions SET claimed_by = ?1, claim_until = ?2
                 WHERE (user, profile) IN (
                     SELECT user, profile FROM sessions
                     WHERE expires_at < ?3 AND has_refresh_token AND claim_until <= ?4
                     ORDER BY expires_at LIMIT ?5)
                 RETURNING user, profile, expires_at, has_refresh_token",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![holder, now + claim_ms, cutoff, now, limit], |row| {
                Ok(SessionIndex {
                    user: row.get(0)?,
                    profile: row.get(1)?,
                    expires_at: row.get(2)?,
                    has_refresh_token: row.get(3)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn claim_one(
        &self,
        user: &str,
        profile: &str,
        holder: &str,
        now: i64,
        claim_ms: i64,
    ) -> Result<bool, DbError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE sessions SET claimed_by = ?3, claim_until = ?4
                 WHERE user = ?1 AND profile = ?2 AND (claim_until <= ?5 OR claimed_by = ?3)",
                params![user, profile, holder, now + claim_ms, now],
            )
            .map_err(db)?;
        Ok(changed == 1)
    }

    fn env_fingerprint(&self, profile: &str) -> Result<Option<String>, DbError> {
        self.conn()
            .query_row(
                "SELECT fingerprint FROM env_imports WHERE profile = ?1",
                params![profile],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)
    }

    fn set_env_fingerprint(&self, profile: &str, fingerprint: &str) -> Result<(), DbError> {
        self.conn()
            .execute(
                "INSERT INTO env_imports (profile, fingerprint) VALUES (?1, ?2)
                 ON CONFLICT (profile) DO UPDATE SET fingerprint = ?2",
                params![profile, fingerprint],
            )
            .map_err(db)?;
        Ok(())
    }
}

fn migrate(conn: &mut Connection) -> Result<(), String> {
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(|e| e.to_string())?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(|e| e.to_string())?;
    if current > known {
        return Err(format!(
            "the database has schema version {current}, newer than this tessera-serve knows ({known}); run a newer tessera-serve"
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {version}: {e}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%s','now'))",
            params![version],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(user: &str) -> SessionIndex {
        SessionIndex {
            user: user.into(),
            profile: "p".into(),
            expires_at: 10,
            has_refresh_token: true,
        }
    }

    #[test]
    fn a_save_replaces_only_the_version_it_names() {
        let db = Sqlite::in_memory().unwrap();
        let v1 = db.save_session(&index("a"), b"one", None, 0).unwrap();
        let v2 = db.save_session(&index("a"), b"two", Some(v1), 0).unwrap();
        assert!(matches!(
            db.save_session(&index("a"), b"stale", Some(v1), 0),
            Err(WriteError::Conflict)
        ));
        let row = db.load_session("a", "p").unwrap().unwrap();
        assert_eq!((row.version, row.sealed.as_slice()), (v2, &b"two"[..]));
    }

    #[test]
    fn a_pending_login_is_taken_once() {
        let db = Sqlite::in_memory().unwrap();
        db.put_pending_login("h", "u", "p", b"x", 100, 0).unwrap();
        assert!(db.take_pending_login("h").unwrap().is_some());
        assert!(db.take_pending_login("h").unwrap().is_none());
    }

    #[test]
    fn a_lease_excludes_others_until_it_ends() {
        let db = Sqlite::in_memory().unwrap();
        assert!(db.try_lease("u", "p", "a", 0, 1000).unwrap());
        assert!(!db.try_lease("u", "p", "b", 500, 1000).unwrap());
        assert!(
            db.try_lease("u", "p", "b", 1000, 1000).unwrap(),
            "expired lease is taken over"
        );
        db.release_lease("u", "p", "a").unwrap();
        assert!(
            !db.try_lease("u", "p", "a", 1001, 1000).unwrap(),
            "a's release does not free b's lease"
        );
        db.release_lease("u", "p", "b").unwrap();
        assert!(db.try_lease("u", "p", "a", 1001, 1000).unwrap());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Sqlite::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute("INSERT INTO schema_migrations VALUES (99, 0)", [])
            .unwrap();
        drop(conn);
        let error = Sqlite::open(&path).unwrap_err().to_string();
        assert!(error.contains("schema version 99"), "{error}");
    }

    #[test]
    fn a_batch_claim_skips_what_another_holder_claimed() {
        let db = Sqlite::in_memory().unwrap();
        for user in ["a", "b", "c"] {
            db.save_session(&index(user), b"x", None, 0).unwrap();
        }
        assert!(db.claim_one("b", "p", "other", 0, 1000).unwrap());
        let mine: Vec<_> = db
            .claim_expiring(100, "me", 0, 1000, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.user)
            .collect();
        assert_eq!(mine, ["a", "c"]);
        assert!(
            db.claim_expiring(100, "third", 0, 1000, 10)
                .unwrap()
                .is_empty()
        );
        assert!(!db.claim_one("a", "p", "other", 500, 1000).unwrap());
        assert_eq!(
            db.claim_expiring(100, "third", 1000, 1000, 10)
                .unwrap()
                .len(),
            3,
            "claims run out"
        );
    }

    #[test]
    fn a_database_of_schema_1_is_migrated_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
                 INSERT INTO schema_migrations VALUES (1, 0);",
            )
            .unwrap();
            conn.execute_batch(MIGRATIONS[0].1).unwrap();
            conn.execute(
                "INSERT INTO sessions VALUES ('u', 'p', 3, x'00', 10, 1, 0)",
                [],
            )
            .unwrap();
        }
        let db = Sqlite::open(&path).unwrap();
        assert_eq!(db.load_session("u", "p").unwrap().unwrap().version, 3);
        assert_eq!(
            db.claim_expiring(100, "me", 0, 1000, 10).unwrap().len(),
            1,
            "schema 2's claims work"
        );
    }
}
