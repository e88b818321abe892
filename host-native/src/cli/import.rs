//! `tessera import FILE|-`: the tokens of a credentials file become the profile's session,
//! which then refreshes like a login's. Everything is checked before the store is touched:
//! a malformed file gets exit 2 naming the field, and the stored session stays as it was.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use tessera::credentials::{self, Imported};
use tessera::engine::StoredSession;
use tessera::profile::ProfileSpec;
use tessera::store::{BlockingStore, StoreError, StoreInfo};

use super::args::{Cli, ImportArgs};
use super::session::{fail, open_store, profile};
use super::{Exit, output};

/// Credential files are a few hundred bytes; anything past this is not one.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How long the import waits for a refresh in another process to finish.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The import's flags as a profile layer (saved once the tokens are stored).
fn flags(args: &ImportArgs) -> ProfileSpec {
    let mut spec = ProfileSpec {
        preset: args.preset.clone(),
        issuer: args.issuer.clone(),
        client_id: args.client_id.clone(),
        ..ProfileSpec::default()
    };
    spec.endpoints.token = args.token_endpoint.clone();
    spec
}

pub async fn run(cli: &Cli, args: &ImportArgs) -> Exit {
    let layer = flags(args);
    let spec = match profile(cli, &layer) {
        Ok(spec) => spec,
        Err(exit) => return exit,
    };
    let shown = if args.file == Path::new("-") {
        "standard input".to_owned()
    } else {
        args.file.display().to_string()
    };
    let imported = match read(&args.file).and_then(|bytes| {
        credentials::read_import_bytes(&bytes).map_err(|malformed| malformed.to_string())
    }) {
        Ok(imported) => imported,
        Err(problem) => {
            return fail(
                Exit::Usage,
                &format!("{shown}: {problem}; nothing was stored"),
            );
        }
    };
    let config = match spec.engine_config() {
        Ok(config) => config,
        Err(tessera::profile::ProfileError::MissingClientId) => {
            return fail(
                Exit::Config,
                &"no client id: pass --client-id (or --preset) to `tessera import`, or set \
                  client_id in the profile; nothing was stored",
            );
        }
        Err(error) => return fail(Exit::Config, &error),
    };
    if let Err((exit, problem)) = check(&imported, &spec) {
        return fail(exit, &format!("{shown}: {problem}; nothing was stored"));
    }
    let session = imported.into_session(&config, tessera::clock::now());
    let summary = summary(&session);
    let store = match open_store(cli, &spec, None).await {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let force = args.force;
    let stored =
        tokio::task::spawn_blocking(move || replace(store.as_ref(), &session, force)).await;
    let info = match stored {
        Ok(Ok(info)) => info,
        Ok(Err(Refused::Exists)) => {
            return fail(
                Exit::Usage,
                &format!(
                    "profile `{}` already has a session; pass --force to replace it (its tokens \
                     are not revoked), or run `tessera logout` first; nothing was stored",
                    cli.global.profile
                ),
            );
        }
        Ok(Err(Refused::Busy)) => {
            return fail(
                Exit::Storage,
                &"another tessera is refreshing this session; try again; nothing was stored",
            );
        }
        Ok(Err(Refused::Store(error))) => return fail(Exit::Storage, &error),
        Err(error) => return fail(Exit::Other, &error),
    };
    if let Err(error) = super::login::save_profile(cli, &layer) {
        return fail(
            Exit::Config,
            &format!("imported, but the profile could not be saved: {error}"),
        );
    }
    output::note(&format!(
        "Imported into profile `{}`: {summary}; stored in {info}.",
        cli.global.profile
    ));
    Exit::Ok
}

/// The file's bytes (or standard input's), at most [`MAX_FILE_BYTES`].
fn read(file: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let limited = |reader: &mut dyn std::io::Read, bytes: &mut Vec<u8>| {
        reader.take(MAX_FILE_BYTES + 1).read_to_end(bytes)
    };
    let result = if file == Path::new("-") {
        limited(&mut std::io::stdin().lock(), &mut bytes)
    } else {
        std::fs::File::open(file).and_then(|mut f| limited(&mut f, &mut bytes))
    };
    result.map_err(|e| format!("cannot read it ({e})"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "is larger than {} KiB: not a credentials file",
            MAX_FILE_BYTES / 1024
        ));
    }
    Ok(bytes)
}

/// Tokens that could never serve (exit 2: the file), or a profile that could never
/// refresh them (exit 7: the configuration).
fn check(imported: &Imported, spec: &ProfileSpec) -> Result<(), (Exit, &'static str)> {
    let now = tessera::clock::now();
    if imported.refresh_token.is_none() && imported.expires_at <= now {
        return Err((
            Exit::Usage,
            "the access token has expired and there is no refresh token to renew it",
        ));
    }
    if imported.refresh_token.is_some() && spec.issuer.is_none() && spec.endpoints.token.is_none() {
        return Err((
            Exit::Config,
            "the profile names no issuer and no token endpoint, so the session could never be \
             refreshed: pass --issuer, --token-endpoint or --preset",
        ));
    }
    Ok(())
}

/// "expires 2026-…Z, with a refresh token".
fn summary(session: &StoredSession) -> String {
    let refresh = if session.refresh_token.is_some() {
        "with a refresh token"
    } else {
        "without a refresh token (import again or log in when it expires)"
    };
    format!(
        "the access token expires {}, {refresh}",
        output::timestamp(session.expires_at.0)
    )
}

/// Why the store was left as it was.
enum Refused {
    Exists,
    Busy,
    Store(StoreError),
}

/// Stores `session` under the refresh lock (so no refresh in another process writes over
/// it), unless a session is there and `force` is not given. Blocking.
fn replace(
    store: &dyn BlockingStore,
    session: &StoredSession,
    force: bool,
) -> Result<StoreInfo, Refused> {
    let _lock = store
        .lock(LOCK_WAIT)
        .map_err(Refused::Store)?
        .ok_or(Refused::Busy)?;
    if !force && store.load().map_err(Refused::Store)?.is_some() {
        return Err(Refused::Exists);
    }
    store.save(session).map_err(Refused::Store)?;
    Ok(store.info().clone())
}
