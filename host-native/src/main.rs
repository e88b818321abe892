//! The `tessera` command.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // `tessera serve …` is the service's own binary, with its own options.
    let mut argv = std::env::args_os().skip(1);
    if argv.next().is_some_and(|first| first == "serve") {
        return cli::serve::hand_over(&argv.collect::<Vec<_>>()).into();
    }
    let args = cli::args::Cli::parse_args();
    cli::init_logging(args.global.verbose);
    // A cached `tessera token` is answered before any runtime exists (see cli/fast.rs).
    let preopened = match cli::fast::token(&args) {
        cli::fast::Fast::Served(exit) => return exit.into(),
        cli::fast::Fast::Continue(preopened) => preopened,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            cli::output::error(&format!("cannot start: {error}"));
            return cli::Exit::Other.into();
        }
    };
    runtime.block_on(until_signalled(cli::run(args, preopened)))
}

/// Runs the command; a termination signal (SIGTERM, SIGINT, SIGHUP) ends it, but only once
/// no session is between sending a refresh and storing its answer (the provider may have
/// rotated the refresh token: dying there would log the user out). Exit code 128 + the
/// signal's number, as a shell reports a killed process.
async fn until_signalled(command: impl std::future::Future<Output = cli::Exit>) -> ExitCode {
    let mut command = std::pin::pin!(command);
    let signal = tokio::select! {
        exit = &mut command => return exit.into(),
        signal = termination() => signal,
    };
    // The command keeps running (its session stores what the provider answered) until
    // nothing is in flight that a stop could lose; then the signal's exit.
    let safe = tokio::select! {
        _ = &mut command => true,
        safe = tessera::shutdown::safe_to_exit(std::time::Duration::from_secs(30)) => safe,
    };
    if !safe {
        cli::output::error("stopped while a refresh was being stored; check with `tessera status`");
    }
    ExitCode::from(128 + signal)
}

/// The number of the first termination signal received.
#[cfg(unix)]
async fn termination() -> u8 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        // No handlers: the default actions stay (the process dies at once).
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => 15,
        _ = int.recv() => 2,
        _ = hup.recv() => 1,
    }
}

#[cfg(not(unix))]
async fn termination() -> u8 {
    match tokio::signal::ctrl_c().await {
        Ok(()) => 2,
        Err(_) => std::future::pending().await,
    }
}
