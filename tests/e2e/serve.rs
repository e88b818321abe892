//! `tessera serve` as a process against the real provider: every route, the credential
//! chain's fallbacks, background refresh, and bad input (issue 14).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

pub(crate) const TOKEN: &str = "serve-test-token-0123456789";
pub(crate) const API_KEY: &str = "sk-test-fallback-key-42";

/// One running service, its config directory and what it wrote to stderr.
pub(crate) struct Serve {
    child: Child,
    pub(crate) url: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) http: reqwest::Client,
    log: Arc<Mutex<String>>,
}

pub(crate) fn write_profile(dir: &Path, issuer: &str, extra: &str) {
    let config = format!(
        "[profiles.test]\nissuer = \"{issuer}\"\nclient_id = \"tessera-cli\"\n\
         scopes = [\"openid\", \"offline_access\", \"email\"]\napi_key_env = \"TEST_API_KEY\"\n{extra}"
    );
    std::fs::write(dir.join("config.toml"), config).expect("config.toml");
}

impl Serve {
    /// `tessera-serve` (or `tessera serve` when `via_cli`) on a free port.
    pub(crate) fn start(provider: &Provider, args: &[&str], via_cli: bool) -> Serve {
        let dir = tempfile::tempdir().expect("temp dir");
        write_profile(dir.path(), &provider.issuer, "");
        Self::start_in(dir, args, via_cli)
    }

    pub(crate) fn start_in(dir: tempfile::TempDir, args: &[&str], via_cli: bool) -> Serve {
        Self::start_with(dir, args, via_cli, &[])
    }

    pub(crate) fn start_with(
        dir: tempfile::TempDir,
        args: &[&str],
        via_cli: bool,
        env: &[(&str, &str)],
    ) -> Serve {
        let serve = serve_bin();
        let mut command = if via_cli {
            let mut c = Command::new(tessera_bin());
            c.arg("serve");
            c
        } else {
            Command::new(serve)
        };
        command
            .args([
                "--config-dir",
                dir.path().to_str().expect("utf-8 path"),
                "--port",
                "0",
            ])
            .args(args)
            .env("TESSERA_SERVE_TOKEN", TOKEN)
            .env("TEST_API_KEY", API_KEY)
            .env_remove("TESSERA_CONFIG_DIR")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("tessera-serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("TESSERA_TEST_SERVE_LOG").is_some() {
                    eprintln!("serve: {line}");
                }
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("READY line");
        let ready: Value = serde_json::from_str(line.trim_start_matches("READY ").trim())
            .unwrap_or_else(|e| {
                panic!("bad READY line {line:?}: {e}; log: {}", log.lock().unwrap())
            });
        let url = ready["url"].as_str().expect("url").to_owned();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Serve {
            child,
            url,
            dir,
            http,
            log,
        }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("service answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, None).await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// A browser sign-in: `/auth/test/start`, then the provider (which approves at once)
    /// and its redirect to the callback route, followed like a browser.
    pub(crate) async fn sign_in(&self, user: &str) -> Value {
        let (status, start) = self.get(&format!("/auth/test/start?user={user}")).await;
        assert_eq!(status, 200, "{start}");
        assert!(
            start["expires_in"].as_u64().unwrap() > 500,
            "ten minutes: {start}"
        );
        let callback = browse_to_callback(start["authorization_url"].as_str().expect("url")).await;
        let landed = reqwest::Client::new()
            .get(&callback)
            .header("accept", "application/json")
            .send()
            .await
            .expect("the callback answers");
        assert_eq!(landed.status().as_u16(), 200, "{callback}");
        landed.json_text().await
    }

    /// The stored tokens, as exported.
    pub(crate) async fn export(&self, user: &str) -> Value {
        let (status, exported) = self.get(&format!("/users/{user}/credentials/test")).await;
        assert_eq!(status, 200, "{exported}");
        exported
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a browser does at the provider (which signs in and consents by itself): follows
/// its redirects, keeping its cookies, until one points at the service's callback, whose
/// URL is returned (not requested).
pub(crate) async fn browse_to_callback(start: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut cookies: std::collections::BTreeMap<String, String> = Default::default();
    let mut url = reqwest::Url::parse(start).expect("authorization URL");
    for _ in 0..20 {
        assert_eq!(url.host_str(), Some("127.0.0.1"), "only loopback: {url}");
        if url.path().ends_with("/auth/test/callback") {
            return url.to_string();
        }
        let cookie: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let response = browser
            .get(url.clone())
            .header("cookie", cookie.join("; "))
            .send()
            .await
            .expect("the provider answers");
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap_or("").split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_else(|| panic!("stuck at {url}: {}", response.status()))
            .to_owned();
        url = url.join(&location).expect("redirect URL");
    }
    panic!("too many redirects");
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

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

/// `.json()` needs reqwest's json feature; this reads the text and parses it.
pub(crate) trait JsonText {
    async fn json_text(self) -> Value;
}

impl JsonText for reqwest::Response {
    async fn json_text(self) -> Value {
        let text = self.text().await.expect("body");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
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

    // An expired import is refreshed before it is exported.
    let (_, _) = serve
        .put(
            "/users/gina/credentials/test",
            json!({"access_token": "old", "refresh_token": refresh, "expires_at": now_secs() - 10}),
        )
        .await;
    let before = provider.refresh_requests().await;
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

    let log = serve.log();
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
    assert!(serve.log().contains("setting OAuth aside"));
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
