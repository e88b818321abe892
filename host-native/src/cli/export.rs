//! `tessera export`: the session, refreshed first if due, as a credentials file (the flat
//! or Claude Code shape) or an environment block. The output holds the refresh token:
//! to standard output, or with `-o` to a file written like the session files (mode 0600,
//! atomically), never over an existing file without `--force`.

use std::path::Path;

use tessera::credentials::{self, Shape};

use super::args::{Cli, ExportArgs, ExportFormat};
use super::session::fail;
use super::{Exit, fresh, output};

pub async fn run(cli: &Cli, args: &ExportArgs) -> Exit {
    // Refused before the provider or the store is asked.
    if let Some(path) = &args.output
        && !args.force
        && std::fs::symlink_metadata(path).is_ok()
    {
        return fail(
            Exit::Usage,
            &format!("{} exists; pass --force to replace it", path.display()),
        );
    }
    let fresh = match fresh::token(cli, 0).await {
        Ok(fresh) => fresh,
        Err(exit) => return exit,
    };
    let prefix = fresh.spec.env_prefix().to_owned();
    if args.format == ExportFormat::Env
        && let Err(problem) = credentials::check_env_prefix(&prefix)
    {
        return fail(Exit::Config, &problem);
    }
    let session = match fresh.session().await {
        Ok(session) => session,
        Err(exit) => return exit,
    };
    let text = match args.format {
        ExportFormat::Env => credentials::export_env(&session, &credentials::env_names(&prefix)),
        ExportFormat::CredentialsJson | ExportFormat::Claude => {
            let shape = if args.format == ExportFormat::Claude {
                Shape::Claude
            } else {
                Shape::Plain
            };
            let json = credentials::export_json(&session, shape);
            format!("{json:#}\n")
        }
    };
    let Some(path) = &args.output else {
        output::line(text.trim_end());
        return Exit::Ok;
    };
    write(path, &text, session.refresh_token.is_some())
}

fn write(path: &Path, text: &str, with_refresh_token: bool) -> Exit {
    if let Err(error) = tessera::store::write_private_file(path, text.as_bytes()) {
        return fail(Exit::Storage, &error);
    }
    let what = if with_refresh_token {
        "the access token, the refresh token and the expiry"
    } else {
        "the access token and its expiry (the session has no refresh token)"
    };
    output::note(&format!("Wrote {} (mode 0600): {what}.", path.display()));
    Exit::Ok
}
