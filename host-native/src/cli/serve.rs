//! Handing the command line to another binary of tessera's, found next to this executable,
//! then on `PATH`:
//! - `tessera serve` → `tessera-serve`: the token service is its own binary, so the CLI's
//!   start-up does not load its HTTP server and database (docs/adr/010-token-service.md);
//! - `tessera` → `tessera-full` for everything but a cached `tessera token` (main.rs,
//!   docs/adr/014-front-binary.md).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use super::{Exit, output};

fn find(name: &str) -> Option<PathBuf> {
    let name = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|path| path.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(&name))
                .find(|path| path.is_file())
        })
    })
}

/// `tessera serve ARGS`: runs `tessera-serve ARGS` (see [`to`]).
pub fn hand_over(args: &[OsString]) -> Exit {
    to(
        "tessera-serve",
        args,
        "(cargo install --path host-native/serve, or build the workspace)",
    )
}

/// Runs the binary `name` with `args` in place of this process (Unix: same process id,
/// so signals and the exit status are the command's own), or as a child whose exit code
/// becomes ours. `install` says how to get the binary when it is missing.
pub fn to(name: &str, args: &[OsString], install: &str) -> Exit {
    let Some(binary) = find(name) else {
        output::error(&format!(
            "the {name} binary is missing: it belongs next to tessera or on PATH {install}"
        ));
        return Exit::Other;
    };
    let mut command = Command::new(&binary);
    command.args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = command.exec();
        output::error(&format!("cannot run {}: {error}", binary.display()));
        Exit::Other
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => match status.code() {
            Some(code) => std::process::exit(code),
            None => Exit::Other,
        },
        Err(error) => {
            output::error(&format!("cannot run {}: {error}", binary.display()));
            Exit::Other
        }
    }
}
