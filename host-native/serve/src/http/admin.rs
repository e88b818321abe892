//! `/settings`, the dashboard, `/metrics`, `/healthz`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::guard::COOKIE;
use super::{AppState, query, user_param};
use crate::error::ApiError;
use crate::sessions::ENV_USER;

/// `GET /settings?user=`: per profile, whether this user has an OAuth token.
pub async fn settings(State(app): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let user = user_param(&query(&uri))?;
    let sessions = &app.sessions;
    let expiries: std::collections::HashMap<_, _> =
        sessions.scheduler.entries().into_iter().collect();
    let mut profiles = Map::new();
    for profile in sessions.profiles.iter() {
        let own = (user.clone(), profile.name.clone());
        let env = (ENV_USER.to_owned(), profile.name.clone());
        let stored = if sessions.known(&own.0, &own.1) {
            Some(own)
        } else if profile.env_tokens.is_some() && sessions.known(&env.0, &env.1) {
            Some(env)
        } else {
            None
        };
        let expires_at = match &stored {
            Some(key) => match sessions.profiles.get(&key.1) {
                Some(p) => sessions
                    .oauth_token(&key.0, p, 0)
                    .await
                    .ok()
                    .map(|t| t.expires_at.0),
                None => None,
            }
            .or_else(|| expiries.get(key).map(|d| *d as u64)),
            None => None,
        };
        profiles.insert(
            profile.name.clone(),
            json!({
                "hasOAuthToken": expires_at.is_some(),
                "oauthExpiresAt": expires_at,
                "oauthProvider": profile.provider,
                "hasApiKey": profile.api_key.is_some(),
            }),
        );
    }
    Ok(Json(json!({ "user": user, "profiles": profiles })))
}

/// `GET /`: the dashboard. `/?token=…` (from a link the service prints) sets a cookie
/// and reloads without the token in the address.
pub async fn dashboard(State(app): State<AppState>, uri: Uri) -> Response {
    if let Some(token) = query(&uri).get("token") {
        if !app.guard.token_matches(token) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token in the link is not this service's",
            )
            .into_response();
        }
        let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
        let mut response = Redirect::to("/").into_response();
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    let rows = crate::dashboard::rows(&app.sessions);
    let mut response =
        Html(crate::dashboard::render(&rows, crate::store::now_ms())).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
        ),
    );
    response
}

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let sessions = &app.sessions;
    sessions
        .metrics
        .sessions
        .set(sessions.scheduler.len() as i64);
    sessions
        .metrics
        .live_clients
        .set(sessions.live_count() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        sessions.metrics.encode(),
    )
}

pub async fn healthz() -> Json<Value> {
    Json(json!({ "ok": true }))
}
