//! Security issue 12, end to end: a refresh token from the environment is spent once
//! (finding 4), a logout that races a refresh in another process wins (finding 2), and
//! `--record` writes a redacted transcript only the user can read (finding 8).

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// `tessera export --format env` parsed into its variables.
fn exported(tessera: &Tessera) -> Vec<(String, String)> {
    let export = tessera.run(&["export", "--format", "env"]);
    assert_ok(&export, "export --format env");
    stdout(&export)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn var<'a>(vars: &'a [(String, String)], name: &str) -> &'a str {
    vars.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{name} exported"))
}

/// `tessera token --min-ttl 3600` (a forced refresh: the provider's tokens live 60 s) with
/// the exported tokens in the environment.
fn env_token(tessera: &Tessera, vars: &[(String, String)]) -> Output {
    tessera
        .command(&["token", "--min-ttl", "3600"])
        .env("TESSERA_ACCESS_TOKEN", var(vars, "TESSERA_ACCESS_TOKEN"))
        .env("TESSERA_REFRESH_TOKEN", var(vars, "TESSERA_REFRESH_TOKEN"))
        .env("TESSERA_EXPIRES_AT", var(vars, "TESSERA_EXPIRES_AT"))
        .output()
        .expect("tessera runs")
}

/// Finding 4: with a provider that rotates refresh tokens, the refresh token given in
/// `TESSERA_REFRESH_TOKEN` works once. The process that spends it notes its hash in the
/// configuration directory; the next process given the same variable does not send it
/// (exit 3, and says why), so the provider's reuse detection never revokes the grant.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_from_the_environment_is_not_sent_twice() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");
    let vars = exported(&tessera);
    let refresh_token = var(&vars, "TESSERA_REFRESH_TOKEN").to_owned();

    let first = env_token(&tessera, &vars);
    assert_ok(
        &first,
        "the first process refreshes with the environment's token",
    );
    let refreshed = stdout(&first);
    assert_ne!(refreshed, var(&vars, "TESSERA_ACCESS_TOKEN"), "a new token");
    assert_eq!(provider.refresh_requests().await, 1);

    let second = env_token(&tessera, &vars);
    let counters = provider.counters().await;
    assert_eq!(counters["token_requests"]["refresh_token"], 1, "{counters}");
    assert_eq!(counters["refresh_invalid_grant"], 0, "{counters}");
    assert_eq!(
        second.status.code(),
        Some(3),
        "the spent token is not sent: {}",
        stderr(&second)
    );
    assert!(stdout(&second).is_empty(), "no token on stdout");
    let message = stderr(&second);
    assert!(
        message.contains("TESSERA_REFRESH_TOKEN was already spent")
            && message.contains("tessera export")
            && message.contains("tessera login"),
        "{message}"
    );
    assert!(!message.contains(&refresh_token), "{message}");

    let list = tessera.dir.path().join("spent-refresh-tokens");
    let text = std::fs::read_to_string(&list).expect("the spent token is noted");
    assert!(!text.contains(&refresh_token), "a hash, not the token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&list).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{list:?}");
    }

    // No reuse detection: the grant, and with it the stored login, is still valid.
    assert!(
        provider.is_active(&refreshed).await,
        "the rotated token is still valid"
    );
    let stored = tessera.run(&["token"]);
    assert_ok(&stored, "the stored login");
    assert!(
        provider.is_active(&stdout(&stored)).await,
        "the stored login's token is still valid"
    );
    let status = tessera.run(&["status", "--json"]);
    assert_ok(&status, "status");
    let status: Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    assert_eq!(status["logged_in"], true, "{status}");
}

/// Finding 2, with two processes: A's refresh is in flight (the provider has rotated the
/// refresh token and holds its answer back for 2 s) when B runs `tessera logout`. Logout
/// takes the profile's refresh lock first, so it waits for A's answer to be stored and
/// then deletes the session and revokes the new tokens: afterwards nothing is stored,
/// `status` and `token` say logged out, and what A obtained is no longer valid at the
/// provider.
///
/// A is `tessera token --min-ttl 3600` (the provider's tokens live 60 s: a forced
/// refresh), then `tessera exec --min-ttl 1h --with-refresh-token`, which hands the
/// refresh token A obtained to its command, so the test can ask the provider about it.
/// Without the lock B deleted the session under A's refresh and revoked the old tokens
/// only; A's save then failed (`exec`: exit 8, "replaced by another process") and the
/// rotated refresh token was left to the provider's grant-wide revocation.
#[tokio::test(flavor = "multi_thread")]
async fn a_logout_started_during_a_refresh_in_another_process_wins() {
    let provider = Provider::start(&[]);
    let print_tokens = [
        "exec",
        "--min-ttl",
        "1h",
        "--with-refresh-token",
        "--",
        "sh",
        "-c",
        "printf '%s %s' \"$TESSERA_ACCESS_TOKEN\" \"$TESSERA_REFRESH_TOKEN\"",
    ];
    for a_args in [&["token", "--min-ttl", "3600"][..], &print_tokens[..]] {
        let tessera = Tessera::new(&provider);
        assert_ok(&tessera.login(&["--browser"]), "login");
        let before_login = exported(&tessera);
        let old_refresh = var(&before_login, "TESSERA_REFRESH_TOKEN").to_owned();

        provider.delay_refresh_answers(2000).await;
        let before = provider.refresh_requests().await;
        let a = tessera
            .command(a_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("A starts");
        let started = std::time::Instant::now();
        while provider.refresh_requests().await == before {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "A's refresh never reached the provider"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The provider has rotated the refresh token and holds A's answer back.
        let b = tessera
            .command(&["logout"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("B starts");
        let (a, b) = tokio::task::spawn_blocking(move || {
            (
                a.wait_with_output().expect("A exits"),
                b.wait_with_output().expect("B exits"),
            )
        })
        .await
        .expect("join");
        provider.delay_refresh_answers(0).await;
        let what = a_args[0];
        assert_ok(&a, &format!("A ({what}, its refresh answered)"));
        assert_ok(&b, "B (logout, the revocation confirmed)");
        assert_eq!(
            provider.refresh_requests().await,
            before + 1,
            "one refresh ({what})"
        );

        let status = tessera.run(&["status"]);
        assert_eq!(status.status.code(), Some(3), "{}", stdout(&status));
        assert!(
            stdout(&status).contains("Not logged in"),
            "{}",
            stdout(&status)
        );
        let token = tessera.run(&["token"]);
        assert_eq!(token.status.code(), Some(3), "{}", stderr(&token));
        assert!(
            !tessera.dir.path().join("default.session").exists(),
            "nothing stored ({what})"
        );

        let obtained = stdout(&a);
        let mut obtained = obtained.split(' ');
        let access_token = obtained.next().expect("A printed its access token");
        assert!(
            !provider.is_active(access_token).await,
            "the access token A obtained is revoked ({what})"
        );
        if let Some(refresh_token) = obtained.next() {
            assert_ne!(refresh_token, old_refresh, "A's refresh rotated the token");
            assert!(
                !provider.is_active(refresh_token).await,
                "the refresh token A obtained is revoked"
            );
        }
        assert!(!provider.is_active(&old_refresh).await);
    }
    let counters = provider.counters().await;
    assert_eq!(counters["refresh_invalid_grant"], 0, "{counters}");
}

/// The `state`, `nonce` and `code_challenge` of the authorization URL the browser
/// stand-in opened (its log), i.e. what the live seed gave.
fn live_authorization_values(tessera: &Tessera) -> Vec<String> {
    let log = std::fs::read_to_string(tessera.dir.path().join("browser.log")).expect("log");
    let url = log
        .lines()
        .rev()
        .find(|line| line.contains("code_challenge="))
        .expect("the authorization URL");
    let url = url::Url::parse(url.split_whitespace().last().unwrap()).expect("a URL");
    let values: Vec<String> = url
        .query_pairs()
        .filter(|(name, _)| ["state", "nonce", "code_challenge"].contains(&name.as_ref()))
        .map(|(_, value)| value.into_owned())
        .collect();
    assert_eq!(values.len(), 3, "{url}");
    values
}

/// `text` followed by the decoded payload of every JWT-shaped word in it (ID tokens are
/// base64url-encoded in a transcript).
fn with_decoded_jwts(text: &str) -> String {
    fn base64url(text: &str) -> Option<Vec<u8>> {
        let mut bits = 0u32;
        let mut count = 0;
        let mut out = Vec::new();
        for c in text.bytes() {
            let value = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return None,
            };
            bits = (bits << 6) | u32::from(value);
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
            }
        }
        Some(out)
    }
    let mut all = text.to_owned();
    let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)));
    for word in words.filter(|w| w.matches('.').count() == 2) {
        let payload = word.split('.').nth(1).and_then(base64url);
        if let Some(json) = payload.and_then(|p| String::from_utf8(p).ok()) {
            all.push('\n');
            all.push_str(&json);
        }
    }
    all
}

/// Asserts that none of the test account's personal claims is in `text` (decoded ID
/// tokens included), and that its ID tokens are there with placeholders.
fn assert_no_personal_data(text: &str, file: &std::path::Path) {
    let all = with_decoded_jwts(text);
    assert!(
        all.contains("\"sub\":\"subject-1\""),
        "no redacted ID token in {file:?}"
    );
    let lower = all.to_lowercase();
    for personal in ["alice", "example.test"] {
        assert!(!lower.contains(personal), "{personal} in {file:?}");
    }
    for family_name in ["\"Example\"", "\\\"Example\\\""] {
        assert!(!all.contains(family_name), "the family name in {file:?}");
    }
}

fn seed_of(text: &str) -> String {
    let value: toml::Value = toml::from_str(text).expect("a TOML transcript");
    value["seed"].as_str().expect("seed").to_owned()
}

/// Finding 8: `--record` writes the transcript with mode 0600, redacted: no token, no
/// cookie, none of the test account's personal claims, and not the live seed (neither the
/// live authorization request's state, nonce nor PKCE challenge is in the file, and two
/// recordings have different seeds); it says so on stderr, and it still replays.
#[tokio::test(flavor = "multi_thread")]
async fn a_recording_is_private_redacted_and_replays() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    let mut seeds = Vec::new();
    for round in 1..=2 {
        let file = tessera.dir.path().join(format!("login-{round}.toml"));
        let login = tessera.login(&["--browser", "--record", file.to_str().unwrap()]);
        assert_ok(&login, "recorded login");
        let note = stderr(&login);
        assert!(
            note.contains(&file.display().to_string())
                && note.contains("0600")
                && note.contains("redacted"),
            "{note}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file:?}");
        }
        let text = std::fs::read_to_string(&file).expect("transcript written");
        let lower = text.to_lowercase();
        assert!(!lower.contains("set-cookie"), "a cookie in {file:?}");
        assert_no_personal_data(&text, &file);
        for live in live_authorization_values(&tessera) {
            assert!(!text.contains(&live), "the live {live} in {file:?}");
        }
        let token = tessera.run(&["token"]);
        assert_ok(&token, "token");
        assert!(!text.contains(&stdout(&token)), "the access token");
        seeds.push(seed_of(&text));
        // The recording ends as the live login did: the re-signed ID token verifies
        // against the key set the recording carries (the transcript key's).
        assert!(
            text.contains("event = \"logged_in\"") && !text.contains("login_failed"),
            "the recorded login succeeds on replay: {file:?}"
        );
        // The first login fetches the provider's keys; the second has the key its
        // session remembers.
        assert_eq!(
            text.contains("endpoint = \"jwks\""),
            round == 1,
            "the key fetch: {file:?}"
        );
        let replay = tessera.run(&["replay", file.to_str().unwrap()]);
        assert_ok(&replay, "replay of the redacted recording");
    }
    assert_ne!(seeds[0], seeds[1], "each recording gets its own seed");

    // A refresh, recorded: the refreshed ID token and the stored identity are redacted
    // the same way, and the recording replays.
    let file = tessera.dir.path().join("token.toml");
    let token = tessera.run(&[
        "token",
        "--min-ttl",
        "3600",
        "--record",
        file.to_str().unwrap(),
    ]);
    assert_ok(&token, "recorded forced refresh");
    let text = std::fs::read_to_string(&file).expect("transcript written");
    assert!(text.contains("refresh_token"), "the refresh is in {file:?}");
    assert!(
        text.contains("event = \"token_ready\"") && !text.contains("refresh_failed"),
        "the recorded refresh succeeds on replay: {file:?}"
    );
    assert!(!text.to_lowercase().contains("set-cookie"), "{file:?}");
    assert_no_personal_data(&text, &file);
    assert!(!text.contains(&stdout(&token)), "the access token");
    assert_ok(
        &tessera.run(&["replay", file.to_str().unwrap()]),
        "replay of the recorded refresh",
    );
}
