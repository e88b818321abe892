//! django-oauth-toolkit 3.4.1 (PyPI) as the authorization server: tests/interop/dot/,
//! run by the virtualenv `.ci/run` makes in target/interop-venv.

use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;

use super::Server;
use crate::support::{http_client, repo_root, start_ready};

struct Dot {
    child: Child,
    _stdin: ChildStdin,
    issuer: String,
    http: reqwest::Client,
}

impl Dot {
    /// Starts the server with access tokens valid for `ttl` seconds.
    fn start(ttl: u32) -> Dot {
        let python = repo_root().join("target/interop-venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: create it as .ci/run does (python3 -m venv target/interop-venv && \
             target/interop-venv/bin/pip install -r tests/interop/dot/requirements.txt)",
            python.display()
        );
        let mut command = Command::new(python);
        command
            .arg(repo_root().join("tests/interop/dot/server.py"))
            .env("ACCESS_TOKEN_TTL", ttl.to_string())
            .stderr(if std::env::var_os("TESSERA_TEST_PROVIDER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        let (child, stdin, issuer, _) = start_ready(command);
        Dot {
            child,
            _stdin: stdin,
            issuer,
            http: http_client(),
        }
    }

    fn origin(&self) -> &str {
        self.issuer.trim_end_matches("/o")
    }

    async fn form(&self, path: &str, body: &[(&str, &str)], basic: bool) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.issuer))
            .header("content-type", "application/x-www-form-urlencoded");
        if basic {
            request = request.basic_auth("tessera-introspector", Some("introspector-secret"));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(body)
            .finish();
        let response = request.body(body).send().await.expect("DOT answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for Dot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server for Dot {
    fn issuer(&self) -> &str {
        &self.issuer
    }

    fn browser_login(&self) -> Vec<String> {
        [
            "--issuer",
            &self.issuer,
            "--client-id",
            "tessera-cli",
            "--scope",
            "openid offline_access email profile",
        ]
        .map(String::from)
        .to_vec()
    }

    /// A DOT application has one grant type: the device flow has a client of its own. DOT
    /// lists its device authorization endpoint in neither metadata document.
    fn device_login(&self) -> Vec<String> {
        [
            "--issuer",
            &self.issuer,
            "--client-id",
            "tessera-device",
            "--scope",
            "openid offline_access email profile",
            "--device-endpoint",
            &format!("{}/device-authorization/", self.issuer),
        ]
        .map(String::from)
        .to_vec()
    }

    fn email(&self) -> &str {
        "alice@example.test"
    }

    async fn refreshes(&self) -> (u64, u64) {
        let response = self
            .http
            .get(format!("{}/test/counters", self.origin()))
            .send()
            .await
            .expect("counters");
        let counters: Value =
            serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
        (
            counters["token_requests"]["refresh_token"]
                .as_u64()
                .unwrap_or(0),
            counters["refresh_invalid_grant"].as_u64().unwrap_or(0),
        )
    }

    async fn is_active(&self, access_token: &str) -> bool {
        let (status, answer) = self
            .form("/introspect/", &[("token", access_token)], true)
            .await;
        assert_eq!(status, 200, "{answer}");
        answer["active"] == true
    }

    async fn refresh_refused(&self, refresh_token: &str) -> bool {
        let (status, answer) = self
            .form(
                "/token/",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                    ("client_id", "tessera-cli"),
                ],
                false,
            )
            .await;
        status == 400 && answer["error"] == "invalid_grant"
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs django-oauth-toolkit in target/interop-venv: make interop-test"]
async fn dot_login_status_token_logout() {
    super::login_status_token_logout(&Dot::start(3600)).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs django-oauth-toolkit in target/interop-venv: make interop-test"]
async fn dot_expiry_refreshes_once() {
    super::expiry_refreshes_once(&Dot::start(super::SHORT_TTL), super::SHORT_TTL).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs django-oauth-toolkit in target/interop-venv: make interop-test"]
async fn dot_sixteen_processes_refresh_once() {
    super::sixteen_processes_refresh_once(&Dot::start(super::SHORT_TTL), super::SHORT_TTL).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs django-oauth-toolkit in target/interop-venv: make interop-test"]
async fn dot_device_login_with_typed_code() {
    super::device_login_with_typed_code(&Dot::start(3600)).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs django-oauth-toolkit in target/interop-venv: make interop-test"]
async fn dot_denied_login() {
    super::denied_login(&Dot::start(3600)).await;
}
