//! Reading a provider's response body into fields, with the checks every endpoint shares:
//! a size limit, JSON or form encoding, and OAuth error members (which some providers send
//! with HTTP 200).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Endpoint, Error, ErrorCode, OAuthError, ResponseProblem};

/// The members of a JSON object (form-encoded bodies become string members).
pub(crate) type Fields = Map<String, Value>;

/// A received response, borrowed from the input that carried it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Response<'a> {
    pub endpoint: Endpoint,
    pub status: u16,
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a str,
}

impl Response<'_> {
    fn problem(&self, problem: ResponseProblem) -> Error {
        Error::Response {
            endpoint: self.endpoint,
            status: self.status,
            problem,
        }
    }

    fn media_type(&self) -> Option<String> {
        self.headers.get("content-type").map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The body as fields, whatever the status.
    pub(crate) fn fields(&self, limit: usize) -> Result<Fields, Error> {
        if self.body.len() > limit {
            return Err(self.problem(ResponseProblem::TooLarge { limit }));
        }
        if self.media_type().as_deref() == Some("application/x-www-form-urlencoded") {
            let fields = form_urlencoded::parse(self.body.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect();
            return Ok(fields);
        }
        match serde_json::from_str::<Members>(self.body) {
            Ok(Members {
                fields,
                duplicate: None,
            }) => Ok(fields),
            // RFC 8259 leaves a repeated name undefined and parsers disagree on which one
            // wins: a response that can be read two ways is not read.
            Ok(Members {
                duplicate: Some(name),
                ..
            }) => Err(self.invalid(&printable(&name, 64), "appears more than once")),
            Err(_) => Err(self.problem(ResponseProblem::NotAnObject {
                content_type: self.media_type(),
                bytes: self.body.len(),
            })),
        }
    }

    /// The body of a successful OAuth response: an `error` member (any status) becomes
    /// [`Error::OAuth`], and a non-2xx status without one becomes an unexpected status.
    pub(crate) fn oauth_fields(&self, limit: usize) -> Result<Fields, Error> {
        if (300..400).contains(&self.status) {
            // Hosts do not follow redirects from these endpoints (a redirect could carry
            // the grant elsewhere); say where it pointed, without its path or query.
            let target = self
                .headers
                .get("location")
                .and_then(|l| super::parse_url(l).ok())
                .map(|u| format!(" to {}", u.origin().ascii_serialization()))
                .unwrap_or_default();
            return Err(Error::Transport {
                endpoint: self.endpoint,
                kind: crate::error::TransportErrorKind::Redirect,
                detail: format!("HTTP {}{target}", self.status),
            });
        }
        let fields = self.fields(limit)?;
        if let Some(code) = fields.get("error") {
            let Some(code) = code.as_str() else {
                return Err(self.invalid("error", "is not a string"));
            };
            return Err(Error::OAuth {
                endpoint: self.endpoint,
                status: self.status,
                error: OAuthError {
                    code: ErrorCode::from(printable(code, 64)),
                    description: fields
                        .get("error_description")
                        .and_then(Value::as_str)
                        .map(|d| printable(d, 300)),
                    uri: fields
                        .get("error_uri")
                        .and_then(Value::as_str)
                        .map(|u| printable(u, 300)),
                },
            });
        }
        if !(200..300).contains(&self.status) {
            return Err(self.problem(ResponseProblem::UnexpectedStatus {
                status: self.status,
            }));
        }
        Ok(fields)
    }

    pub(crate) fn missing(&self, field: &str) -> Error {
        self.problem(ResponseProblem::MissingField {
            field: field.to_owned(),
        })
    }

    pub(crate) fn invalid(&self, field: &str, reason: &str) -> Error {
        self.problem(ResponseProblem::InvalidField {
            field: field.to_owned(),
            reason: reason.to_owned(),
        })
    }

    /// An optional string member; any other JSON type is an error.
    pub(crate) fn optional_str(
        &self,
        fields: &Fields,
        name: &str,
    ) -> Result<Option<String>, Error> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Err(self.invalid(name, "is empty")),
            // Tokens and codes go into headers and form bodies, text onto terminals.
            Some(Value::String(s)) if s.chars().any(char::is_control) => {
                Err(self.invalid(name, "contains a control character"))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.invalid(name, "is not a string")),
        }
    }

    /// A required, non-empty string member.
    pub(crate) fn required_str(&self, fields: &Fields, name: &str) -> Result<String, Error> {
        self.optional_str(fields, name)?
            .ok_or_else(|| self.missing(name))
    }

    /// A number of seconds: a JSON number or a numeric string (some providers quote it).
    /// `Ok(None)` when absent; fractions are rounded down, huge values saturate, and a
    /// negative value is an error (no lifetime or interval can be negative).
    pub(crate) fn optional_secs(&self, fields: &Fields, name: &str) -> Result<Option<u64>, Error> {
        let number = match fields.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(_) => None,
        };
        match number {
            Some(n) if n.is_finite() && n < 0.0 => Err(self.invalid(name, "is negative")),
            Some(n) if n.is_finite() => Ok(Some(n.min(u64::MAX as f64) as u64)),
            _ => Err(self.invalid(name, "is not a number of seconds")),
        }
    }
}

/// At most `max` characters of `text` with control characters removed, so server text
/// cannot forge log lines or terminal escapes.
/// A JSON object's members, and the first name that appears twice in it (if any).
struct Members {
    fields: Fields,
    duplicate: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Members {
                    fields: Fields::new(),
                    duplicate: None,
                };
                while let Some(name) = map.next_key::<String>()? {
                    let value = map.next_value::<Value>()?;
                    if members.fields.contains_key(&name) {
                        members.duplicate.get_or_insert(name);
                    } else {
                        members.fields.insert(name, value);
                    }
                }
                Ok(members)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

pub(crate) fn printable(text: &str, max: usize) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if text.chars().filter(|c| !c.is_control()).nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response<'a>(
        status: u16,
        headers: &'a BTreeMap<String, String>,
        body: &'a str,
    ) -> Response<'a> {
        Response {
            endpoint: Endpoint::Token,
            status,
            headers,
            body,
        }
    }

    #[test]
    fn an_error_member_wins_even_with_status_200() {
        let headers = BTreeMap::new();
        let r = response(200, &headers, r#"{"error":"authorization_pending"}"#);
        match r.oauth_fields(1000) {
            Err(Error::OAuth {
                error, status: 200, ..
            }) => assert_eq!(error.code, ErrorCode::AuthorizationPending),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn form_encoded_bodies_are_read() {
        let headers = BTreeMap::from([(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        )]);
        let r = response(200, &headers, "access_token=abc&token_type=bearer");
        let fields = r.oauth_fields(1000).unwrap();
        assert_eq!(fields["access_token"], "abc");
    }

    #[test]
    fn html_is_not_an_object_and_size_is_limited() {
        let headers = BTreeMap::from([("content-type".to_owned(), "text/html".to_owned())]);
        let r = response(502, &headers, "<html>bad gateway</html>");
        assert!(matches!(
            r.oauth_fields(1000),
            Err(Error::Response {
                problem: ResponseProblem::NotAnObject { .. },
                status: 502,
                ..
            })
        ));
        assert!(matches!(
            r.oauth_fields(10),
            Err(Error::Response {
                problem: ResponseProblem::TooLarge { limit: 10 },
                ..
            })
        ));
    }

    #[test]
    fn seconds_accept_strings_and_reject_garbage() {
        let headers = BTreeMap::new();
        let r = response(200, &headers, "{}");
        let fields: Fields =
            serde_json::from_str(r#"{"a":"3600","b":1e300,"c":-5,"d":[1],"e":"x"}"#).unwrap();
        assert_eq!(r.optional_secs(&fields, "a").unwrap(), Some(3600));
        assert_eq!(r.optional_secs(&fields, "b").unwrap(), Some(u64::MAX));
        assert!(r.optional_secs(&fields, "c").is_err());
        assert!(r.optional_secs(&fields, "d").is_err());
        assert!(r.optional_secs(&fields, "e").is_err());
        assert_eq!(r.optional_secs(&fields, "missing").unwrap(), None);
    }

    #[test]
    fn printable_strips_controls_and_truncates() {
        assert_eq!(printable("a\u{1b}[31mb\nc", 10), "a[31mbc");
        assert_eq!(printable("abcdef", 3), "abc…");
    }
}
