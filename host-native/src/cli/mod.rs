//! The CLI's commands, on top of the library's [`tessera::Client`].

pub mod args;
mod docs;
pub mod exec;
mod export;
pub mod fast;
mod fresh;
mod git_credential;
mod import;
mod kube_credential;
mod login;
pub mod output;
pub mod serve;
mod session;
pub mod signals;

use std::process::ExitCode;

use tessera::engine::{Error, ErrorKind};

use args::{Cli, Command};

/// The store `tessera token`'s fast path already opened (or why it could not), handed
/// on to the full client when the fast path cannot answer.
pub type Preopened = Result<Box<dyn tessera::store::BlockingStore>, tessera::store::StoreError>;

/// Documented exit codes (see `tessera --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Other = 1,
    Usage = 2,
    NotLoggedIn = 3,
    Denied = 4,
    Network = 5,
    Protocol = 6,
    Config = 7,
    Storage = 8,
    Interrupted = 9,
    /// Logged out here, but the provider did not confirm the revocation: the tokens may
    /// still be valid at the server until they expire.
    NotRevoked = 10,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

impl From<&Error> for Exit {
    fn from(error: &Error) -> Exit {
        match error.kind() {
            ErrorKind::NotLoggedIn => Exit::NotLoggedIn,
            ErrorKind::Denied => Exit::Denied,
            ErrorKind::Network => Exit::Network,
            ErrorKind::Protocol => Exit::Protocol,
            ErrorKind::Config => Exit::Config,
            ErrorKind::Interrupted => Exit::Interrupted,
            ErrorKind::Storage => Exit::Storage,
            // The session's task ended under the command: an internal failure.
            ErrorKind::Stopped => Exit::Other,
        }
    }
}

/// What to run next after `error`: the engine's messages name no command (they are shown
/// by every host), so the CLI adds its own.
pub fn hint(error: &Error) -> Option<&'static str> {
    let device_expired = matches!(error, Error::DeviceCodeExpired)
        || matches!(error, Error::OAuth { error, .. } if error.code == tessera::engine::ErrorCode::ExpiredToken);
    if device_expired {
        return Some("run `tessera login --device` again");
    }
    match error.kind() {
        _ if matches!(error, Error::CallbackTimeout) => {
            Some("run `tessera login` again, or use --device / --paste")
        }
        ErrorKind::NotLoggedIn | ErrorKind::Denied | ErrorKind::Protocol => {
            Some("run `tessera login`")
        }
        _ => None,
    }
}

/// `-v` shows tessera's own info logs, `-vv` debug; `RUST_LOG` (`target=level` items,
/// comma-separated, e.g. `tessera=trace,info`) replaces them. Logs go to stderr so stdout
/// stays clean for `tessera token`. The filter is `Targets`, not `EnvFilter`: no span or
/// field filters, and no regex engine in the binary, whose size every `tessera token`
/// pays for at start-up (BENCHMARKS.md).
pub fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = match verbose {
        0 => "warn",
        1 => "tessera=info,warn",
        _ => "tessera=debug,info",
    };
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .map(|text| text.parse::<Targets>());
    let filter = match &from_env {
        Some(Ok(filter)) => filter.clone(),
        _ => level.parse().unwrap_or_default(),
    };
    // Colours only on a terminal: `-vv 2>file` gets plain text.
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = tracing_subscriber::registry()
        .with(output)
        .with(filter)
        .try_init();
    if let Some(Err(error)) = from_env {
        tracing::warn!(%error, "RUST_LOG ignored: expected `target=level` items, e.g. `tessera=debug,info`");
    }
}

static RECORDER: std::sync::OnceLock<tessera::record::Recorder> = std::sync::OnceLock::new();

/// The `--record` recorder, if asked for.
pub fn recorder() -> Option<&'static tessera::record::Recorder> {
    RECORDER.get()
}

/// Runs a command; `preopened` is the store [`fast::token`] opened, if it did.
pub async fn run(cli: Cli, preopened: Option<fast::Preopened>) -> Exit {
    if let Some(path) = &cli.global.record {
        let _ = RECORDER.set(tessera::record::Recorder::new(path));
    }
    let exit = dispatch(&cli, preopened).await;
    if let Some(recorder) = recorder() {
        let what = match &cli.command {
            Command::Login(_) => "login",
            Command::Token(_) => "token",
            Command::Logout { .. } => "logout",
            Command::Status { .. } => "status",
            Command::Replay { .. } => "replay",
            Command::Serve { .. } => "serve",
            Command::Import(_) => "import",
            Command::Export(_) => "export",
            Command::Exec(_) => "exec",
            Command::GitCredential(_) => "git-credential",
            Command::KubeCredential(_) => "kube-credential",
            Command::Completions { .. } => "completions",
            Command::Man => "man",
        };
        let description = format!(
            "Recorded `tessera {what}` (profile `{}`); tokens, codes, cookies and personal \
             claims replaced by placeholders, a fresh seed.",
            cli.global.profile
        );
        match recorder.finish(&description) {
            Ok(path) => output::note(&format!(
                "Recorded the session as {} (mode 0600), redacted: tokens, codes, cookies and \
                 personal claims replaced by placeholders, and a fresh seed instead of the \
                 live one. Read it before you share it.",
                path.display()
            )),
            Err(error) => {
                output::error(&format!("could not record the session: {error}"));
                return if exit == Exit::Ok { Exit::Other } else { exit };
            }
        }
    }
    exit
}

async fn dispatch(cli: &Cli, preopened: Option<fast::Preopened>) -> Exit {
    match &cli.command {
        Command::Replay { files, bless } => replay(files, *bless),
        Command::Serve { args } => serve::hand_over(args),
        Command::Login(args) => login::run(cli, args).await,
        Command::Status { json } => session::status(cli, *json).await,
        Command::Token(args) => match &args.derived {
            Some(name) => session::derived_token(cli, name, args.min_ttl).await,
            None => session::token(cli, args.min_ttl, preopened).await,
        },
        Command::Logout { force, json } => session::logout(cli, *force, *json).await,
        Command::Import(args) => import::run(cli, args).await,
        Command::Export(args) => export::run(cli, args).await,
        // main.rs runs `exec` instead of `run`: it forwards signals to its command and
        // exits with the command's code, which an `Exit` cannot hold.
        Command::Exec(_) => session::fail(Exit::Other, &"internal error: `exec` is run by main"),
        Command::GitCredential(args) => git_credential::run(cli, &args.operation).await,
        Command::KubeCredential(args) => kube_credential::run(cli, args).await,
        Command::Completions { shell } => docs::completions(*shell),
        Command::Man => docs::man(),
    }
}

fn replay(files: &[std::path::PathBuf], bless: bool) -> Exit {
    use tessera::engine::transcript::Outcome;
    let files = tessera::record::transcripts_in(files);
    let mut failed = 0usize;
    for file in &files {
        match tessera::record::run_file(file, bless) {
            Ok(Outcome::Passed) => output::line(&format!("ok      {}", file.display())),
            Ok(Outcome::Blessed) => output::line(&format!("blessed {}", file.display())),
            Err(failure) => {
                failed += 1;
                output::error(&format!("FAILED  {failure}"));
            }
        }
    }
    output::line(&format!(
        "{} passed, {} failed",
        files.len() - failed,
        failed
    ));
    if failed == 0 { Exit::Ok } else { Exit::Other }
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    #[test]
    fn engine_errors_get_the_command_to_run_next() {
        assert_eq!(hint(&Error::NotLoggedIn), Some("run `tessera login`"));
        assert_eq!(
            hint(&Error::DeviceCodeExpired),
            Some("run `tessera login --device` again")
        );
        assert_eq!(
            hint(&Error::CallbackTimeout),
            Some("run `tessera login` again, or use --device / --paste")
        );
        assert_eq!(
            hint(&Error::Storage {
                detail: "disk full".into()
            }),
            None
        );
    }
}
