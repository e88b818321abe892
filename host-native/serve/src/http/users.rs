//! `/users/{id}/credentials/{profile}`: tokens imported (plain JSON or the
//! `.credentials.json` shape) and exported fresh (JSON, or an environment block).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tessera::credentials::{Shape, export_env, export_json, read_import};

use super::{AppState, blocking, check_user, query};
use crate::error::ApiError;
use crate::store::now_ms;

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// `PUT /users/{id}/credentials/{profile}`. Malformed input gets 422 naming the field,
/// and nothing is stored.
pub async fn import(
    State(app): State<AppState>,
    Path((user, profile)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = super::body_bytes(body)?;
    check_user(&user)?;
    let profile = app.sessions.profile(&profile)?;
    let config = profile.config.clone().map_err(|problem| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "profile_misconfigured",
            problem,
        )
    })?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| unprocessable("malformed_json", format!("the body is not JSON: {e}")))?;
    let imported = read_import(&body).map_err(|m| unprocessable("invalid_field", m.to_string()))?;
    let session = imported.into_session(&config, tessera::clock::now());
    let expires_at = session.expires_at;
    let vault = app.sessions.vault.clone();
    let (owner, name) = (user.clone(), profile.name.clone());
    blocking(move || {
        vault
            .write(&owner, &name, &session, None)
            .map_err(ApiError::storage)
    })
    .await?;
    // A running client holds the old session: the next request starts one on the new row.
    app.sessions.forget_client(&user, &profile.name);
    app.sessions
        .plan_refresh((user.clone(), profile.name.clone()), expires_at.0 as i64);
    app.sessions.reset_activity(&user, &profile.name);
    tracing::info!(user, profile = %profile.name, "credentials imported");
    Ok(Json(
        json!({ "stored": true, "user": user, "profile": profile.name, "expires_at": expires_at.0 / 1000 }),
    ))
}

/// `GET /users/{id}/credentials/{profile}[?format=env][&shape=plain|claude]`: refreshed
/// first if it is due, then exported.
pub async fn export(
    State(app): State<AppState>,
    Path((user, profile)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    check_user(&user)?;
    let params = query(&uri);
    let profile = app.sessions.profile(&profile)?;
    if !app.sessions.known(&user, &profile.name) {
        return Err(ApiError::unknown_user(&user));
    }
    match app.sessions.oauth_token(&user, profile, 0).await {
        Ok(_) => {}
        Err(tessera_engine::Error::NotLoggedIn) => return Err(ApiError::unknown_user(&user)),
        Err(error) => return Err(ApiError::engine(&error)),
    }
    let vault = app.sessions.vault.clone();
    let (owner, name) = (user.clone(), profile.name.clone());
    let stored = blocking(move || vault.read(&owner, &name).map_err(ApiError::storage))
        .await?
        .ok_or_else(|| ApiError::unknown_user(&user))?;
    let session = stored.session;
    let _ = now_ms();
    match params.get("format").map(String::as_str) {
        Some("env") => {
            let text = export_env(&session, &profile.env_names());
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
        }
        None | Some("json") => {
            let shape = match params.get("shape").map(String::as_str) {
                Some("claude") => Shape::Claude,
                Some("plain") => Shape::Plain,
                None if profile.env_prefix == "CLAUDE" => Shape::Claude,
                None => Shape::Plain,
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "invalid_parameter",
                        "`shape` is `plain` or `claude`",
                    ));
                }
            };
            Ok(Json(export_json(&session, shape)).into_response())
        }
        Some(_) => Err(ApiError::bad_request(
            "invalid_parameter",
            "`format` is `json` or `env`",
        )),
    }
}
