//! A fresh token for the commands that hand it to other tools (`export`, `exec`,
//! `git-credential`, `kube-credential`): the profile's client asked once, refreshing if
//! needed, with the same reports as `tessera token` (not logged in, unreadable store).

use std::sync::Arc;

use tessera::engine::StoredSession;
use tessera::profile::ProfileSpec;
use tessera::store::BlockingStore;
use tessera::{Client, Token};

use super::Exit;
use super::args::Cli;
use super::session::{env_tokens_present, fail, fail_engine, open_with_store, profile};

/// A token valid for the asked lifetime, and the session it came from.
pub struct Fresh {
    /// The resolved profile (it names the variables, the git hosts…).
    pub spec: ProfileSpec,
    pub token: Token,
    client: Client,
    store: Arc<dyn BlockingStore>,
}

/// A token valid for at least `min_ttl` seconds (or the freshest the provider gives).
pub async fn token(cli: &Cli, min_ttl: u64) -> Result<Fresh, Exit> {
    let spec = profile(cli, &ProfileSpec::default())?;
    token_for(cli, spec, min_ttl).await
}

/// [`token`] for a profile already resolved.
pub async fn token_for(cli: &Cli, spec: ProfileSpec, min_ttl: u64) -> Result<Fresh, Exit> {
    if spec.client_id.is_none() && !env_tokens_present() {
        return Err(fail(
            Exit::NotLoggedIn,
            &format!(
                "not logged in (no profile `{}`); run `tessera login` or `tessera import`",
                cli.global.profile
            ),
        ));
    }
    let (client, store) = open_with_store(cli, &spec, false, None).await?;
    match client.access_token_for(min_ttl).await {
        Ok(token) => Ok(Fresh {
            spec,
            token,
            client,
            store,
        }),
        Err(error) => {
            // "Not logged in" because the store could not be read says so.
            if let Ok(report) = client.status().await
                && let Some(problem) = report.storage_problem
            {
                return Err(fail(Exit::Storage, &problem));
            }
            Err(fail_engine(&error))
        }
    }
}

impl Fresh {
    /// The whole session as stored once the token was obtained (refresh token included).
    /// Refused when that token could not be stored: storage then holds an older session,
    /// whose refresh token the provider may already have rotated away.
    pub async fn session(&self) -> Result<StoredSession, Exit> {
        if let Some(problem) = self.client.storage_problem() {
            return Err(fail(
                Exit::Storage,
                &format!("the refreshed session could not be stored: {problem}"),
            ));
        }
        let store = self.store.clone();
        let loaded = tokio::task::spawn_blocking(move || store.load())
            .await
            .map_err(|e| fail(Exit::Other, &e))?;
        match loaded {
            Ok(Some(session)) => Ok(session),
            Ok(None) => Err(fail(
                Exit::NotLoggedIn,
                &"the session was deleted meanwhile (a logout elsewhere?); run `tessera login`",
            )),
            Err(error) => Err(fail(Exit::Storage, &error)),
        }
    }
}
