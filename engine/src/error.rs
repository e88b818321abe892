//! Typed errors. Each message says what was wrong and what to do; none contains a secret.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which provider endpoint an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Discovery,
    Authorization,
    Token,
    DeviceAuthorization,
    Revocation,
    Userinfo,
    ServerLogout,
    /// An endpoint of [`Config::derived`](crate::Config::derived).
    Derived,
    /// The provider's signing keys (`jwks_uri`).
    Jwks,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::Discovery => "discovery",
            Endpoint::Authorization => "authorization",
            Endpoint::Token => "token",
            Endpoint::DeviceAuthorization => "device authorization",
            Endpoint::Revocation => "revocation",
            Endpoint::Userinfo => "userinfo",
            Endpoint::ServerLogout => "server logout",
            Endpoint::Derived => "derived token",
            Endpoint::Jwks => "signing keys (jwks_uri)",
        })
    }
}

/// The `error` code of an OAuth error response: the registered ones (RFC 6749, RFC 8628,
/// OpenID Connect Core §3.1.2.6), and any other as it was sent. Written as the plain
/// code in transcripts and JSON.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    /// A code outside the registries (shortened and stripped of control characters).
    Other(String),
}

/// Every registered code with its name.
const REGISTERED_CODES: [(ErrorCode, &str); 16] = [
    (ErrorCode::InvalidRequest, "invalid_request"),
    (ErrorCode::InvalidClient, "invalid_client"),
    (ErrorCode::InvalidGrant, "invalid_grant"),
    (ErrorCode::UnauthorizedClient, "unauthorized_client"),
    (ErrorCode::UnsupportedGrantType, "unsupported_grant_type"),
    (ErrorCode::InvalidScope, "invalid_scope"),
    (ErrorCode::AccessDenied, "access_denied"),
    (
        ErrorCode::UnsupportedResponseType,
        "unsupported_response_type",
    ),
    (ErrorCode::ServerError, "server_error"),
    (ErrorCode::TemporarilyUnavailable, "temporarily_unavailable"),
    (ErrorCode::AuthorizationPending, "authorization_pending"),
    (ErrorCode::SlowDown, "slow_down"),
    (ErrorCode::ExpiredToken, "expired_token"),
    (ErrorCode::LoginRequired, "login_required"),
    (ErrorCode::ConsentRequired, "consent_required"),
    (ErrorCode::InteractionRequired, "interaction_required"),
];

impl ErrorCode {
    /// The code as the provider sends it.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Other(code) => code,
            known => REGISTERED_CODES
                .iter()
                .find(|(code, _)| code == known)
                .map_or("", |(_, name)| name),
        }
    }
}

impl From<String> for ErrorCode {
    fn from(code: String) -> Self {
        REGISTERED_CODES
            .iter()
            .find(|(_, name)| *name == code)
            .map_or(ErrorCode::Other(code), |(known, _)| known.clone())
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        ErrorCode::from(code.to_owned())
    }
}

impl From<ErrorCode> for String {
    fn from(code: ErrorCode) -> Self {
        code.as_str().to_owned()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error response (RFC 6749 §4.1.2.1 and §5.2, RFC 8628 §3.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    /// The `error` code, e.g. `invalid_grant`.
    pub code: ErrorCode,
    /// `error_description`, shortened and stripped of control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `error_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl OAuthError {
    fn advice(&self) -> &'static str {
        use ErrorCode as C;
        match self.code {
            C::InvalidRequest => {
                "the provider rejected the request as malformed; check the profile's endpoints and parameters"
            }
            C::InvalidClient => {
                "the provider does not accept this client; check client_id (and client_secret)"
            }
            C::InvalidGrant => "the grant is no longer valid; sign in again",
            C::UnauthorizedClient => {
                "this client may not use this grant type; check the client's registration"
            }
            C::UnsupportedGrantType => {
                "the provider does not support this flow; try another login method"
            }
            C::InvalidScope => {
                "the provider rejected the requested scopes; check the profile's scopes"
            }
            C::AccessDenied => "the request was denied; sign in again if that was a mistake",
            C::ExpiredToken => {
                "the device code expired before it was approved; start the device sign-in again"
            }
            C::ServerError | C::TemporarilyUnavailable => {
                "the provider had a problem; try again shortly"
            }
            C::UnsupportedResponseType => {
                "the provider does not support the authorization code flow for this client"
            }
            C::LoginRequired | C::ConsentRequired | C::InteractionRequired => {
                "the provider needs you to sign in interactively"
            }
            C::AuthorizationPending | C::SlowDown | C::Other(_) => {
                "see the provider's documentation for this error"
            }
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.code)?;
        if let Some(description) = &self.description {
            write!(f, " ({description})")?;
        }
        write!(f, ": {}", self.advice())
    }
}

/// Why a network request produced no HTTP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportErrorKind {
    /// Nothing arrived within the request's time limit.
    Timeout,
    /// The connection could not be made (DNS, refused, TLS).
    Connect,
    /// The server answered with a redirect, which token endpoints must not do.
    Redirect,
    /// Anything else the host's HTTP stack reported.
    Other,
}

/// What was wrong with a response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ResponseProblem {
    /// Larger than `max_response_bytes`.
    TooLarge { limit: usize },
    /// Not a JSON object (or form-encoded body), e.g. an HTML error page.
    NotAnObject {
        content_type: Option<String>,
        bytes: usize,
    },
    /// A required member is absent.
    MissingField { field: String },
    /// A member has the wrong type or an unusable value.
    InvalidField { field: String, reason: String },
    /// A status code with no OAuth error in the body.
    UnexpectedStatus { status: u16 },
}

impl fmt::Display for ResponseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseProblem::TooLarge { limit } => {
                write!(f, "the body is larger than {limit} bytes")
            }
            ResponseProblem::NotAnObject {
                content_type,
                bytes,
            } => write!(
                f,
                "expected a JSON object, got {} ({bytes} bytes)",
                content_type.as_deref().unwrap_or("no content type")
            ),
            ResponseProblem::MissingField { field } => write!(f, "`{field}` is missing"),
            ResponseProblem::InvalidField { field, reason } => write!(f, "`{field}` {reason}"),
            ResponseProblem::UnexpectedStatus { status } => {
                write!(
                    f,
                    "unexpected HTTP status {status} with no OAuth error in the body"
                )
            }
        }
    }
}

/// What was wrong with the redirect (or pasted code) that should end an authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum CallbackProblem {
    /// Neither a URL with a query, `code#state`, nor a plausible bare code.
    Unreadable,
    /// `state` differs from the one this login sent.
    StateMismatch,
    /// `state` is absent from a redirect URL.
    MissingState,
    /// `iss` differs from the configured issuer (RFC 9207).
    IssuerMismatch { received: String },
    /// `iss` is absent although the provider advertises it (RFC 9207 §2.4).
    MissingIssuer,
    /// No `code` and no `error`.
    MissingCode,
    /// The redirect of a handed-off login came after its deadline.
    Expired,
}

impl fmt::Display for CallbackProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackProblem::Unreadable => f.write_str(
                "could not read the redirect: expected a URL with `code` and `state` (each once), `code#state`, or the code alone",
            ),
            CallbackProblem::StateMismatch => f.write_str(
                "the redirect's `state` does not match this login (a stale tab or a forged redirect); it was ignored and the login still waits",
            ),
            CallbackProblem::MissingState => {
                f.write_str("the redirect has no `state`; it was ignored and the login still waits")
            }
            CallbackProblem::IssuerMismatch { received } => write!(
                f,
                "the redirect came from issuer `{received}`, not the configured one (a mix-up attack?); sign in again"
            ),
            CallbackProblem::MissingIssuer => f.write_str(
                "the redirect has no `iss` although the provider promises one (RFC 9207); sign in again",
            ),
            CallbackProblem::MissingCode => {
                f.write_str("the redirect has neither a code nor an error; sign in again")
            }
            CallbackProblem::Expired => f.write_str(
                "the sign-in took too long and this redirect has expired; start the sign-in again",
            ),
        }
    }
}

/// A problem with the ID token's claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum IdTokenProblem {
    /// Not three base64url segments with a JSON payload.
    Malformed,
    IssuerMismatch,
    AudienceMismatch,
    /// Several audiences and no `azp`, or an `azp` other than this client (OIDC Core
    /// §3.1.3.7 steps 4–5): the token was issued to another party.
    AuthorizedPartyMismatch,
    NonceMismatch,
    Expired,
    /// A refreshed ID token names another user than the session's (OIDC Core §12.2).
    SubjectMismatch,
    /// `iat` or `nbf` lies in the future by more than the allowed clock skew.
    NotYetValid,
    /// `alg: none`: nothing proves who issued it.
    Unsigned,
    /// An HMAC algorithm (`HS256`…): its key would be something the client can read.
    SymmetricAlgorithm,
    /// An algorithm tessera does not verify, or a critical header extension.
    UnsupportedAlgorithm,
    /// None of the provider's published keys (fetched again once) fits the token's
    /// `kid` and algorithm.
    UnknownKey,
    /// The signature does not verify with the provider's key: the token was forged or
    /// altered.
    BadSignature,
}

impl fmt::Display for IdTokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "it is not a readable JWT",
            Self::IssuerMismatch => "it was issued by another issuer",
            Self::AudienceMismatch => "it was issued for another client",
            Self::AuthorizedPartyMismatch => "it was issued to another party (azp)",
            Self::NonceMismatch => "its nonce is not this login's",
            Self::Expired => "it has expired",
            Self::SubjectMismatch => "it names another user than this session's",
            Self::NotYetValid => "it is not valid yet (issued in the future)",
            Self::Unsigned => "it is unsigned (alg none)",
            Self::SymmetricAlgorithm => "it is signed with HMAC, which tessera does not accept",
            Self::UnsupportedAlgorithm => "it is signed with an algorithm tessera does not verify",
            Self::UnknownKey => "none of the provider's published keys signed it",
            Self::BadSignature => "its signature does not verify with the provider's key",
        })
    }
}

/// Everything that can make a login, a token request or a logout fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// There is no session; log in first.
    NotLoggedIn,
    /// The session has ended and needs a new login (its refresh token was rejected, or
    /// the access token expired with no refresh token to renew it).
    LoginRequired { reason: String },
    /// The provider answered with an OAuth error. `status` is 0 for an error delivered by
    /// redirect (there is no HTTP status to report).
    #[serde(rename = "oauth")]
    OAuth {
        endpoint: Endpoint,
        status: u16,
        error: OAuthError,
    },
    /// No HTTP response arrived.
    Transport {
        endpoint: Endpoint,
        kind: TransportErrorKind,
        detail: String,
    },
    /// A response the engine could not use.
    Response {
        endpoint: Endpoint,
        status: u16,
        problem: ResponseProblem,
    },
    /// The authorization redirect could not be accepted.
    Callback { problem: CallbackProblem },
    /// The ID token's claims are not for this client or this login.
    IdToken { problem: IdTokenProblem },
    /// The discovered metadata names another issuer (RFC 8414 §3.3).
    IssuerMismatch { expected: String, received: String },
    /// The configuration lacks something the flow needs.
    Config { problem: String },
    /// Neither the configuration nor discovery names an endpoint the flow needs
    /// (`advice` says where to set it). A host may offer another flow instead.
    MissingEndpoint { endpoint: Endpoint, advice: String },
    /// Nothing came back from the browser in time.
    CallbackTimeout,
    /// The device code expired before it was approved (client-side deadline).
    DeviceCodeExpired,
    /// The flow was cancelled or replaced by another login.
    Cancelled,
    /// The host reported that storage failed.
    Storage { detail: String },
    /// The sign-in redirect was refused, and the host's launcher brings no other one.
    RedirectRefused { reason: String },
    /// The host's browser launcher ended without a redirect (window closed, no launcher).
    LaunchFailed { detail: String },
    /// The session's host stopped before it could answer.
    Stopped,
    /// A derived token (see [`Config::derived`](crate::Config::derived)) could not be
    /// had. `name` is the name it was asked for.
    Derived {
        name: String,
        problem: DerivedProblem,
    },
}

/// Why a derived token could not be had.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum DerivedProblem {
    /// The configuration names no derived token by that name; `known` are the ones it
    /// names.
    NotConfigured { known: Vec<String> },
    /// HTTP 403: the account may not have this token.
    NotEntitled,
    /// HTTP 404: the provider offers no such token (at that URL).
    NotOffered,
    /// HTTP 401 again after the access token was renewed.
    Unauthorized,
    /// No usable answer after `attempts` tries (5xx, 429, or no response); `last` is the
    /// last failure.
    Unavailable { attempts: u32, last: Box<Error> },
    /// Another status, or a body without a token and its lifetime.
    BadResponse {
        status: u16,
        detail: ResponseProblem,
    },
}

/// Broad classes of [`Error`], e.g. for CLI exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No session, or the session needs a new login.
    NotLoggedIn,
    /// The user or the provider refused.
    Denied,
    /// The network or the provider's availability.
    Network,
    /// The provider's answer or the redirect was wrong.
    Protocol,
    /// The profile is incomplete or wrong.
    Config,
    /// Timed out or cancelled.
    Interrupted,
    /// Storage failed.
    Storage,
    /// The session's host (actor) stopped.
    Stopped,
}

impl Error {
    /// The broad class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotLoggedIn | Error::LoginRequired { .. } => ErrorKind::NotLoggedIn,
            Error::OAuth { error, .. } => match error.code {
                ErrorCode::AccessDenied | ErrorCode::ExpiredToken => ErrorKind::Denied,
                ErrorCode::InvalidGrant => ErrorKind::NotLoggedIn,
                ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => ErrorKind::Network,
                ErrorCode::InvalidClient
                | ErrorCode::UnauthorizedClient
                | ErrorCode::InvalidScope => ErrorKind::Config,
                _ => ErrorKind::Protocol,
            },
            Error::Transport { .. } => ErrorKind::Network,
            Error::Response { status, .. } if *status >= 500 => ErrorKind::Network,
            Error::Response { .. } | Error::Callback { .. } | Error::IdToken { .. } => {
                ErrorKind::Protocol
            }
            Error::IssuerMismatch { .. } | Error::Config { .. } | Error::MissingEndpoint { .. } => {
                ErrorKind::Config
            }
            Error::DeviceCodeExpired => ErrorKind::Denied,
            Error::CallbackTimeout | Error::Cancelled | Error::LaunchFailed { .. } => {
                ErrorKind::Interrupted
            }
            Error::RedirectRefused { .. } => ErrorKind::Protocol,
            Error::Storage { .. } => ErrorKind::Storage,
            Error::Stopped => ErrorKind::Stopped,
            Error::Derived { problem, .. } => match problem {
                DerivedProblem::NotConfigured { .. } | DerivedProblem::NotOffered => {
                    ErrorKind::Config
                }
                DerivedProblem::NotEntitled | DerivedProblem::Unauthorized => ErrorKind::Denied,
                DerivedProblem::Unavailable { .. } => ErrorKind::Network,
                DerivedProblem::BadResponse { .. } => ErrorKind::Protocol,
            },
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            // A redirect is a misconfigured endpoint: retrying will not help.
            Error::Transport { kind, .. } => *kind != TransportErrorKind::Redirect,
            Error::Storage { .. } => true,
            Error::Derived { problem, .. } => {
                matches!(problem, DerivedProblem::Unavailable { .. })
            }
            Error::Response { status, .. } => *status >= 500 || *status == 429,
            Error::OAuth { error, .. } => {
                matches!(
                    error.code,
                    ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
                )
            }
            _ => false,
        }
    }

    pub(crate) fn config(problem: impl Into<String>) -> Self {
        Error::Config {
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotLoggedIn => f.write_str("not logged in; sign in first"),
            Error::LoginRequired { reason } => {
                write!(f, "the session has ended ({reason}); sign in again")
            }
            Error::OAuth {
                endpoint: Endpoint::Authorization,
                error,
                ..
            } => {
                write!(f, "the provider redirected back with {error}")
            }
            Error::OAuth {
                endpoint,
                status,
                error,
            } => {
                write!(f, "the {endpoint} endpoint answered {status} with {error}")
            }
            Error::Transport {
                endpoint,
                kind,
                detail,
            } => {
                let what = match kind {
                    TransportErrorKind::Timeout => "timed out",
                    TransportErrorKind::Connect => "could not connect",
                    TransportErrorKind::Redirect => {
                        "answered with a redirect, which is not followed"
                    }
                    TransportErrorKind::Other => "failed",
                };
                write!(
                    f,
                    "the request to the {endpoint} endpoint {what} ({detail}); check the network and try again"
                )
            }
            Error::Response {
                endpoint,
                status,
                problem,
            } => write!(
                f,
                "the {endpoint} endpoint's response (HTTP {status}) is unusable: {problem}; the provider may be misconfigured or down"
            ),
            Error::Callback { problem } => write!(f, "{problem}"),
            Error::IdToken { problem } => write!(
                f,
                "the ID token is not valid for this login: {problem}; sign in again"
            ),
            Error::IssuerMismatch { expected, received } => write!(
                f,
                "discovery at `{expected}` describes issuer `{received}`; fix the profile's issuer (it must match exactly)"
            ),
            Error::Config { problem } => write!(f, "configuration: {problem}"),
            Error::MissingEndpoint { advice, .. } => write!(f, "configuration: {advice}"),
            Error::CallbackTimeout => {
                f.write_str("no redirect arrived before the sign-in timed out; sign in again")
            }
            Error::DeviceCodeExpired => f.write_str(
                "the device code expired before it was approved; start the device sign-in again",
            ),
            Error::Cancelled => f.write_str("the login was cancelled"),
            Error::Storage { detail } => write!(f, "storage failed: {detail}"),
            Error::RedirectRefused { reason } => {
                write!(
                    f,
                    "the sign-in redirect was not accepted ({reason}); sign in again"
                )
            }
            Error::LaunchFailed { detail } => write!(f, "sign-in did not finish: {detail}"),
            Error::Stopped => f.write_str("the session stopped before it could answer"),
            Error::Derived { name, problem } => write!(f, "{}", DerivedMessage(name, problem)),
        }
    }
}

/// The message of [`Error::Derived`].
struct DerivedMessage<'a>(&'a str, &'a DerivedProblem);

impl fmt::Display for DerivedMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let DerivedMessage(name, problem) = *self;
        match problem {
            DerivedProblem::NotConfigured { known } if known.is_empty() => write!(
                f,
                "no derived token `{name}` is configured (none are); add its endpoint as \
                 `derived.{name}.url` in the configuration"
            ),
            DerivedProblem::NotConfigured { known } => write!(
                f,
                "no derived token `{name}` is configured (configured: {}); use one of those, \
                 or add its endpoint as `derived.{name}.url` in the configuration",
                known.join(", ")
            ),
            DerivedProblem::NotEntitled => write!(
                f,
                "the provider refused the derived token `{name}` (HTTP 403): this account is \
                 not entitled to it; ask for access, or sign in with an account that has it"
            ),
            DerivedProblem::NotOffered => write!(
                f,
                "the provider does not offer the derived token `{name}` (HTTP 404 at its \
                 endpoint); check the endpoint's URL in the configuration"
            ),
            DerivedProblem::Unauthorized => write!(
                f,
                "the endpoint of the derived token `{name}` refused the access token (HTTP \
                 401) even after it was renewed; sign in again, perhaps with the scopes it needs"
            ),
            DerivedProblem::Unavailable { attempts, last } => {
                let tries = if *attempts == 1 {
                    "attempt"
                } else {
                    "attempts"
                };
                write!(
                    f,
                    "the derived token `{name}` could not be fetched ({attempts} {tries}); the \
                     last failure: {last}"
                )
            }
            DerivedProblem::BadResponse { status, detail } => write!(
                f,
                "the endpoint of the derived token `{name}` answered HTTP {status} with no \
                 usable token: {}; it expects a JSON object with `token` (or \
                 `access_token`) and `expires_in` (or `expires_at`)",
                detail
            ),
        }
    }
}

impl std::error::Error for Error {}

/// An input the engine refused because it does not fit its current state.
///
/// This is what `handle` returns as `Err`: the input was dropped and nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rejected", rename_all = "snake_case")]
pub enum Rejected {
    /// No request with this id is outstanding: never issued, already answered, or abandoned
    /// because its flow ended (e.g. a response arriving after logout).
    UnknownRequest { id: u64 },
    /// The input makes no sense in the current state (e.g. a redirect when no login waits).
    Unexpected { input: String, state: String },
    /// The input could not be read (e.g. pasted text that is no code); the flow goes on.
    Invalid { reason: String },
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::UnknownRequest { id } => {
                write!(
                    f,
                    "no request {id} is outstanding; its response was ignored"
                )
            }
            Rejected::Unexpected { input, state } => {
                write!(f, "`{input}` is not expected while {state}; it was ignored")
            }
            Rejected::Invalid { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for Rejected {}
