//! `tessera git-credential`, invoked by the real `git credential fill` as its helper.

use std::io::Write as _;
use std::process::{Output, Stdio};

use crate::support::*;

/// `git credential fill` with `request` on stdin, tessera as the only helper (a git
/// configuration of its own: no system or user helpers, no prompts).
fn fill(tessera: &Tessera, request: &str) -> Output {
    let gitconfig = tessera.dir.path().join("gitconfig");
    let helper = format!("!'{}' --store file git-credential", tessera_bin().display());
    std::fs::write(
        &gitconfig,
        format!(
            "[credential]\n\thelper = {}\n",
            helper.replace('\\', "\\\\").replace('"', "\\\"")
        ),
    )
    .expect("gitconfig");
    let mut child = super::with_tessera_env(tessera, "git")
        .args(["credential", "fill"])
        .env("GIT_CONFIG_GLOBAL", &gitconfig)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git is installed");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(request.as_bytes()).expect("write");
    drop(stdin);
    child.wait_with_output().expect("git exits")
}

#[tokio::test(flavor = "multi_thread")]
async fn git_credential_fill_gets_the_token_for_the_profiles_hosts_only() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");
    let hosts = toml::Value::Array(vec![
        "git.example.test".into(),
        "code.example.test:8443".into(),
    ]);
    super::set_profile_key(tessera.dir.path(), "git_hosts", hosts);

    let filled = fill(
        &tessera,
        "protocol=https\nhost=git.example.test\npath=team/repo.git\n\n",
    );
    assert_ok(&filled, "git credential fill");
    let answer = stdout(&filled);
    let lines: Vec<&str> = answer.lines().collect();
    assert!(lines.contains(&"username=oauth2"), "{answer}");
    let password = lines
        .iter()
        .find_map(|l| l.strip_prefix("password="))
        .expect("a password");
    assert!(
        provider.is_active(password).await,
        "the password is a live access token"
    );
    assert_eq!(password, super::current_token(&tessera));

    // A username from the URL is kept; a configured one replaces the default.
    let with_user = fill(
        &tessera,
        "protocol=https\nhost=code.example.test:8443\nusername=ci\n\n",
    );
    assert_ok(&with_user, "fill with a username");
    assert!(
        stdout(&with_user).lines().any(|l| l == "username=ci"),
        "{}",
        stdout(&with_user)
    );
    super::set_profile_key(tessera.dir.path(), "git_username", "x-access-token".into());
    let configured = fill(&tessera, "protocol=https\nhost=git.example.test\n\n");
    assert!(
        stdout(&configured)
            .lines()
            .any(|l| l == "username=x-access-token")
    );

    // Another host, or plain http: tessera says nothing, git has nobody to ask and fails.
    for request in [
        "protocol=https\nhost=elsewhere.example.test\n\n",
        "protocol=http\nhost=git.example.test\n\n",
        "protocol=https\nhost=git.example.test.evil.example\n\n",
    ] {
        let refused = fill(&tessera, request);
        assert!(
            !refused.status.success(),
            "{request:?}: {}",
            stdout(&refused)
        );
        assert!(!stdout(&refused).contains("password="), "{request:?}");
        assert!(!stderr(&refused).contains(password), "{request:?}");
    }
}

#[test]
fn git_credential_store_erase_and_bad_input_change_nothing() {
    let tessera = Tessera::with_issuer("http://127.0.0.1:9");
    let helper = |operation: &str, input: &[u8]| {
        let mut child = tessera
            .command(&["git-credential", operation])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write");
        child.wait_with_output().expect("exit")
    };
    let full = b"protocol=https\nhost=git.example.test\nusername=u\npassword=p\n\n";
    for operation in ["store", "erase", "some-future-operation"] {
        let output = helper(operation, full);
        assert_ok(&output, operation);
        assert!(output.stdout.is_empty(), "{operation}: silent");
    }
    assert!(
        !tessera.dir.path().join("default.session").exists(),
        "nothing stored"
    );
    let garbage = helper("get", b"this is not key=value\nno equals sign here\n");
    assert_eq!(garbage.status.code(), Some(2), "{}", stderr(&garbage));
    assert!(
        stderr(&garbage).contains("without `=`"),
        "{}",
        stderr(&garbage)
    );
    assert!(garbage.stdout.is_empty());
    let binary = helper("get", &[0xff, 0xfe, b'=', 0, b'\n']);
    assert_eq!(binary.status.code(), Some(2), "{}", stderr(&binary));
}
