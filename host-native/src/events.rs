//! What the native host reports to the application.

use std::sync::Arc;

use subtle::ConstantTimeEq as _;
use tessera_engine::driver::Notice;
use tessera_engine::{Error, Identity, LogoutReason, Secret, UnixMillis, UserCode};

/// An access token and when it expires.
///
/// Cheap to clone: the token is shared, not copied, so handing it out on the cached path
/// costs a reference-count increment. `Debug` shows only its length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub access_token: SharedSecret,
    pub expires_at: UnixMillis,
}

/// A derived token (see [`Config::derived`](tessera_engine::Config::derived)): its name,
/// the token and when it expires. `Debug` shows only the token's length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DerivedToken {
    pub name: String,
    pub token: SharedSecret,
    pub expires_at: UnixMillis,
}

/// A credential shared between the session and every caller holding it (an `Arc<str>`).
///
/// Like [`Secret`]: `Debug` prints only the length, the value is reachable only through
/// [`SharedSecret::expose`], and comparisons are constant-time. It compares equal to a
/// [`Secret`] with the same value and converts into one (e.g. for
/// [`crate::Client::token_rejected`]).
#[derive(Clone)]
pub struct SharedSecret(Arc<str>);

impl SharedSecret {
    /// Wraps a credential.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The raw credential, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&Secret> for SharedSecret {
    fn from(secret: &Secret) -> Self {
        Self(Arc::from(secret.expose()))
    }
}

impl From<SharedSecret> for Secret {
    fn from(shared: SharedSecret) -> Self {
        Secret::new(shared.expose())
    }
}

impl From<&SharedSecret> for Secret {
    fn from(shared: &SharedSecret) -> Self {
        Secret::new(shared.expose())
    }
}

impl PartialEq for SharedSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SharedSecret {}

impl PartialEq<Secret> for SharedSecret {
    fn eq(&self, other: &Secret) -> bool {
        other.ct_eq(&self.0)
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedSecret(<{} bytes redacted>)", self.0.len())
    }
}

/// A finished login, and a finished logout (the engine driver's answers).
pub use tessera_engine::driver::{LoginOutcome as LoginReport, LogoutOutcome as LogoutReport};

/// Things the user should see while the session runs (the CLI prints them; a library
/// user may subscribe with [`crate::Client::events`]).
#[derive(Clone, Debug)]
pub enum HostEvent {
    /// A browser is being opened on this URL; show it in case that fails.
    OpenBrowser {
        url: String,
    },
    /// Show this URL and read what the user pastes (`Client::paste`).
    PromptForCode {
        url: String,
    },
    /// The device flow's code and where to enter it.
    UserCode(UserCode),
    LoggedIn {
        identity: Option<Identity>,
    },
    /// The loopback server got a request that was not this login's redirect.
    CallbackIgnored {
        reason: String,
    },
    RefreshFailed {
        error: Error,
        retry_at: Option<UnixMillis>,
    },
    LoggedOut {
        reason: LogoutReason,
    },
    /// Storage failed; the session in memory is still good for this process.
    StorageFailed {
        detail: String,
    },
}

impl From<Notice> for HostEvent {
    /// Also logs the failures (without secrets: the engine's errors carry none).
    fn from(notice: Notice) -> Self {
        match notice {
            Notice::LoggedIn { identity } => HostEvent::LoggedIn { identity },
            Notice::LoggedOut { reason } => HostEvent::LoggedOut { reason },
            Notice::RefreshFailed { error, retry_at } => {
                tracing::warn!(%error, "refresh failed");
                HostEvent::RefreshFailed { error, retry_at }
            }
            Notice::StorageFailed { detail } => {
                tracing::error!(%detail, "storage failed");
                HostEvent::StorageFailed { detail }
            }
            Notice::CallbackIgnored { reason } => HostEvent::CallbackIgnored { reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_shows_its_value() {
        let token = Token {
            access_token: SharedSecret::new("access-token-value"),
            expires_at: UnixMillis(1),
        };
        let shown = format!("{token:?}");
        assert!(!shown.contains("access-token-value"), "{shown}");
        assert!(shown.contains("18 bytes redacted"), "{shown}");
    }

    #[test]
    fn shared_secrets_compare_with_secrets_and_convert() {
        let shared = SharedSecret::from(&Secret::new("abc"));
        assert_eq!(shared, Secret::new("abc"));
        assert_ne!(shared, Secret::new("abd"));
        assert_eq!(shared, SharedSecret::new("abc"));
        assert_ne!(shared, SharedSecret::new("ab"));
        assert_eq!(Secret::from(shared.clone()), Secret::new("abc"));
        assert_eq!(shared.expose(), "abc");
    }
}

/// A handed-off login ([`Client::hand_off_login`](crate::Client::hand_off_login)): the URL
/// to send the user to, and what its redirect must match. `login` holds the PKCE verifier
/// and `state`: keep it encrypted, use it once.
#[derive(Debug)]
pub struct HandedOff {
    pub url: String,
    pub login: Box<tessera_engine::HandedOffLogin>,
}
