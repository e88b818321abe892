//! The `tessera` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera_engine::transcript::{self, Outcome};

/// An OAuth 2.0 / OpenID Connect client.
#[derive(Debug, Parser)]
#[command(name = "tessera", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay transcripts (specs/*.toml) against the engine and report the first difference.
    Replay {
        /// Transcript files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Rewrite each file's expectations with what the engine does now.
        #[arg(long)]
        bless: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay { files, bless } => replay(&files, bless),
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn replay(files: &[PathBuf], bless: bool) -> ExitCode {
    let mut failed = 0usize;
    for file in files {
        match transcript::run_file(file, bless) {
            Ok(Outcome::Passed) => println!("ok      {}", file.display()),
            Ok(Outcome::Blessed) => println!("blessed {}", file.display()),
            Err(failure) => {
                failed += 1;
                eprintln!("FAILED  {failure}");
            }
        }
    }
    println!("{} passed, {} failed", files.len() - failed, failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
