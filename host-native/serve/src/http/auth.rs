//! Sign-in and sign-out: `/auth/{profile}/start` and its callback (a handed-off login
//! whose secrets wait in the database, sealed, single use), the device flow, status and
//! logout.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tessera::HostEvent;
use tessera_engine::{HandedOffLogin, LoginMethod};

use super::{AppState, blocking, query, user_param};
use crate::crypto::Kind;
use crate::error::ApiError;
use crate::sessions::{ENV_USER, Sessions, Source};
use crate::store::now_ms;

fn state_hash(state: &str) -> String {
    Sha256::digest(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `GET /auth/{profile}/start?user=`: the URL to send the user to.
pub async fn start(
    State(app): State<AppState>,
    Path(profile): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let user = user_param(&query(&uri))?;
    let profile = app.sessions.profile(&profile)?;
    let client = app.sessions.client(&user, profile).await?;
    let redirect_uri = format!("{}/auth/{}/callback", app.public_url, profile.name);
    let handed = client
        .hand_off_login(redirect_uri)
        .await
        .map_err(|e| ApiError::engine(&e))?;
    let login = *handed.login;
    let expires_at = login.expires_at.0 as i64;
    let state = login.state().to_owned();
    let plain = serde_json::to_vec(&login).map_err(ApiError::internal)?;
    let vault = app.sessions.vault.clone();
    let (hash, name, owner) = (state_hash(&state), profile.name.clone(), user.clone());
    blocking(move || {
        let sealed = vault.sealer.seal(Kind::PendingLogin, &owner, &name, &plain);
        vault
            .db
            .put_pending_login(&hash, &owner, &name, &sealed, expires_at, now_ms())
            .map_err(ApiError::storage)
    })
    .await?;
    Ok(Json(json!({
        "authorization_url": handed.url,
        "state": state,
        "expires_in": (expires_at - now_ms()).max(0) / 1000,
    })))
}

/// `GET /auth/{profile}/callback?code&state[&iss]`: no bearer (the browser brings it).
/// A wrong, expired or replayed `state` gets 400 and nothing is stored.
pub async fn callback(
    State(app): State<AppState>,
    Path(profile): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    match finish_callback(&app, &profile, &uri).await {
        Ok(answer) if wants_json => Json(answer).into_response(),
        Ok(_) => page(
            StatusCode::OK,
            "Signed in",
            "You are signed in. You can close this window.",
        ),
        Err(error) if wants_json => error.into_response(),
        Err(error) => page(error.status, "Sign-in failed", &error.message),
    }
}

async fn finish_callback(app: &AppState, profile: &str, uri: &Uri) -> Result<Value, ApiError> {
    let params = query(uri);
    let profile = app.sessions.profile(profile)?;
    let Some(state) = params
        .get("state")
        .filter(|s| !s.is_empty() && s.len() <= 512)
    else {
        return Err(ApiError::bad_request(
            "invalid_callback",
            "the redirect has no `state`; start the sign-in again",
        ));
    };
    let vault = app.sessions.vault.clone();
    let hash = state_hash(state);
    let taken = blocking(move || {
        vault
            .db
            .take_pending_login(&hash)
            .map_err(ApiError::storage)
    })
    .await?;
    let unknown = || {
        ApiError::bad_request(
            "invalid_state",
            "this sign-in is unknown, expired or already finished; start it again",
        )
    };
    let Some((user, stored_profile, sealed)) = taken else {
        return Err(unknown());
    };
    if stored_profile != profile.name {
        return Err(unknown());
    }
    let login: HandedOffLogin = app
        .sessions
        .vault
        .sealer
        .open(Kind::PendingLogin, &user, &profile.name, &sealed)
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .ok_or_else(unknown)?;
    let redirect = format!("{}?{}", login.redirect_uri(), uri.query().unwrap_or(""));
    let client = app.sessions.client(&user, profile).await?;
    let report = client
        .resume_login(login, redirect)
        .await
        .map_err(|e| ApiError::engine(&e))?;
    signed_in(
        &app.sessions,
        &user,
        &profile.name,
        report.expires_at.0 as i64,
    );
    Ok(json!({
        "signed_in": true,
        "user": user,
        "profile": profile.name,
        "expires_at": report.expires_at.0 / 1000,
        "identity": report.identity,
    }))
}

fn signed_in(sessions: &Sessions, user: &str, profile: &str, expires_at: i64) {
    sessions.plan_refresh((user.to_owned(), profile.to_owned()), expires_at);
    sessions.update_activity(user, profile, |a| {
        a.suspended_token = None;
        a.refreshed_after_rejection = None;
        a.last_error = None;
        a.attempts = 0;
    });
    tracing::info!(user, profile, "signed in");
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{t}</h1><p>{m}</p></body></html>",
        t = crate::dashboard::escape(title),
        m = crate::dashboard::escape(message)
    );
    let mut response = (status, Html(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

/// `POST /auth/{profile}/device?user=`: starts a device flow; the service polls.
pub async fn device(
    State(app): State<AppState>,
    Path(profile): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let user = user_param(&query(&uri))?;
    let profile = app.sessions.profile(&profile)?;
    let client = app.sessions.client(&user, profile).await?;
    let mut events = client.events();
    let pin = app.sessions.pin(&user, &profile.name);
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
    let sessions = app.sessions.clone();
    let (owner, name) = (user.clone(), profile.name.clone());
    let login_client = client.clone();
    tokio::spawn(async move {
        let _pin = pin;
        match login_client.login(LoginMethod::Device).await {
            Ok(report) => signed_in(&sessions, &owner, &name, report.expires_at.0 as i64),
            Err(error) => {
                sessions.update_activity(&owner, &name, |a| a.last_error = Some(error.to_string()));
                let _ = failed_tx.send(error);
            }
        }
    });
    let code = async {
        loop {
            match events.recv().await {
                Ok(HostEvent::UserCode(code)) => break Some(code),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break None,
            }
        }
    };
    tokio::select! {
        code = code => match code {
            Some(code) => Ok(Json(json!({
                "user_code": code.user_code,
                "verification_uri": code.verification_uri,
                "verification_uri_complete": code.verification_uri_complete,
                "expires_in": (code.expires_at.0 as i64 - now_ms()).max(0) / 1000,
            }))),
            None => Err(ApiError::internal("the session stopped")),
        },
        Ok(error) = failed_rx => Err(ApiError::engine(&error)),
        _ = tokio::time::sleep(Duration::from_secs(60)) => {
            client.cancel();
            Err(ApiError::new(StatusCode::GATEWAY_TIMEOUT, "provider_timeout", "the provider did not answer the device authorization request in 60 s"))
        }
    }
}

/// `GET /auth/{profile}/status?user=`.
pub async fn status(
    State(app): State<AppState>,
    Path(profile): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let user = user_param(&query(&uri))?;
    let profile = app.sessions.profile(&profile)?;
    let sessions = &app.sessions;
    let live = sessions.known(&user, &profile.name);
    let report = if live || sessions.is_pinned(&user, &profile.name) {
        Some(
            sessions
                .client(&user, profile)
                .await?
                .status()
                .await
                .map_err(|e| ApiError::engine(&e))?,
        )
    } else {
        None
    };
    let status = report.as_ref().map(|r| &r.status);
    let connected = status.is_some_and(|s| s.logged_in);
    let env = profile.env_tokens.is_some() && sessions.known(ENV_USER, &profile.name);
    let activity = sessions.activity(&user, &profile.name);
    let suspended = activity.suspended_token.is_some();
    let source = match () {
        _ if connected && !suspended => Source::Oauth,
        _ if env => Source::Env,
        _ if profile.api_key.is_some() => Source::ApiKey,
        _ => Source::None,
    };
    Ok(Json(json!({
        "user": user,
        "profile": profile.name,
        "connected": connected,
        "source": source,
        "expires_at": status.and_then(|s| s.expires_at).map(|t| t.0 / 1000),
        "expires_in": status.and_then(|s| s.expires_in_secs),
        "scopes": status.map(|s| s.scopes.clone()).unwrap_or_default(),
        "identity": status.and_then(|s| s.identity.clone()),
        "login_in_progress": status.is_some_and(|s| s.login_in_progress),
        "refresh_token_present": status.is_some_and(|s| s.refresh_token_present),
        "fallback_available": profile.api_key.is_some(),
        "fallback_active": matches!(source, Source::ApiKey | Source::Env),
        "last_refresh_at": activity.last_refresh_at.map(|t| t / 1000),
        "last_error": activity.last_error,
        "failures": activity.failures,
        "fallbacks": activity.fallbacks,
        "storage_problem": report.and_then(|r| r.storage_problem),
    })))
}

/// `POST /auth/{profile}/logout?user=`: revokes and deletes; the delete happens even when
/// the provider fails, and the answer says what the provider did.
pub async fn logout(
    State(app): State<AppState>,
    Path(profile): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let user = user_param(&query(&uri))?;
    let profile = app.sessions.profile(&profile)?;
    let client = app.sessions.client(&user, profile).await?;
    let report = client
        .logout(false)
        .await
        .map_err(|e| ApiError::engine(&e))?;
    let key = (user.clone(), profile.name.clone());
    app.sessions.scheduler.forget(&key);
    app.sessions.forget_client(&user, &profile.name);
    let revoked = report.revoked();
    let failed = report.revocation_failed();
    tracing::info!(user, profile = %profile.name, revoked, "signed out");
    Ok(Json(json!({
        "logged_out": true,
        "revoked": revoked,
        "tokens_may_still_be_valid": !revoked && !report.server_calls.is_empty() || failed,
        "server_calls": report.server_calls,
        "end_session_url": report.end_session_url,
    })))
}
