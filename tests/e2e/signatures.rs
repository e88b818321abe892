//! ID tokens verified against the provider's published keys (issue 12): each algorithm the
//! test provider can sign with, the key remembered for later refreshes, a token checked
//! against another provider's keys, and a local clock ten minutes wrong.

use std::process::Output;

use crate::integrations::set_profile_key;
use crate::support::*;

async fn jwks_requests(provider: &Provider) -> u64 {
    provider.counters().await["jwks_requests"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

fn assert_logged_in(login: &Output, what: &str) {
    assert_ok(login, what);
    assert!(
        stderr(login).contains("Logged in as alice@example.test"),
        "{what}: {}",
        stderr(login)
    );
}

/// For each algorithm: the login fetches the key set once and verifies the ID token; a
/// forced refresh in a new process verifies the refreshed ID token with the key the
/// session remembered, without fetching again.
#[tokio::test(flavor = "multi_thread")]
async fn id_tokens_signed_with_each_algorithm_verify_against_the_providers_keys() {
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        let provider = Provider::start(&[("ID_TOKEN_ALG", alg)]);
        let tessera = Tessera::new(&provider);
        assert_logged_in(&tessera.login(&["--browser"]), alg);
        assert_eq!(jwks_requests(&provider).await, 1, "{alg}: one key fetch");

        let refreshes = provider.refresh_requests().await;
        let token = tessera.run(&["token", "--min-ttl", "3600"]);
        assert_ok(&token, &format!("{alg}: forced refresh"));
        assert_eq!(provider.refresh_requests().await, refreshes + 1, "{alg}");
        assert_eq!(
            jwks_requests(&provider).await,
            1,
            "{alg}: the refreshed ID token is verified with the remembered key"
        );
    }
}

/// The profile points `jwks` at another provider's key set: same key ids, other keys. The
/// provider's genuine ID token then does not verify, exactly as a forged one would not:
/// the login fails (exit 6) naming the signature, and nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn an_id_token_that_does_not_verify_with_the_published_keys_fails_the_login() {
    let provider = Provider::start(&[]);
    let impostor = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    set_profile_key(tessera.dir.path(), "issuer", provider.issuer.clone().into());
    set_profile_key(tessera.dir.path(), "client_id", "tessera-cli".into());
    let mut endpoints = toml::Table::new();
    endpoints.insert("jwks".into(), format!("{}/jwks", impostor.issuer).into());
    set_profile_key(tessera.dir.path(), "endpoints", endpoints.into());

    let login = tessera.login(&["--browser"]);
    assert_eq!(login.status.code(), Some(6), "{}", stderr(&login));
    assert!(
        stderr(&login).contains("signature does not verify"),
        "{}",
        stderr(&login)
    );
    assert_eq!(jwks_requests(&impostor).await, 1);
    let token = tessera.run(&["token"]);
    assert_eq!(
        token.status.code(),
        Some(3),
        "nothing stored: {}",
        stderr(&token)
    );
}

/// `faketime` sets this process's clock ten minutes behind and then ahead of the
/// provider's: the ID token's `iat` lies in the future, or its five-minute lifetime is
/// over, by the local clock. The provider's `Date` header gives its time: the login
/// succeeds, and the session's expiry is the provider's `expires_in` counted on the local
/// clock, so the refresh is due at the right local time.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_clock_ten_minutes_wrong_still_logs_in_and_refreshes_on_time() {
    let Some(faketime) = which("faketime") else {
        panic!("faketime is not installed (apt install faketime; .ci/run installs it)");
    };
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "600"), ("ID_TOKEN_TTL", "300")]);
    for offset in ["-10m", "+10m"] {
        let tessera = Tessera::new(&provider);
        let wrapped = |args: &[&str]| {
            let command = tessera.command(args);
            let program = command.get_program().to_owned();
            let mut outer = std::process::Command::new(&faketime);
            outer
                .arg("-f")
                .arg(offset)
                .arg(program)
                .args(command.get_args())
                .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))))
                .stdin(std::process::Stdio::null());
            for (name, value) in command.get_envs() {
                if value.is_none() {
                    outer.env_remove(name);
                }
            }
            outer.output().expect("faketime runs")
        };
        let login = wrapped(&[
            "login",
            "--browser",
            "--issuer",
            &provider.issuer,
            "--client-id",
            "tessera-cli",
            "--scope",
            "openid offline_access email profile",
        ]);
        assert_logged_in(&login, offset);

        let status = wrapped(&["status", "--json"]);
        assert_ok(&status, offset);
        let status: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("json");
        let expires_in = status["expires_in_secs"].as_i64().expect("expires_in_secs");
        assert!(
            (590..=600).contains(&expires_in),
            "{offset}: the token lives 600 s by the local clock, not {expires_in}"
        );
        // Within 300 s of expiry a token is not served without a refresh (--min-ttl),
        // and not before: the refresh happens when the provider's lifetime says.
        let refreshes = provider.refresh_requests().await;
        assert_ok(&wrapped(&["token", "--min-ttl", "200"]), offset);
        assert_eq!(provider.refresh_requests().await, refreshes, "{offset}");
        assert_ok(&wrapped(&["token", "--min-ttl", "700"]), offset);
        assert_eq!(provider.refresh_requests().await, refreshes + 1, "{offset}");
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|path| path.is_file())
}
