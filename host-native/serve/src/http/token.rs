//! Tokens for the caller's API requests: `/token/{profile}` (the credential chain),
//! `/token/{profile}/rejected` (the API said 401/403), and `/refresh` in batch.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::{AppState, blocking, query, seconds_param, user_param};
use crate::error::ApiError;
use crate::scheduler::{CLAIM_MS, CONCURRENCY, refresh_one};
use crate::sessions::{Credential, Source, fingerprint};
use crate::store::now_ms;

fn answer(credential: Credential) -> Json<Value> {
    let now = now_ms();
    Json(json!({
        "access_token": credential.token.expose(),
        "token_type": "Bearer",
        "expires_at": credential.expires_at.map(|t| t.0 / 1000),
        "expires_in": credential.expires_at.map(|t| (t.0 as i64 - now).max(0) / 1000),
        "source": credential.source,
    }))
}

/// `GET /token/{profile}?user=&min_ttl=`: a valid access token (refreshed once for all
/// concurrent callers when it enters the refresh buffer), else the API key.
pub async fn get_token(
    State(app): State<AppState>,
    Path(profile): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let params = query(&uri);
    let user = user_param(&params)?;
    let min_ttl = seconds_param(&params, "min_ttl", 0)?;
    let profile = app.sessions.profile(&profile)?;
    let credential = app.sessions.credential(&user, profile, min_ttl).await?;
    Ok(answer(credential))
}

/// `POST /token/{profile}/rejected?user=` (body optional: `{"access_token": …}`, the
/// token the API refused; default: the current one). One refresh; when the token that
/// refresh produced is refused too, OAuth is set aside for this user until its token
/// changes, and the API key serves (logged).
pub async fn rejected(
    State(app): State<AppState>,
    Path(profile): Path<String>,
    uri: Uri,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = super::body_bytes(body)?;
    let user = user_param(&query(&uri))?;
    let profile = app.sessions.profile(&profile)?;
    let sessions = &app.sessions;
    let named = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "malformed_json",
                format!("the body is not JSON: {e}"),
            )
        })?;
        match value.get("access_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) => Some(token.clone()),
            Some(_) => {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_field",
                    "`access_token` must be a string",
                ));
            }
        }
    };
    if !sessions.has_session(&user, &profile.name).await {
        // Nothing of this user's to refresh: the chain decides (env tokens, API key).
        return Ok(answer(sessions.credential(&user, profile, 0).await?));
    }
    sessions.fresh().await;
    let client = sessions.client(&user, profile).await?;
    let current = match named {
        Some(token) => token,
        None => match client.cached_token(0) {
            Some(token) => token.access_token.expose().to_owned(),
            None => String::new(),
        },
    };
    let activity = sessions.activity(&user, &profile.name);
    if activity.refreshed_after_rejection == Some(fingerprint(&current)) {
        tracing::warn!(
            user, profile = %profile.name,
            "the API rejected the token a refresh had just produced; setting OAuth aside for this user"
        );
        sessions.update_activity(&user, &profile.name, |a| {
            a.suspended_token = Some(fingerprint(&current));
            a.last_error = Some("the API rejected the refreshed token too".into());
        });
        return match &profile.api_key {
            Some(_) => Ok(answer(sessions.credential(&user, profile, 0).await?)),
            None => Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "token_rejected",
                "the API rejected this user's token even after a refresh, and the profile has no API key; sign in again",
            )),
        };
    }
    let started = std::time::Instant::now();
    let result = client
        .token_rejected(tessera_engine::Secret::new(current))
        .await;
    sessions.after_slow_path(&user, &profile.name, &result, started);
    match result {
        Ok(token) => {
            sessions.update_activity(&user, &profile.name, |a| {
                a.refreshed_after_rejection = Some(fingerprint(token.access_token.expose()));
                a.suspended_token = None;
            });
            Ok(answer(Credential {
                token: tessera_engine::Secret::new(token.access_token.expose()),
                expires_at: Some(token.expires_at),
                source: Source::Oauth,
            }))
        }
        // The refresh failed (the grant is gone…): the chain's next link.
        Err(_) => Ok(answer(sessions.credential(&user, profile, 0).await?)),
    }
}

/// `POST /refresh?expiring_within=SECS`: refreshes now every stored session whose token
/// expires within SECS (default 300), a few at a time. Replicas sharing a database claim
/// their sessions first (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so a batch started on
/// every replica refreshes each session once.
pub async fn refresh_batch(State(app): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let within = seconds_param(&query(&uri), "expiring_within", 300)?;
    let cutoff = now_ms().saturating_add((within as i64).saturating_mul(1000));
    let started = std::time::Instant::now();
    let permits = Arc::new(Semaphore::new(CONCURRENCY * 4));
    let mut done: std::collections::HashSet<(String, String)> = Default::default();
    let (mut refreshed, mut failed, mut ended) = (0u64, 0u64, 0u64);
    loop {
        let vault = app.sessions.vault.clone();
        let claimed = blocking(move || {
            vault
                .db
                .claim_expiring(cutoff, &vault.holder, now_ms(), CLAIM_MS, 256)
                .map_err(ApiError::storage)
        })
        .await?;
        // A session refreshed in this batch that still expires within the window (a
        // window longer than the tokens live) is not taken twice.
        let fresh: Vec<_> = claimed
            .into_iter()
            .filter(|row| done.insert((row.user.clone(), row.profile.clone())))
            .collect();
        if fresh.is_empty() {
            break;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for row in fresh {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let sessions = app.sessions.clone();
            tasks.spawn(async move {
                let key = (row.user.clone(), row.profile.clone());
                let result = refresh_one(&sessions, key, row.expires_at).await;
                // Done with it: a batch must not leave thousands of clients running.
                if !sessions.is_pinned(&row.user, &row.profile) {
                    sessions.forget_client(&row.user, &row.profile);
                }
                drop(permit);
                result
            });
        }
        while let Some(outcome) = tasks.join_next().await {
            match outcome {
                Ok(Ok(true)) => refreshed += 1,
                Ok(Ok(false)) => ended += 1,
                _ => failed += 1,
            }
        }
    }
    let vault = app.sessions.vault.clone();
    let index = blocking(move || vault.db.index().map_err(ApiError::storage)).await?;
    let skipped = index
        .iter()
        .filter(|row| !done.contains(&(row.user.clone(), row.profile.clone())))
        .count();
    Ok(Json(json!({
        "refreshed": refreshed,
        "failed": failed,
        "ended": ended,
        "skipped": skipped,
        "took_ms": started.elapsed().as_millis() as u64,
    })))
}
