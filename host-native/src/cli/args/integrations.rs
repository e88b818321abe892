//! The options of the commands that hand the token to other tools: `import`, `export`,
//! `exec`, `git-credential`, `kube-credential`, `completions`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// `tessera import FILE|-`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A credentials file: `{access_token, refresh_token, expires_at}` or Claude Code's
    /// `{"claudeAiOauth": {…}}`; `-` reads standard input.
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
    /// Replace the profile's stored session (its tokens are not revoked).
    #[arg(long)]
    pub force: bool,
    /// A built-in preset for the profile (saved with it, as by `login`).
    #[arg(long)]
    pub preset: Option<String>,
    /// The provider's issuer URL (saved with the profile).
    #[arg(long)]
    pub issuer: Option<String>,
    /// The client id the tokens were issued to (saved with the profile).
    #[arg(long)]
    pub client_id: Option<String>,
    /// The token endpoint, when the issuer offers no discovery (saved with the profile).
    #[arg(long)]
    pub token_endpoint: Option<String>,
}

/// What `tessera export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// `{"access_token", "refresh_token", "expires_at" (Unix seconds), "scopes"}`.
    CredentialsJson,
    /// Claude Code's `.credentials.json`: `{"claudeAiOauth": {"accessToken", "refreshToken",
    /// "expiresAt" (Unix milliseconds), "scopes"}}`.
    Claude,
    /// `NAME=value` lines: `<P>_ACCESS_TOKEN`, `<P>_REFRESH_TOKEN`, `<P>_EXPIRES_AT` (Unix
    /// milliseconds), `<P>_USE_OAUTH=1`; `<P>` is the profile's `token_env_prefix`.
    Env,
}

/// `tessera export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The shape of the output.
    #[arg(long, value_enum, default_value = "credentials-json")]
    pub format: ExportFormat,
    /// Write to FILE (atomically, mode 0600) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
}

/// `tessera exec -- CMD ARGS…`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The token must stay valid this long after CMD starts (`300`, `90s`, `5m`, `1h`).
    #[arg(long, default_value = "5m", value_parser = parse_secs, value_name = "DURATION")]
    pub min_ttl: u64,
    /// Also give CMD the refresh token (`<P>_REFRESH_TOKEN`): it can then get tokens on
    /// its own, for as long as the grant lives.
    #[arg(long)]
    pub with_refresh_token: bool,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// `tessera git-credential get|store|erase`.
#[derive(Debug, Args)]
pub struct GitCredentialArgs {
    /// What git asks: `get` (answered for the profile's `git_hosts`), `store` and `erase`
    /// (nothing to do: the session is tessera's).
    #[arg(value_name = "OPERATION")]
    pub operation: String,
}

/// `tessera kube-credential`.
#[derive(Debug, Args)]
pub struct KubeCredentialArgs {
    /// The token must stay valid this long (`60`, `90s`, `5m`); kubectl reuses it until
    /// its `expirationTimestamp`.
    #[arg(long, default_value = "60", value_parser = parse_secs, value_name = "DURATION")]
    pub min_ttl: u64,
}

/// A duration as seconds: a bare number is seconds, else humantime (`90s`, `5m`, `1h`).
pub fn parse_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    humantime::parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(|e| format!("{e}: give seconds (300) or a duration (90s, 5m, 1h)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_humantime() {
        assert_eq!(parse_secs("300"), Ok(300));
        assert_eq!(parse_secs("5m"), Ok(300));
        assert_eq!(parse_secs("1h 30s"), Ok(3630));
        assert!(parse_secs("soon").unwrap_err().contains("5m"));
        assert!(parse_secs("-5").is_err());
    }
}
