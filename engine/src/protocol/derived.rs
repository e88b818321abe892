//! Derived tokens: a short-lived token a provider's service issues in exchange for the
//! access token (a real-time client's "ws-token"), fetched just before it is used.
//!
//! The request is `POST <url>` with `Authorization: Bearer <access token>` (RFC 6750 §2.1)
//! and `Accept: application/json`, without a body. There is no standard for the answer;
//! what is accepted from a 2xx (a JSON object, or a form-encoded body):
//!
//! - the token: `token`, or else `access_token` (a non-empty string);
//! - its lifetime: `expires_in` (seconds, a number or a numeric string), or else
//!   `expires_at` (Unix time in seconds, or in milliseconds when above 10^11); a lifetime
//!   over a day is cut to a day (the cache must not keep a token forever), and a token
//!   already expired is refused.
//!
//! Other members are ignored. The statuses that mean something: 401 (the access token
//! was refused), 403 (not entitled), 404 (not offered); 5xx and 429 are worth another
//! attempt.

use std::collections::BTreeMap;

use crate::error::{DerivedProblem, Error, ResponseProblem};
use crate::protocol::response::Response;
use crate::secret::Secret;
use crate::time::UnixMillis;

/// Longest lifetime a derived token is cached for.
pub(crate) const MAX_LIFETIME_SECS: u64 = 24 * 3600;

/// `expires_at` values from here on are milliseconds (10^11 s is in the year 5138).
const MILLIS_FROM: u64 = 100_000_000_000;

/// The request's headers.
pub(crate) fn headers(access_token: &Secret) -> BTreeMap<String, String> {
    crate::protocol::userinfo::headers(access_token)
}

/// What an answer of the derived endpoint means.
#[derive(Debug)]
pub(crate) enum Answer {
    Token {
        token: Secret,
        expires_at: UnixMillis,
    },
    /// 401: the access token was refused (renew it and try again, once).
    AccessTokenRefused,
    /// 5xx or 429: worth another attempt; the error describes this one.
    Transient(Error),
    /// Nothing more to try.
    Failed(DerivedProblem),
}

/// Reads one response (see the module docs).
pub(crate) fn read(response: &Response<'_>, now: UnixMillis, limit: usize) -> Answer {
    let status = response.status;
    match status {
        200..=299 => match token(response, now, limit) {
            Ok((token, expires_at)) => Answer::Token { token, expires_at },
            Err(detail) => Answer::Failed(DerivedProblem::BadResponse { status, detail }),
        },
        401 => Answer::AccessTokenRefused,
        403 => Answer::Failed(DerivedProblem::NotEntitled),
        404 => Answer::Failed(DerivedProblem::NotOffered),
        429 | 500..=599 => Answer::Transient(Error::Response {
            endpoint: response.endpoint,
            status,
            problem: ResponseProblem::UnexpectedStatus { status },
        }),
        _ => Answer::Failed(DerivedProblem::BadResponse {
            status,
            detail: ResponseProblem::UnexpectedStatus { status },
        }),
    }
}

/// The token and its expiry from a 2xx body.
fn token(
    response: &Response<'_>,
    now: UnixMillis,
    limit: usize,
) -> Result<(Secret, UnixMillis), ResponseProblem> {
    let problem = |error: Error| match error {
        Error::Response { problem, .. } => problem,
        other => ResponseProblem::InvalidField {
            field: "body".to_owned(),
            reason: other.to_string(),
        },
    };
    let fields = response.fields(limit).map_err(problem)?;
    let token = match response.optional_str(&fields, "token").map_err(problem)? {
        Some(token) => token,
        None => response
            .optional_str(&fields, "access_token")
            .map_err(problem)?
            .ok_or_else(|| ResponseProblem::MissingField {
                field: "token".to_owned(),
            })?,
    };
    let expires_at = match response
        .optional_secs(&fields, "expires_in")
        .map_err(problem)?
    {
        Some(0) => return Err(invalid("expires_in", "is zero: the token is already over")),
        Some(secs) => now.plus_secs(secs.min(MAX_LIFETIME_SECS)),
        None => {
            let at = response
                .optional_secs(&fields, "expires_at")
                .map_err(problem)?
                .ok_or_else(|| ResponseProblem::MissingField {
                    field: "expires_in".to_owned(),
                })?;
            let at = UnixMillis(if at < MILLIS_FROM {
                at.saturating_mul(1000)
            } else {
                at
            });
            if at <= now {
                return Err(invalid("expires_at", "is not in the future"));
            }
            at.min(now.plus_secs(MAX_LIFETIME_SECS))
        }
    };
    Ok((Secret::new(token), expires_at))
}

fn invalid(field: &str, reason: &str) -> ResponseProblem {
    ResponseProblem::InvalidField {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Endpoint;

    const NOW: UnixMillis = UnixMillis(1_700_000_000_000);

    fn answer(status: u16, body: &str) -> Answer {
        let headers = BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
        let response = Response {
            endpoint: Endpoint::Derived,
            status,
            headers: &headers,
            body,
        };
        read(&response, NOW, 1000)
    }

    fn expiry(status: u16, body: &str) -> Result<UnixMillis, String> {
        match answer(status, body) {
            Answer::Token { expires_at, .. } => Ok(expires_at),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn both_names_of_the_token_and_of_its_lifetime_are_read() {
        assert_eq!(
            expiry(200, r#"{"token":"t","expires_in":60}"#),
            Ok(NOW.plus_secs(60))
        );
        assert_eq!(
            expiry(201, r#"{"access_token":"t","expires_in":"60"}"#),
            Ok(NOW.plus_secs(60))
        );
        assert_eq!(
            expiry(200, r#"{"token":"t","expires_at":1700000090}"#),
            Ok(NOW.plus_secs(90))
        );
        assert_eq!(
            expiry(200, r#"{"token":"t","expires_at":1700000090000}"#),
            Ok(NOW.plus_secs(90))
        );
        assert_eq!(
            expiry(200, r#"{"token":"t","expires_in":1e300}"#),
            Ok(NOW.plus_secs(MAX_LIFETIME_SECS))
        );
        match answer(200, r#"{"token":"ws","access_token":"at","expires_in":5}"#) {
            Answer::Token { token, .. } => assert_eq!(token.expose(), "ws"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bodies_without_a_usable_token_or_lifetime_are_refused() {
        for body in [
            r#"{"expires_in":60}"#,
            r#"{"token":"","expires_in":60}"#,
            r#"{"token":7,"expires_in":60}"#,
            r#"{"token":"t"}"#,
            r#"{"token":"t","expires_in":0}"#,
            r#"{"token":"t","expires_in":-5}"#,
            r#"{"token":"t","expires_at":1600000000}"#,
            "<html>oops</html>",
            "[]",
        ] {
            assert!(
                matches!(
                    answer(200, body),
                    Answer::Failed(DerivedProblem::BadResponse { status: 200, .. })
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(answer(401, ""), Answer::AccessTokenRefused));
        assert!(matches!(
            answer(403, ""),
            Answer::Failed(DerivedProblem::NotEntitled)
        ));
        assert!(matches!(
            answer(404, ""),
            Answer::Failed(DerivedProblem::NotOffered)
        ));
        for status in [429, 500, 502, 503, 599] {
            assert!(
                matches!(answer(status, ""), Answer::Transient(_)),
                "{status}"
            );
        }
        for status in [302, 400, 405, 418] {
            assert!(
                matches!(
                    answer(status, "{}"),
                    Answer::Failed(DerivedProblem::BadResponse { .. })
                ),
                "{status}"
            );
        }
    }
}
