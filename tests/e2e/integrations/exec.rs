//! `tessera exec`: the command runs with a fresh token in its environment, its exit code
//! is passed on, and termination signals reach it.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// `NAME=value` lines of `env`'s output, as a map.
fn variables(env_output: &str) -> std::collections::BTreeMap<String, String> {
    env_output
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The provider's tokens live 60 s, less than `exec`'s default --min-ttl of 5 min: the
/// command gets a token refreshed for it, named by the profile's prefix, without the
/// refresh token or the passphrase unless asked.
#[tokio::test(flavor = "multi_thread")]
async fn exec_runs_env_with_a_fresh_token_named_by_the_profile() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");
    let login_token = super::current_token(&tessera);
    let before = provider.refresh_requests().await;

    let exec = tessera
        .command(&["exec", "--", "env"])
        .env("TESSERA_REFRESH_TOKEN", "stale-refresh-token")
        .output()
        .expect("runs");
    assert_ok(&exec, "exec -- env");
    let env = variables(&String::from_utf8_lossy(&exec.stdout));
    let token = &env["TESSERA_ACCESS_TOKEN"];
    assert_ne!(
        token, &login_token,
        "refreshed: 60 s is less than --min-ttl 5m"
    );
    assert_eq!(provider.refresh_requests().await, before + 1);
    assert!(provider.is_active(token).await);
    let expires_at: u64 = env["TESSERA_EXPIRES_AT"].parse().expect("milliseconds");
    assert!(expires_at > 1_000_000_000_000, "milliseconds: {expires_at}");
    assert_eq!(env["TESSERA_USE_OAUTH"], "1");
    assert!(
        !env.contains_key("TESSERA_REFRESH_TOKEN"),
        "not without --with-refresh-token"
    );
    assert!(
        !env.contains_key("TESSERA_PASSPHRASE"),
        "the command never gets the passphrase"
    );

    let with_refresh = tessera.run(&[
        "exec",
        "--with-refresh-token",
        "--min-ttl",
        "0",
        "--",
        "env",
    ]);
    assert_ok(&with_refresh, "exec --with-refresh-token");
    let env = variables(&String::from_utf8_lossy(&with_refresh.stdout));
    assert!(env["TESSERA_REFRESH_TOKEN"].len() > 10);
    assert_eq!(
        &env["TESSERA_ACCESS_TOKEN"], token,
        "--min-ttl 0: no refresh"
    );

    // A tessera inside reads the same variables (the credential chain, milliseconds and
    // all) without the store, whose passphrase it does not get.
    let tessera_bin = tessera_bin().display().to_string();
    let nested = tessera.run(&["exec", "--min-ttl", "0", "--", &tessera_bin, "token"]);
    assert_ok(&nested, "tessera token inside exec");
    assert_eq!(&stdout(&nested), token);

    let exported = tessera.run(&["export", "--format", "env"]);
    assert_ok(&exported, "export --format env");
    let env = variables(&stdout(&exported));
    assert_eq!(&env["TESSERA_ACCESS_TOKEN"], token);
    assert!(env["TESSERA_REFRESH_TOKEN"].len() > 10);
    assert_eq!(env["TESSERA_USE_OAUTH"], "1");

    // The anthropic presets' prefix, or any profile's.
    super::set_profile_key(tessera.dir.path(), "token_env_prefix", "CLAUDE".into());
    let claude = tessera.run(&["exec", "--min-ttl", "0", "--", "env"]);
    assert_ok(&claude, "exec with the CLAUDE prefix");
    let env = variables(&String::from_utf8_lossy(&claude.stdout));
    assert_eq!(&env["CLAUDE_ACCESS_TOKEN"], token);
    assert_eq!(env["CLAUDE_USE_OAUTH"], "1");
    assert!(env.contains_key("CLAUDE_EXPIRES_AT"));
    assert!(!env.contains_key("TESSERA_ACCESS_TOKEN"));

    super::set_profile_key(tessera.dir.path(), "token_env_prefix", "not-a-name".into());
    let bad = tessera.run(&["exec", "--", "env"]);
    assert_eq!(bad.status.code(), Some(7), "{}", stderr(&bad));
    assert!(stdout(&bad).is_empty(), "the command did not run");
}

#[test]
fn exec_passes_on_the_exit_code_and_says_when_it_cannot_run_the_command() {
    let tessera = Tessera::with_issuer("http://127.0.0.1:9");
    // Tokens from the environment: no provider needed to run the command.
    let run = |args: &[&str]| {
        tessera
            .command(args)
            .env("TESSERA_ACCESS_TOKEN", "env-token")
            .env("TESSERA_EXPIRES_AT", "4000000000")
            .output()
            .expect("runs")
    };
    let seven = run(&["exec", "--", "sh", "-c", "exit 7"]);
    assert_eq!(seven.status.code(), Some(7), "{}", stderr(&seven));
    let echoed = run(&["exec", "--", "sh", "-c", "echo \"$TESSERA_ACCESS_TOKEN\""]);
    assert_eq!(stdout(&echoed), "env-token");
    let missing = run(&["exec", "--", "/nonexistent/command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("cannot run /nonexistent/command"));
    let usage = run(&["exec"]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "no command: {}",
        stderr(&usage)
    );
    // `<P>_EXPIRES_AT` is in milliseconds; tessera reads seconds or milliseconds: a token
    // that expired in 2001 is not served (read as seconds it would last until 33658).
    let expired = tessera
        .command(&["token"])
        .env("TESSERA_ACCESS_TOKEN", "env-token")
        .env("TESSERA_EXPIRES_AT", "1000000000000")
        .output()
        .expect("runs");
    assert_eq!(expired.status.code(), Some(3), "{}", stderr(&expired));
    assert!(stdout(&expired).is_empty());
    let not_logged_in = tessera.run(&["exec", "--", "true"]);
    assert_eq!(
        not_logged_in.status.code(),
        Some(3),
        "{}",
        stderr(&not_logged_in)
    );
}

/// SIGTERM and SIGINT sent to tessera reach the command, whose exit code tessera returns.
#[cfg(unix)]
#[test]
fn exec_forwards_termination_signals_to_the_command() {
    let tessera = Tessera::with_issuer("http://127.0.0.1:9");
    for (signal, name) in [("-TERM", "TERM"), ("-INT", "INT"), ("-HUP", "HUP")] {
        let script = format!(
            "trap 'echo got {name}; exit 42' {name}; echo ready; while :; do sleep 0.05; done"
        );
        let mut child = tessera
            .command(&["exec", "--", "sh", "-c", &script])
            .env("TESSERA_ACCESS_TOKEN", "env-token")
            .env("TESSERA_EXPIRES_AT", "4000000000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(ready, "ready", "the command started");
        let kill = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        let got = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(got, format!("got {name}"), "forwarded");
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "tessera exits");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(42), "the command's exit code ({name})");
    }
}
