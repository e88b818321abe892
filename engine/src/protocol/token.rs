//! The token endpoint: code exchange (RFC 6749 §4.1.3, RFC 7636 §4.5), refresh (§6),
//! device code polling (RFC 8628 §3.4), and reading the answer (§5.1).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::{ClientAuthMethod, Config, TokenRequestFormat};
use crate::error::Error;
use crate::protocol::id_token::{self, Expected};
use crate::protocol::response::Response;
use crate::secret::Secret;
use crate::session::Identity;

/// Shortest lifetime accepted from `expires_in`: a provider answering 0 would otherwise
/// make the client refresh in a loop.
pub(crate) const MIN_LIFETIME_SECS: u64 = 10;
/// Longest lifetime accepted from `expires_in` (one leap year).
pub(crate) const MAX_LIFETIME_SECS: u64 = 366 * 24 * 3600;

pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// An encoded request body with its headers.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

fn form(params: &[(&str, &str)]) -> Encoded {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    Encoded {
        headers: BTreeMap::from([
            ("accept".to_owned(), "application/json".to_owned()),
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ]),
        body,
    }
}

/// A form-encoded request authenticated as `auth` says: the client's id (and secret) in
/// the body, or its id and secret as HTTP Basic credentials.
pub(crate) fn client_form<'a>(
    config: &'a Config,
    auth: ClientAuthMethod,
    mut params: Vec<(&'a str, &'a str)>,
) -> Encoded {
    let basic = match (auth, &config.client_secret) {
        (ClientAuthMethod::ClientSecretBasic, Some(secret)) => {
            Some(basic_credentials(&config.client_id, secret))
        }
        (ClientAuthMethod::ClientSecretPost, Some(secret)) => {
            params.push(("client_id", &config.client_id));
            params.push(("client_secret", secret.expose()));
            None
        }
        _ => {
            params.push(("client_id", &config.client_id));
            None
        }
    };
    let mut encoded = form(&params);
    if let Some(credentials) = basic {
        encoded
            .headers
            .insert("authorization".to_owned(), credentials);
    }
    encoded
}

/// `Basic base64(id:secret)`, each form-encoded first (RFC 6749 §2.3.1).
fn basic_credentials(client_id: &str, secret: &Secret) -> String {
    use base64::Engine as _;
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret.expose()));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The authorization code exchange; JSON (with `state`) when the provider wants it.
pub(crate) fn exchange_code(
    config: &Config,
    auth: ClientAuthMethod,
    code: &Secret,
    verifier: &Secret,
    redirect_uri: &str,
    state: &Secret,
) -> Encoded {
    match config.token_request {
        TokenRequestFormat::Form => client_form(
            config,
            auth,
            vec![
                ("grant_type", "authorization_code"),
                ("code", code.expose()),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier.expose()),
            ],
        ),
        TokenRequestFormat::Json => {
            let mut body = json!({
                "grant_type": "authorization_code",
                "code": code.expose(),
                "state": state.expose(),
                "client_id": config.client_id,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier.expose(),
            });
            let mut headers = BTreeMap::from([
                ("accept".to_owned(), "application/json".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]);
            if let Some(secret) = &config.client_secret {
                if auth == ClientAuthMethod::ClientSecretBasic {
                    let credentials = basic_credentials(&config.client_id, secret);
                    headers.insert("authorization".to_owned(), credentials);
                } else {
                    body["client_secret"] = Value::String(secret.expose().to_owned());
                }
            }
            Encoded {
                headers,
                // Not `body.to_string()`: the same compact JSON without `Display`, whose
                // pretty-printing variant would ship in the browser build for nothing.
                body: serde_json::to_string(&body).unwrap_or_default(),
            }
        }
    }
}

/// A refresh request. Scope is omitted so the grant keeps its original scope (§6).
pub(crate) fn refresh(config: &Config, auth: ClientAuthMethod, refresh_token: &Secret) -> Encoded {
    client_form(
        config,
        auth,
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ],
    )
}

/// One device flow poll.
pub(crate) fn poll_device(
    config: &Config,
    auth: ClientAuthMethod,
    device_code: &Secret,
) -> Encoded {
    client_form(
        config,
        auth,
        vec![
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", device_code.expose()),
        ],
    )
}

/// A successful token response, validated.
#[derive(Clone, Debug)]
pub(crate) struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub identity: Option<Identity>,
    /// Clamped to [`MIN_LIFETIME_SECS`, `MAX_LIFETIME_SECS`]; the configured assumption
    /// when the provider sent none.
    pub lifetime_secs: u64,
    /// `None` when the provider did not say (the requested or previous scope applies).
    pub scopes: Option<Vec<String>>,
}

/// Reads a token response; an OAuth error in it is returned as [`Error::OAuth`].
pub(crate) fn read_token_response(
    response: &Response<'_>,
    config: &Config,
    id_expectations: &Expected<'_>,
) -> Result<TokenSet, Error> {
    let fields = response.oauth_fields(config.max_response_bytes)?;
    let access_token = response.required_str(&fields, "access_token")?;
    if let Some(kind) = response.optional_str(&fields, "token_type")?
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(response.invalid(
            "token_type",
            "is not `Bearer`; only bearer tokens are supported",
        ));
    }
    let lifetime_secs = response
        .optional_secs(&fields, "expires_in")?
        .unwrap_or(config.assumed_token_lifetime_secs)
        .clamp(MIN_LIFETIME_SECS, MAX_LIFETIME_SECS);
    let refresh_token = response
        .optional_str(&fields, "refresh_token")?
        .map(Secret::new);
    // An empty `scope` (GitHub Apps send `""`: their access is set by permissions) says
    // nothing new: treated as absent, so the scopes granted before stay.
    let scopes = match fields.get("scope") {
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
        _ => response
            .optional_str(&fields, "scope")?
            .map(|s| s.split_whitespace().map(str::to_owned).collect()),
    };
    let (id_token, identity) = match response.optional_str(&fields, "id_token")? {
        Some(token) => {
            let identity = id_token::check_claims(&token, id_expectations)?;
            (Some(Secret::new(token)), Some(identity))
        }
        None => (None, None),
    };
    Ok(TokenSet {
        access_token: Secret::new(access_token),
        refresh_token,
        id_token,
        identity,
        lifetime_secs,
        scopes,
    })
}
