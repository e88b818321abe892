//! Ending a session at the provider: token revocation (RFC 7009), a provider-specific
//! logout call, and the RP-initiated logout URL (OpenID Connect RP-Initiated Logout §2).

use crate::config::{ClientAuthMethod, Config};
use crate::error::Error;
use crate::protocol::response::Response;
use crate::protocol::token::{Encoded, client_form};
use crate::secret::Secret;
use crate::session::StoredSession;

/// The revocation request for one token, with its type hint (RFC 7009 §2.1).
pub(crate) fn revoke(
    config: &Config,
    auth: ClientAuthMethod,
    token: &Secret,
    hint: &str,
) -> Encoded {
    client_form(
        config,
        auth,
        vec![("token", token.expose()), ("token_type_hint", hint)],
    )
}

/// RFC 7009 §2.2: 200 means the token is no longer valid (the body is ignored); other
/// 2xx codes are taken the same way. An error answer is reported but never keeps the
/// local session alive.
pub(crate) fn read_revocation(response: &Response<'_>, limit: usize) -> Result<(), Error> {
    if (200..300).contains(&response.status) {
        return Ok(());
    }
    response.oauth_fields(limit).map(|_| ())
}

/// A server logout call succeeds with any 2xx.
pub(crate) fn read_server_logout(response: &Response<'_>, limit: usize) -> Result<(), Error> {
    if (200..300).contains(&response.status) {
        return Ok(());
    }
    response.oauth_fields(limit).map(|_| ())
}

/// The URL that ends the provider's browser session, when the provider has one.
pub(crate) fn end_session_url(
    config: &Config,
    endpoint: &str,
    session: &StoredSession,
) -> Option<String> {
    let mut url = super::parse_url(endpoint).ok()?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("client_id", &config.client_id);
        if let Some(id_token) = &session.id_token {
            query.append_pair("id_token_hint", id_token.expose());
        }
        if let Some(uri) = &config.post_logout_redirect_uri {
            query.append_pair("post_logout_redirect_uri", uri);
        }
    }
    Some(url.into())
}
