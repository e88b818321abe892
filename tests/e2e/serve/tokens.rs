//! Tokens through the service: import and export, the credential chain and its fallbacks,
//! `rejected`, background and batch refresh.

use std::time::Duration;

use serde_json::json;

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn import_then_export_as_json_claude_shape_and_env() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = Serve::start(&provider, &[], false);
    // Real tokens from a sign-in, imported for another user in both shapes.
    serve.sign_in("alice").await;
    let real = serve.export("alice").await;
    let refresh = real["refresh_token"].as_str().unwrap().to_owned();
    let access = real["access_token"].as_str().unwrap().to_owned();
    let expires = now_secs() + 3000;

    let (status, stored) = serve
        .put(
            "/users/erin/credentials/test",
            json!({"access_token": access, "refresh_token": refresh, "expires_at": expires}),
        )
        .await;
    assert_eq!(status, 200, "{stored}");
    let exported = serve.export("erin").await;
    assert_eq!(exported["access_token"], access.as_str());
    assert_eq!(exported["refresh_token"], refresh.as_str());
    assert_eq!(exported["expires_at"], expires);

    // Milliseconds, in the ~/.claude/.credentials.json shape.
    let (status, _) = serve
        .put(
            "/users/frank/credentials/test",
            json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh,
                   "expiresAt": expires * 1000 + 5, "scopes": ["openid"]}}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, claude) = serve
        .get("/users/frank/credentials/test?shape=claude")
        .await;
    assert_eq!(claude["claudeAiOauth"]["accessToken"], access.as_str());
    assert_eq!(claude["claudeAiOauth"]["expiresAt"], expires * 1000 + 5);
    assert_eq!(claude["claudeAiOauth"]["scopes"], json!(["openid"]));

    let env = serve
        .http
        .get(format!(
            "{}/users/erin/credentials/test?format=env",
            serve.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        env.contains(&format!("TESSERA_ACCESS_TOKEN={access}\n")),
        "{env}"
    );
    assert!(env.contains(&format!("TESSERA_REFRESH_TOKEN={refresh}\n")));
    assert!(env.contains(&format!("TESSERA_EXPIRES_AT={}\n", expires * 1000)));
    assert!(env.contains("TESSERA_USE_OAUTH=1\n"));

    // An expired import is refreshed before it is exported: once, whether the export
    // or the background schedule (which sees it due at once) gets there first.
    let before = provider.refresh_requests().await;
    let (_, _) = serve
        .put(
            "/users/gina/credentials/test",
            json!({"access_token": "old", "refresh_token": refresh, "expires_at": now_secs() - 10}),
        )
        .await;
    let fresh = serve.export("gina").await;
    assert_eq!(provider.refresh_requests().await, before + 1);
    assert_ne!(fresh["access_token"], "old");
    assert!(
        provider
            .is_active(fresh["access_token"].as_str().unwrap())
            .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_refreshes_before_expiry_without_any_request() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "8")]);
    let serve = Serve::start(&provider, &["--refresh-buffer", "5s"], false);
    serve.sign_in("hank").await;
    let (_, first) = serve.get("/token/test?user=hank").await;
    let before = provider.refresh_requests().await;
    // Due about 3 s after sign-in (8 s lifetime − 5 s buffer − jitter); the client the
    // sign-in started is idle meanwhile, so this is the scheduler's doing or the session's.
    let mut refreshed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if provider.refresh_requests().await > before {
            refreshed = true;
            break;
        }
    }
    assert!(refreshed, "no background refresh within 10 s");
    let (_, status) = serve.get("/auth/test/status?user=hank").await;
    assert!(
        status["last_refresh_at"].is_u64() || status["expires_in"].as_i64().unwrap() > 4,
        "{status}"
    );
    let (_, second) = serve.get("/token/test?user=hank").await;
    assert_ne!(first["access_token"], second["access_token"]);
    assert_eq!(second["source"], "oauth");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_side_revocation_falls_back_to_the_api_key_and_says_so() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = Serve::start(&provider, &["-vv"], false);
    serve.sign_in("ivy").await;
    let tokens = serve.export("ivy").await;
    let (access, refresh) = (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    );
    provider.revoke_as(&refresh, "refresh_token").await;
    provider.revoke(&access).await;

    // A token that must last longer than the current one: a refresh, which the provider
    // refuses; the engine ends the session and the API key takes over.
    let (status, token) = serve.get("/token/test?user=ivy&min_ttl=999999").await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["source"], "api_key", "{token}");
    assert_eq!(token["access_token"], API_KEY);
    let (_, status) = serve.get("/auth/test/status?user=ivy").await;
    assert_eq!(status["connected"], false, "{status}");
    assert_eq!(status["source"], "api_key");
    assert_eq!(status["fallback_active"], true);
    assert!(
        status["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{status}"
    );
    assert!(status["fallbacks"].as_u64().unwrap() >= 1);

    let log = serve.log_with("falling back to the API key").await;
    assert!(log.contains("falling back to the API key"), "{log}");
    // Trace-level logging, and no secret in it.
    for secret in [access.as_str(), refresh.as_str(), API_KEY, TOKEN] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_refreshes_exactly_once_then_the_api_key_serves() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = Serve::start(&provider, &[], false);
    serve.sign_in("jack").await;
    let (_, first) = serve.get("/token/test?user=jack").await;
    let before = provider.refresh_requests().await;

    let (status, second) = serve
        .call(
            reqwest::Method::POST,
            "/token/test/rejected?user=jack",
            Some(json!({"access_token": first["access_token"]})),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["source"], "oauth");
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(
        provider.refresh_requests().await,
        before + 1,
        "exactly one refresh"
    );
    let (_, metrics) = serve.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("tessera_refreshes_total{profile=\"test\"} 1\n"),
        "the refresh counted once: {metrics}"
    );

    // The API refuses the new token too: no second refresh, the API key, logged.
    let (_, third) = serve
        .call(
            reqwest::Method::POST,
            "/token/test/rejected?user=jack",
            Some(json!({"access_token": second["access_token"]})),
        )
        .await;
    assert_eq!(third["source"], "api_key", "{third}");
    assert_eq!(
        provider.refresh_requests().await,
        before + 1,
        "still exactly one refresh"
    );
    let (_, token) = serve.get("/token/test?user=jack").await;
    assert_eq!(
        token["source"], "api_key",
        "OAuth stays aside while the token is the rejected one"
    );
    assert!(
        serve
            .log_with("setting OAuth aside")
            .await
            .contains("setting OAuth aside")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_given_once_in_the_environment_serve_users_without_their_own() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    // Real tokens, from a sign-in on a first service.
    let first = Serve::start(&provider, &[], false);
    first.sign_in("source").await;
    let given = first.export("source").await;
    drop(first);

    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), &provider.issuer, "");
    let expires = given["expires_at"].to_string();
    let env = [
        ("TESSERA_USE_OAUTH", "1"),
        (
            "TESSERA_ACCESS_TOKEN",
            given["access_token"].as_str().unwrap(),
        ),
        (
            "TESSERA_REFRESH_TOKEN",
            given["refresh_token"].as_str().unwrap(),
        ),
        ("TESSERA_EXPIRES_AT", expires.as_str()),
    ];
    let mut serve = Serve::start_with(dir, &[], false, &env);
    let (_, token) = serve.get("/token/test?user=paul").await;
    assert_eq!(token["source"], "env", "{token}");
    assert_eq!(token["access_token"], given["access_token"]);
    let (_, status) = serve.get("/auth/test/status?user=paul").await;
    assert_eq!(
        (
            status["source"].as_str(),
            status["fallback_active"].as_bool()
        ),
        (Some("env"), Some(true)),
        "{status}"
    );

    // Rotated once by the service; a restart with the same variables keeps the rotated
    // pair (the variables hold a refresh token the provider has already replaced).
    let (_, rotated) = serve.get("/token/test?user=paul&min_ttl=999999").await;
    assert_eq!(rotated["source"], "env", "{rotated}");
    assert_ne!(rotated["access_token"], given["access_token"]);
    serve.kill();
    let kept = std::mem::replace(&mut serve.dir, tempfile::tempdir().unwrap());
    let again = Serve::start_with(kept, &[], false, &env);
    let (_, after) = again.get("/token/test?user=paul").await;
    assert_eq!(after["access_token"], rotated["access_token"], "{after}");
    assert!(
        provider
            .is_active(after["access_token"].as_str().unwrap())
            .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_refresh_refreshes_each_expiring_session_once() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = Serve::start(&provider, &[], false);
    // Three users expiring in 400 s (real grants): after the 300 s buffer, so the
    // scheduler leaves them for another minute; one user expiring in an hour.
    let mut users = Vec::new();
    for user in ["ria", "sam", "tom", "uma"] {
        serve.sign_in(user).await;
        users.push((user, serve.export(user).await));
    }
    for (user, tokens) in &users[..3] {
        let soon = json!({"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
                          "expires_at": now_secs() + 400});
        assert_eq!(
            serve
                .put(&format!("/users/{user}/credentials/test"), soon)
                .await
                .0,
            200
        );
    }
    let before = provider.refresh_requests().await;
    let (status, batch) = serve.post("/refresh?expiring_within=600").await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["refreshed"], 3, "{batch}");
    assert_eq!(batch["failed"], 0, "{batch}");
    assert_eq!(batch["skipped"], 1, "{batch}");
    assert_eq!(provider.refresh_requests().await, before + 3, "each once");
    for (user, tokens) in &users[..3] {
        let (_, token) = serve.get(&format!("/token/test?user={user}")).await;
        assert_ne!(token["access_token"], tokens["access_token"], "{user}");
        assert!(token["expires_in"].as_u64().unwrap() > 3000);
    }
    let (status, bad) = serve.post("/refresh?expiring_within=-1").await;
    assert_eq!(
        (status, bad["error"].as_str()),
        (400, Some("invalid_parameter"))
    );
}
