//! Signing in and out through the service: browser (start and callback), device, the
//! dashboard, and the Unix socket.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn browser_sign_in_through_start_and_callback_then_token_status_settings() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    // Through the CLI: `tessera serve` hands over to tessera-serve.
    let serve = Serve::start(&provider, &[], true);

    let signed_in = serve.sign_in("alice").await;
    assert_eq!(signed_in["signed_in"], true, "{signed_in}");
    assert_eq!(signed_in["identity"]["email"], "alice@example.test");

    let (status, token) = serve.get("/token/test?user=alice").await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["source"], "oauth");
    let access = token["access_token"].as_str().unwrap().to_owned();
    assert!(provider.is_active(&access).await);
    assert!(token["expires_in"].as_u64().unwrap() > 3000);

    let (_, status) = serve.get("/auth/test/status?user=alice").await;
    assert_eq!(status["connected"], true, "{status}");
    assert_eq!(status["source"], "oauth");
    assert_eq!(status["fallback_available"], true);
    assert_eq!(status["fallback_active"], false);
    assert_eq!(status["identity"]["email"], "alice@example.test");
    assert!(
        status["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("openid"))
    );

    let (_, settings) = serve.get("/settings?user=alice").await;
    assert_eq!(
        settings["profiles"]["test"]["hasOAuthToken"], true,
        "{settings}"
    );
    assert_eq!(
        settings["profiles"]["test"]["oauthExpiresAt"]
            .as_u64()
            .unwrap()
            / 1000,
        token["expires_at"].as_u64().unwrap()
    );
    let (_, others) = serve.get("/settings?user=bob").await;
    assert_eq!(others["profiles"]["test"]["hasOAuthToken"], false);

    // bob is not signed in: the API key, and the status says where it came from.
    let (status, bob) = serve.get("/token/test?user=bob").await;
    assert_eq!(
        (status, bob["source"].as_str()),
        (200, Some("api_key")),
        "{bob}"
    );
    assert_eq!(bob["access_token"], API_KEY);

    let (_, healthz) = serve.get("/healthz").await;
    assert_eq!(healthz["ok"], true);
    let (_, metrics) = serve.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("tessera_tokens_served_total{profile=\"test\",source=\"oauth\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_http_request_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_forged_or_missing_state_gets_400_and_stores_nothing() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = Serve::start(&provider, &[], false);
    let (_, start) = serve.get("/auth/test/start?user=carol").await;
    let state = start["state"].as_str().unwrap().to_owned();
    let plain = reqwest::Client::new();
    for query in [
        format!("code=abc&state=not-{state}"),
        "code=abc".to_owned(),
        "garbage%%%".to_owned(),
    ] {
        let answer = plain
            .get(format!("{}/auth/test/callback?{query}", serve.url))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 400, "{query}");
        let body: Value = answer.json_text().await;
        assert!(
            matches!(
                body["error"].as_str(),
                Some("invalid_state" | "invalid_callback")
            ),
            "{body}"
        );
    }
    // A browser gets a small HTML page with the message, escaped.
    let page = plain
        .get(format!(
            "{}/auth/test/callback?code=a&state=%3Cscript%3E",
            serve.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 400);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<h1>Sign-in failed</h1>") && !html.contains("<script>"),
        "{html}"
    );

    // The real redirect, delivered twice: the first signs in, the replay is refused.
    let callback = browse_to_callback(start["authorization_url"].as_str().unwrap()).await;
    let first = plain
        .get(&callback)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let replay = plain
        .get(&callback)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 400);
    let (_, status) = serve.get("/auth/test/status?user=carol").await;
    assert_eq!(
        status["connected"], true,
        "the replay did not undo the sign-in: {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn device_sign_in_the_service_polls_and_status_shows_progress() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = Serve::start(&provider, &[], false);
    let (status, device) = serve.post("/auth/test/device?user=dave").await;
    assert_eq!(status, 200, "{device}");
    let code = device["user_code"].as_str().expect("user code").to_owned();
    assert!(
        device["verification_uri"]
            .as_str()
            .unwrap()
            .starts_with(&provider.issuer)
    );
    let (_, during) = serve.get("/auth/test/status?user=dave").await;
    assert_eq!(during["login_in_progress"], true, "{during}");
    assert_eq!(during["connected"], false);

    assert_eq!(provider.approve_device(&code).await["approved"], true);
    let mut connected = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, status) = serve.get("/auth/test/status?user=dave").await;
        if status["connected"] == true {
            connected = status;
            break;
        }
    }
    assert_eq!(
        connected["source"], "oauth",
        "the service finished the device login: {connected}"
    );
    let (_, token) = serve.get("/token/test?user=dave").await;
    assert!(
        provider
            .is_active(token["access_token"].as_str().unwrap())
            .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_at_the_provider_and_deletes() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = Serve::start(&provider, &[], false);
    serve.sign_in("kim").await;
    let tokens = serve.export("kim").await;
    let (status, out) = serve.post("/auth/test/logout?user=kim").await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["logged_out"], true);
    assert_eq!(out["revoked"], true, "{out}");
    assert_eq!(out["tokens_may_still_be_valid"], false);
    assert!(
        !provider
            .is_active(tokens["access_token"].as_str().unwrap())
            .await
    );
    assert!(
        !provider
            .is_active(tokens["refresh_token"].as_str().unwrap())
            .await
    );
    let (status, _) = serve.get("/users/kim/credentials/test").await;
    assert_eq!(status, 404, "deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_in_headless_chromium_shows_users_state_and_expiry() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        panic!("this test needs chromium (apt-get install chromium; .ci/run installs it)");
    };
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = Serve::start(&provider, &[], false);
    serve.sign_in("alice").await;
    serve.sign_in("bob").await;
    let _ = serve.get("/token/test?user=carol").await; // API key only

    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=3000",
            "--dump-dom",
            // The link the service prints: the token becomes a cookie, then `/` loads.
            &format!("{}/?token={TOKEN}", serve.url),
        ])
        .env("TMPDIR", profile.path())
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("<table id=\"sessions\""),
        "no table: {dom}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for user in ["alice", "bob"] {
        let row = dom
            .split("<tr ")
            .find(|r| r.contains(&format!("data-user=\"{user}\"")))
            .unwrap_or_else(|| panic!("no row for {user}: {dom}"));
        assert!(row.contains("signed in"), "{row}");
        assert!(row.contains("data-expires-at="), "{row}");
        let countdown: i64 = row
            .split("class=\"countdown\"")
            .nth(1)
            .and_then(|r| r.split('>').nth(1))
            .and_then(|r| r.split('s').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no countdown: {row}"));
        assert!((3000..=3600).contains(&countdown), "{countdown}");
    }
    let carol = dom
        .split("<tr ")
        .find(|r| r.contains("data-user=\"carol\""))
        .expect("carol");
    assert!(carol.contains("fallback: API key"), "{carol}");
    assert!(
        !dom.contains(TOKEN),
        "the page does not show the service token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unix_socket_serves_the_same_routes() {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("serve.sock");
    let provider = Provider::start(&[]);
    write_profile(dir.path(), &provider.issuer, "");
    let mut child = Command::new(serve_bin())
        .args([
            "--config-dir",
            dir.path().to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ])
        .env("TESSERA_SERVE_TOKEN", TOKEN)
        .env("TEST_API_KEY", API_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("READY "), "{line}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only this user may connect");

    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/token/test?user=vic")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let token: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(token["source"], "api_key", "{token}");
    let _ = child.kill();
    let _ = child.wait();
}
