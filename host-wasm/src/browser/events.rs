//! What JavaScript receives: event objects for `onEvent` listeners and the values
//! promises resolve with. Built as JSON and parsed by `JSON.parse`, so the shapes are the
//! serde shapes documented in the TypeScript declarations (`typescript.rs`).

use serde::Serialize;
use tessera_engine::driver::{LoginOutcome, LogoutOutcome, Notice};
use tessera_engine::{Error, Identity, LogoutReason, ServerCall, Status, UnixMillis, UserCode};
use wasm_bindgen::JsValue;

use super::storage::Store;

/// Something the application may want to show.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum SessionEvent {
    UserCode(UserCode),
    LoggedIn {
        #[serde(skip_serializing_if = "Option::is_none")]
        identity: Option<Identity>,
    },
    LoggedOut {
        reason: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    RefreshFailed {
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_at: Option<UnixMillis>,
    },
    StorageFailed {
        detail: String,
        /// What kind of failure (`status().storage_error`).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'static str>,
    },
}

impl SessionEvent {
    /// What listeners hear of a driver notice (a stray redirect is not their concern).
    pub fn of(notice: Notice, store: &Store) -> Option<Self> {
        Some(match notice {
            Notice::LoggedIn { identity } => Self::LoggedIn { identity },
            Notice::LoggedOut { reason } => Self::logged_out(&reason),
            Notice::RefreshFailed { error, retry_at } => Self::refresh_failed(&error, retry_at),
            Notice::StorageFailed { detail } => Self::StorageFailed {
                error: store.error_kind(&detail),
                detail,
            },
            Notice::CallbackIgnored { .. } => return None,
        })
    }

    pub fn logged_out(reason: &LogoutReason) -> Self {
        let (reason, message) = match reason {
            LogoutReason::Requested => ("requested", None),
            LogoutReason::SessionEnded { error } => ("session_ended", Some(error.to_string())),
            LogoutReason::LoggedOutElsewhere => ("logged_out_elsewhere", None),
        };
        Self::LoggedOut { reason, message }
    }

    pub fn refresh_failed(error: &Error, retry_at: Option<UnixMillis>) -> Self {
        Self::RefreshFailed {
            message: error.to_string(),
            retry_at,
        }
    }
}

/// What `login()` resolves with.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoginResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    pub scopes: Vec<String>,
    pub expires_at: UnixMillis,
}

impl From<LoginOutcome> for LoginResult {
    fn from(login: LoginOutcome) -> Self {
        Self {
            identity: login.identity,
            scopes: login.scopes,
            expires_at: login.expires_at,
        }
    }
}

/// One server-side call of a logout, with its error as a message.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ServerCallResult {
    pub call: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<ServerCall> for ServerCallResult {
    fn from(call: ServerCall) -> Self {
        Self {
            call: call.call.as_str().to_owned(),
            error: call.error.map(|e| e.to_string()),
        }
    }
}

/// What `logout()` resolves with.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogoutResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_session_url: Option<String>,
    pub server_calls: Vec<ServerCallResult>,
    /// Every revocation was confirmed by the provider.
    pub revoked: bool,
    /// The provider may still accept the tokens until they expire (a revocation failed,
    /// or there was none).
    pub tokens_may_still_be_valid: bool,
}

impl From<LogoutOutcome> for LogoutResult {
    fn from(logout: LogoutOutcome) -> Self {
        let revoked = logout.revoked();
        Self {
            end_session_url: logout.end_session_url,
            server_calls: logout.server_calls.into_iter().map(Into::into).collect(),
            revoked,
            tokens_may_still_be_valid: !revoked,
        }
    }
}

/// What `status()` resolves with: the engine's projection and the last storage problem.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct StatusReport {
    #[serde(flatten)]
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_problem: Option<String>,
    /// The kind of `storage_problem`: "unavailable", "unreadable", "key_missing",
    /// "undecryptable" or "conflict".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<&'static str>,
    /// The storage is less protected than it should be (access level, no encryption).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_warning: Option<String>,
}

/// Any of the above as a JS value.
pub(crate) fn to_js<T: Serialize>(value: &T) -> JsValue {
    serde_json::to_string(value)
        .ok()
        .and_then(|json| js_sys::JSON::parse(&json).ok())
        .unwrap_or(JsValue::UNDEFINED)
}
