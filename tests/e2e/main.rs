//! End to end: the `tessera` binary as a subprocess against a real authorization server
//! (panva's oidc-provider on 127.0.0.1), with the encrypted file store.

mod identity;
mod integrations;
mod library;
mod pg;
mod replicas;
mod security;
mod serve;
mod servers;
mod signatures;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn browser_login_then_status_token_and_logout_revokes() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);

    let login = tessera.login(&["--browser"]);
    assert_ok(&login, "login");
    assert!(
        stderr(&login).contains("Logged in as alice@example.test"),
        "{}",
        stderr(&login)
    );

    let status = tessera.run(&["status", "--json"]);
    assert_ok(&status, "status");
    let status: Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    assert_eq!(status["logged_in"], true);
    assert_eq!(status["identity"]["email"], "alice@example.test");
    assert_eq!(status["refresh_token_present"], true);
    assert_eq!(status["store"]["kind"], "file");

    let token = tessera.run(&["token"]);
    assert_ok(&token, "token");
    let access_token = stdout(&token);
    assert!(!access_token.is_empty() && !access_token.contains(char::is_whitespace));
    assert!(
        provider.is_active(&access_token).await,
        "the provider knows the token"
    );

    let logout = tessera.run(&["logout"]);
    assert_ok(&logout, "logout");
    assert!(
        !provider.is_active(&access_token).await,
        "logout revoked the token"
    );
    let after = tessera.run(&["token"]);
    assert_eq!(
        after.status.code(),
        Some(3),
        "not logged in: {}",
        stderr(&after)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn device_login_is_approved_on_another_device() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    let mut child = tessera
        .command(&[
            "login",
            "--device",
            "--issuer",
            &provider.issuer,
            "--client-id",
            "tessera-cli",
            "--scope",
            "openid offline_access",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The code is printed on a line of its own after "enter the code:", exactly as issued
    // (oidc-provider issues it with its own dash: XXXX-XXXX).
    let mut announced = false;
    let code = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the user code is shown");
        if line.contains("enter the code:") {
            announced = true;
        } else if announced && !line.trim().is_empty() {
            break line.trim().to_owned();
        }
    };
    assert_eq!(code.len(), 9, "as oidc-provider issues it: {code}");
    let approved = provider.approve_device(&code).await;
    assert_eq!(approved["approved"], true, "{approved}");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("exit");
    assert!(status.success(), "device login failed: {status:?}");
    assert_ok(&tessera.run(&["token"]), "token after device login");
}

/// Waits until a 12 s token is inside its refresh window (the last quarter).
async fn wait_for_refresh_window() {
    tokio::time::sleep(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expiring_token_is_refreshed_exactly_once() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "12")]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");
    let first = stdout(&tessera.run(&["token"]));
    assert_eq!(provider.refresh_requests().await, 0);

    wait_for_refresh_window().await;
    let second = tessera.run(&["token"]);
    assert_ok(&second, "token after expiry");
    assert_ne!(stdout(&second), first, "a new token");
    assert_eq!(provider.refresh_requests().await, 1);

    let third = tessera.run(&["token"]);
    assert_eq!(
        stdout(&third),
        stdout(&second),
        "the refreshed token is reused"
    );
    assert_eq!(provider.refresh_requests().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_processes_after_expiry_refresh_once_without_invalid_grant() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "12")]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");
    wait_for_refresh_window().await;

    let outputs = run_together(16, || tessera.command(&["token"])).await;
    assert_same_token(&outputs);
    let counters = provider.counters().await;
    assert_eq!(counters["token_requests"]["refresh_token"], 1, "{counters}");
    assert_eq!(counters["refresh_invalid_grant"], 0, "{counters}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_login_says_so_with_its_exit_code() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    let profile = format!(
        "[profiles.default]\nissuer = \"{}\"\nclient_id = \"tessera-cli\"\nscopes = [\"openid\"]\nauthorization_params = {{ login_hint = \"deny\" }}\n",
        provider.issuer
    );
    std::fs::write(tessera.dir.path().join("config.toml"), profile).expect("write profile");
    let login = tessera.run(&["login", "--browser"]);
    assert_eq!(login.status.code(), Some(4), "denied: {}", stderr(&login));
    assert!(
        stderr(&login).contains("access_denied"),
        "{}",
        stderr(&login)
    );
    let status = tessera.run(&["status"]);
    assert_eq!(status.status.code(), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_killed_mid_flow_leaves_nothing_behind_and_login_works_again() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    // A "browser" that never delivers the redirect: the login waits for it.
    let mut child = tessera
        .command(&[
            "login",
            "--browser",
            "--issuer",
            &provider.issuer,
            "--client-id",
            "tessera-cli",
        ])
        .env("BROWSER", "true")
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let waiting = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(waiting.contains("Opening your browser"), "{waiting}");
    child.kill().expect("kill");
    let _ = child.wait();

    let status = tessera.run(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", stderr(&status));
    assert!(
        stdout(&status).contains("Not logged in"),
        "{}",
        stdout(&status)
    );
    assert_ok(&tessera.login(&["--browser"]), "login after the killed one");
    assert_ok(&tessera.run(&["token"]), "token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_or_foreign_store_file_is_explained_and_login_recovers() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");
    let file = tessera.dir.path().join("default.session");

    // A wrong passphrase: explained, and the file is left as it was.
    let before = std::fs::read(&file).expect("session file");
    let wrong = tessera
        .command(&["status"])
        .env("TESSERA_PASSPHRASE", "not the passphrase")
        .output()
        .expect("runs");
    assert_eq!(wrong.status.code(), Some(8), "{}", stderr(&wrong));
    assert!(
        stdout(&wrong).to_lowercase().contains("passphrase"),
        "{}",
        stdout(&wrong)
    );
    assert_eq!(
        std::fs::read(&file).expect("still there"),
        before,
        "untouched"
    );
    assert_ok(
        &tessera.run(&["status"]),
        "status with the right passphrase",
    );

    // Garbage in the file: status and token explain, login replaces it.
    std::fs::write(&file, b"{\"format\":\"tessera-encrypted-session\",\"vers").expect("corrupt it");
    let status = tessera.run(&["status"]);
    assert_eq!(status.status.code(), Some(8), "{}", stderr(&status));
    assert!(
        stdout(&status).contains("could not be read"),
        "{}",
        stdout(&status)
    );
    let token = tessera.run(&["token"]);
    assert_eq!(token.status.code(), Some(8), "{}", stderr(&token));
    assert!(stdout(&token).is_empty(), "nothing on stdout");
    assert_ok(
        &tessera.login(&["--browser"]),
        "login over the corrupted file",
    );
    assert_ok(&tessera.run(&["token"]), "token after recovery");
}

#[test]
fn the_credential_chain_prefers_environment_tokens_then_falls_back_to_an_api_key() {
    let tessera = Tessera::with_issuer("http://127.0.0.1:9");
    // 1. Tokens in the environment: no profile and no store needed, nothing written.
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let token = tessera
        .command(&["token"])
        .env("TESSERA_ACCESS_TOKEN", "env-access-token")
        .env("TESSERA_EXPIRES_AT", expires.to_string())
        .output()
        .expect("runs");
    assert_ok(&token, "token from the environment");
    assert_eq!(stdout(&token), "env-access-token");
    let status = tessera
        .command(&["status", "--json"])
        .env("TESSERA_ACCESS_TOKEN", "env-access-token")
        .output()
        .expect("runs");
    let status: Value = serde_json::from_str(&stdout(&status)).expect("json");
    assert_eq!(status["store"]["kind"], "environment", "{status}");
    assert!(
        !tessera.dir.path().join("default.session").exists(),
        "nothing stored"
    );

    // 2. No session: the API key the profile names, with a note on stderr.
    std::fs::write(
        tessera.dir.path().join("config.toml"),
        "[profiles.default]\napi_key_env = \"MY_API_KEY\"\n",
    )
    .unwrap();
    let fallback = tessera
        .command(&["token"])
        .env("MY_API_KEY", "sk-test-123")
        .output()
        .expect("runs");
    assert_ok(&fallback, "token from the API key");
    assert_eq!(stdout(&fallback), "sk-test-123");
    assert!(
        stderr(&fallback).contains("MY_API_KEY"),
        "{}",
        stderr(&fallback)
    );
    // 3. Neither: not logged in.
    let none = tessera.run(&["token"]);
    assert_eq!(none.status.code(), Some(3), "{}", stderr(&none));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_session_replays_and_contains_no_secret() {
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "12")]);
    let tessera = Tessera::new(&provider);
    let login_file = tessera.dir.path().join("login.toml");
    let login = tessera.login(&["--browser", "--record", login_file.to_str().unwrap()]);
    assert_ok(&login, "recorded login");
    wait_for_refresh_window().await;
    let token_file = tessera.dir.path().join("token.toml");
    let token = tessera.run(&["token", "--record", token_file.to_str().unwrap()]);
    assert_ok(&token, "recorded token (with a refresh)");
    let access_token = stdout(&token);

    for file in [&login_file, &token_file] {
        let text = std::fs::read_to_string(file).expect("transcript written");
        assert!(
            !text.contains(&access_token),
            "{} contains the access token",
            file.display()
        );
        assert!(
            text.contains("access-token-1"),
            "{} uses placeholders",
            file.display()
        );
        let replay = tessera.run(&["replay", file.to_str().unwrap()]);
        assert_ok(&replay, "replay of the recording");
    }
    let token_text = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        token_text.contains("lock_session") && token_text.contains("refresh_token"),
        "the refresh is in the recording"
    );
}

/// SIGTERM arrives after the refresh request reached the provider (which rotates the
/// refresh token and holds its answer back for a second): `tessera` waits for the answer
/// and stores the rotated session before it exits (143), so the next forced refresh works
/// and the provider never sees the old refresh token again. Without the wait the process
/// died with the old token stored, and the next refresh tripped reuse detection.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_refresh_waits_for_the_rotated_token_to_be_stored() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");
    provider.delay_refresh_answers(1000).await;
    let before = provider.refresh_requests().await;
    let child = tessera
        .command(&["token", "--min-ttl", "999999"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    while provider.refresh_requests().await == before {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the refresh never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The provider has rotated the refresh token and holds its answer back.
    let pid = child.id().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(kill.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("exit");
    assert_eq!(
        output.status.code(),
        Some(143),
        "exits as terminated, after storing: {}",
        stderr(&output)
    );
    provider.delay_refresh_answers(0).await;
    let again = tessera.run(&["token", "--min-ttl", "999999"]);
    assert_ok(
        &again,
        "a forced refresh with the stored (rotated) refresh token",
    );
    let counters = provider.counters().await;
    assert_eq!(counters["refresh_invalid_grant"], 0, "{counters}");
}
