//! Everything the engine wants done: requests, UI, storage, and events for the app.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Endpoint, Error};
use crate::input::{RequestId, WaiterId};
use crate::secret::Secret;
use crate::session::{Identity, StoredSession};
use crate::time::UnixMillis;

/// One thing for the host to do. Hosts perform effects in the order they are polled; in
/// particular a `PersistSession` completes before the events that follow it are delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Send an HTTP request; answer with `HttpResponse` or `HttpFailed` carrying its id.
    Http(HttpRequest),
    /// Open this URL in the user's browser (and show it, in case that fails).
    OpenBrowser { url: String },
    /// Show this URL and ask the user to paste what the provider shows after sign-in.
    PromptForCode { url: String },
    /// Show the device flow's user code and where to enter it.
    ShowUserCode(UserCode),
    /// Read the stored session; answer with `SessionLoaded`.
    LoadSession,
    /// Take the cross-process refresh lock, then re-read storage; answer `SessionLocked`.
    LockSession,
    /// Release the lock taken for `LockSession` (also if it is still being acquired).
    UnlockSession,
    /// Store this session, replacing the previous one atomically.
    PersistSession { session: Box<StoredSession> },
    /// Remove the stored session.
    DeleteSession,
    /// Check one signature of an ID token with the key and algorithm given; answer
    /// `SignatureChecked` with its id. An engine built with `rust-crypto` answers these
    /// itself and never emits one (see [`Engine::set_signature_verifier`](crate::Engine)).
    VerifySignature(crate::SignatureCheck),
    /// Tell the application something happened.
    Event(Event),
}

/// HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
}

/// An HTTP request, fully encoded. Hosts send it as is, do not follow redirects, stop
/// reading the body after `max_response_bytes + 1` bytes and give up after `timeout_ms`.
///
/// `Debug` leaves out the body (codes, verifiers, refresh tokens) and the value of the
/// `authorization` header.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    pub id: RequestId,
    pub endpoint: Endpoint,
    pub method: Method,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Written out in transcripts only when it is not the default `Config` gives.
    #[serde(
        default = "default_timeout_ms",
        skip_serializing_if = "is_default_timeout_ms"
    )]
    pub timeout_ms: u64,
    /// Written out in transcripts only when it is not the default `Config` gives.
    #[serde(
        default = "default_max_response_bytes",
        skip_serializing_if = "is_default_max_response_bytes"
    )]
    pub max_response_bytes: usize,
}

fn default_timeout_ms() -> u64 {
    crate::config::DEFAULT_HTTP_TIMEOUT_MS
}

fn is_default_timeout_ms(ms: &u64) -> bool {
    *ms == crate::config::DEFAULT_HTTP_TIMEOUT_MS
}

fn default_max_response_bytes() -> usize {
    crate::config::DEFAULT_MAX_RESPONSE_BYTES
}

fn is_default_max_response_bytes(bytes: &usize) -> bool {
    *bytes == crate::config::DEFAULT_MAX_RESPONSE_BYTES
}

/// The device flow's instructions for the user (RFC 8628 §3.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCode {
    /// The code exactly as issued: show it as it is (RFC 8628 §3.3 lets the server choose
    /// its format, and some servers' device pages accept nothing else). Readability comes
    /// from the host's layout: spacing around it, a QR code of the complete URI.
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    pub expires_at: UnixMillis,
}

/// Why the session ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum LogoutReason {
    /// `Logout` was asked for.
    Requested,
    /// The provider rejected the refresh token; a new login is needed.
    SessionEnded { error: Error },
    /// Another process deleted the stored session.
    LoggedOutElsewhere,
}

/// A server-side call made during logout, in the order logout makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerCallKind {
    /// RFC 7009 revocation of the refresh token.
    RevokeRefreshToken,
    /// RFC 7009 revocation of the access token.
    RevokeAccessToken,
    /// The provider's own logout endpoint.
    ServerLogout,
}

impl ServerCallKind {
    /// The name in transcripts and in the browser package's results.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerCallKind::RevokeRefreshToken => "revoke_refresh_token",
            ServerCallKind::RevokeAccessToken => "revoke_access_token",
            ServerCallKind::ServerLogout => "server_logout",
        }
    }
}

/// The outcome of one server-side call made during logout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerCall {
    pub call: ServerCallKind,
    /// `None` on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

/// A notification for the application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A login finished and the session is stored.
    LoggedIn {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<Identity>,
        scopes: Vec<String>,
        expires_at: UnixMillis,
    },
    /// A login ended without a session; an existing session is unchanged.
    LoginFailed { error: Error },
    /// A handed-off login's authorization request is ready: the user opens `url`, and the
    /// host keeps `login` until the redirect arrives ([`Input::ResumeLogin`](crate::Input)).
    LoginHandedOff {
        url: String,
        login: Box<crate::HandedOffLogin>,
    },
    /// These waiters get this token (one event releases every joined caller).
    TokenReady {
        waiters: Vec<WaiterId>,
        access_token: Secret,
        expires_at: UnixMillis,
    },
    /// These waiters get no token.
    TokenFailed {
        waiters: Vec<WaiterId>,
        error: Error,
    },
    /// A background refresh failed; the current token stays in use until it expires.
    RefreshFailed {
        error: Error,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<UnixMillis>,
    },
    /// These waiters get the derived token `name`, valid until `expires_at`.
    DerivedTokenReady {
        waiters: Vec<WaiterId>,
        name: String,
        token: Secret,
        expires_at: UnixMillis,
    },
    /// These waiters get no derived token `name`.
    DerivedTokenFailed {
        waiters: Vec<WaiterId>,
        name: String,
        error: Error,
    },
    /// The session is gone. `end_session_url`, when present, signs the user out of the
    /// provider's browser session too.
    LoggedOut {
        reason: LogoutReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_session_url: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        server_calls: Vec<ServerCall>,
    },
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if name.eq_ignore_ascii_case("authorization") {
                    "<redacted>"
                } else {
                    value.as_str()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_bytes", &self.body.as_ref().map(String::len))
            .field("timeout_ms", &self.timeout_ms)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}
