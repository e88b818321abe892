//! Provider metadata: OpenID Connect Discovery 1.0 §4 and RFC 8414 §3.

use crate::config::Endpoints;
use crate::error::Error;
use crate::protocol::response::Response;

/// What the engine uses from the metadata document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub endpoints: Endpoints,
    /// RFC 9207 §3: the authorization response carries `iss`, so it must be checked.
    pub iss_parameter_supported: bool,
}

/// Which metadata document a discovery request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Discovery {
    /// The OpenID Connect document; `fallback` is the RFC 8414 location to try on a 404.
    OpenId { fallback: Option<String> },
    /// The RFC 8414 document, after the OpenID one was not found.
    Rfc8414,
    /// The RFC 8414 document, to fill in what this OpenID metadata lacks.
    Supplementing(Box<Metadata>),
}

impl Metadata {
    /// Whether endpoints some servers list only in their RFC 8414 document are missing.
    pub(crate) fn lacks_optional_endpoints(&self) -> bool {
        self.endpoints.device_authorization.is_none() || self.endpoints.revocation.is_none()
    }

    /// This (OpenID) metadata, with what it lacks taken from `other` (RFC 8414): on a
    /// conflict the OpenID document wins.
    pub(crate) fn merged_over(self, other: Metadata) -> Metadata {
        Metadata {
            endpoints: self.endpoints.or(&other.endpoints),
            iss_parameter_supported: self.iss_parameter_supported || other.iss_parameter_supported,
        }
    }
}

/// The OpenID location first; for issuers with a path, RFC 8414's location as fallback
/// (it inserts the well-known segment before the path).
pub(crate) fn metadata_urls(issuer: &str) -> Result<(String, Option<String>), Error> {
    let parsed =
        super::parse_url(issuer).map_err(|e| super::not_a_url(&format!("issuer `{issuer}`"), e))?;
    let trimmed = issuer.trim_end_matches('/');
    let openid = format!("{trimmed}/.well-known/openid-configuration");
    let path = parsed.path().trim_end_matches('/');
    let fallback = if path.is_empty() {
        format!("{trimmed}/.well-known/oauth-authorization-server")
    } else {
        let origin = parsed.origin().ascii_serialization();
        format!("{origin}/.well-known/oauth-authorization-server{path}")
    };
    Ok((openid, Some(fallback)))
}

/// Reads the metadata; its `issuer` must equal the configured one exactly (§3.3).
pub(crate) fn read_metadata(
    response: &Response<'_>,
    issuer: &str,
    limit: usize,
) -> Result<Metadata, Error> {
    let fields = response.oauth_fields(limit)?;
    let received = response.required_str(&fields, "issuer")?;
    if received != issuer {
        return Err(Error::IssuerMismatch {
            expected: issuer.to_owned(),
            received,
        });
    }
    let get = |name: &str| response.optional_str(&fields, name);
    Ok(Metadata {
        endpoints: Endpoints {
            authorization: get("authorization_endpoint")?,
            token: get("token_endpoint")?,
            device_authorization: get("device_authorization_endpoint")?,
            revocation: get("revocation_endpoint")?,
            userinfo: get("userinfo_endpoint")?,
            end_session: get("end_session_endpoint")?,
            server_logout: None,
            jwks: get("jwks_uri")?,
            signing_keys: Vec::new(),
            token_auth_methods: methods(&fields, "token_endpoint_auth_methods_supported"),
            revocation_auth_methods: methods(&fields, "revocation_endpoint_auth_methods_supported"),
        },
        iss_parameter_supported: fields
            .get("authorization_response_iss_parameter_supported")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    })
}

/// A list of method names; anything but an array of strings counts as not said.
fn methods(fields: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<Vec<String>> {
    let list = fields.get(name)?.as_array()?;
    list.iter()
        .map(|m| m.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_locations() {
        let (openid, fallback) = metadata_urls("https://op.example").unwrap();
        assert_eq!(
            openid,
            "https://op.example/.well-known/openid-configuration"
        );
        assert_eq!(
            fallback.unwrap(),
            "https://op.example/.well-known/oauth-authorization-server"
        );
        let (openid, fallback) = metadata_urls("https://op.example/tenant/").unwrap();
        assert_eq!(
            openid,
            "https://op.example/tenant/.well-known/openid-configuration"
        );
        assert_eq!(
            fallback.unwrap(),
            "https://op.example/.well-known/oauth-authorization-server/tenant"
        );
        assert!(metadata_urls("not a url").is_err());
    }
}
