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
pub(crate) mod logout;
pub(crate) mod response;
pub(crate) mod token;
pub(crate) mod userinfo;

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
