//! The service's errors: why it cannot start ([`StartError`]), and what a route answers
//! when it cannot do what was asked ([`ApiError`]: an HTTP status and JSON
//! `{error, message}` with a stable `error` code). Messages never hold a token.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_engine::Error as EngineError;

/// Why `tessera serve` could not start. Each names what to fix.
#[derive(Debug)]
pub enum StartError {
    Key { detail: String },
    Token { detail: String },
    Database { location: String, detail: String },
    Profile { profile: String, detail: String },
    Bind { address: String, detail: String },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Key { detail } => write!(f, "encryption key: {detail}"),
            StartError::Token { detail } => write!(f, "bearer token: {detail}"),
            StartError::Database { location, detail } => {
                write!(f, "database {location}: {detail}")
            }
            StartError::Profile { profile, detail } => write!(f, "profile `{profile}`: {detail}"),
            StartError::Bind { address, detail } => {
                write!(f, "cannot listen on {address}: {detail}")
            }
        }
    }
}

impl std::error::Error for StartError {}

/// A route's failure.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unknown_profile(profile: &str, known: &[String]) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_profile",
            format!(
                "no profile named {:?}; this service has: {}",
                profile.chars().take(64).collect::<String>(),
                known.join(", ")
            ),
        )
    }

    pub fn unknown_user(user: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_user",
            format!("user {user:?} has no credentials for this profile; sign in or import some"),
        )
    }

    pub fn storage(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage",
            format!("{detail}"),
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{detail}"),
        )
    }

    /// An engine error, with the status that fits it: the user must sign in (401), the
    /// provider failed (502), the service's storage failed (503)…
    pub fn engine(error: &EngineError) -> Self {
        let (status, code) = match error {
            EngineError::NotLoggedIn => (StatusCode::UNAUTHORIZED, "not_signed_in"),
            EngineError::LoginRequired { .. } => (StatusCode::UNAUTHORIZED, "sign_in_required"),
            EngineError::Callback { .. } | EngineError::RedirectRefused { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_callback")
            }
            EngineError::Storage { .. } => (StatusCode::SERVICE_UNAVAILABLE, "storage"),
            EngineError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
            EngineError::Config { .. } | EngineError::MissingEndpoint { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "profile_misconfigured")
            }
            EngineError::OAuth { .. } => (StatusCode::BAD_GATEWAY, "provider_refused"),
            EngineError::Transport { .. } => (StatusCode::BAD_GATEWAY, "provider_unreachable"),
            _ if error.is_transient() => (StatusCode::BAD_GATEWAY, "provider_unavailable"),
            _ => (StatusCode::BAD_GATEWAY, "provider_error"),
        };
        Self::new(status, code, error.to_string())
    }
}
