//! What a host tells the driver ([`DriverInput`]) and what the driver asks of it
//! ([`Action`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::effect::{HttpRequest, LogoutReason, ServerCall, ServerCallKind, UserCode};
use crate::error::{Error, Rejected, TransportErrorKind};
use crate::input::{LoginMethod, RequestId};
use crate::secret::Secret;
use crate::session::{Identity, Status, StoredSession};
use crate::time::UnixMillis;

/// One caller of the host's API (`access_token()`, `login()`, …), numbered by the host.
/// Every call gets exactly one [`Action::Reply`], unless the host reports it dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

/// Which write of the stored session a store holds, so a save can say which one it
/// replaces (compare-and-swap). Stores choose the numbers: a counter, a content hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    /// A session's version by its content: the first 8 bytes of the SHA-256 of its JSON,
    /// for stores that keep no counter (a keyring item, a file, browser storage).
    pub fn of(session: &StoredSession) -> Version {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(session).unwrap_or_default();
        let digest = Sha256::digest(&json);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Version(u64::from_be_bytes(first))
    }
}

/// What a caller asks for. `Debug` shows the command's name only (redirects, pasted
/// text and rejected tokens are secrets).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// A token valid for at least `min_ttl_secs` more seconds ⇒ `Reply::Token`.
    GetToken {
        #[serde(default)]
        min_ttl_secs: u64,
    },
    /// A resource server answered 401 to this token ⇒ `Reply::Token` with another one.
    TokenRejected { access_token: Secret },
    /// The derived token `name` (see [`Config::derived`](crate::Config::derived)), valid
    /// for at least `min_ttl_secs` more seconds ⇒ `Reply::DerivedToken`.
    GetDerivedToken {
        name: String,
        #[serde(default)]
        min_ttl_secs: u64,
    },
    /// Run a login to its end ⇒ `Reply::LoggedIn`. `redirect_uri`: where the host listens.
    Login {
        method: LoginMethod,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        redirect_uri: Option<String>,
    },
    /// The redirect the browser delivered ⇒ answered with the login's outcome
    /// (`Reply::LoggedIn` or `Reply::Failed`), or `Reply::Refused` at once. `last`: the
    /// host's launcher delivers one redirect per login, so a refused one ends the login.
    Callback {
        url: String,
        #[serde(default)]
        last: bool,
    },
    /// What the user pasted ⇒ `Reply::Accepted` or `Reply::Refused` (then ask again).
    PastedCode { text: String },
    /// The redirect of a login started with `LoginMethod::Handoff`, with what its
    /// `Reply::HandedOff` gave the host to keep ⇒ `Reply::LoggedIn` or `Reply::Failed`.
    ResumeLogin {
        login: Box<crate::HandedOffLogin>,
        url: String,
    },
    /// End the session ⇒ `Reply::LoggedOut`. `force`: only delete, revoke nothing.
    Logout {
        #[serde(default)]
        force: bool,
    },
    /// Abandon a login in progress ⇒ `Reply::Accepted`.
    Cancel,
    /// ⇒ `Reply::Status`.
    Status,
}

/// Everything a host reports: a call, what I/O produced, the timer, shutting down.
///
/// `Debug` withholds redirects, pasted text and bodies (they carry codes and tokens).
/// (Not `deny_unknown_fields`: serde cannot combine it with the flattened command; the
/// command itself denies unknown fields.)
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // moved once per input; a box would cost more
pub enum DriverInput {
    /// A caller's request.
    Call {
        call: CallId,
        #[serde(flatten)]
        command: Command,
    },
    /// The caller went away (its future was dropped): it gets no reply. What it started
    /// goes on, so a refresh in flight still stores its rotated token.
    CallDropped { call: CallId },
    /// The answer to `Action::Send`.
    HttpResponse {
        id: RequestId,
        status: u16,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: String,
    },
    /// `Action::Send` produced no response.
    HttpFailed {
        id: RequestId,
        kind: TransportErrorKind,
        #[serde(default)]
        detail: String,
    },
    /// The timer of `Action::ArmTimer` fired (early or late: the driver checks the time).
    TimerFired,
    /// The answer to `Action::Load`. `version` identifies what was read.
    Loaded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<StoredSession>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<Version>,
    },
    /// `Action::Save` is done; the store now holds `version`.
    Saved { version: Version },
    /// `Action::Delete` is done.
    Deleted,
    /// A load, save or delete failed. `conflict`: a save found another version than the
    /// one it was to replace (another process wrote meanwhile).
    StoreFailed {
        detail: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        conflict: bool,
    },
    /// `Action::AcquireLock`: the refresh lock is ours until released or its lease ends, and
    /// this is what the store holds, read after taking it.
    LockAcquired {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<StoredSession>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<Version>,
    },
    /// `Action::AcquireLock`: someone else held the lock for the whole wait.
    LockBusy,
    /// `Action::AcquireLock` failed (not busy: broken).
    LockFailed { detail: String },
    /// The host's browser launcher ended without a redirect (window closed, no launcher).
    LaunchFailed { detail: String },
    /// The answer to `Action::VerifySignature`: whether the key signed the message
    /// (`false` also when the check could not be made).
    SignatureChecked { id: crate::CheckId, valid: bool },
    /// The host is stopping: every call still waiting is answered `Error::Stopped`.
    Stop,
}

/// One thing for the host to do, in the order polled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Send this request; answer `HttpResponse` or `HttpFailed` with its id.
    Send(HttpRequest),
    /// Open this URL in the user's browser (and show it, in case that fails).
    OpenBrowser { url: String },
    /// Show this URL and ask the user to paste what the provider shows after sign-in.
    PromptForCode { url: String },
    /// Show the device flow's user code and where to enter it.
    ShowUserCode(UserCode),
    /// No login waits for a redirect any more: stop listening for one.
    CloseRedirect,
    /// Read the stored session; answer `Loaded` or `StoreFailed`.
    Load,
    /// Store this session in place of version `replaces` (`None`: whatever is stored);
    /// answer `Saved` or `StoreFailed`. Nothing else is asked until it is answered.
    Save {
        session: Box<StoredSession>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<Version>,
    },
    /// Remove the stored session; answer `Deleted` or `StoreFailed`.
    Delete,
    /// Take the refresh lock, waiting up to `wait_ms` for another holder; hold it for at
    /// most `lease_ms` (a holder that dies loses it then); then read the store. Answer
    /// `LockAcquired` (with what was read), `LockBusy` or `LockFailed`.
    AcquireLock { wait_ms: u64, lease_ms: u64 },
    /// Release the refresh lock (also when it is still being acquired: release it when
    /// it arrives).
    ReleaseLock,
    /// Wake up at `at` with `TimerFired`, replacing any armed timer.
    ArmTimer { at: UnixMillis },
    /// Disarm the timer.
    CancelTimer,
    /// Check this ID-token signature (the key and algorithm are the engine's choice);
    /// answer `SignatureChecked` with its id, whenever the answer is known. Only a driver
    /// without a signature verifier asks ([`Driver::set_signature_verifier`](super::Driver)).
    VerifySignature(crate::SignatureCheck),
    /// Answer this call.
    Reply { call: CallId, reply: Reply },
    /// Tell the application.
    Notify(Notice),
}

/// The answer to one call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Token {
        access_token: Secret,
        expires_at: UnixMillis,
    },
    /// The derived token `name`, valid until `expires_at`.
    DerivedToken {
        name: String,
        token: Secret,
        expires_at: UnixMillis,
    },
    LoggedIn(LoginOutcome),
    /// A `Handoff` login's authorization request: send the user to `url`; keep `login`
    /// (secret, single use) for the redirect's `Command::ResumeLogin`.
    HandedOff {
        url: String,
        login: Box<crate::HandedOffLogin>,
    },
    LoggedOut(LogoutOutcome),
    /// The command was taken (pasted code, cancel).
    Accepted,
    /// The input was not taken; nothing changed (a forged redirect, unreadable paste).
    Refused {
        rejected: Rejected,
    },
    Status {
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        storage_problem: Option<String>,
    },
    Failed {
        error: Error,
    },
}

/// A finished login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    pub scopes: Vec<String>,
    pub expires_at: UnixMillis,
}

/// A finished logout: what each server-side call did, and the URL that ends the
/// provider's browser session (if it has one). `Debug` shows the URL without the value of
/// its `id_token_hint` (the ID token).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_calls: Vec<ServerCall>,
}

impl std::fmt::Debug for LogoutOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.end_session_url.as_deref().map(|url| {
            url.split('&')
                .map(|part| match part.split_once("id_token_hint=") {
                    Some((before, _)) if before.is_empty() || before.ends_with('?') => {
                        format!("{before}id_token_hint=<redacted>")
                    }
                    _ => part.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&")
        });
        f.debug_struct("LogoutOutcome")
            .field("end_session_url", &url)
            .field("server_calls", &self.server_calls)
            .finish()
    }
}

impl LogoutOutcome {
    /// Whether the provider confirmed the revocation of the tokens: at least one
    /// revocation was made and none failed. When not, the tokens may still be valid at the
    /// server until they expire, and a host must say so.
    pub fn revoked(&self) -> bool {
        let mut revocations = self
            .server_calls
            .iter()
            .filter(|c| c.call != ServerCallKind::ServerLogout);
        let mut any = false;
        revocations.all(|c| {
            any = true;
            c.error.is_none()
        }) && any
    }

    /// Whether a revocation was made and the provider did not confirm it.
    pub fn revocation_failed(&self) -> bool {
        self.server_calls
            .iter()
            .any(|c| c.call != ServerCallKind::ServerLogout && c.error.is_some())
    }
}

/// What the application should hear about, beyond the answers to its calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    LoggedIn {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<Identity>,
    },
    LoggedOut {
        reason: LogoutReason,
    },
    /// A background refresh failed; the current token stays in use until it expires.
    RefreshFailed {
        error: Error,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<UnixMillis>,
    },
    /// Storage failed; `status` shows it until a write succeeds.
    StorageFailed {
        detail: String,
    },
    /// A redirect arrived that no login takes (a stale tab, a forged request).
    CallbackIgnored {
        reason: String,
    },
}

impl std::fmt::Debug for DriverInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverInput::Call { call, command } => f
                .debug_struct("Call")
                .field("call", &call.0)
                .field("command", command)
                .finish(),
            DriverInput::HttpResponse { id, status, .. } => f
                .debug_struct("HttpResponse")
                .field("id", &id.0)
                .field("status", status)
                .finish_non_exhaustive(),
            DriverInput::Loaded { version, session } => f
                .debug_struct("Loaded")
                .field("session", &session.is_some())
                .field("version", version)
                .finish(),
            other => f.write_str(other.name()),
        }
    }
}

impl Command {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::GetToken { .. } => "get_token",
            Command::TokenRejected { .. } => "token_rejected",
            Command::GetDerivedToken { .. } => "get_derived_token",
            Command::Login { .. } => "login",
            Command::Callback { .. } => "callback",
            Command::PastedCode { .. } => "pasted_code",
            Command::ResumeLogin { .. } => "resume_login",
            Command::Logout { .. } => "logout",
            Command::Cancel => "cancel",
            Command::Status => "status",
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl DriverInput {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            DriverInput::Call { .. } => "call",
            DriverInput::CallDropped { .. } => "call_dropped",
            DriverInput::HttpResponse { .. } => "http_response",
            DriverInput::HttpFailed { .. } => "http_failed",
            DriverInput::TimerFired => "timer_fired",
            DriverInput::Loaded { .. } => "loaded",
            DriverInput::Saved { .. } => "saved",
            DriverInput::Deleted => "deleted",
            DriverInput::StoreFailed { .. } => "store_failed",
            DriverInput::LockAcquired { .. } => "lock_acquired",
            DriverInput::LockBusy => "lock_busy",
            DriverInput::LockFailed { .. } => "lock_failed",
            DriverInput::LaunchFailed { .. } => "launch_failed",
            DriverInput::SignatureChecked { .. } => "signature_checked",
            DriverInput::Stop => "stop",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the driver fuzz harness: `Debug` of a logout's reply printed the ID token
    /// carried by the end-session URL.
    #[test]
    fn a_logout_outcome_debug_hides_the_id_token_hint() {
        let outcome = LogoutOutcome {
            end_session_url: Some(
                "https://op.example/logout?id_token_hint=eyJ.secret.sig&client_id=cli".into(),
            ),
            server_calls: Vec::new(),
        };
        let shown = format!("{outcome:?}");
        assert!(!shown.contains("eyJ.secret.sig"), "{shown}");
        assert!(
            shown.contains("id_token_hint=<redacted>&client_id=cli"),
            "{shown}"
        );
        let last = LogoutOutcome {
            end_session_url: Some(
                "https://op.example/logout?client_id=cli&id_token_hint=eyJ.x.y".into(),
            ),
            server_calls: Vec::new(),
        };
        assert!(!format!("{last:?}").contains("eyJ.x.y"));
    }
}
