//! The real parts the end-to-end tests drive: the local authorization server (panva's
//! oidc-provider, `tests/provider/`) and the `tessera` binary as a subprocess.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

use serde_json::{Value, json};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn provider_dir() -> PathBuf {
    repo_root().join("tests").join("provider")
}

/// Installs the provider's npm packages once (from its lockfile).
fn install_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if provider_dir()
            .join("node_modules")
            .join("oidc-provider")
            .exists()
        {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(provider_dir())
            .status()
            .expect("npm is installed");
        assert!(status.success(), "npm ci failed in tests/provider");
    });
}

/// A running oidc-provider on 127.0.0.1; stopped when dropped (its stdin closes).
pub struct Provider {
    child: Child,
    _stdin: ChildStdin,
    pub issuer: String,
    http: reqwest::Client,
}

impl Provider {
    pub fn start(env: &[(&str, &str)]) -> Provider {
        install_provider();
        let mut command = Command::new("node");
        command
            .arg("server.mjs")
            .current_dir(provider_dir())
            .env("EXIT_ON_STDIN_CLOSE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The provider's logs only when asked for: TESSERA_TEST_PROVIDER_LOG=1.
            .stderr(if std::env::var_os("TESSERA_TEST_PROVIDER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for (name, value) in env {
            command.env(name, value);
        }
        let (child, stdin, issuer, _) = start_ready(command);
        Provider {
            child,
            _stdin: stdin,
            issuer,
            http: http_client(),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.issuer))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("provider answers");
        let text = response.text().await.expect("body");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    /// Token endpoint and revocation counters (`GET /test/counters`).
    pub async fn counters(&self) -> Value {
        let response = self
            .http
            .get(format!("{}/test/counters", self.issuer))
            .send()
            .await
            .expect("counters");
        serde_json::from_str(&response.text().await.expect("body")).expect("json")
    }

    pub async fn refresh_requests(&self) -> u64 {
        self.counters().await["token_requests"]["refresh_token"]
            .as_u64()
            .unwrap_or(u64::MAX)
    }

    /// Holds back every refresh answer `ms` after the provider rotated the token.
    pub async fn delay_refresh_answers(&self, ms: u64) -> Value {
        self.post("/test/refresh_delay", json!({ "ms": ms })).await
    }

    pub async fn approve_device(&self, user_code: &str) -> Value {
        self.post("/test/device/approve", json!({ "user_code": user_code }))
            .await
    }

    /// Revokes an access token at the provider (RFC 7009), as if an admin did.
    pub async fn revoke(&self, token: &str) {
        self.revoke_as(token, "access_token").await;
    }

    /// Revokes a token of the kind `hint` names (`access_token`, `refresh_token`).
    pub async fn revoke_as(&self, token: &str, hint: &str) {
        let response = self
            .http
            .post(format!("{}/token/revocation", self.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "token={token}&token_type_hint={hint}&client_id=tessera-cli"
            ))
            .send()
            .await
            .expect("revocation");
        assert!(
            response.status().is_success(),
            "revocation answered {}",
            response.status()
        );
    }

    /// Whether the provider still considers `token` active (RFC 7662).
    pub async fn is_active(&self, token: &str) -> bool {
        self.post("/test/introspect", json!({ "token": token }))
            .await["active"]
            .as_bool()
            == Some(true)
    }
}

/// Starts a test server that prints `READY {"issuer": …}` on its first line of stdout
/// and exits when its stdin closes (tests/provider, tests/interop/*): the child, its stdin
/// (keep it open), the issuer (always a 127.0.0.1 URL) and the whole READY object.
pub fn start_ready(mut command: Command) -> (Child, ChildStdin, String, Value) {
    command.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints READY");
    let ready: Value = serde_json::from_str(line.trim_start_matches("READY ").trim())
        .unwrap_or_else(|e| panic!("bad READY line {line:?} from {command:?}: {e}"));
    let issuer = ready["issuer"].as_str().expect("issuer").to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    (child, stdin, issuer, ready)
}

/// The HTTP client tests use to talk to a test server (10 s timeout).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `tessera` binary built by this workspace (next to this test's executable).
///
/// `cargo test --workspace` builds it with the same features as everything else. When it
/// is missing or older than its sources (e.g. only this test was run), it is built first,
/// so a test never runs a stale binary.
pub fn tessera_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    static BUILD_FULL: Once = Once::new();
    // `tessera` hands every command but a cached token to `tessera-full` next to it.
    workspace_bin(&BUILD_FULL, "tessera", "tessera-full", &[]);
    workspace_bin(&BUILD, "tessera", "tessera", &[])
}

/// The `tessera-serve` binary (`tessera serve` hands over to it), built like
/// [`tessera_bin`].
pub fn serve_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    // `tessera serve` finds it next to `tessera`: build both.
    tessera_bin();
    workspace_bin(
        &BUILD,
        "tessera-serve",
        "tessera-serve",
        &["host-native/serve/src", "host-native/serve/Cargo.toml"],
    )
}

fn workspace_bin(build: &Once, package: &str, name: &str, more_sources: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    build.call_once(|| {
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let sources = [
            "host-native/src",
            "engine/src",
            "host-native/Cargo.toml",
            "engine/Cargo.toml",
        ];
        let newest = sources
            .iter()
            .chain(more_sources)
            .filter_map(|s| newest_mtime(&repo_root().join(s)))
            .max();
        if built.is_none() || newest > built {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", package, "--bin", name])
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building {name} failed");
        }
    });
    bin
}

fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// One user's tessera: its own config directory, the file store with a passphrase, and
/// the browser stand-in as `$BROWSER`.
pub struct Tessera {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
    issuer: String,
}

impl Tessera {
    pub fn new(provider: &Provider) -> Tessera {
        Self::with_issuer(&provider.issuer)
    }

    /// For tests that need no authorization server.
    pub fn with_issuer(issuer: &str) -> Tessera {
        Tessera {
            dir: tempfile::tempdir().expect("temp dir"),
            bin: tessera_bin(),
            issuer: issuer.to_owned(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        let browser = format!("node {}", provider_dir().join("browser.mjs").display());
        command
            .args(["--store", "file"])
            .args(args)
            .env("TESSERA_CONFIG_DIR", self.dir.path())
            .env("TESSERA_PASSPHRASE", "correct horse battery staple")
            // Every command derives the file's key itself, as on a machine without a
            // session keyring (a wrong passphrase must fail even where the test runner
            // has one); the key cache has its own test (host-native/tests/store.rs).
            .env("TESSERA_KEY_CACHE_SECS", "0")
            .env("BROWSER", browser)
            .env("BROWSER_LOG", self.dir.path().join("browser.log"))
            .env_remove("TESSERA_PROFILE")
            .env_remove("TESSERA_ACCESS_TOKEN")
            .env_remove("TESSERA_REFRESH_TOKEN")
            .env_remove("TESSERA_EXPIRES_AT")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("tessera runs")
    }

    /// `login --issuer … --client-id tessera-cli --scope "openid offline_access"` plus `extra`.
    pub fn login(&self, extra: &[&str]) -> Output {
        let mut args = vec![
            "login",
            "--issuer",
            &self.issuer,
            "--client-id",
            "tessera-cli",
            "--scope",
            "openid offline_access email profile",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

/// Starts `count` processes made by `command` at once, then waits for all of them.
pub async fn run_together(count: usize, command: impl Fn() -> Command) -> Vec<Output> {
    let children: Vec<_> = (0..count)
        .map(|_| {
            command()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("exit"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("join")
}

/// Every process succeeded and printed the same token.
pub fn assert_same_token(outputs: &[Output]) {
    for output in outputs {
        assert_ok(output, "concurrent token");
    }
    let tokens: std::collections::BTreeSet<String> = outputs.iter().map(stdout).collect();
    assert_eq!(tokens.len(), 1, "every process got the same token");
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success, showing stderr otherwise.
pub fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({:?}):\n{}",
        output.status.code(),
        stderr(output)
    );
}
