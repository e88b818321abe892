//! What the engine needs to know about the client and the provider.
//!
//! Every field has a default except `client_id`, so a transcript or a profile only lists
//! what differs. Endpoints given here override discovered ones (RFC 8414 §2 lets a
//! deployment pin them; some providers publish no metadata at all).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// How long an HTTP request may take by default.
pub(crate) const DEFAULT_HTTP_TIMEOUT_MS: u64 = 30_000;
/// How much of a response is read by default.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Client and provider configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The provider's issuer identifier. Enables discovery and `iss` checks.
    pub issuer: Option<String>,
    /// The `iss` ID tokens must carry, when it is not `issuer` (or there is none): a
    /// `{tenantid}` placeholder stands for the token's own `tid` claim, as in Microsoft's
    /// multi-tenant metadata (`https://login.microsoftonline.com/{tenantid}/v2.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_issuer: Option<String>,
    /// The client identifier registered with the provider.
    pub client_id: String,
    /// Only for providers that insist on a secret even for installed apps.
    pub client_secret: Option<Secret>,
    /// How the secret is presented to the token, device authorization and revocation
    /// endpoints. Unset: chosen per endpoint from the provider's metadata
    /// ([`Config::client_auth`]). Ignored without a `client_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth_method: Option<ClientAuthMethod>,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// Redirect URI for flows whose host does not choose one (paste flow, fixed ports).
    pub redirect_uri: Option<String>,
    /// Endpoints that override (or replace) discovery.
    pub endpoints: Endpoints,
    /// Fetch RFC 8414 / OIDC metadata from `issuer` when an endpoint is not configured.
    pub discovery: bool,
    /// Extra authorization request parameters, e.g. `audience`, `resource`, `prompt`, `code`.
    pub authorization_params: BTreeMap<String, String>,
    /// How the code exchange is encoded.
    pub token_request: TokenRequestFormat,
    /// Refresh this long before expiry (scaled down for short-lived tokens).
    pub refresh_buffer_secs: u64,
    /// How long to wait for the browser's redirect or a pasted code.
    pub callback_timeout_secs: u64,
    /// Device polling interval when the provider names none (RFC 8628 §3.2: 5 s).
    pub device_poll_interval_secs: u64,
    /// Lifetime assumed when a token response has no `expires_in`.
    pub assumed_token_lifetime_secs: u64,
    /// Longest wait between retries of a refresh that failed for a transient reason.
    pub max_retry_backoff_secs: u64,
    /// Time limit the host applies to each HTTP request.
    pub http_timeout_ms: u64,
    /// How far an ID token's `exp`, `iat` and `nbf` may be off. They are compared with the
    /// provider's clock (its `Date` header) when it sends one, so this covers only the
    /// second-granularity of that header and the time on the way.
    pub clock_skew_secs: u64,
    /// Largest response body the engine will parse; hosts stop reading beyond it.
    pub max_response_bytes: usize,
    /// Sent as `post_logout_redirect_uri` in the end-session URL.
    pub post_logout_redirect_uri: Option<String>,
    /// Accept plain `http://` URLs for the issuer and endpoints on hosts other than
    /// loopback. Off: such a URL is a configuration error (tokens and codes would cross
    /// the network readable by anyone on the path). For lab setups only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_http: bool,
    /// Endpoints that exchange the access token for a short-lived derived token (a
    /// real-time client's "ws-token"), by the name callers ask for. See
    /// [`DerivedEndpoint`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub derived: BTreeMap<String, DerivedEndpoint>,
}

/// Where a derived token is fetched: `POST url` with `Authorization: Bearer <access
/// token>`, answered by a JSON object with the token (`token` or `access_token`) and its
/// lifetime (`expires_in` seconds, or `expires_at` Unix seconds or milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedEndpoint {
    pub url: String,
}

impl Config {
    /// `Err` naming the first URL (the issuer, then each endpoint of `endpoints`) that is
    /// neither `https` nor plain `http` to a loopback host (127.0.0.0/8, `[::1]`,
    /// `localhost`), unless [`Config::insecure_http`] allows it.
    pub(crate) fn check_transport(&self, endpoints: &Endpoints) -> Result<(), crate::Error> {
        let named = [
            ("issuer", self.issuer.as_deref()),
            ("authorization endpoint", endpoints.authorization.as_deref()),
            ("token endpoint", endpoints.token.as_deref()),
            (
                "device authorization endpoint",
                endpoints.device_authorization.as_deref(),
            ),
            ("revocation endpoint", endpoints.revocation.as_deref()),
            ("userinfo endpoint", endpoints.userinfo.as_deref()),
            ("end-session endpoint", endpoints.end_session.as_deref()),
            ("server logout endpoint", endpoints.server_logout.as_deref()),
            (
                "signing keys endpoint (jwks_uri)",
                endpoints.jwks.as_deref(),
            ),
        ];
        for (what, url) in named {
            let Some(url) = url else { continue };
            if !self.is_secure(url) {
                return Err(crate::Error::Config {
                    problem: format!(
                        "the {what} `{url}` is not https: tokens and codes sent there could be \
                         read on the way; use its https URL (plain http is accepted only for \
                         127.0.0.1, [::1] and localhost, or with insecure_http for a lab)"
                    ),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn is_secure(&self, url: &str) -> bool {
        let Ok(parsed) = crate::protocol::parse_url(url) else {
            // Not a URL: the flow reports that itself, with a better message.
            return true;
        };
        match parsed.scheme() {
            "https" => true,
            "http" => {
                self.insecure_http
                    || match parsed.host() {
                        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
                        None => false,
                    }
            }
            _ => false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: None,
            id_token_issuer: None,
            client_auth_method: None,
            client_id: String::new(),
            client_secret: None,
            scopes: Vec::new(),
            redirect_uri: None,
            endpoints: Endpoints::default(),
            discovery: true,
            authorization_params: BTreeMap::new(),
            token_request: TokenRequestFormat::Form,
            refresh_buffer_secs: 300,
            callback_timeout_secs: 300,
            device_poll_interval_secs: 5,
            assumed_token_lifetime_secs: 600,
            max_retry_backoff_secs: 60,
            insecure_http: false,
            http_timeout_ms: DEFAULT_HTTP_TIMEOUT_MS,
            clock_skew_secs: 60,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            post_logout_redirect_uri: None,
            derived: BTreeMap::new(),
        }
    }
}

impl Config {
    /// How to authenticate to an endpoint whose metadata lists `accepted` methods (RFC 8414
    /// `*_endpoint_auth_methods_supported`; `None`: the provider did not say). The configured
    /// method wins; without a secret the client is public (`none`); with one the secret goes
    /// in the body, as it always has, unless the provider lists `client_secret_basic` and
    /// not `client_secret_post`.
    pub(crate) fn client_auth(&self, accepted: Option<&[String]>) -> ClientAuthMethod {
        if self.client_secret.is_none() {
            return ClientAuthMethod::None;
        }
        if let Some(method) = self.client_auth_method {
            return method;
        }
        let lists = |name: &str| accepted.is_some_and(|list| list.iter().any(|m| m == name));
        if lists("client_secret_basic") && !lists("client_secret_post") {
            ClientAuthMethod::ClientSecretBasic
        } else {
            ClientAuthMethod::ClientSecretPost
        }
    }

    /// How to authenticate to the revocation endpoint of `endpoints`: by its own list of
    /// methods, else by the token endpoint's.
    pub(crate) fn revocation_auth(&self, endpoints: &Endpoints) -> ClientAuthMethod {
        let accepted = endpoints
            .revocation_auth_methods
            .as_deref()
            .or(endpoints.token_auth_methods.as_deref());
        self.client_auth(accepted)
    }

    /// The `iss` an ID token must carry: [`Config::id_token_issuer`], else the issuer.
    pub(crate) fn expected_id_token_issuer(&self) -> Option<&str> {
        self.id_token_issuer.as_deref().or(self.issuer.as_deref())
    }

    /// A configuration for `client_id` at `issuer`, everything else default.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer: Some(issuer.into()),
            client_id: client_id.into(),
            ..Self::default()
        }
    }

    /// Whether the scopes ask for OpenID Connect (which adds `nonce` and id_token checks).
    pub fn wants_openid(&self) -> bool {
        self.scopes.iter().any(|s| s == "openid")
    }
}

/// How a client authenticates to the provider's endpoints (RFC 6749 §2.3.1; the names are
/// RFC 8414's `token_endpoint_auth_methods_supported` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// A public client: `client_id` in the body, no secret.
    None,
    /// `Authorization: Basic` with the form-encoded client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the body.
    ClientSecretPost,
}

/// Provider endpoints. Any of them may come from configuration or from discovery.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Endpoints {
    pub authorization: Option<String>,
    pub token: Option<String>,
    pub device_authorization: Option<String>,
    pub revocation: Option<String>,
    pub userinfo: Option<String>,
    pub end_session: Option<String>,
    /// A provider-specific logout call (POST with the access token as bearer).
    pub server_logout: Option<String>,
    /// The provider's signing keys (`jwks_uri`): ID tokens are verified against them.
    /// Without it an ID token is trusted as the token endpoint's answer over TLS (OIDC
    /// Core §3.1.3.7 step 6), after its claims are checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    /// Signing keys known without a fetch: pinned in a profile, or remembered in a
    /// session (the key that verified its ID token).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<crate::protocol::jwks::SigningKey>,
    /// The client authentication methods the token endpoint accepts (RFC 8414
    /// `token_endpoint_auth_methods_supported`), as discovered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_auth_methods: Option<Vec<String>>,
    /// The same for the revocation endpoint (`revocation_endpoint_auth_methods_supported`);
    /// when unsaid, the token endpoint's list is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_auth_methods: Option<Vec<String>>,
}

impl Endpoints {
    /// `self` where set, else `fallback`.
    pub fn or(&self, fallback: &Endpoints) -> Endpoints {
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        Endpoints {
            authorization: pick(&self.authorization, &fallback.authorization),
            token: pick(&self.token, &fallback.token),
            device_authorization: pick(&self.device_authorization, &fallback.device_authorization),
            revocation: pick(&self.revocation, &fallback.revocation),
            userinfo: pick(&self.userinfo, &fallback.userinfo),
            end_session: pick(&self.end_session, &fallback.end_session),
            server_logout: pick(&self.server_logout, &fallback.server_logout),
            jwks: pick(&self.jwks, &fallback.jwks),
            signing_keys: if self.signing_keys.is_empty() {
                fallback.signing_keys.clone()
            } else {
                self.signing_keys.clone()
            },
            token_auth_methods: self
                .token_auth_methods
                .clone()
                .or_else(|| fallback.token_auth_methods.clone()),
            revocation_auth_methods: self
                .revocation_auth_methods
                .clone()
                .or_else(|| fallback.revocation_auth_methods.clone()),
        }
    }
}

/// Body encoding of token-endpoint requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRequestFormat {
    /// `application/x-www-form-urlencoded`, as RFC 6749 §4.1.3 specifies.
    #[default]
    Form,
    /// A JSON object that also carries `state`, for providers that require it.
    Json,
}
