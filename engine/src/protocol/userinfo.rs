//! The UserInfo endpoint (OpenID Connect Core §5.3): who is signed in, when the ID token
//! does not say (no ID token, as after many device logins, or one without a name).

use std::collections::BTreeMap;

use crate::error::Error;
use crate::protocol::response::Response;
use crate::secret::Secret;
use crate::session::Identity;

/// Whether `identity` lacks anything a person would recognise (a name, an email, a
/// user name): then the UserInfo endpoint is asked.
pub(crate) fn wanted(identity: Option<&Identity>) -> bool {
    identity.is_none_or(|i| i.email.is_none() && i.name.is_none() && i.preferred_username.is_none())
}

/// The request's headers: the access token as a Bearer credential (RFC 6750 §2.1).
pub(crate) fn headers(access_token: &Secret) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("accept".to_owned(), "application/json".to_owned()),
        (
            "authorization".to_owned(),
            format!("Bearer {}", access_token.expose()),
        ),
    ])
}

/// The identity in a UserInfo response, merged over `known` (the ID token's claims win
/// where both have one). A response whose `sub` differs from the ID token's is not used
/// (Core §5.3.2).
pub(crate) fn read(
    response: &Response<'_>,
    limit: usize,
    known: Option<&Identity>,
) -> Result<Identity, Error> {
    let fields = response.oauth_fields(limit)?;
    let subject = response.optional_str(&fields, "sub")?;
    if let (Some(ours), Some(theirs)) = (known.and_then(|i| i.subject.as_ref()), &subject)
        && ours != theirs
    {
        return Err(response.invalid("sub", "names another user than the ID token"));
    }
    let text = |name| response.optional_str(&fields, name).ok().flatten();
    let known = known.cloned().unwrap_or_default();
    Ok(Identity {
        subject: known.subject.or(subject),
        email: known.email.or_else(|| text("email")),
        name: known.name.or_else(|| text("name")),
        preferred_username: known
            .preferred_username
            .or_else(|| text("preferred_username")),
        groups: if known.groups.is_empty() {
            crate::protocol::groups::read(&fields)
        } else {
            known.groups
        },
    })
}
