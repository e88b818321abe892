//! The `tessera` command.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
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
    runtime.block_on(cli::run(args, preopened)).into()
}
