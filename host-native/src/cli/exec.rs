//! `tessera exec -- CMD ARGS…`: CMD starts with a token that stays valid `--min-ttl`
//! (default 5 min) in its environment, named by the profile (`<P>_ACCESS_TOKEN`,
//! `<P>_EXPIRES_AT` in Unix milliseconds, `<P>_USE_OAUTH=1`). The refresh token goes in
//! only with `--with-refresh-token`; otherwise a `<P>_REFRESH_TOKEN` tessera itself was
//! given is removed, as is the passphrase of the session file, so CMD holds a token that
//! expires and not the means to get more.
//!
//! Signals: until CMD runs, they end tessera as any command's (after a refresh in flight
//! is stored); then SIGTERM, SIGINT and SIGHUP are forwarded to CMD, and tessera exits
//! with CMD's code (128 + N when signal N ended it).

use std::ffi::OsString;
use std::process::ExitCode;

use tessera::credentials;

use super::args::{Cli, ExecArgs};
use super::session::fail;
use super::signals::{Termination, unless_signalled};
use super::{Exit, fresh};

/// Variables CMD never inherits from tessera: the key to the whole session.
const WITHHELD: [&str; 3] = [
    "TESSERA_PASSPHRASE",
    "TESSERA_SERVE_TOKEN",
    "TESSERA_SERVE_KEY",
];

/// What CMD's environment gains and loses.
struct Environment {
    set: Vec<(String, String)>,
    removed: Vec<String>,
}

pub async fn run(cli: &Cli, args: &ExecArgs, signals: &mut Termination) -> ExitCode {
    let environment = match unless_signalled(environment(cli, args), signals).await {
        Ok(Ok(environment)) => environment,
        Ok(Err(exit)) => return exit.into(),
        Err(signal) => return ExitCode::from(128 + signal),
    };
    let Some((program, rest)) = args.command.split_first() else {
        return fail(Exit::Usage, &"no command given: tessera exec -- CMD ARGS…").into();
    };
    let mut command = tokio::process::Command::new(program);
    command.args(rest);
    for name in &environment.removed {
        command.env_remove(name);
    }
    command.envs(environment.set);
    let child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return cannot_start(program, &error),
    };
    supervise(child, signals).await
}

/// The variables for CMD, from a token valid for `--min-ttl`.
async fn environment(cli: &Cli, args: &ExecArgs) -> Result<Environment, Exit> {
    let spec = super::session::profile(cli, &tessera::profile::ProfileSpec::default())?;
    let prefix = spec.env_prefix().to_owned();
    credentials::check_env_prefix(&prefix).map_err(|problem| fail(Exit::Config, &problem))?;
    let fresh = fresh::token_for(cli, spec, args.min_ttl).await?;
    let [access, refresh, expires, use_oauth] = credentials::env_names(&prefix);
    let mut removed: Vec<String> = WITHHELD.map(str::to_owned).into();
    let mut set = Vec::new();
    if args.with_refresh_token {
        let session = fresh.session().await?;
        set.push((access, session.access_token.expose().to_owned()));
        set.push((expires, session.expires_at.0.to_string()));
        match &session.refresh_token {
            Some(token) => set.push((refresh, token.expose().to_owned())),
            None => removed.push(refresh),
        }
    } else {
        set.push((access, fresh.token.access_token.expose().to_owned()));
        set.push((expires, fresh.token.expires_at.0.to_string()));
        removed.push(refresh);
    }
    set.push((use_oauth, "1".to_owned()));
    Ok(Environment { set, removed })
}

/// Waits for CMD, forwarding termination signals; its exit code becomes ours.
async fn supervise(mut child: tokio::process::Child, signals: &mut Termination) -> ExitCode {
    loop {
        tokio::select! {
            status = child.wait() => return match status {
                Ok(status) => exit_code(status),
                Err(error) => {
                    fail(Exit::Other, &format!("lost track of the command: {error}"));
                    ExitCode::from(Exit::Other as u8)
                }
            },
            signal = signals.recv() => {
                if let Some(pid) = child.id() {
                    forward(pid, signal);
                }
            }
        }
    }
}

/// CMD's exit status as a shell reports it: its code, or 128 + the signal that ended it.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from((code & 0xff) as u8);
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return ExitCode::from((128 + (signal & 0x7f)) as u8);
    }
    ExitCode::from(Exit::Other as u8)
}

/// 127 when CMD was not found, 126 when it could not be run, as a shell says.
fn cannot_start(program: &OsString, error: &std::io::Error) -> ExitCode {
    let code = if error.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    super::output::error(&format!(
        "cannot run {}: {error}",
        program.to_string_lossy()
    ));
    ExitCode::from(code)
}

/// Sends `signal` on to CMD. A SIGINT is not sent when tessera runs in its terminal's
/// foreground process group: Ctrl-C already reached CMD, which is in the same group, and
/// a second one makes many programs quit instead of cancelling.
#[cfg(unix)]
fn forward(pid: u32, signal: u8) {
    use rustix::process::{Pid, Signal, getpgrp, kill_process};
    let signal = match signal {
        1 => Signal::HUP,
        2 if in_terminal_foreground() => return,
        2 => Signal::INT,
        _ => Signal::TERM,
    };
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if let Err(error) = kill_process(pid, signal) {
        tracing::debug!(%error, "could not forward the signal (the command has ended?)");
    }
    fn in_terminal_foreground() -> bool {
        rustix::termios::tcgetpgrp(std::io::stdin()).is_ok_and(|group| group == getpgrp())
    }
}

/// Elsewhere a console's Ctrl-C reaches the whole console group, CMD included.
#[cfg(not(unix))]
fn forward(_pid: u32, _signal: u8) {}
