//! The `tessera` command, as a small front binary.
//!
//! Most runs of `tessera` are `tessera token` from a script, with a token that is still
//! valid. Loading the whole CLI (tokio, reqwest, rustls, the keyring's D-Bus client, the
//! actor host) costs more than everything that answer needs, so this binary links only
//! that path: the `token` parser, the profile, the environment tokens, the encrypted file
//! store and the engine's rule for a servable token (cli/fast.rs with
//! [`file_only`](cli::fast::file_only)). Every other command, and every `token` it
//! cannot answer (the keyring, a refresh due, no session, a passphrase to prompt for), is
//! handed unchanged to `tessera-full` next to it, the whole CLI (full.rs); `tessera serve`
//! goes to `tessera-serve`. ADR 014 records why, BENCHMARKS.md the start-up it buys.

// The front calls the fast path only: the linker drops the rest of the tree, and
// `tessera-full`, which compiles the same modules, is where their dead code is linted.
#[allow(dead_code, unused_imports)]
mod cli;

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let rest = args.get(1..).unwrap_or_default();
    if rest.first().is_some_and(|first| first == "serve") {
        return cli::serve::hand_over(&rest[1..]).into();
    }
    if let Some(parsed) = cli::args::Cli::parse_token_only(&args) {
        cli::init_logging(parsed.global.verbose);
        if let cli::fast::Fast::Served(exit) = cli::fast::token(&parsed, cli::fast::file_only) {
            return exit.into();
        }
    }
    cli::serve::to(
        "tessera-full",
        rest,
        "(reinstall tessera: it ships both binaries)",
    )
    .into()
}
