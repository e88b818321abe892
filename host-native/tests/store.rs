//! Session storage as the actor and the CLI use it: through `open_store` and `RefreshLock`.
//!
//! The keyring tests run against the real Secret Service when one answers and are skipped
//! (saying why) otherwise. On a headless machine, start one for them:
//!
//! ```sh
//! host-native/tests/with-secret-service.sh cargo test -p tessera --test store
//! ```
//!
//! They create items under service `tessera` with unique `test-…` accounts and delete them.
//! Set `TESSERA_TEST_NO_KEYRING=1` to keep them away from your desktop keyring;
//! `TESSERA_TEST_REQUIRE_KEYRING=1` (set by `with-secret-service.sh`) makes a missing
//! keyring a failure instead of a skip.
//!
//! Some tests re-run this binary as a child process (`child_role`) to get a second process
//! (for the lock) or a controlled environment (no D-Bus session bus).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tessera::engine::{Endpoints, Secret, StoredSession, UnixMillis};
use tessera::store::{
    BlockingStore, PassphraseSource, RefreshLock, StoreChoice, StoreError, StoreKind,
    open_and_load, open_store,
};

const ROLE: &str = "TESSERA_STORE_TEST_ROLE";
const DIR: &str = "TESSERA_STORE_TEST_DIR";

fn session(id_token_len: usize) -> StoredSession {
    StoredSession {
        version: tessera::engine::SESSION_FORMAT_VERSION,
        issuer: Some("https://issuer.example".to_owned()),
        client_id: "tessera-cli".to_owned(),
        access_token: Secret::new("access-token-value"),
        refresh_token: Some(Secret::new("refresh-token-value")),
        id_token: Some(Secret::new("i".repeat(id_token_len))),
        obtained_at: UnixMillis(1_700_000_000_000),
        expires_at: UnixMillis(1_700_000_360_000),
        scopes: vec!["openid".to_owned()],
        identity: None,
        endpoints: Endpoints::default(),
    }
}

fn child(role: &str, dir: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, dir);
    command
}

/// Not a test on its own: what a child process started by the tests below does.
#[test]
fn child_role() {
    let (Ok(role), Some(dir)) = (std::env::var(ROLE), std::env::var_os(DIR)) else {
        return;
    };
    let dir = Path::new(&dir);
    match role.as_str() {
        "hold-lock" => {
            let _guard = RefreshLock::acquire(dir, "default", Duration::ZERO).unwrap();
            println!("LOCKED");
            // Hold the lock until the parent closes our stdin.
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).unwrap() > 0 {}
        }
        "no-bus" => {
            let expected = std::env::var("EXPECTED_REASON").unwrap();
            let store =
                open_store(StoreChoice::Auto, dir, "default", PassphraseSource::Env).unwrap();
            assert_eq!(store.info().kind, StoreKind::File);
            let reason = store.info().fallback_reason.clone().unwrap();
            assert!(reason.starts_with(&expected), "{reason}");
            println!("auto: {}", store.info());

            let err = open_store(StoreChoice::Keyring, dir, "default", PassphraseSource::Env)
                .unwrap_err();
            assert!(
                matches!(err, StoreError::KeyringUnavailable { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains("--store file"), "{err}");
            println!("keyring: {err}");

            // No TESSERA_PASSPHRASE and no terminal (stderr is a pipe): a clear error.
            for source in [PassphraseSource::Env, PassphraseSource::EnvOrPrompt] {
                let err = store_with(dir, source).save(&session(10)).unwrap_err();
                assert!(matches!(err, StoreError::NoPassphrase { .. }), "{err:?}");
                println!("save: {err}");
            }
        }
        "env-passphrase" => {
            let store = store_with(dir, PassphraseSource::Env);
            let started = Instant::now();
            store.save(&session(3000)).unwrap();
            let saved = started.elapsed();
            let started = Instant::now();
            assert_eq!(store.load().unwrap().unwrap(), session(3000));
            println!(
                "save {saved:?} (one scrypt), load {:?} (cached key)",
                started.elapsed()
            );
        }
        "key-cache" => {
            let fixed = |pw: &str| store_with(dir, PassphraseSource::Fixed(pw.into()));
            let no_passphrase = || store_with(dir, PassphraseSource::Env);
            // The writer derives the key once and leaves it to the session.
            fixed("pw").save(&session(10)).unwrap();
            let started = Instant::now();
            let loaded = no_passphrase().load().unwrap().unwrap();
            assert_eq!(loaded, session(10));
            println!("read without a passphrase in {:?}", started.elapsed());
            // A save by a process holding only the cached key keeps the file's key.
            no_passphrase().save(&session(20)).unwrap();
            assert_eq!(fixed("pw").load().unwrap().unwrap(), session(20));

            // Logout (delete) ends it: the same file restored is sealed again.
            let path = dir.join("default.session");
            let copy = std::fs::read(&path).unwrap();
            let writer = fixed("pw");
            writer.load().unwrap();
            writer.delete().unwrap();
            std::fs::write(&path, &copy).unwrap();
            let err = no_passphrase().load().unwrap_err();
            assert!(matches!(err, StoreError::NoPassphrase { .. }), "{err:?}");
            // The passphrase opens it again (and puts the key back).
            assert_eq!(fixed("pw").load().unwrap().unwrap(), session(20));
            assert_eq!(no_passphrase().load().unwrap().unwrap(), session(20));
            // A new login (new salt, another passphrase) gets a key of its own.
            std::fs::remove_file(&path).unwrap();
            fixed("other").save(&session(30)).unwrap();
            assert_eq!(no_passphrase().load().unwrap().unwrap(), session(30));
        }
        other => panic!("unknown role {other}"),
    }
}

fn store_with(dir: &Path, source: PassphraseSource) -> Box<dyn BlockingStore> {
    open_store(StoreChoice::File, dir, "default", source).unwrap()
}

fn run(mut command: Command) -> String {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_refresh_lock_excludes_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let mut holder = child("hold-lock", tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    // libtest prints "test child_role ... " before the output, on the same line.
    assert!(
        lines.any(|line| line.unwrap().contains("LOCKED")),
        "the child never locked"
    );

    let err = RefreshLock::acquire(tmp.path(), "default", Duration::from_millis(200)).unwrap_err();
    assert!(matches!(err, StoreError::LockTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains("another tessera process"), "{err}");

    drop(holder.stdin.take()); // the child releases the lock and exits
    let started = Instant::now();
    let guard = RefreshLock::acquire(tmp.path(), "default", Duration::from_secs(10)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(holder.wait().unwrap().success());
    drop(guard);
}

#[test]
fn auto_falls_back_to_the_file_without_a_session_bus() {
    let tmp = tempfile::tempdir().unwrap();
    let runtime_dir = tempfile::tempdir().unwrap();
    let mut unset = child("no-bus", tmp.path());
    unset
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("TESSERA_PASSPHRASE")
        .env("XDG_RUNTIME_DIR", runtime_dir.path())
        .env(
            "EXPECTED_REASON",
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)",
        );
    println!("{}", run(unset));

    let mut wrong = child("no-bus", tmp.path());
    wrong
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/tessera-bus",
        )
        .env_remove("TESSERA_PASSPHRASE")
        .env("EXPECTED_REASON", "cannot reach the D-Bus session bus");
    println!("{}", run(wrong));
}

/// The real cost (scrypt log_n 17): ~0.5 s optimized (the crypto crates are optimized even
/// in debug builds, see the workspace's profile overrides).
#[test]
fn the_encrypted_file_from_tessera_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let mut command = child("env-passphrase", tmp.path());
    command.env("TESSERA_PASSPHRASE", "correct horse battery staple");
    println!("{}", run(command));

    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("default.session")).unwrap())
            .unwrap();
    assert_eq!(file["format"], "tessera-encrypted-session");
    assert_eq!(file["kdf"]["alg"], "scrypt");
    assert_eq!(
        (&file["kdf"]["log_n"], &file["kdf"]["r"], &file["kdf"]["p"]),
        (&17.into(), &8.into(), &1.into())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(tmp.path().join("default.session")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}

// ---- the keyring (Secret Service) ----

static PROFILES: AtomicUsize = AtomicUsize::new(0);

/// A profile name no other test (or earlier run) uses.
fn unique_profile() -> String {
    let n = PROFILES.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("test-{}-{nanos}-{n}", std::process::id())
}

/// The keyring store of a fresh profile, or `None` (with the reason printed) without one.
fn keyring_or_skip(test: &str, dir: &Path) -> Option<(Box<dyn BlockingStore>, String)> {
    if std::env::var_os("TESSERA_TEST_NO_KEYRING").is_some() {
        eprintln!("skipping {test}: TESSERA_TEST_NO_KEYRING is set");
        return None;
    }
    let profile = unique_profile();
    let fixed = PassphraseSource::Fixed("unused".into());
    match open_store(StoreChoice::Keyring, dir, &profile, fixed) {
        Ok(store) => Some((store, profile)),
        Err(StoreError::KeyringUnavailable { reason }) => {
            // The wrapper script sets this: there, a missing keyring is a failure.
            if std::env::var_os("TESSERA_TEST_REQUIRE_KEYRING").is_some() {
                panic!(
                    "{test}: TESSERA_TEST_REQUIRE_KEYRING is set but the keyring is unusable: {reason}"
                );
            }
            eprintln!("skipping {test}: no usable Secret Service: {reason}");
            None
        }
        Err(err) => panic!("{err}"),
    }
}

#[test]
fn keyring_round_trip_with_a_large_id_token() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((store, profile)) = keyring_or_skip("keyring_round_trip", tmp.path()) else {
        return;
    };
    assert_eq!(store.info().kind, StoreKind::Keyring);
    assert_eq!(
        store.info().location,
        format!("Secret Service (service tessera, account {profile})")
    );
    assert!(store.load().unwrap().is_none());
    let big = session(200 * 1024);
    store.save(&big).unwrap();
    assert_eq!(store.load().unwrap().unwrap(), big);
    store.save(&session(10)).unwrap();
    assert_eq!(store.load().unwrap().unwrap(), session(10));

    // Auto finds it there.
    let auto = open_store(
        StoreChoice::Auto,
        tmp.path(),
        &profile,
        PassphraseSource::Env,
    )
    .unwrap();
    assert_eq!(auto.info().kind, StoreKind::Keyring);
    assert_eq!(auto.info().fallback_reason, None);
    assert_eq!(auto.load().unwrap().unwrap(), session(10));
    // Opening and loading at once answers from the probe's read, like a load would.
    for choice in [StoreChoice::Auto, StoreChoice::Keyring] {
        let (opened, loaded) =
            open_and_load(choice, tmp.path(), &profile, PassphraseSource::Env).unwrap();
        assert_eq!(opened.info().kind, StoreKind::Keyring);
        assert_eq!(loaded.unwrap().unwrap(), session(10));
    }

    store.delete().unwrap();
    store.delete().unwrap();
    assert!(auto.load().unwrap().is_none());
    let (_, loaded) = open_and_load(
        StoreChoice::Keyring,
        tmp.path(),
        &profile,
        PassphraseSource::Env,
    )
    .unwrap();
    assert!(loaded.unwrap().is_none());
    assert!(!tmp.path().join(format!("{profile}.session")).exists());
}

#[test]
fn keyring_items_that_are_not_sessions_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((store, profile)) = keyring_or_skip("keyring_items_not_sessions", tmp.path()) else {
        return;
    };
    let other = open_store(
        StoreChoice::Keyring,
        tmp.path(),
        &unique_profile(),
        PassphraseSource::Env,
    )
    .unwrap();
    raw_keyring_write(&profile, b"not a session");
    let err = store.load().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("tessera logout --force"), "{err}");

    // Another profile's envelope, copied under this account.
    other.save(&session(10)).unwrap();
    let copied = keyring_raw_read(other.info());
    raw_keyring_write(&profile, &copied);
    let err = store.load().unwrap_err();
    assert!(matches!(err, StoreError::ForeignProfile { .. }), "{err:?}");

    store.delete().unwrap();
    other.delete().unwrap();
    assert!(store.load().unwrap().is_none());
}

#[cfg(target_os = "linux")]
fn raw_entry(account: &str) -> keyring_core::Entry {
    use keyring_core::api::CredentialStoreApi as _;
    let store = zbus_secret_service_keyring_store::Store::new().unwrap();
    store.build("tessera", account, None).unwrap()
}

#[cfg(target_os = "linux")]
fn raw_keyring_write(account: &str, bytes: &[u8]) {
    raw_entry(account).set_secret(bytes).unwrap();
}

#[cfg(target_os = "linux")]
fn keyring_raw_read(info: &tessera::store::StoreInfo) -> Vec<u8> {
    let account = info.location.rsplit("account ").next().unwrap();
    raw_entry(account.trim_end_matches(')'))
        .get_secret()
        .unwrap()
}

#[cfg(not(target_os = "linux"))]
fn raw_keyring_write(_: &str, _: &[u8]) {
    unreachable!("no keyring on this platform yet")
}

#[cfg(not(target_os = "linux"))]
fn keyring_raw_read(_: &tessera::store::StoreInfo) -> Vec<u8> {
    unreachable!("no keyring on this platform yet")
}

#[test]
fn auto_stays_with_an_existing_session_file() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((_, profile)) = keyring_or_skip("auto_stays_with_a_file", tmp.path()) else {
        return;
    };
    let auto = open_store(
        StoreChoice::Auto,
        tmp.path(),
        &profile,
        PassphraseSource::Env,
    );
    assert_eq!(auto.unwrap().info().kind, StoreKind::Keyring);

    std::fs::write(tmp.path().join(format!("{profile}.session")), b"{}").unwrap();
    let auto = open_store(
        StoreChoice::Auto,
        tmp.path(),
        &profile,
        PassphraseSource::Env,
    )
    .unwrap();
    assert_eq!(auto.info().kind, StoreKind::File);
    let reason = auto.info().fallback_reason.clone().unwrap();
    assert!(reason.contains("a session file exists"), "{reason}");
}

/// How the actor uses a store: created and called inside `spawn_blocking`.
#[test]
fn keyring_store_works_from_spawn_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((_, profile)) = keyring_or_skip("keyring_from_spawn_blocking", tmp.path()) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tmp.path().to_owned();
    runtime.block_on(async move {
        let store = tokio::task::spawn_blocking(move || {
            open_store(StoreChoice::Auto, &dir, &profile, PassphraseSource::Env).unwrap()
        })
        .await
        .unwrap();
        let store = std::sync::Arc::new(store);
        for n in 0..3 {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                store.save(&session(n)).unwrap();
                assert_eq!(store.load().unwrap().unwrap(), session(n));
            })
            .await
            .unwrap();
        }
        tokio::task::spawn_blocking(move || store.delete().unwrap())
            .await
            .unwrap();
    });
}

/// The `tessera` binary on the keyring store must exit without a panic message. zbus's
/// blocking proxy releases itself with `block_on`; when the store was dropped with the
/// session actor on a tokio worker, every keyring command printed "Cannot start a runtime
/// from within a runtime" at exit (with the right exit code, so only stderr shows it).
/// Runs the real binary against the real Secret Service: a command served without the
/// runtime (a valid token), and commands that start it (status, a refresh that fails
/// to connect, logout).
#[test]
fn keyring_commands_exit_without_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((store, profile)) = keyring_or_skip("keyring_commands_exit", tmp.path()) else {
        return;
    };
    // A closed port: the refresh below fails fast with a network error (exit 5).
    std::fs::write(
        tmp.path().join("config.toml"),
        format!(
            "[profiles.{profile}]\nissuer = \"https://issuer.example\"\nclient_id = \
             \"tessera-cli\"\ndiscovery = false\nstore = \"keyring\"\n\
             [profiles.{profile}.endpoints]\ntoken = \"http://127.0.0.1:9/token\"\n"
        ),
    )
    .unwrap();
    let tessera = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args([
                "--config-dir",
                tmp.path().to_str().unwrap(),
                "--profile",
                &profile,
            ])
            .args(args)
            .env_remove("TESSERA_ACCESS_TOKEN")
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Cannot start a runtime"),
            "tessera {args:?} panicked:\n{stderr}"
        );
        (output.status.code(), stderr)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut valid = session(10);
    valid.obtained_at = UnixMillis(now);
    valid.expires_at = UnixMillis(now).plus_secs(3600);
    store.save(&valid).unwrap();

    assert_eq!(tessera(&["token"]).0, Some(0));
    assert_eq!(tessera(&["status"]).0, Some(0));
    // Asking for more than the token has left starts the runtime and refreshes.
    let (code, stderr) = tessera(&["token", "--min-ttl", "7200"]);
    assert_eq!(code, Some(5), "{stderr}");
    assert_eq!(tessera(&["logout", "--force"]).0, Some(0));
    assert_eq!(tessera(&["status"]).0, Some(3));
    assert!(store.load().unwrap().is_none());
}

/// The session file's key, shared by the processes of one login session through the
/// kernel session keyring (ADR 007). Runs in a child under `keyctl session -` (a fresh
/// session keyring, as pam_keyinit gives every login); skipped without `keyctl`.
#[test]
fn the_session_keyring_shares_the_file_key_until_logout() {
    let Ok(keyctl) = which("keyctl") else {
        eprintln!("skipping: keyctl not found (apt-get install keyutils)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut command = Command::new(keyctl);
    command
        .args(["session", "-"])
        .arg(std::env::current_exe().unwrap())
        .args(["child_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "key-cache")
        .env(DIR, tmp.path())
        .env_remove("TESSERA_PASSPHRASE")
        .env_remove("TESSERA_KEY_CACHE_SECS");
    println!("{}", run(command));
}

fn which(tool: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}
