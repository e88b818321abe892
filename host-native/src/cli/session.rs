//! `status`, `token` and `logout`, and opening a profile's session.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use tessera::engine::{Secret, StoredSession};
use tessera::store::{self, PassphraseSource, StoreChoice};
use tessera::{Client, ClientOptions, LoopbackOptions};

use super::Exit;
use super::Preopened;
use super::args::{Cli, StoreArg};
use super::output;
use tessera::profile::{ConfigFile, ProfileSpec};

/// The configuration directory: `--config-dir`, `TESSERA_CONFIG_DIR`, or the OS's.
pub fn config_dir(cli: &Cli) -> PathBuf {
    cli.global
        .config_dir
        .clone()
        .or_else(store::default_config_dir)
        .unwrap_or_else(|| PathBuf::from(".tessera"))
}

/// The profile as stored in `config.toml`, overlaid with `extra` (login flags).
pub fn profile(cli: &Cli, extra: &ProfileSpec) -> Result<ProfileSpec, Exit> {
    let file = ConfigFile::load(&config_dir(cli)).map_err(|e| fail(Exit::Config, &e))?;
    let stored = file
        .profiles
        .get(&cli.global.profile)
        .cloned()
        .unwrap_or_default();
    stored
        .overlay(extra)
        .resolved()
        .map_err(|e| fail(Exit::Config, &e))
}

/// The stored profile, or why not (for callers that report it themselves, or not at all).
pub fn load_profile(cli: &Cli) -> Result<ProfileSpec, String> {
    let file = ConfigFile::load(&config_dir(cli)).map_err(|e| e.to_string())?;
    let stored = file
        .profiles
        .get(&cli.global.profile)
        .cloned()
        .unwrap_or_default();
    stored
        .overlay(&ProfileSpec::default())
        .resolved()
        .map_err(|e| e.to_string())
}

/// Tokens in the environment need no profile: they get a placeholder client id.
pub fn with_env_client(mut spec: ProfileSpec) -> ProfileSpec {
    if env_tokens_present() && spec.client_id.is_none() {
        spec.client_id = Some("tessera-env".into());
    }
    spec
}

/// `--store`, else the profile's store, else auto.
pub fn store_choice(cli: &Cli, spec: &ProfileSpec) -> StoreChoice {
    match (cli.global.store, spec.store) {
        (Some(StoreArg::Keyring), _) => StoreChoice::Keyring,
        (Some(StoreArg::File), _) => StoreChoice::File,
        (None, Some(name)) => name.into(),
        (None, None) => StoreChoice::Auto,
    }
}

/// The first link of the credential chain: tokens given in the environment.
///
/// `TESSERA_ACCESS_TOKEN` (required), `TESSERA_REFRESH_TOKEN` and `TESSERA_EXPIRES_AT`
/// (Unix seconds, or milliseconds as `tessera exec` gives them). Without an expiry the token is assumed to live the profile's assumed
/// lifetime from now. Such a session is used and refreshed in memory, never stored; a
/// refresh token the provider rotated is noted as spent (its hash, in the configuration
/// directory) and not sent again by a later process.
pub fn session_from_env(config: &tessera::engine::Config) -> Option<StoredSession> {
    let access_token = std::env::var("TESSERA_ACCESS_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())?;
    let now = tessera::clock::now();
    let expires_at = match std::env::var("TESSERA_EXPIRES_AT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(value) => tessera::engine::UnixMillis(tessera::credentials::to_millis(value)),
        None => now.plus_secs(config.assumed_token_lifetime_secs),
    };
    Some(StoredSession {
        version: tessera::engine::SESSION_FORMAT_VERSION,
        issuer: config.issuer.clone(),
        client_id: config.client_id.clone(),
        access_token: Secret::new(access_token.trim()),
        refresh_token: std::env::var("TESSERA_REFRESH_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| Secret::new(t.trim())),
        id_token: None,
        obtained_at: now,
        expires_at,
        scopes: config.scopes.clone(),
        identity: None,
        endpoints: Default::default(),
    })
}

/// Why a `TESSERA_REFRESH_TOKEN` is not used (see [`store::MemoryStore::from_environment`]).
const SPENT_REFRESH_TOKEN: &str = "the refresh token in TESSERA_REFRESH_TOKEN was already spent \
    by an earlier refresh and the provider rotated it, so it is not sent again (that would \
    trip the provider's reuse detection and end the login it came from); pass the new one \
    (e.g. from `tessera export`) or run `tessera login`";

/// Whether the environment supplies tokens (then no profile or store is needed).
pub fn env_tokens_present() -> bool {
    std::env::var("TESSERA_ACCESS_TOKEN").is_ok_and(|t| !t.trim().is_empty())
}

/// Starts a client for the profile: tokens from the environment if given, else the
/// stored session (`preopened`: the store `tessera token`'s fast path already opened).
pub async fn open(
    cli: &Cli,
    spec: &ProfileSpec,
    open_browser: bool,
    preopened: Option<Preopened>,
) -> Result<Client, Exit> {
    open_with_store(cli, spec, open_browser, preopened)
        .await
        .map(|(client, _)| client)
}

/// [`open`], and the store the client uses, for commands that read the whole session
/// (`export`, `exec --with-refresh-token`) or write one (`import`).
pub async fn open_with_store(
    cli: &Cli,
    spec: &ProfileSpec,
    open_browser: bool,
    preopened: Option<Preopened>,
) -> Result<(Client, Arc<dyn store::BlockingStore>), Exit> {
    let spec = with_env_client(spec.clone());
    let config = spec.engine_config().map_err(|e| fail(Exit::Config, &e))?;
    if let Some(mut session) = session_from_env(&config) {
        tracing::info!(
            "using the tokens from TESSERA_ACCESS_TOKEN (credential chain: environment first)"
        );
        let dir = config_dir(cli);
        if session
            .refresh_token
            .as_ref()
            .is_some_and(|t| store::MemoryStore::refresh_token_spent(&dir, t.expose()))
        {
            // Sending it again would trip the provider's reuse detection, which revokes
            // the whole grant (the login it came from too): use the access token alone.
            session.refresh_token = None;
            output::error(SPENT_REFRESH_TOKEN);
        }
        let store: Arc<dyn store::BlockingStore> = Arc::new(store::MemoryStore::from_environment(
            session,
            "TESSERA_ACCESS_TOKEN (memory only)",
            &dir,
        ));
        let client = start(&spec, config, store.clone(), open_browser).await?;
        return Ok((client, store));
    }
    let store: Arc<dyn store::BlockingStore> = Arc::from(open_store(cli, &spec, preopened).await?);
    let client = start(&spec, config, store.clone(), open_browser).await?;
    Ok((client, store))
}

/// The profile's store (keyring or encrypted file), opened off the runtime's threads.
pub async fn open_store(
    cli: &Cli,
    spec: &ProfileSpec,
    preopened: Option<Preopened>,
) -> Result<Box<dyn store::BlockingStore>, Exit> {
    let choice = store_choice(cli, spec);
    let (dir, profile) = (config_dir(cli), cli.global.profile.clone());
    let opened = match preopened {
        Some(opened) => opened,
        None => tokio::task::spawn_blocking(move || {
            store::open_store(choice, &dir, &profile, PassphraseSource::EnvOrPrompt)
        })
        .await
        .map_err(|e| fail(Exit::Other, &e))?,
    };
    opened.map_err(|e| fail(Exit::Storage, &e))
}

async fn start(
    spec: &ProfileSpec,
    config: tessera::engine::Config,
    store: Arc<dyn store::BlockingStore>,
    open_browser: bool,
) -> Result<Client, Exit> {
    let mut options = ClientOptions::new(config, store)
        .loopback(LoopbackOptions {
            port: spec.port.unwrap_or(0),
            path: spec
                .callback_path
                .clone()
                .unwrap_or_else(|| "/callback".into()),
        })
        .open_browser(open_browser);
    options.recorder = super::recorder().cloned();
    Client::start(options)
        .await
        .map_err(|e| fail(Exit::Other, &e))
}

pub fn fail(exit: Exit, error: &dyn std::fmt::Display) -> Exit {
    output::error(&error.to_string());
    exit
}

/// An engine error: its message, what to run next, and its exit code.
pub fn fail_engine(error: &tessera::engine::Error) -> Exit {
    match super::hint(error) {
        Some(hint) => output::error(&format!("{error}; {hint}")),
        None => output::error(&error.to_string()),
    }
    Exit::from(error)
}

pub async fn status(cli: &Cli, as_json: bool) -> Exit {
    let spec = match profile(cli, &ProfileSpec::default()) {
        Ok(spec) => spec,
        Err(exit) => return exit,
    };
    if spec.client_id.is_none() && !env_tokens_present() {
        if as_json {
            output::line(&json!({"logged_in": false, "profile": cli.global.profile}).to_string());
        } else {
            output::line(&format!(
                "Not logged in (no profile `{}` yet). Run `tessera login`.",
                cli.global.profile
            ));
        }
        return Exit::NotLoggedIn;
    }
    let client = match open(cli, &spec, false, None).await {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    let report = match client.status().await {
        Ok(report) => report,
        Err(error) => return fail_engine(&error),
    };
    let (status, store) = (&report.status, &report.store);
    let exit = match (&report.storage_problem, status.logged_in) {
        (_, true) => Exit::Ok,
        (Some(_), false) => Exit::Storage,
        (None, false) => Exit::NotLoggedIn,
    };
    let store_kind = format!("{:?}", store.kind).to_lowercase();
    if as_json {
        let mut value = serde_json::to_value(status).unwrap_or_default();
        value["profile"] = json!(cli.global.profile);
        value["issuer"] = json!(status.issuer.clone().or(spec.issuer.clone()));
        value["store"] = json!({"kind": store_kind, "location": store.location, "fallback_reason": store.fallback_reason});
        value["storage_problem"] = json!(report.storage_problem);
        output::line(&value.to_string());
        return exit;
    }
    if let (false, Some(problem)) = (status.logged_in, &report.storage_problem) {
        output::line("Not logged in: the stored session could not be read.");
        output::line(&format!("  problem  {problem}"));
    } else if !status.logged_in {
        output::line(&format!(
            "Not logged in (profile `{}`). Run `tessera login`.",
            cli.global.profile
        ));
    } else {
        let who = status
            .identity
            .as_ref()
            .and_then(|i| i.display())
            .unwrap_or("(no identity claims)");
        output::line(&format!("Logged in as {}", output::printable(who)));
        if let Some(identity) = &status.identity
            && !identity.groups.is_empty()
        {
            output::line(&format!(
                "  groups   {}",
                output::list(&identity.groups, 10)
            ));
        }
        if let Some(issuer) = status.issuer.as_ref().or(spec.issuer.as_ref()) {
            output::line(&format!("  issuer   {}", output::printable(issuer)));
        }
        output::line(&format!("  scopes   {}", status.scopes.join(" ")));
        if let (Some(at), Some(secs)) = (status.expires_at, status.expires_in_secs) {
            let word = if secs < 0 { "expired" } else { "expires" };
            output::line(&format!(
                "  token    {word} {} ({})",
                output::timestamp(at.0),
                output::relative(secs)
            ));
        }
        let refresh = if status.refresh_token_present {
            "yes"
        } else {
            "no (log in again when the token expires)"
        };
        output::line(&format!("  refresh  {refresh}"));
    }
    if !status.logged_in
        && let Some(name) = spec
            .api_key_env
            .as_deref()
            .filter(|n| std::env::var(n).is_ok())
    {
        output::line(&format!(
            "  fallback `tessera token` prints the API key from ${name}"
        ));
    }
    output::line(&format!("  profile  {}", cli.global.profile));
    output::line(&format!("  store    {}: {}", store.kind, store.location));
    if let Some(reason) = &store.fallback_reason {
        output::line(&format!("           (not the keyring: {reason})"));
    }
    exit
}

pub async fn token(cli: &Cli, min_ttl: u64, preopened: Option<Preopened>) -> Exit {
    let spec = match profile(cli, &ProfileSpec::default()) {
        Ok(spec) => spec,
        Err(exit) => return exit,
    };
    if spec.client_id.is_none() && !env_tokens_present() {
        if let Some(key) = api_key(&spec) {
            return key;
        }
        return fail(
            Exit::NotLoggedIn,
            &format!(
                "not logged in (no profile `{}`); run `tessera login`",
                cli.global.profile
            ),
        );
    }
    let client = match open(cli, &spec, false, preopened).await {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    match client.access_token_for(min_ttl).await {
        Ok(token) => {
            output::line(token.access_token.expose());
            Exit::Ok
        }
        Err(error)
            if error.kind() == tessera::engine::ErrorKind::NotLoggedIn
                && api_key(&spec).is_some() =>
        {
            api_key(&spec).unwrap_or(Exit::Other)
        }
        Err(error) => {
            // "Not logged in" because the store could not be read says so.
            if let Ok(report) = client.status().await
                && let Some(problem) = report.storage_problem
            {
                return fail(Exit::Storage, &problem);
            }
            fail_engine(&error)
        }
    }
}

/// `tessera token --derived NAME`: the derived token on stdout. No API-key fallback: a
/// derived token needs a session.
pub async fn derived_token(cli: &Cli, name: &str, min_ttl: u64) -> Exit {
    let spec = match profile(cli, &ProfileSpec::default()) {
        Ok(spec) => spec,
        Err(exit) => return exit,
    };
    if spec.client_id.is_none() && !env_tokens_present() {
        return fail(
            Exit::NotLoggedIn,
            &format!(
                "not logged in (no profile `{}`); run `tessera login`",
                cli.global.profile
            ),
        );
    }
    let client = match open(cli, &spec, false, None).await {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    match client.derived_token_for(name, min_ttl).await {
        Ok(derived) => {
            output::line(derived.token.expose());
            Exit::Ok
        }
        Err(error) => {
            // "Not logged in" because the store could not be read says so.
            if let Ok(report) = client.status().await
                && let Some(problem) = report.storage_problem
                && !report.status.logged_in
            {
                return fail(Exit::Storage, &problem);
            }
            fail_derived(cli, &error)
        }
    }
}

/// A derived token's error, with what to do in this CLI's terms (the profile's file).
fn fail_derived(cli: &Cli, error: &tessera::engine::Error) -> Exit {
    use tessera::engine::{DerivedProblem, Error};
    let Error::Derived { name, problem } = error else {
        return fail_engine(error);
    };
    let file = tessera::profile::ConfigFile::path(&config_dir(cli));
    let profile = &cli.global.profile;
    let hint = match problem {
        DerivedProblem::NotConfigured { .. } | DerivedProblem::NotOffered => format!(
            "; for this profile: `[profiles.{profile}.derived.{name}] url = \"https://…\"` in {}",
            file.display()
        ),
        DerivedProblem::Unauthorized => "; run `tessera login`".to_owned(),
        _ => String::new(),
    };
    output::error(&format!("{error}{hint}"));
    Exit::from(error)
}

/// The last link of the credential chain: an API key from the variable the profile names
/// (printed by `token` when there is no session).
fn api_key(spec: &ProfileSpec) -> Option<Exit> {
    let name = spec.api_key_env.as_deref()?;
    let key = std::env::var(name).ok().filter(|k| !k.trim().is_empty())?;
    tracing::warn!("no session: falling back to the API key in ${name}");
    output::note(&format!(
        "tessera: no session; using the API key from ${name}"
    ));
    output::line(key.trim());
    Some(Exit::Ok)
}

pub async fn logout(cli: &Cli, force: bool, as_json: bool) -> Exit {
    let spec = match profile(cli, &ProfileSpec::default()) {
        Ok(spec) => spec,
        Err(exit) => return exit,
    };
    if spec.client_id.is_none() {
        output::note(&format!(
            "Not logged in (no profile `{}`).",
            cli.global.profile
        ));
        return Exit::Ok;
    }
    let client = match open(cli, &spec, false, None).await {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    match client.logout(force).await {
        Ok(report) => {
            let (revoked, unconfirmed) = (report.revoked(), report.revocation_failed());
            let exit = if unconfirmed {
                Exit::NotRevoked
            } else {
                Exit::Ok
            };
            if as_json {
                output::line(
                    &json!({
                        "logged_out": true,
                        "revoked": revoked,
                        "tokens_may_still_be_valid": !revoked,
                        "end_session_url": report.end_session_url.as_deref().map(output::shown_end_session_url),
                        "server_calls": report.server_calls,
                    })
                    .to_string(),
                );
                return exit;
            }
            output::note("Logged out; the local session is deleted.");
            if unconfirmed {
                output::error(
                    "the provider did not confirm the revocation: the tokens may still be valid \
                     at the server until they expire",
                );
            } else if !revoked && !force {
                output::note(
                    "(The provider offers no revocation: the tokens stay valid until they expire.)",
                );
            }
            for call in &report.server_calls {
                match &call.error {
                    None => {
                        output::note(&format!("  {}: done", call.call.as_str().replace('_', " ")))
                    }
                    Some(error) => output::note(&format!(
                        "  {}: failed ({error})",
                        call.call.as_str().replace('_', " ")
                    )),
                }
            }
            if let Some(url) = report.end_session_url {
                let url = output::printable(&output::shown_end_session_url(&url));
                output::note(&format!("To also sign out in the browser, open: {url}"));
            }
            exit
        }
        Err(error) => fail_engine(&error),
    }
}
