//! A login whose redirect arrives somewhere else, later: a service hands the authorization
//! URL to a user's browser and receives the redirect on its own route, possibly after a
//! restart or on another replica. The host keeps [`HandedOffLogin`] between the two
//! (encrypted at rest, single use) and gives it back with the redirect.

use serde::{Deserialize, Serialize};

use crate::config::Endpoints;
use crate::protocol::authorize::PendingAuthorization;
use crate::time::UnixMillis;

/// What the redirect of a handed-off login must match, and what its code exchange needs:
/// the PKCE verifier, `state`, `nonce` and the endpoints discovery found. Secrets: `Debug`
/// withholds them; serialize it only into encrypted storage, and use it once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandedOffLogin {
    pub(crate) auth: PendingAuthorization,
    /// The endpoints in force when the login was handed off (a resuming engine may not
    /// have run discovery).
    pub(crate) endpoints: Endpoints,
    /// After this the redirect is refused: the user must start again.
    pub expires_at: UnixMillis,
}

impl HandedOffLogin {
    pub(crate) fn new(
        auth: PendingAuthorization,
        endpoints: Endpoints,
        expires_at: UnixMillis,
    ) -> Self {
        Self {
            auth,
            endpoints,
            expires_at,
        }
    }

    /// The `state` sent with the authorization request, by which a host finds this login
    /// when the redirect arrives (store a hash of it, not the value).
    pub fn state(&self) -> &str {
        self.auth.state.expose()
    }

    /// The redirect URI the authorization request named.
    pub fn redirect_uri(&self) -> &str {
        &self.auth.redirect_uri
    }
}
