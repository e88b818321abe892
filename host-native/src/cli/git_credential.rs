//! `tessera git-credential get|store|erase`: git's credential helper (gitcredentials(7)).
//!
//! git writes `key=value` lines, ended by a blank line or the end of input. For `get`,
//! when the request is for https and a host the profile's `git_hosts` names, the answer is
//! `username=` (the request's, else the profile's `git_username`, else `oauth2`: GitLab
//! requires it for OAuth tokens, GitHub accepts any), `password=<access token>` and
//! `password_expiry_utc=` (git ≥ 2.41 then never reuses it after it expires). Any other
//! request gets no output, so git asks its next helper or the user: the token never goes
//! to a host the user did not name, nor over plain http. `store` and `erase` do nothing:
//! the session is tessera's, which refreshes it.

use std::io::{BufRead as _, Read as _};

use super::args::Cli;
use super::session::fail;
use super::{Exit, fresh, output};

/// A request is a few short lines; anything longer is not git talking.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// How long the token must stay valid: one git command (a clone, a push) reuses it.
const MIN_TTL_SECS: u64 = 300;

/// What a request says that matters here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub username: Option<String>,
}

pub async fn run(cli: &Cli, operation: &str) -> Exit {
    let request = match read_request() {
        Ok(request) => request,
        Err(problem) => return fail(Exit::Usage, &format!("git-credential: {problem}")),
    };
    // git asks helpers for operations they may not know: they stay silent (gitcredentials(7)).
    if operation != "get" {
        return Exit::Ok;
    }
    let spec = match super::session::profile(cli, &tessera::profile::ProfileSpec::default()) {
        Ok(spec) => spec,
        Err(exit) => return exit,
    };
    if !is_for(&request, spec.git_hosts.as_deref().unwrap_or_default()) {
        tracing::info!(
            protocol = ?request.protocol,
            host = ?request.host,
            "git-credential: not a host of this profile's git_hosts over https; no answer"
        );
        return Exit::Ok;
    }
    let username = request
        .username
        .clone()
        .or_else(|| spec.git_username.clone())
        .unwrap_or_else(|| "oauth2".to_owned());
    let fresh = match fresh::token_for(cli, spec, MIN_TTL_SECS).await {
        Ok(fresh) => fresh,
        Err(exit) => return exit,
    };
    let token = fresh.token.access_token.expose();
    // A line break would end the value and let the rest be read as other keys.
    if [&username, token].iter().any(|v| v.contains(['\n', '\0'])) {
        return fail(
            Exit::Protocol,
            &"git-credential: the username or token holds a line break; not answering",
        );
    }
    output::line(&format!(
        "username={username}\npassword={token}\npassword_expiry_utc={}",
        fresh.token.expires_at.0 / 1000
    ));
    Exit::Ok
}

/// Reads git's request from standard input (at most [`MAX_REQUEST_BYTES`]).
fn read_request() -> Result<Request, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the request ({e})"))?;
    if bytes.len() as u64 > MAX_REQUEST_BYTES {
        return Err("the request is larger than 64 KiB".into());
    }
    parse(&bytes)
}

/// Parses `key=value` lines up to a blank line. Keys it does not use (`path`, `wwwauth[]`,
/// `capability[]`, …) are skipped; a line without `=` is refused, as git refuses it.
pub fn parse(bytes: &[u8]) -> Result<Request, String> {
    let mut request = Request::default();
    for line in bytes.lines() {
        let line = line.map_err(|_| "the request is not UTF-8".to_owned())?;
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "a request line without `=` ({} bytes); expected key=value lines",
                line.len()
            ));
        };
        if value.contains('\0') {
            return Err(format!("the value of `{key}` holds a NUL byte"));
        }
        let slot = match key {
            "protocol" => &mut request.protocol,
            "host" => &mut request.host,
            "username" => &mut request.username,
            _ => continue,
        };
        *slot = Some(value.to_owned());
    }
    Ok(request)
}

/// Whether the token may answer `request`: https, to a host in `hosts` (as git names it,
/// `host` or `host:port`, compared without case).
pub fn is_for(request: &Request, hosts: &[String]) -> bool {
    let (Some(protocol), Some(host)) = (&request.protocol, &request.host) else {
        return false;
    };
    protocol == "https" && hosts.iter().any(|known| known.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_up_to_the_blank_line_skipping_unknown_keys() {
        let request = parse(
            b"capability[]=authtype\nprotocol=https\nhost=GitHub.com\npath=o/r.git\nwwwauth[]=Basic realm=\"x\"\n\nhost=evil.example\n",
        )
        .unwrap();
        assert_eq!(request.protocol.as_deref(), Some("https"));
        assert_eq!(request.host.as_deref(), Some("GitHub.com"));
        assert_eq!(request.username, None);
        assert!(is_for(&request, &["github.com".into()]));
    }

    #[test]
    fn only_https_to_a_named_host_is_answered() {
        let hosts = ["github.com".to_owned(), "git.example:8443".to_owned()];
        let ask = |protocol: &str, host: &str| {
            is_for(
                &Request {
                    protocol: Some(protocol.into()),
                    host: Some(host.into()),
                    username: None,
                },
                &hosts,
            )
        };
        assert!(ask("https", "github.com"));
        assert!(ask("https", "git.example:8443"));
        assert!(!ask("http", "github.com"), "never over plain http");
        assert!(!ask("https", "git.example"), "the port is part of the host");
        assert!(!ask("https", "github.com.evil.example"));
        assert!(!is_for(&Request::default(), &hosts));
        assert!(!is_for(
            &parse(b"protocol=https\nhost=github.com\n").unwrap(),
            &[]
        ));
    }

    #[test]
    fn malformed_requests_are_refused_without_panicking() {
        assert!(
            parse(b"protocol https\n")
                .unwrap_err()
                .contains("without `=`")
        );
        assert!(parse(b"host=a\0b\n").unwrap_err().contains("NUL"));
        assert!(parse(b"\xff\xfe=1\n").is_err());
        assert_eq!(parse(b"").unwrap(), Request::default());
        assert_eq!(parse(b"\n\n").unwrap(), Request::default());
        assert_eq!(
            parse(b"protocol=https\r\nhost=h=x\r\n")
                .unwrap()
                .host
                .as_deref(),
            Some("h=x")
        );
    }
}
