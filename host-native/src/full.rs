//! `tessera-full`: the whole `tessera` command line. The `tessera` binary (main.rs) answers
//! a cached `tessera token` itself and runs this one for everything else, with the same
//! arguments; run directly, it behaves as `tessera` does.

#[path = "cli/mod.rs"]
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
    let preopened = match cli::fast::token(&args, cli::fast::any_store) {
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
    runtime.block_on(async move {
        // Listening starts before the command does, so no signal finds the default action.
        let mut signals = cli::signals::Termination::listen();
        // `exec` handles signals itself: it forwards them to its command once that runs.
        if let cli::args::Command::Exec(exec) = &args.command {
            return cli::exec::run(&args, exec, &mut signals).await;
        }
        match cli::signals::unless_signalled(cli::run(args, preopened), &mut signals).await {
            Ok(exit) => exit.into(),
            // As a shell reports a process a signal ended.
            Err(signal) => ExitCode::from(128 + signal),
        }
    })
}
