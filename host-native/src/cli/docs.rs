//! `tessera completions SHELL` and `tessera man`: generated from the command line itself
//! (clap_complete, clap_mangen), so they never drift from `--help`.

use std::io::Write as _;

use clap::CommandFactory as _;

use super::Exit;
use super::args::Cli;
use super::session::fail;

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Exit {
    let mut buffer = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tessera", &mut buffer);
    print(&buffer)
}

/// Prints the man page, in roff.
pub fn man() -> Exit {
    let mut buffer = Vec::new();
    if let Err(error) = clap_mangen::Man::new(Cli::command()).render(&mut buffer) {
        return fail(Exit::Other, &format!("cannot render the man page: {error}"));
    }
    print(&buffer)
}

fn print(bytes: &[u8]) -> Exit {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Ok,
        Err(error) => fail(
            Exit::Other,
            &format!("cannot write to standard output: {error}"),
        ),
    }
}
