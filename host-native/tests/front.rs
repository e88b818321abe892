//! `tessera` is a front binary that answers a cached token itself and hands every other
//! command to `tessera-full` (src/main.rs, ADR 014). These run the real binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn front() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tessera"))
}

/// A copy of the front binary alone in a directory, with no `tessera-full` beside it or
/// on `PATH`: whatever it answers, it answered itself.
fn lonely_front(dir: &Path) -> PathBuf {
    let copy = dir.join(format!("tessera{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(front(), &copy).expect("copy the front binary");
    copy
}

fn run(bin: &Path, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin);
    command
        .args(args)
        .env_clear()
        .env("PATH", "/nonexistent")
        .env("TESSERA_CONFIG_DIR", config)
        .envs(env.iter().copied());
    // The copy was just written: a child another test forked meanwhile may still hold
    // the write descriptor until it execs ("Text file busy"). Wait that out.
    for _ in 0..50 {
        match command.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.expect("run tessera"),
        }
    }
    command.output().expect("run tessera")
}

fn later_secs(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    (now + secs).to_string()
}

#[test]
fn the_front_serves_an_environment_token_without_tessera_full() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = lonely_front(dir.path());
    let expires = later_secs(3600);
    let out = run(
        &bin,
        dir.path(),
        &["token"],
        &[
            ("TESSERA_ACCESS_TOKEN", "env-token-123"),
            ("TESSERA_EXPIRES_AT", &expires),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "env-token-123\n");
}

#[test]
fn a_token_the_front_cannot_serve_goes_to_tessera_full_and_says_when_it_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = lonely_front(dir.path());
    // Expiring within --min-ttl: only the whole CLI can refresh it.
    let soon = later_secs(30);
    for (args, env) in [
        (
            vec!["token", "--min-ttl", "300"],
            vec![
                ("TESSERA_ACCESS_TOKEN", "env-token-123"),
                ("TESSERA_EXPIRES_AT", soon.as_str()),
            ],
        ),
        (vec!["status"], vec![]),
        (vec!["--version"], vec![]),
    ] {
        let out = run(&bin, dir.path(), &args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("tessera-full binary is missing"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn other_commands_run_in_tessera_full_with_their_exit_codes_and_tesseras_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Not logged in: exit 3, from tessera-full.
    let out = run(&front(), dir.path(), &["--store", "file", "status"], &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A usage error: clap's exit 2, and the usage line names `tessera`.
    let out = run(&front(), dir.path(), &["no-such-command"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Usage: tessera "), "{stderr}");
    assert!(!stderr.contains("tessera-full"), "{stderr}");
}
