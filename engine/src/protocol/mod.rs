//! Encoding requests and reading responses, one module per kind of exchange.
//!
//! These are plain functions from values to values; the state machine decides when to
//! call them and what to do with the result.

pub(crate) mod authorize;
pub(crate) mod derived;
pub(crate) mod device;
pub(crate) mod discovery;
pub(crate) mod groups;
pub(crate) mod handoff;
pub(crate) mod id_token;
pub(crate) mod jwks;
pub(crate) mod jws;
pub(crate) mod logout;
pub(crate) mod response;
pub(crate) mod token;
pub(crate) mod userinfo;

/// `Url::parse`, except that a host that is not plain ASCII, directly or percent-encoded,
/// is refused before the url crate hands it to IDNA: host names are ASCII-only in this
/// build (docs/adr/006), and the ASCII-only IDNA adapter asserts (in debug builds) on an
/// ASCII capital next to a non-ASCII character in a label. Found by fuzzing a redirect
/// URL; every URL the engine reads goes through here.
pub(crate) fn parse_url(text: &str) -> Result<url::Url, url::ParseError> {
    let after_scheme = text.split_once(':').map_or(text, |(_, rest)| rest);
    let authority = after_scheme
        .trim_start_matches(|c: char| c == '/' || c == '\\' || c.is_ascii_whitespace())
        .split(['/', '\\', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if !host.is_ascii() {
        return Err(url::ParseError::IdnaError);
    }
    if host.contains('%') {
        return Err(url::ParseError::InvalidDomainCharacter);
    }
    url::Url::parse(text)
}

/// `what` (e.g. "issuer `…`") is not a usable URL: the message says why.
pub(crate) fn not_a_url(what: &str, error: url::ParseError) -> crate::Error {
    let why = match error {
        // Host names are ASCII-only in this build (docs/adr/006).
        url::ParseError::IdnaError => {
            "its host name is not ASCII; give it in punycode form (xn--…)".to_owned()
        }
        other => other.to_string(),
    };
    crate::Error::config(format!("{what} is not a URL: {why}"))
}

#[cfg(test)]
mod tests {
    /// Found by fuzzing: an ASCII capital before a non-ASCII character in a host reached
    /// the IDNA adapter's debug assertion (a panic in debug builds).
    #[test]
    fn hosts_that_are_not_plain_ascii_are_refused_before_idna() {
        for url in [
            "https://EX\u{e4}mple.com/cb?code=1",
            "https://osRT0000011S\u{fffd}.RRRRRR",
            "https:\\\\Ab\u{e4}.com/",
            "https://user@A\u{e4}.com/",
            "https://%41%C3%A4.com/",
            "https:A\u{e4}.com",
        ] {
            assert!(super::parse_url(url).is_err(), "{url}");
        }
        for url in [
            "https://op.example/cb?state=\u{e4}",
            "http://127.0.0.1:8400/callback?code=x",
            "https://OP.example/a%20b",
        ] {
            assert!(super::parse_url(url).is_ok(), "{url}");
        }
    }
}
