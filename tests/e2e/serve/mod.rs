//! `tessera serve` as a process against the real provider: every route, the credential
//! chain's fallbacks, background refresh, and bad input (issue 14).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

mod faults;
mod sign_in;
mod tokens;

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

    /// The log once it holds `needle` (its lines arrive through a reader thread), or as
    /// it is after 5 s.
    pub(crate) async fn log_with(&self, needle: &str) -> String {
        for _ in 0..50 {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.log()
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
