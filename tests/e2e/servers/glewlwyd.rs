//! glewlwyd 2.7.5 (Debian's package, `.ci/run` installs it) as the authorization server:
//! tests/interop/glewlwyd/server.mjs sets it up and starts it.

use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;

use super::Server;
use crate::support::{http_client, repo_root, start_ready};

struct Glewlwyd {
    child: Child,
    stdin: Option<ChildStdin>,
    issuer: String,
    database: String,
    /// glewlwyd compares redirect URIs exactly, port included: tessera logs in with --port.
    callback_port: u16,
    http: reqwest::Client,
}

impl Glewlwyd {
    /// Starts glewlwyd with access tokens valid for `ttl` seconds.
    fn start(ttl: u32) -> Glewlwyd {
        assert!(
            std::path::Path::new("/usr/bin/glewlwyd").exists(),
            "glewlwyd is missing: apt-get install glewlwyd (as .ci/run does)"
        );
        let callback_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new("node");
        command
            .arg(repo_root().join("tests/interop/glewlwyd/server.mjs"))
            .env("ACCESS_TOKEN_TTL", ttl.to_string())
            .env("CALLBACK_PORT", callback_port.to_string())
            .stderr(if std::env::var_os("TESSERA_TEST_PROVIDER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        let (child, stdin, issuer, ready) = start_ready(command);
        let database = ready["database"].as_str().expect("database").to_owned();
        Glewlwyd {
            child,
            stdin: Some(stdin),
            issuer,
            database,
            callback_port,
            http: http_client(),
        }
    }

    /// Access tokens issued so far, by how they were granted (glewlwyd's own table).
    fn access_tokens_by_grant(&self) -> Vec<(String, u64)> {
        let out = Command::new("sqlite3")
            .arg(&self.database)
            .arg(
                "SELECT gpoa_authorization_type, count(*) FROM gpo_access_token \
                 GROUP BY gpoa_authorization_type;",
            )
            .output()
            .expect("sqlite3 runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (kind, count) = line.split_once('|')?;
                Some((kind.to_owned(), count.parse().ok()?))
            })
            .collect()
    }

    fn login_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "--issuer".to_owned(),
            self.issuer.clone(),
            "--client-id".to_owned(),
            "tessera-cli".to_owned(),
            "--scope".to_owned(),
            "openid offline_access email profile".to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
}

impl Drop for Glewlwyd {
    fn drop(&mut self) {
        // Its stdin closing stops glewlwyd and removes its directory; wait for that.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Server for Glewlwyd {
    fn issuer(&self) -> &str {
        &self.issuer
    }

    fn browser_login(&self) -> Vec<String> {
        self.login_args(&["--port", &self.callback_port.to_string()])
    }

    fn device_login(&self) -> Vec<String> {
        self.login_args(&[])
    }

    fn browser_env(&self) -> Vec<(&'static str, String)> {
        vec![("BROWSER_MODE", "glewlwyd".to_owned())]
    }

    fn email(&self) -> &str {
        "alice@example.test"
    }

    async fn refreshes(&self) -> (u64, u64) {
        let by_grant = self.access_tokens_by_grant();
        let refreshes = by_grant
            .iter()
            .filter(|(kind, _)| kind == REFRESH_GRANT)
            .map(|(_, n)| n)
            .sum();
        (refreshes, 0)
    }

    async fn is_active(&self, access_token: &str) -> bool {
        let response = self
            .http
            .get(format!("{}/userinfo", self.issuer))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("glewlwyd answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        status == 200 && answer["sub"].is_string()
    }

    async fn refresh_refused(&self, refresh_token: &str) -> bool {
        let response = self
            .http
            .post(format!("{}/token", self.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&client_id=tessera-cli&refresh_token={refresh_token}"
            ))
            .send()
            .await
            .expect("glewlwyd answers");
        response.status().is_client_error()
    }
}

/// `gpoa_authorization_type` of an access token issued by a refresh.
const REFRESH_GRANT: &str = "6";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's glewlwyd: make interop-test"]
async fn glewlwyd_login_status_token_logout() {
    super::login_status_token_logout(&Glewlwyd::start(3600)).await;
}

/// Access-token lifetime of the expiry tests (see `glewlwyd_expiry_refreshes_once`).
const GLEWLWYD_TTL: u32 = 40;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's glewlwyd: make interop-test"]
async fn glewlwyd_expiry_refreshes_once() {
    // Longer than the others: with 20 s tokens, the first `token` after the sign-in (its
    // JavaScript login application, played step by step, is the slowest of the three
    // servers) once found the token already due for refresh on a loaded machine.
    super::expiry_refreshes_once(&Glewlwyd::start(GLEWLWYD_TTL), GLEWLWYD_TTL).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's glewlwyd: make interop-test"]
async fn glewlwyd_sixteen_processes_refresh_once() {
    super::sixteen_processes_refresh_once(&Glewlwyd::start(GLEWLWYD_TTL), GLEWLWYD_TTL).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's glewlwyd: make interop-test"]
async fn glewlwyd_device_login_with_typed_code() {
    super::device_login_with_typed_code(&Glewlwyd::start(3600)).await;
}
