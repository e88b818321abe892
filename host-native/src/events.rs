//! What the native host reports to the application.

use tessera_engine::{Error, Identity, LogoutReason, Secret, ServerCall, UnixMillis, UserCode};

/// An access token and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub access_token: Secret,
    pub expires_at: UnixMillis,
}

/// A finished login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginReport {
    pub identity: Option<Identity>,
    pub scopes: Vec<String>,
    pub expires_at: UnixMillis,
}

/// A finished logout: the provider-side outcome of each call, and the URL that ends the
/// provider's browser session (if it has one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutReport {
    pub end_session_url: Option<String>,
    pub server_calls: Vec<ServerCall>,
}

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
