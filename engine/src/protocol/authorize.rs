//! The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 8252 for native apps) and
//! reading what comes back: a redirect URL, a pasted `code#state`, or a bare code.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::entropy::Entropy;
use crate::error::{CallbackProblem, Endpoint, Error, ErrorCode, OAuthError};
use crate::pkce::Pkce;
use crate::protocol::response::printable;
use crate::secret::Secret;

/// An authorization request in flight: what the redirect must match and what the code
/// exchange needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PendingAuthorization {
    pub redirect_uri: String,
    pub state: Secret,
    pub pkce: Pkce,
    pub nonce: Option<Secret>,
    /// The provider promised `iss` in its responses (RFC 9207 §2.4).
    pub iss_required: bool,
}

impl PendingAuthorization {
    /// Draws the verifier, `state` and (for OpenID) `nonce` from the engine's entropy.
    pub(crate) fn new(
        redirect_uri: String,
        config: &Config,
        entropy: &mut Entropy,
        iss_required: bool,
    ) -> Self {
        let pkce = Pkce::generate(entropy);
        let state = Secret::new(entropy.token(16));
        let nonce = config
            .wants_openid()
            .then(|| Secret::new(entropy.token(16)));
        Self {
            redirect_uri,
            state,
            pkce,
            nonce,
            iss_required,
        }
    }

    /// The URL to open. Extra parameters cannot override the protocol's own.
    pub(crate) fn url(&self, config: &Config, endpoint: &str) -> Result<String, Error> {
        let mut url = super::parse_url(endpoint)
            .map_err(|e| super::not_a_url(&format!("authorization endpoint `{endpoint}`"), e))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &config.client_id)
                .append_pair("redirect_uri", &self.redirect_uri);
            if !config.scopes.is_empty() {
                query.append_pair("scope", &config.scopes.join(" "));
            }
            query
                .append_pair("state", self.state.expose())
                .append_pair("code_challenge", &self.pkce.challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(nonce) = &self.nonce {
                query.append_pair("nonce", nonce.expose());
            }
            for (name, value) in &config.authorization_params {
                if !RESERVED.contains(&name.as_str()) {
                    query.append_pair(name, value);
                }
            }
        }
        Ok(url.into())
    }

    /// Checks what came back and returns the authorization code.
    ///
    /// Order matters: `state` first (a forged redirect must not be able to report an
    /// error in this login's name), then `iss`, then an `error`, then the code.
    pub(crate) fn accept(
        &self,
        callback: &Callback,
        issuer: Option<&str>,
    ) -> Result<Secret, Error> {
        let fail = |problem| Err(Error::Callback { problem });
        match &callback.state {
            Some(state) if !self.state.ct_eq(state) => return fail(CallbackProblem::StateMismatch),
            None if callback.from_url => return fail(CallbackProblem::MissingState),
            _ => {}
        }
        match (&callback.iss, issuer) {
            (Some(received), Some(expected)) if received != expected => {
                return fail(CallbackProblem::IssuerMismatch {
                    received: printable(received, 200),
                });
            }
            (None, _) if self.iss_required && callback.from_url => {
                return fail(CallbackProblem::MissingIssuer);
            }
            _ => {}
        }
        if let Some(code) = &callback.error {
            return Err(Error::OAuth {
                endpoint: Endpoint::Authorization,
                status: 0,
                error: OAuthError {
                    code: ErrorCode::from(printable(code, 64)),
                    description: callback
                        .error_description
                        .as_deref()
                        .map(|d| printable(d, 300)),
                    uri: callback.error_uri.as_deref().map(|u| printable(u, 300)),
                },
            });
        }
        callback.code.clone().ok_or(Error::Callback {
            problem: CallbackProblem::MissingCode,
        })
    }
}

/// Parameters the configuration may not override.
const RESERVED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

/// The parameters read from a redirect or a paste.
#[derive(Debug, Default)]
pub(crate) struct Callback {
    pub code: Option<Secret>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_uri: Option<String>,
    /// Read from a URL (where `state` is mandatory) rather than a bare code.
    pub from_url: bool,
}

/// Longest text accepted as a redirect or paste.
const MAX_CALLBACK_LEN: usize = 16 * 1024;

impl Callback {
    /// A redirect URL delivered by the browser.
    pub(crate) fn from_redirect(url: &str) -> Result<Self, Error> {
        let unreadable = Error::Callback {
            problem: CallbackProblem::Unreadable,
        };
        if url.len() > MAX_CALLBACK_LEN {
            return Err(unreadable);
        }
        let url = super::parse_url(url.trim()).map_err(|_| unreadable.clone())?;
        let mut callback = Self::from_pairs(url.query_pairs())?;
        if callback.code.is_none()
            && callback.error.is_none()
            && let Some(fragment) = url.fragment()
        {
            callback = Self::from_pairs(form_urlencoded::parse(fragment.as_bytes()))?;
        }
        if callback.code.is_none() && callback.error.is_none() && callback.state.is_none() {
            return Err(unreadable);
        }
        callback.from_url = true;
        Ok(callback)
    }

    /// What a user pasted: a redirect URL, `code#state` (as some providers display it),
    /// or a bare code.
    pub(crate) fn from_paste(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.contains("://") {
            return Self::from_redirect(text);
        }
        let plausible = |s: &str| {
            !s.is_empty() && s.len() <= 4096 && s.chars().all(|c| c.is_ascii_graphic() && c != '#')
        };
        match text.split_once('#') {
            Some((code, state)) if plausible(code) && plausible(state) => Ok(Self {
                code: Some(Secret::new(code)),
                state: Some(state.to_owned()),
                ..Self::default()
            }),
            None if plausible(text) => Ok(Self {
                code: Some(Secret::new(text)),
                ..Self::default()
            }),
            _ => Err(Error::Callback {
                problem: CallbackProblem::Unreadable,
            }),
        }
    }

    /// Reads the response parameters. RFC 6749 §3.1 forbids repeating one; a repeated
    /// `code`, `state`, `iss` or `error` makes the redirect unreadable rather than letting
    /// the first or last one win.
    fn from_pairs<'a>(
        pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    ) -> Result<Self, Error> {
        let mut callback = Self::default();
        let mut code = None;
        let mut repeated = false;
        for (name, value) in pairs {
            let value = value.into_owned();
            let slot = match name.as_ref() {
                "code" if !value.is_empty() => &mut code,
                "state" => &mut callback.state,
                "iss" => &mut callback.iss,
                "error" => &mut callback.error,
                "error_description" => &mut callback.error_description,
                "error_uri" => &mut callback.error_uri,
                _ => continue,
            };
            repeated |= slot.replace(value).is_some();
        }
        if repeated {
            return Err(Error::Callback {
                problem: CallbackProblem::Unreadable,
            });
        }
        callback.code = code.map(Secret::new);
        Ok(callback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paste_forms() {
        let c = Callback::from_paste("  abc#xyz \n").unwrap();
        assert_eq!(c.code.unwrap().expose(), "abc");
        assert_eq!(c.state.as_deref(), Some("xyz"));
        let c = Callback::from_paste("just-a-code").unwrap();
        assert!(c.state.is_none() && !c.from_url);
        let c = Callback::from_paste("http://127.0.0.1:1/cb?code=k&state=s&iss=x").unwrap();
        assert!(c.from_url);
        assert_eq!(c.iss.as_deref(), Some("x"));
        assert!(Callback::from_paste("two words").is_err());
        assert!(Callback::from_paste("").is_err());
        assert!(Callback::from_paste("a#b#c").is_err());
    }

    #[test]
    fn repeated_parameters_are_unreadable() {
        assert!(Callback::from_redirect("http://127.0.0.1:1/cb?code=a&code=b&state=s").is_err());
        assert!(Callback::from_redirect("http://127.0.0.1:1/cb?code=a&state=s&state=t").is_err());
    }

    #[test]
    fn redirect_without_parameters_is_unreadable() {
        assert!(Callback::from_redirect("http://127.0.0.1:1/favicon.ico").is_err());
        assert!(Callback::from_redirect("::::").is_err());
        let c = Callback::from_redirect("https://x.chromiumapp.org/#code=c&state=s").unwrap();
        assert_eq!(c.code.unwrap().expose(), "c");
    }
}
