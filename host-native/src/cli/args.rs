//! The command line. Scripts and tests depend on it: keep it stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// An OAuth 2.0 / OpenID Connect client: log in once, get fresh tokens from scripts.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Profile to use (one login per profile).
    #[arg(
        long,
        global = true,
        env = "TESSERA_PROFILE",
        default_value = "default"
    )]
    pub profile: String,
    /// Directory for the profiles, the refresh lock and the encrypted session file.
    #[arg(long, global = true, env = "TESSERA_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// Where the session is stored (default: the OS keyring, else an encrypted file).
    #[arg(long, global = true, value_enum)]
    pub store: Option<StoreArg>,
    /// Write this session as a transcript (specs format, secrets replaced) to FILE
    /// (login, token, logout); `tessera replay FILE` then passes.
    #[arg(long, global = true, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// More logging on stderr (-v, -vv). Tokens are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 other failure, 2 usage, 3 not logged in (or the session ended), \
4 denied (refused, or the device code expired), 5 network or provider unavailable, \
6 the provider's answer or the redirect was wrong, 7 configuration, 8 storage, 9 timed out or cancelled.";

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StoreArg {
    Keyring,
    File,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in and store the session.
    Login(LoginArgs),
    /// Show who is logged in, until when, and where the session is stored.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a valid access token on stdout (and nothing else), refreshing first if needed.
    Token {
        /// The token must stay valid at least this many seconds.
        #[arg(long, default_value_t = 0)]
        min_ttl: u64,
    },
    /// Revoke the tokens at the provider and delete the session.
    Logout {
        /// Only delete the local session; make no network calls.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replay transcripts (specs/*.toml) against the engine and report the first difference.
    Replay {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Rewrite each file's expectations with what the engine does now.
        #[arg(long)]
        bless: bool,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Authorization code + PKCE through the browser and a loopback redirect.
    #[arg(long, group = "method")]
    pub browser: bool,
    /// Device authorization: enter a code on another device.
    #[arg(long, group = "method")]
    pub device: bool,
    /// Authorization code + PKCE; paste the code the provider shows.
    #[arg(long, group = "method")]
    pub paste: bool,
    /// A built-in preset (generic, anthropic, anthropic-loopback, github, google, microsoft).
    #[arg(long)]
    pub preset: Option<String>,
    #[arg(long)]
    pub issuer: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    /// Scopes, space-separated or repeated.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Fixed loopback port (default: any free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Print the URL instead of opening a browser.
    #[arg(long)]
    pub no_open: bool,
    #[arg(long)]
    pub authorization_endpoint: Option<String>,
    #[arg(long)]
    pub token_endpoint: Option<String>,
    #[arg(long)]
    pub device_endpoint: Option<String>,
    #[arg(long)]
    pub revocation_endpoint: Option<String>,
    #[arg(long)]
    pub userinfo_endpoint: Option<String>,
}
