//! The command line. Scripts and tests depend on it: keep it stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod integrations;
pub use integrations::{
    ExecArgs, ExportArgs, ExportFormat, GitCredentialArgs, ImportArgs, KubeCredentialArgs,
};

/// An OAuth 2.0 / OpenID Connect client: log in once, get fresh tokens from scripts.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

/// The options every command takes.
#[derive(Debug, Args)]
pub struct Global {
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

impl Cli {
    /// Parses the command line, or exits with clap's message (usage errors, `--help`).
    ///
    /// `tessera token` is tried first with a parser that knows only it and the global
    /// options: building the whole command line costs about 0.1 ms, a tenth of a cached
    /// `tessera token` (BENCHMARKS.md, start-up). Both parsers are built from the same
    /// `Global` and `TokenArgs`, so whatever the small one accepts, the whole one reads
    /// the same way; anything else (other commands, `--help`, mistakes) goes to the whole.
    pub fn parse_args() -> Cli {
        // Usage lines say `tessera`, also when `tessera-full` runs (main.rs).
        let args = std::iter::once("tessera".into()).chain(std::env::args_os().skip(1));
        Self::parse_args_from(args).unwrap_or_else(|error| error.exit())
    }

    /// `tessera token` and the global options, or `None` for anything else: the front
    /// binary's parser (main.rs), which hands everything else to `tessera-full` unparsed.
    pub fn parse_token_only<I, T>(args: I) -> Option<Cli>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match TokenOnlyCli::try_parse_from(args) {
            Ok(TokenOnlyCli {
                command: TokenOnly::Token(token),
                global,
            }) => Some(Cli {
                command: Command::Token(token),
                global,
            }),
            Err(_) => None,
        }
    }

    /// [`Cli::parse_args`] on given arguments, returning clap's error instead of exiting.
    pub fn parse_args_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString>,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        match Self::parse_token_only(&args) {
            Some(cli) => Ok(cli),
            None => Cli::try_parse_from(&args),
        }
    }
}

/// `tessera token` and the global options, nothing else (see [`Cli::parse_args`]).
#[derive(Debug, Parser)]
#[command(name = "tessera")]
struct TokenOnlyCli {
    #[command(subcommand)]
    command: TokenOnly,
    #[command(flatten)]
    global: Global,
}

#[derive(Debug, Subcommand)]
enum TokenOnly {
    Token(TokenArgs),
}

pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 other failure, 2 usage, 3 not logged in (or the session ended), \
4 denied (refused, or the device code expired), 5 network or provider unavailable, \
6 the provider's answer or the redirect was wrong, 7 configuration, 8 storage, 9 timed out or cancelled, 10 logged out here but the revocation was not confirmed (the tokens may still be valid). \
`exec` exits with its command's code once the command ran (128 + N when a signal N ended it).";

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StoreArg {
    Keyring,
    File,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
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
    Token(TokenArgs),
    /// Revoke the tokens at the provider and delete the session.
    Logout {
        /// Only delete the local session; make no network calls.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Store the tokens of a credentials file (flat or Claude Code shape) as the profile's
    /// session; it then refreshes like a login's. Malformed input: exit 2, nothing stored.
    Import(ImportArgs),
    /// Print (or write with -o, mode 0600) the session as a credentials file or an
    /// environment block, refreshed first if due. The output holds the refresh token.
    Export(ExportArgs),
    /// Run a command with a fresh access token in its environment (`<P>_ACCESS_TOKEN`,
    /// `<P>_EXPIRES_AT`, `<P>_USE_OAUTH=1`); its exit code is passed on, signals forwarded.
    Exec(ExecArgs),
    /// git's credential helper, answering for the profile's `git_hosts`:
    /// `git config --global credential.https://github.com.helper '!tessera git-credential'`.
    GitCredential(GitCredentialArgs),
    /// kubectl's exec credential plugin: prints a client.authentication.k8s.io/v1
    /// ExecCredential with the access token and its expiry.
    KubeCredential(KubeCredentialArgs),
    /// Print a shell completion script: `tessera completions bash > /etc/bash_completion.d/tessera`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `tessera man | man -l -`.
    Man,
    /// Run the token service (routes for apps and servers): hands over to `tessera-serve`;
    /// `tessera serve --help` lists its options.
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Replay transcripts (specs/*.toml) against the engine and report the first difference.
    Replay {
        /// Transcript files, or directories to replay every `*.toml` under.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Rewrite each file's expectations with what the engine does now.
        #[arg(long)]
        bless: bool,
    },
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The token must stay valid at least this many seconds.
    #[arg(long, default_value_t = 0)]
    pub min_ttl: u64,
    /// Print the derived token NAME instead (the profile's `[profiles.P.derived.NAME] url`),
    /// fetched with the access token (refreshed first if it expires within 5 minutes).
    #[arg(long, value_name = "NAME")]
    pub derived: Option<String>,
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
    /// No browser on this machine: the device flow, or paste when the provider has none.
    #[arg(long, group = "method")]
    pub headless: bool,
    /// A built-in preset (generic, anthropic, anthropic-loopback, github, google, microsoft).
    #[arg(long)]
    pub preset: Option<String>,
    /// The provider's issuer URL (https; discovery finds its endpoints), e.g.
    /// https://id.example.com.
    #[arg(long)]
    pub issuer: Option<String>,
    /// The client id registered at the provider for this tool (a public client: no secret).
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
    /// INSECURE, for a lab only: accept plain http:// issuer and endpoint URLs on hosts
    /// other than 127.0.0.1, [::1] and localhost (tokens then cross the network in clear).
    #[arg(long)]
    pub insecure_http: bool,
    /// The authorization endpoint, instead of or over what discovery finds.
    #[arg(long)]
    pub authorization_endpoint: Option<String>,
    /// The token endpoint, instead of or over what discovery finds.
    #[arg(long)]
    pub token_endpoint: Option<String>,
    /// The device authorization endpoint (RFC 8628), instead of or over discovery's.
    #[arg(long)]
    pub device_endpoint: Option<String>,
    /// The revocation endpoint (RFC 7009), instead of or over discovery's.
    #[arg(long)]
    pub revocation_endpoint: Option<String>,
    /// The UserInfo endpoint, instead of or over discovery's.
    #[arg(long)]
    pub userinfo_endpoint: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// What clap made of a command line, comparable across the two parsers.
    fn parsed(result: Result<Cli, clap::Error>) -> Result<String, clap::error::ErrorKind> {
        result.map(|cli| format!("{cli:?}")).map_err(|e| e.kind())
    }

    #[test]
    fn the_token_shortcut_reads_every_command_line_as_the_whole_parser_does() {
        let lines: &[&[&str]] = &[
            &["tessera", "token"],
            &["tessera", "token", "--min-ttl", "60"],
            &["tessera", "token", "--min-ttl=60", "-vv"],
            &["tessera", "--profile", "work", "token"],
            &["tessera", "token", "--profile", "work", "--store", "file"],
            &[
                "tessera",
                "--config-dir",
                "/tmp/x",
                "token",
                "--record",
                "t.toml",
            ],
            &["tessera", "-v", "token", "-v"],
            &["tessera", "token", "--min-ttl", "soon"],
            &["tessera", "token", "--help"],
            &["tessera", "token", "extra"],
            &["tessera", "token", "--store", "cloud"],
            &["tessera", "--version"],
            &["tessera", "status", "--json"],
            &[
                "tessera",
                "login",
                "--device",
                "--issuer",
                "https://op.example",
            ],
            &["tessera"],
        ];
        for line in lines {
            assert_eq!(
                parsed(Cli::parse_args_from(*line)),
                parsed(Cli::try_parse_from(*line)),
                "{line:?}"
            );
        }
    }

    #[test]
    fn the_whole_command_line_is_valid() {
        Cli::command().debug_assert();
    }
}
