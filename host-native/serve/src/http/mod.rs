//! The HTTP face of the service (axum): the router, and what every request passes
//! through first: the Host check (DNS rebinding), the bearer token, the body cap, CORS
//! only when configured, and JSON errors everywhere.

mod admin;
mod auth;
mod guard;
mod token;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::routing::{get, post, put};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;
use crate::sessions::Sessions;

pub use guard::Guard;

/// The one route a browser reaches without the bearer token.
pub const CALLBACK_ROUTE: &str = "/auth/{profile}/callback";

/// Largest request body taken.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub sessions: Arc<Sessions>,
    pub guard: Arc<Guard>,
    /// Where the browser reaches this service: the base of callback URLs.
    pub public_url: Arc<str>,
}

/// The service's routes.
pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    let api = Router::new()
        .route("/auth/{profile}/start", get(auth::start))
        .route("/auth/{profile}/device", post(auth::device))
        .route("/auth/{profile}/status", get(auth::status))
        .route("/auth/{profile}/logout", post(auth::logout))
        .route("/token/{profile}", get(token::get_token))
        .route("/token/{profile}/rejected", post(token::rejected))
        .route("/refresh", post(token::refresh_batch))
        .route(
            "/users/{id}/credentials/{profile}",
            put(users::import).get(users::export),
        )
        .route("/settings", get(admin::settings))
        .route("/metrics", get(admin::metrics))
        .route("/healthz", get(admin::healthz))
        .route("/", get(admin::dashboard));
    // One middleware for every request (the Host check, the bearer token but on the
    // callback, the timing): each layer costs a boxed future per request.
    let mut app = Router::new()
        .route(CALLBACK_ROUTE, get(auth::callback))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::gate,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    if !cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PUT])
                .allow_headers([
                    axum::http::header::AUTHORIZATION,
                    axum::http::header::CONTENT_TYPE,
                ]),
        );
    }
    app
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route {}",
            uri.path().chars().take(200).collect::<String>()
        ),
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// The query string's parameters (a repeated one: the last wins, except where a handler
/// refuses repeats itself).
pub fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `?user=`, checked: default `default`; 1–128 of letters, digits and `. _ @ + -`.
pub fn user_param(params: &HashMap<String, String>) -> Result<String, ApiError> {
    let user = params.get("user").map_or("default", String::as_str);
    check_user(user)?;
    Ok(user.to_owned())
}

pub fn check_user(user: &str) -> Result<(), ApiError> {
    let ok = !user.is_empty()
        && user.len() <= 128
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_user",
            "a user id is 1–128 letters, digits and . _ @ + -",
        ))
    }
}

/// A whole number of seconds from the query, or a 400 naming the parameter.
pub fn seconds_param(
    params: &HashMap<String, String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => text.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("`{name}` must be a whole number of seconds"),
            )
        }),
    }
}

/// A request body within [`MAX_BODY_BYTES`], or the JSON error that says why not.
pub fn body_bytes(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request bodies are limited to {} KB", MAX_BODY_BYTES / 1024),
            )
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    })
}

/// Runs blocking database work off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("database task: {e}"))))
}
