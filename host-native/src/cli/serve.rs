//! `tessera serve`: the token service is its own binary, `tessera-serve`, so the CLI's
//! start-up does not load its HTTP server and database (docs/adr/010-token-service.md).
//! It is looked for next to this executable, then on `PATH`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use super::{Exit, output};

fn serve_binary() -> Option<PathBuf> {
    let name = format!("tessera-serve{}", std::env::consts::EXE_SUFFIX);
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

/// Runs `tessera-serve` with `args` in place of this process (Unix), or as a child whose
/// exit status becomes ours.
pub fn hand_over(args: &[OsString]) -> Exit {
    let Some(binary) = serve_binary() else {
        output::error(
            "`tessera serve` needs the tessera-serve binary next to tessera or on PATH \
             (cargo install --path host-native/serve, or build the workspace)",
        );
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
        Ok(status) if status.success() => Exit::Ok,
        Ok(_) => Exit::Other,
        Err(error) => {
            output::error(&format!("cannot run {}: {error}", binary.display()));
            Exit::Other
        }
    }
}
