//! The session as stored between runs, and the status projection hosts display.

use serde::{Deserialize, Serialize};

use crate::config::{Config, Endpoints};
use crate::secret::Secret;
use crate::time::UnixMillis;

/// The version written by this engine; older ones are migrated when read.
pub const SESSION_FORMAT_VERSION: u32 = 1;

/// Everything needed to use and renew a login after a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSession {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    pub client_id: String,
    pub access_token: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Secret>,
    pub obtained_at: UnixMillis,
    pub expires_at: UnixMillis,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Endpoints learned by discovery, so later processes need not discover again.
    #[serde(default, skip_serializing_if = "is_default")]
    pub endpoints: Endpoints,
}

fn is_default(endpoints: &Endpoints) -> bool {
    *endpoints == Endpoints::default()
}

/// Who is logged in, from the ID token's claims (and UserInfo's, when the ID token names
/// no one recognisable).
///
/// Unknown fields are ignored when read: identity is for display, and a session written
/// by a later version must stay readable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The groups or teams the provider names (the `groups` claim, else `teams`): at most
    /// 32, each printable and at most 100 characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Identity {
    /// The most readable name available.
    pub fn display(&self) -> Option<&str> {
        self.email
            .as_deref()
            .or(self.preferred_username.as_deref())
            .or(self.name.as_deref())
            .or(self.subject.as_deref())
    }
}

impl StoredSession {
    /// Whether the access token stays valid for at least `min_ttl_secs` more seconds.
    ///
    /// This is the check behind the hosts' fast path (a cached token handed out without a
    /// round trip through the engine); it lives here so every host applies the same rule.
    #[inline]
    pub fn is_usable(&self, now: UnixMillis, min_ttl_secs: u64) -> bool {
        self.expires_at > now.plus_secs(min_ttl_secs)
    }

    /// How long before expiry a refresh is due: the configured buffer, but at most a
    /// quarter of the token's lifetime so short-lived tokens are not refreshed at once.
    #[inline]
    pub fn refresh_buffer_millis(&self, configured_secs: u64) -> u64 {
        let lifetime = self.obtained_at.millis_until(self.expires_at);
        configured_secs.saturating_mul(1000).min(lifetime / 4)
    }

    /// When a proactive refresh is due.
    #[inline]
    pub fn refresh_due_at(&self, configured_buffer_secs: u64) -> UnixMillis {
        self.expires_at
            .minus_millis(self.refresh_buffer_millis(configured_buffer_secs))
    }

    /// Whether a caller asking for `min_ttl_secs` should wait for a refresh instead of
    /// getting the current token: it expires too soon, or the refresh window has begun.
    #[inline]
    pub fn wants_refresh(&self, now: UnixMillis, min_ttl_secs: u64, buffer_secs: u64) -> bool {
        !self.is_usable(now, min_ttl_secs)
            || (self.refresh_token.is_some() && now >= self.refresh_due_at(buffer_secs))
    }

    /// Whether an engine configured with `config` adopts this session when it is loaded:
    /// a format it reads, written for its client and (when configured) its issuer.
    pub fn belongs_to(&self, config: &Config) -> bool {
        self.version <= SESSION_FORMAT_VERSION
            && self.client_id == config.client_id
            && (config.issuer.is_none() || self.issuer == config.issuer)
    }

    /// The access token an engine configured with `config` would serve at once after
    /// loading this session, to a caller asking for `min_ttl_secs` at `now`; `None` when
    /// it would refresh first, or not adopt the session at all.
    ///
    /// For hosts that answer from storage without starting an engine (a cached
    /// `tessera token`): any `None` is handed to a real engine, which decides.
    pub fn servable_token(
        &self,
        config: &Config,
        now: UnixMillis,
        min_ttl_secs: u64,
    ) -> Option<&Secret> {
        (self.belongs_to(config)
            && !self.wants_refresh(now, min_ttl_secs, config.refresh_buffer_secs))
        .then_some(&self.access_token)
    }
}

/// A display-ready projection of the engine's session, computed without side effects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The engine's state, e.g. `idle`, `awaiting_callback`.
    pub state: String,
    pub logged_in: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<UnixMillis>,
    /// Seconds until the access token expires; negative once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<i64>,
    pub refresh_token_present: bool,
    /// A login flow is running (the session above, if any, stays until it succeeds).
    pub login_in_progress: bool,
}

impl Status {
    pub(crate) fn project(
        state: &str,
        login_in_progress: bool,
        session: Option<&StoredSession>,
        now: UnixMillis,
    ) -> Self {
        let expires_in_secs = session.map(|s| {
            let delta = i128::from(s.expires_at.0) - i128::from(now.0);
            i64::try_from(delta.div_euclid(1000)).unwrap_or(if delta < 0 {
                i64::MIN
            } else {
                i64::MAX
            })
        });
        Status {
            state: state.to_owned(),
            logged_in: session.is_some(),
            issuer: session.and_then(|s| s.issuer.clone()),
            identity: session.and_then(|s| s.identity.clone()),
            scopes: session.map(|s| s.scopes.clone()).unwrap_or_default(),
            expires_at: session.map(|s| s.expires_at),
            expires_in_secs,
            refresh_token_present: session.is_some_and(|s| s.refresh_token.is_some()),
            login_in_progress,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(obtained_at: u64, lifetime_secs: u64) -> StoredSession {
        StoredSession {
            version: SESSION_FORMAT_VERSION,
            issuer: Some("https://op.example".into()),
            client_id: "app".into(),
            access_token: Secret::new("at"),
            refresh_token: Some(Secret::new("rt")),
            id_token: None,
            obtained_at: UnixMillis(obtained_at),
            expires_at: UnixMillis(obtained_at).plus_secs(lifetime_secs),
            scopes: vec![],
            identity: None,
            endpoints: Endpoints::default(),
        }
    }

    #[test]
    fn servable_token_follows_the_refresh_rule() {
        let config = Config::new("https://op.example", "app");
        let buffer = config.refresh_buffer_secs;
        let stored = session(0, 3600);
        for (now_secs, min_ttl) in [
            (0, 0),
            (10, 60),
            (3000, 0),
            (3599, 0),
            (3600, 0),
            (10, 4000),
        ] {
            let now = UnixMillis(0).plus_secs(now_secs);
            assert_eq!(
                stored.servable_token(&config, now, min_ttl).is_some(),
                !stored.wants_refresh(now, min_ttl, buffer),
                "at {now_secs} s for {min_ttl} s"
            );
        }
        let now = UnixMillis(0).plus_secs(10);
        assert_eq!(
            stored.servable_token(&config, now, 60),
            Some(&Secret::new("at"))
        );
        assert_eq!(stored.servable_token(&config, now, 4000), None);
    }

    #[test]
    fn servable_token_only_for_a_session_the_engine_adopts() {
        let stored = session(0, 3600);
        let now = UnixMillis(1000);
        let ours = Config::new("https://op.example", "app");
        assert!(stored.belongs_to(&ours));
        for other in [
            Config::new("https://op.example", "another-app"),
            Config::new("https://other.example", "app"),
        ] {
            assert!(!stored.belongs_to(&other));
            assert_eq!(stored.servable_token(&other, now, 0), None);
        }
        let newer = StoredSession {
            version: SESSION_FORMAT_VERSION + 1,
            ..stored.clone()
        };
        assert_eq!(newer.servable_token(&ours, now, 0), None);
        let no_issuer = Config {
            issuer: None,
            ..ours
        };
        assert!(stored.belongs_to(&no_issuer));
    }
}
