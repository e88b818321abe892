//! `tessera export` then `tessera import`, in both shapes, and bad input to `import`.

use std::io::Write as _;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::support::*;

/// `tessera import -` with `input` on standard input.
fn import_stdin(tessera: &Tessera, args: &[&str], input: &[u8]) -> Output {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    all.push("-");
    let mut child = tessera
        .command(&all)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write");
    drop(stdin);
    child.wait_with_output().expect("exit")
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

/// Login in A; A exports the flat shape (a 0600 file); B imports it and refreshes with it;
/// B exports the Claude Code shape to stdout; C imports that (its profile given as flags)
/// and refreshes too. Each refresh rotates the refresh token the file carried, and the
/// provider never sees a reused one.
#[tokio::test(flavor = "multi_thread")]
async fn export_then_import_round_trips_in_both_shapes_and_the_import_refreshes() {
    let provider = Provider::start(&[]);
    let a = Tessera::new(&provider);
    assert_ok(&a.login(&["--browser"]), "login");

    let file = a.dir.path().join("out/credentials.json");
    let path = file.to_str().unwrap();
    let export = a.run(&["export", "--format", "credentials-json", "-o", path]);
    assert_ok(&export, "export -o");
    assert!(stdout(&export).is_empty(), "the tokens go to the file only");
    assert!(stderr(&export).contains("mode 0600"), "{}", stderr(&export));
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).expect("written");
    let flat: Value = serde_json::from_str(&text).expect("JSON");
    let access_token = flat["access_token"].as_str().expect("access_token");
    assert!(
        flat["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(flat["expires_at"].as_u64().expect("seconds") < 10_000_000_000);
    assert!(provider.is_active(access_token).await);

    let again = a.run(&["export", "-o", path]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "not overwritten"
    );
    assert_ok(&a.run(&["export", "-o", path, "--force"]), "export --force");
    let text = std::fs::read_to_string(&file).expect("rewritten");

    let b = Tessera::new(&provider);
    let import = b.run(&[
        "import",
        "--issuer",
        &provider.issuer,
        "--client-id",
        "tessera-cli",
        path,
    ]);
    assert_ok(&import, "import of the flat shape");
    assert!(
        !stderr(&import).contains(access_token),
        "no token in messages"
    );
    let flat: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        stdout(&b.run(&["token"])),
        flat["access_token"].as_str().unwrap(),
        "the imported token is served as is"
    );
    let before = provider.refresh_requests().await;
    let refreshed = b.run(&["token", "--min-ttl", "999999"]);
    assert_ok(&refreshed, "a refresh of the imported session");
    assert_eq!(provider.refresh_requests().await, before + 1);
    let b_token = stdout(&refreshed);
    assert_ne!(b_token, flat["access_token"].as_str().unwrap());
    assert!(provider.is_active(&b_token).await);

    let claude = b.run(&["export", "--format", "claude"]);
    assert_ok(&claude, "export --format claude");
    let claude_text = stdout(&claude);
    let shaped: Value = serde_json::from_str(&claude_text).expect("JSON on stdout");
    let inner = &shaped["claudeAiOauth"];
    assert_eq!(inner["accessToken"], b_token.as_str());
    assert!(inner["expiresAt"].as_u64().expect("ms") > 1_000_000_000_000);
    assert!(inner["scopes"].as_array().is_some_and(|s| !s.is_empty()));

    let c = Tessera::new(&provider);
    let import = import_stdin(
        &c,
        &["--issuer", &provider.issuer, "--client-id", "tessera-cli"],
        claude_text.as_bytes(),
    );
    assert_ok(&import, "import of the Claude Code shape from stdin");
    assert_eq!(stdout(&c.run(&["token"])), b_token);
    let refreshed = c.run(&["token", "--min-ttl", "999999"]);
    assert_ok(&refreshed, "a refresh of the second import");
    assert!(provider.is_active(&stdout(&refreshed)).await);
    let counters = provider.counters().await;
    assert_eq!(counters["refresh_invalid_grant"], 0, "{counters}");
}

/// Each malformed file gets exit 2 naming the field, shows no token, and leaves the
/// stored session byte for byte; a valid file over an existing session needs --force.
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_import_names_the_field_and_leaves_the_stored_session_alone() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");
    let session_file = tessera.dir.path().join("default.session");
    let stored = std::fs::read(&session_file).expect("session file");
    let token = super::current_token(&tessera);

    let cases: &[(&[u8], &str)] = &[
        (b"{\"access_token\": \"sk-secret-1\", \"expires_at\"", "not JSON"),
        (b"[1, 2]", "(body)"),
        (b"{\"access_token\": \"sk-secret-2\"}", "`expires_at` is missing"),
        (
            b"{\"access_token\": \"sk-secret-3\", \"expires_at\": \"tomorrow\"}",
            "`expires_at` must be a number",
        ),
        (b"{\"refresh_token\": \"sk-secret-4\", \"expires_at\": 1900000000}", "`access_token` is missing"),
        (
            b"{\"claudeAiOauth\": {\"accessToken\": \"sk-secret-5\", \"expiresAt\": -1}}",
            "`claudeAiOauth.expiresAt` must be a positive",
        ),
        (
            b"{\"claudeAiOauth\": {\"accessToken\": [\"sk-secret-6\"], \"expiresAt\": 1900000000000}}",
            "`claudeAiOauth.accessToken` must be a string",
        ),
        (
            b"{\"access_token\": \"sk-secret-7\", \"expires_at\": 1000000000}",
            "expired and there is no refresh token",
        ),
    ];
    for (input, named) in cases {
        let import = import_stdin(&tessera, &["--force"], input);
        let text = stderr(&import);
        assert_eq!(import.status.code(), Some(2), "{named}: {text}");
        assert!(text.contains(named), "{named}: {text}");
        assert!(text.contains("nothing was stored"), "{text}");
        assert!(
            !text.contains("sk-secret"),
            "the token is not echoed: {text}"
        );
        assert_eq!(
            std::fs::read(&session_file).unwrap(),
            stored,
            "{named}: untouched"
        );
    }
    let missing = tessera.run(&["import", "/nonexistent/credentials.json"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );

    let valid = b"{\"access_token\": \"other-token\", \"refresh_token\": \"r\", \"expires_at\": 4000000000}";
    let without_force = import_stdin(&tessera, &[], valid);
    assert_eq!(
        without_force.status.code(),
        Some(2),
        "{}",
        stderr(&without_force)
    );
    assert!(
        stderr(&without_force).contains("--force"),
        "{}",
        stderr(&without_force)
    );
    assert_eq!(std::fs::read(&session_file).unwrap(), stored, "untouched");
    assert_eq!(
        super::current_token(&tessera),
        token,
        "the login's session still serves"
    );

    // A profile that could never refresh the tokens: a configuration error, nothing saved.
    let fresh = Tessera::new(&provider);
    let no_client = import_stdin(&fresh, &[], valid);
    assert_eq!(no_client.status.code(), Some(7), "{}", stderr(&no_client));
    assert!(
        stderr(&no_client).contains("--client-id"),
        "{}",
        stderr(&no_client)
    );
    let no_endpoint = import_stdin(&fresh, &["--client-id", "tessera-cli"], valid);
    assert_eq!(
        no_endpoint.status.code(),
        Some(7),
        "{}",
        stderr(&no_endpoint)
    );
    assert!(
        stderr(&no_endpoint).contains("--issuer"),
        "{}",
        stderr(&no_endpoint)
    );
    assert!(!fresh.dir.path().join("default.session").exists());
    assert!(
        !fresh.dir.path().join("config.toml").exists(),
        "no profile saved"
    );
}
