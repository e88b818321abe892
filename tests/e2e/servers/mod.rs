//! The end-to-end scenario against other authorization server implementations than
//! `tests/provider`, each started by its test on 127.0.0.1 (`tests/interop/`): browser
//! login with the server's own login and consent pages, status with identity, token,
//! expiry → one refresh, 16 processes → one refresh, logout revoking both tokens, a device
//! login by typing the code shown on the server's own device page, and a denied login.
//!
//! A server module says how to start its server, how to log in to it and how to ask it
//! what it did (its [`Server`] implementation); the steps are written once, below. The
//! tests are ignored by a plain `cargo test` (they need Python and Debian packages that
//! `.ci/run` installs): `make interop-test` runs them, and `make test` runs that.
//! What each server does differently is in docs/interop.md.

mod dot;
mod glewlwyd;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// What the scenario needs to know about a running server.
pub(crate) trait Server: Sync {
    fn issuer(&self) -> &str;
    /// `tessera login` arguments for the browser flow (issuer, client, scopes, …).
    fn browser_login(&self) -> Vec<String>;
    /// `tessera login` arguments for the device flow.
    fn device_login(&self) -> Vec<String>;
    /// Environment of the browser stand-in (tests/interop/browser.mjs) for this server.
    fn browser_env(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// The email address the test user's login is announced with.
    fn email(&self) -> &str;
    /// Refresh requests the server answered so far, and how many were `invalid_grant`.
    async fn refreshes(&self) -> (u64, u64);
    /// Whether the server still considers an access token active (RFC 7662).
    async fn is_active(&self, access_token: &str) -> bool;
    /// Whether the server refuses a refresh with `refresh_token` (sent once, by the test).
    async fn refresh_refused(&self, refresh_token: &str) -> bool;
}

/// One user's tessera against `server`, with tests/interop/browser.mjs as `$BROWSER`.
pub(crate) struct Client<'a, S: Server> {
    tessera: Tessera,
    server: &'a S,
}

impl<'a, S: Server> Client<'a, S> {
    pub fn new(server: &'a S) -> Self {
        Client {
            tessera: Tessera::with_issuer(server.issuer()),
            server,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.tessera.command(args);
        command.env("BROWSER", format!("node {}", browser_script()));
        for (name, value) in self.server.browser_env() {
            command.env(name, value);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("tessera runs")
    }

    fn login_command(&self, flow: &str) -> Command {
        let args = match flow {
            "--device" => self.server.device_login(),
            _ => self.server.browser_login(),
        };
        let mut all = vec!["login", flow];
        all.extend(args.iter().map(String::as_str));
        self.command(&all)
    }

    pub fn login(&self) -> Output {
        self.login_command("--browser").output().expect("runs")
    }

    /// The session's tokens as `tessera export` prints them.
    fn export(&self) -> Value {
        let export = self.run(&["export"]);
        assert_ok(&export, "export");
        serde_json::from_str(&stdout(&export)).expect("export JSON")
    }
}

fn browser_script() -> String {
    repo_root()
        .join("tests/interop/browser.mjs")
        .display()
        .to_string()
}

/// Browser login, status with identity, token, logout revoking both tokens.
pub(crate) async fn login_status_token_logout(server: &impl Server) {
    let client = Client::new(server);
    let login = client.login();
    assert_ok(&login, "login");
    let announced = format!("Logged in as {}", server.email());
    assert!(stderr(&login).contains(&announced), "{}", stderr(&login));

    let status = client.run(&["status", "--json"]);
    assert_ok(&status, "status");
    let status: Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    assert_eq!(status["logged_in"], true, "{status}");
    assert_eq!(status["identity"]["email"], server.email(), "{status}");
    assert_eq!(status["refresh_token_present"], true, "{status}");

    let token = client.run(&["token"]);
    assert_ok(&token, "token");
    let access_token = stdout(&token);
    assert!(!access_token.is_empty() && !access_token.contains(char::is_whitespace));
    assert!(server.is_active(&access_token).await, "the server knows it");
    let tokens = client.export();
    assert_eq!(tokens["access_token"], access_token.as_str());
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");

    let logout = client.run(&["logout", "--json"]);
    let answer: Value = serde_json::from_str(&stdout(&logout)).expect("logout JSON");
    assert_ok(&logout, &format!("logout {answer}"));
    assert_eq!(answer["revoked"], true, "{answer}");
    assert!(
        !server.is_active(&access_token).await,
        "the access token is revoked"
    );
    assert!(
        server.refresh_refused(refresh_token).await,
        "the refresh token is revoked"
    );
    let after = client.run(&["token"]);
    assert_eq!(after.status.code(), Some(3), "{}", stderr(&after));
}

/// Lifetime of access tokens in the refresh tests: long enough that a login on a busy
/// machine does not already fall in the refresh window.
pub(crate) const SHORT_TTL: u32 = 20;

/// Waits until a token living `ttl` seconds is inside its refresh window (the last
/// quarter).
async fn wait_for_refresh_window(ttl: u32) {
    tokio::time::sleep(Duration::from_secs(u64::from(ttl) - 3)).await;
}

/// A token about to expire is refreshed once; the new one is then reused. `server` issues
/// access tokens for `ttl` seconds; the login and the first `token` must take less than
/// three quarters of it.
pub(crate) async fn expiry_refreshes_once(server: &impl Server, ttl: u32) {
    let client = Client::new(server);
    assert_ok(&client.login(), "login");
    let first = stdout(&client.run(&["token"]));
    assert_eq!(server.refreshes().await, (0, 0));

    wait_for_refresh_window(ttl).await;
    let second = client.run(&["token"]);
    assert_ok(&second, "token after expiry");
    assert_ne!(stdout(&second), first, "a new token");
    assert_eq!(server.refreshes().await, (1, 0));
    let third = client.run(&["token"]);
    assert_eq!(stdout(&third), stdout(&second), "the new token is reused");
    assert_eq!(server.refreshes().await, (1, 0));
}

/// 16 processes asking for a token after expiry: one refresh, the same token for all, no
/// `invalid_grant`. `server` issues access tokens for `ttl` seconds.
pub(crate) async fn sixteen_processes_refresh_once(server: &impl Server, ttl: u32) {
    let client = Client::new(server);
    assert_ok(&client.login(), "login");
    wait_for_refresh_window(ttl).await;
    let outputs = run_together(16, || client.command(&["token"])).await;
    assert_same_token(&outputs);
    assert_eq!(
        server.refreshes().await,
        (1, 0),
        "one refresh, no invalid_grant"
    );
}

/// Device login: the person types the code tessera shows on the server's own device page
/// (the `verification_uri` tessera prints), signs in there and allows it.
pub(crate) async fn device_login_with_typed_code(server: &impl Server) {
    let client = Client::new(server);
    let mut child = client
        .login_command("--device")
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera starts");
    let lines = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(lines).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // "To sign in, visit URL", "and enter the code:", a blank line, the code.
    let (mut page, mut announced) = (None, false);
    let code = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the device page and code are shown");
        if let Some(url) = line.trim().strip_prefix("To sign in, visit ") {
            page = Some(url.to_owned());
        } else if line.contains("enter the code:") {
            announced = true;
        } else if announced && !line.trim().is_empty() {
            break line.trim().to_owned();
        }
    };
    let page = page.expect("the verification URI is shown");
    let browser = Command::new("node")
        .arg(browser_script())
        .arg(&page)
        .envs(server.browser_env())
        .env("BROWSER_USER_CODE", &code)
        .output()
        .expect("node runs");
    assert_ok(&browser, "the code typed on the device page");
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("exit");
    assert!(status.status.success(), "device login: {status:?}");
    let token = client.run(&["token"]);
    assert_ok(&token, "token after device login");
    assert!(server.is_active(&stdout(&token)).await);
}

/// The person refuses on the server's consent page: exit 4 with `access_denied`, no session.
pub(crate) async fn denied_login(server: &impl Server) {
    let client = Client::new(server);
    let login = client
        .login_command("--browser")
        .env("BROWSER_DECISION", "deny")
        .output()
        .expect("runs");
    assert_eq!(login.status.code(), Some(4), "denied: {}", stderr(&login));
    assert!(
        stderr(&login).contains("access_denied"),
        "{}",
        stderr(&login)
    );
    let status = client.run(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", stderr(&status));
}
