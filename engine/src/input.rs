//! Everything that reaches the engine from outside: commands, responses, storage, time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::TransportErrorKind;
use crate::secret::Secret;
use crate::session::StoredSession;

/// Identifies one HTTP request the engine asked for; the response must carry it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

/// Identifies one caller waiting for a token; chosen by the host, echoed in the event
/// that releases it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WaiterId(pub u64);

/// How the user proves who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    /// Authorization code + PKCE; the browser's redirect comes back as [`Input::Callback`].
    Browser,
    /// Authorization code + PKCE; the user pastes the code ([`Input::PastedCode`]).
    Paste,
    /// Device authorization grant (RFC 8628).
    Device,
    /// Authorization code + PKCE, handed off: the login ends at once with the URL and a
    /// [`HandedOffLogin`](crate::HandedOffLogin) for the host to keep; the redirect comes
    /// back later as [`Input::ResumeLogin`] (a service whose own route receives it).
    Handoff,
}

/// One input to [`Engine::handle`](crate::Engine::handle).
///
/// `Debug` shows redirects, pasted text and response bodies by length only: they carry
/// authorization codes and tokens.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Input {
    /// Start a login. `redirect_uri` is the one the host listens on (e.g. a loopback port
    /// it just bound); without it the configured one is used.
    Login {
        method: LoginMethod,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        redirect_uri: Option<String>,
    },
    /// A caller wants an access token valid for at least `min_ttl_secs` more seconds.
    GetToken {
        waiter: WaiterId,
        #[serde(default)]
        min_ttl_secs: u64,
    },
    /// A caller wants the derived token `name` (an endpoint of
    /// [`Config::derived`](crate::Config::derived)) valid for at least `min_ttl_secs` more
    /// seconds: from the cache, or fetched with an access token valid for 5 more minutes.
    GetDerivedToken {
        waiter: WaiterId,
        name: String,
        #[serde(default)]
        min_ttl_secs: u64,
    },
    /// A resource server answered 401 to `access_token`: refresh (once) unless a newer
    /// token already exists.
    TokenRejected {
        waiter: WaiterId,
        access_token: Secret,
    },
    /// End the session: revoke and delete, or only delete when `force`.
    Logout {
        #[serde(default)]
        force: bool,
    },
    /// Abandon a login in progress.
    Cancel,
    /// The redirect the browser delivered (loopback server, `launchWebAuthFlow`).
    Callback { url: String },
    /// What the user pasted: a redirect URL, `code#state`, or a bare code.
    PastedCode { text: String },
    /// The redirect of a handed-off login, with what the host kept of it: checked, then
    /// the code is exchanged. Any problem ends that login (it has one redirect).
    ResumeLogin {
        login: Box<crate::HandedOffLogin>,
        url: String,
    },
    /// The answer to [`Effect::Http`](crate::Effect::Http).
    HttpResponse {
        id: RequestId,
        status: u16,
        /// Lower-case names; repeated headers joined with `, `.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: String,
    },
    /// The request produced no HTTP response.
    HttpFailed {
        id: RequestId,
        kind: TransportErrorKind,
        #[serde(default)]
        detail: String,
    },
    /// The answer to `LoadSession`: what storage holds (`None` when empty or unreadable).
    SessionLoaded { session: Option<StoredSession> },
    /// The answer to `LockSession`: the lock is held and this is a fresh read of storage.
    SessionLocked { session: Option<StoredSession> },
    /// A storage effect failed (the lock could not be taken, the store is unreadable).
    StorageFailed { detail: String },
    /// The answer to [`Effect::VerifySignature`](crate::Effect::VerifySignature): whether
    /// the key signed the message (`false` also when the check could not be made).
    SignatureChecked { id: crate::CheckId, valid: bool },
    /// The time returned by `poll_timeout` has come.
    Timeout,
}

impl Input {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Input::Login { .. } => "login",
            Input::GetToken { .. } => "get_token",
            Input::GetDerivedToken { .. } => "get_derived_token",
            Input::TokenRejected { .. } => "token_rejected",
            Input::Logout { .. } => "logout",
            Input::Cancel => "cancel",
            Input::Callback { .. } => "callback",
            Input::PastedCode { .. } => "pasted_code",
            Input::ResumeLogin { .. } => "resume_login",
            Input::HttpResponse { .. } => "http_response",
            Input::HttpFailed { .. } => "http_failed",
            Input::SessionLoaded { .. } => "session_loaded",
            Input::SessionLocked { .. } => "session_locked",
            Input::StorageFailed { .. } => "storage_failed",
            Input::SignatureChecked { .. } => "signature_checked",
            Input::Timeout => "timeout",
        }
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// Stands for a value that may hold a secret: only its length is shown.
        struct Withheld(usize);
        impl std::fmt::Debug for Withheld {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "<{} bytes>", self.0)
            }
        }
        match self {
            Input::Login {
                method,
                redirect_uri,
            } => f
                .debug_struct("Login")
                .field("method", method)
                .field("redirect_uri", redirect_uri)
                .finish(),
            Input::GetToken {
                waiter,
                min_ttl_secs,
            } => f
                .debug_struct("GetToken")
                .field("waiter", waiter)
                .field("min_ttl_secs", min_ttl_secs)
                .finish(),
            Input::GetDerivedToken {
                waiter,
                name,
                min_ttl_secs,
            } => f
                .debug_struct("GetDerivedToken")
                .field("waiter", waiter)
                .field("name", name)
                .field("min_ttl_secs", min_ttl_secs)
                .finish(),
            Input::TokenRejected {
                waiter,
                access_token,
            } => f
                .debug_struct("TokenRejected")
                .field("waiter", waiter)
                .field("access_token", access_token)
                .finish(),
            Input::Logout { force } => f.debug_struct("Logout").field("force", force).finish(),
            Input::Cancel => f.write_str("Cancel"),
            Input::Callback { url } => f
                .debug_struct("Callback")
                .field("url", &Withheld(url.len()))
                .finish(),
            Input::PastedCode { text } => f
                .debug_struct("PastedCode")
                .field("text", &Withheld(text.len()))
                .finish(),
            Input::ResumeLogin { url, .. } => f
                .debug_struct("ResumeLogin")
                .field("url", &Withheld(url.len()))
                .finish_non_exhaustive(),
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } => f
                .debug_struct("HttpResponse")
                .field("id", id)
                .field("status", status)
                .field("headers", headers)
                .field("body", &Withheld(body.len()))
                .finish(),
            Input::HttpFailed { id, kind, detail } => f
                .debug_struct("HttpFailed")
                .field("id", id)
                .field("kind", kind)
                .field("detail", detail)
                .finish(),
            Input::SessionLoaded { session } => f
                .debug_struct("SessionLoaded")
                .field("session", session)
                .finish(),
            Input::SessionLocked { session } => f
                .debug_struct("SessionLocked")
                .field("session", session)
                .finish(),
            Input::StorageFailed { detail } => f
                .debug_struct("StorageFailed")
                .field("detail", detail)
                .finish(),
            Input::SignatureChecked { id, valid } => f
                .debug_struct("SignatureChecked")
                .field("id", id)
                .field("valid", valid)
                .finish(),
            Input::Timeout => f.write_str("Timeout"),
        }
    }
}
