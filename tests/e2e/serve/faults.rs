//! Bad input and faults: typed errors, and the stored data unchanged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_typed_errors_and_leaves_the_stored_data_unchanged() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = Serve::start(&provider, &[], false);
    serve.sign_in("lee").await;
    let stored = serve.export("lee").await;
    let plain = reqwest::Client::new();
    let url = &serve.url;

    let expect = |status: u16, body: &Value, code: &str, want: u16| {
        assert_eq!(status, want, "{code}: {body}");
        assert_eq!(body["error"], code, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    };
    let (s, b) = serve.get("/token/nosuch?user=lee").await;
    expect(s, &b, "unknown_profile", 404);
    let (s, b) = serve.get("/token/test?user=no%20spaces").await;
    expect(s, &b, "invalid_user", 400);
    let (s, b) = serve.get("/users/nobody/credentials/test").await;
    expect(s, &b, "unknown_user", 404);
    let (s, b) = serve.get("/token/test?user=lee&min_ttl=soon").await;
    expect(s, &b, "invalid_parameter", 400);
    let (s, b) = serve.get("/no/such/route").await;
    expect(s, &b, "not_found", 404);

    let missing = plain
        .get(format!("{url}/token/test?user=lee"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    assert_eq!(missing.json_text().await["error"], "missing_token");
    let wrong = plain
        .get(format!("{url}/token/test?user=lee"))
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert_eq!(wrong.json_text().await["error"], "invalid_token");
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1.
    let rebound = plain
        .get(format!("{url}/token/test?user=lee"))
        .bearer_auth(TOKEN)
        .header("host", "evil.example:8485")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 421);
    assert_eq!(rebound.json_text().await["error"], "host_not_allowed");
    // No CORS unless configured.
    let preflight = plain
        .request(reqwest::Method::OPTIONS, format!("{url}/token/test"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let huge = json!({"access_token": "a".repeat(70 * 1024), "expires_at": 1});
    let (s, b) = serve.put("/users/lee/credentials/test", huge).await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["error"], "body_too_large", "{b}");
    let (s, b) = serve
        .call(reqwest::Method::PUT, "/users/lee/credentials/test", None)
        .await;
    expect(s, &b, "malformed_json", 422);
    let (s, b) = serve
        .put(
            "/users/lee/credentials/test",
            json!({"access_token": "x", "refresh_token": 7, "expires_at": 1}),
        )
        .await;
    expect(s, &b, "invalid_field", 422);
    assert!(
        b["message"].as_str().unwrap().contains("refresh_token"),
        "{b}"
    );
    let (s, b) = serve
        .put(
            "/users/lee/credentials/test",
            json!({"claudeAiOauth": {"accessToken": "x"}}),
        )
        .await;
    expect(s, &b, "invalid_field", 422);
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("claudeAiOauth.expiresAt"),
        "{b}"
    );

    assert_eq!(
        serve.export("lee").await,
        stored,
        "nothing above changed lee's tokens"
    );
}

/// A provider that answers HTML, a 5xx or garbage to the refresh (what the real one
/// cannot be made to do): a typed 502, and the stored session is unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn a_broken_provider_gets_a_typed_error_and_the_session_is_kept() {
    let mut broken = mockito::Server::new_async().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[profiles.test]\nclient_id = \"tessera-cli\"\ndiscovery = false\n\
             endpoints = {{ authorization = \"{u}/authorize\", token = \"{u}/token\" }}\n",
            u = broken.url()
        ),
    )
    .unwrap();
    let serve = Serve::start_in(dir, &[], false);
    let imported =
        json!({"access_token": "at-old", "refresh_token": "rt-old", "expires_at": now_secs() - 5});
    let (s, _) = serve.put("/users/mia/credentials/test", imported).await;
    assert_eq!(s, 200);
    for (status, content_type, body) in [
        (
            503,
            "text/html",
            "<html><body>Service Unavailable</body></html>",
        ),
        (200, "text/html", "<html>login page</html>"),
        (200, "application/json", "{\"access_token\": "),
        (500, "application/json", "{}"),
    ] {
        let mock = broken
            .mock("POST", "/token")
            .with_status(status)
            .with_header("content-type", content_type)
            .with_body(body)
            .create_async()
            .await;
        let (s, b) = serve.get("/token/test?user=mia").await;
        assert_eq!(s, 502, "{status} {body}: {b}");
        assert!(b["error"].as_str().unwrap().starts_with("provider_"), "{b}");
        mock.remove_async().await;
        let (_, state) = serve.get("/auth/test/status?user=mia").await;
        assert_eq!(
            state["connected"], true,
            "{status} {body}: session kept: {state}"
        );
    }
    let (_, exported) = serve.get("/users/mia/credentials/test").await;
    assert!(
        exported["error"].as_str().is_some(),
        "export refreshes first, which fails: {exported}"
    );
    let db = serve.dir.path().join("serve.db");
    assert!(db.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_refresh_leaves_every_session_intact() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let mut serve = Serve::start(&provider, &[], false);
    serve.sign_in("nora").await;
    serve.sign_in("otto").await;
    provider.delay_refresh_answers(3000).await;
    let url = serve.url.clone();
    let storm = tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .get(format!("{url}/token/test?user=nora&min_ttl=999999"))
            .bearer_auth(TOKEN)
            .send()
            .await;
    });
    // The refresh request has left and the provider holds the answer.
    tokio::time::sleep(Duration::from_millis(800)).await;
    serve.kill();
    storm.abort();
    provider.delay_refresh_answers(0).await;
    let dir = tempfile::TempDir::with_prefix("unused").unwrap();
    let kept = std::mem::replace(&mut serve.dir, dir);
    let restarted = Serve::start_in(kept, &[], false);
    for user in ["nora", "otto"] {
        let (_, status) = restarted
            .get(&format!("/auth/test/status?user={user}"))
            .await;
        assert_eq!(status["connected"], true, "{user}: {status}");
        assert_eq!(status["storage_problem"], Value::Null, "{user}: {status}");
    }
    let (_, otto) = restarted.get("/token/test?user=otto").await;
    assert!(
        provider
            .is_active(otto["access_token"].as_str().unwrap())
            .await
    );
}

/// A provider that accepts the connection and never answers: after the profile's
/// `http_timeout_secs`, a typed 502 and the session is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_never_answers_times_out_with_a_typed_error() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in silent.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[profiles.test]\nclient_id = \"tessera-cli\"\ndiscovery = false\nhttp_timeout_secs = 1\n\
             endpoints = {{ authorization = \"http://{address}/authorize\", token = \"http://{address}/token\" }}\n"
        ),
    )
    .unwrap();
    let serve = Serve::start_in(dir, &[], false);
    let imported =
        json!({"access_token": "at-old", "refresh_token": "rt-old", "expires_at": now_secs() - 5});
    assert_eq!(
        serve.put("/users/wes/credentials/test", imported).await.0,
        200
    );
    let started = std::time::Instant::now();
    let (status, body) = serve.get("/token/test?user=wes").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "provider_unreachable", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (_, state) = serve.get("/auth/test/status?user=wes").await;
    assert_eq!(state["connected"], true, "{state}");
    assert_eq!(state["refresh_token_present"], true);
    assert!(
        !held.lock().unwrap().is_empty(),
        "the request reached the silent provider"
    );
}
