//! Credential files and environment blocks, the shapes other tools read and write: plain
//! `{access_token, refresh_token, expires_at}` or the `~/.claude/.credentials.json` shape
//! (`{"claudeAiOauth": {accessToken, refreshToken, expiresAt, scopes}}`); `expires_at` in
//! seconds or milliseconds. Malformed input is refused naming the field.
//!
//! One module for `tessera import`/`export`/`exec` and `tessera serve`'s
//! `/users/{id}/credentials` routes, so a file one writes the other reads.

use serde_json::{Map, Value, json};
use tessera_engine::{SESSION_FORMAT_VERSION, Secret, StoredSession, UnixMillis};

/// A timestamp in seconds or milliseconds, as milliseconds: values before 1973 in
/// milliseconds (< 10^11) are taken as seconds.
pub fn to_millis(value: u64) -> u64 {
    if value < 100_000_000_000 {
        value.saturating_mul(1000)
    } else {
        value
    }
}

/// Which JSON shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Plain,
    Claude,
}

/// Tokens read from an import.
#[derive(Debug)]
pub struct Imported {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at: UnixMillis,
    pub scopes: Option<Vec<String>>,
    pub shape: Shape,
}

/// Why an import was refused: the field and what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed {
    pub field: String,
    pub problem: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {}", self.field, self.problem)
    }
}

fn malformed(field: &str, problem: &str) -> Malformed {
    Malformed {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

/// Reads an import body (already parsed as JSON).
pub fn read_import(body: &Value) -> Result<Imported, Malformed> {
    let Some(object) = body.as_object() else {
        return Err(malformed("(body)", "must be a JSON object"));
    };
    if let Some(inner) = object.get("claudeAiOauth") {
        let Some(inner) = inner.as_object() else {
            return Err(malformed("claudeAiOauth", "must be an object"));
        };
        let names = ["accessToken", "refreshToken", "expiresAt", "scopes"];
        return read_fields(inner, names, "claudeAiOauth.", Shape::Claude);
    }
    let names = ["access_token", "refresh_token", "expires_at", "scopes"];
    read_fields(object, names, "", Shape::Plain)
}

fn read_fields(
    object: &Map<String, Value>,
    [access, refresh, expires, scopes]: [&str; 4],
    prefix: &str,
    shape: Shape,
) -> Result<Imported, Malformed> {
    let name = |field: &str| format!("{prefix}{field}");
    let token = |field: &str, required: bool| -> Result<Option<Secret>, Malformed> {
        match object.get(field) {
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => Err(malformed(&name(field), "is missing")),
            Some(Value::String(s)) if s.is_empty() => Err(malformed(&name(field), "is empty")),
            Some(Value::String(s)) if s.len() > 16 * 1024 => {
                Err(malformed(&name(field), "is longer than 16 KiB"))
            }
            Some(Value::String(s)) if s.chars().any(|c| c.is_control() || c == ' ') => Err(
                malformed(&name(field), "holds spaces or control characters"),
            ),
            Some(Value::String(s)) => Ok(Some(Secret::new(s.clone()))),
            Some(_) => Err(malformed(&name(field), "must be a string")),
        }
    };
    let access_token = token(access, true)?.unwrap_or_default();
    let refresh_token = token(refresh, false)?;
    let expires_at = match object.get(expires) {
        None | Some(Value::Null) => return Err(malformed(&name(expires), "is missing")),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(value) if value > 0 => UnixMillis(to_millis(value)),
            _ => {
                return Err(malformed(
                    &name(expires),
                    "must be a positive whole number of seconds or milliseconds since 1970",
                ));
            }
        },
        Some(_) => return Err(malformed(&name(expires), "must be a number")),
    };
    let scopes = match object.get(scopes) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed(&name(scopes), "must be a list of strings"))?,
        ),
        Some(Value::String(s)) => Some(s.split_whitespace().map(str::to_owned).collect()),
        Some(_) => return Err(malformed(&name(scopes), "must be a list of strings")),
    };
    Ok(Imported {
        access_token,
        refresh_token,
        expires_at,
        scopes,
        shape,
    })
}

impl Imported {
    /// The session these tokens make for a profile's configuration.
    pub fn into_session(self, config: &tessera_engine::Config, now: UnixMillis) -> StoredSession {
        StoredSession {
            version: SESSION_FORMAT_VERSION,
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            id_token: None,
            obtained_at: now,
            expires_at: self.expires_at,
            scopes: self.scopes.unwrap_or_else(|| config.scopes.clone()),
            identity: None,
            endpoints: Default::default(),
        }
    }
}

/// A session as export JSON.
pub fn export_json(session: &StoredSession, shape: Shape) -> Value {
    match shape {
        Shape::Plain => json!({
            "access_token": session.access_token.expose(),
            "refresh_token": session.refresh_token.as_ref().map(Secret::expose),
            "expires_at": session.expires_at.0 / 1000,
            "scopes": session.scopes,
        }),
        Shape::Claude => json!({
            "claudeAiOauth": {
                "accessToken": session.access_token.expose(),
                "refreshToken": session.refresh_token.as_ref().map(Secret::expose),
                "expiresAt": session.expires_at.0,
                "scopes": session.scopes,
            }
        }),
    }
}

/// The prefix of the token variables when a profile names none (`token_env_prefix`).
pub const DEFAULT_ENV_PREFIX: &str = "TESSERA";

/// The variables named by a prefix: `<P>_ACCESS_TOKEN`, `<P>_REFRESH_TOKEN`,
/// `<P>_EXPIRES_AT` (Unix milliseconds) and `<P>_USE_OAUTH`, in that order.
pub fn env_names(prefix: &str) -> [String; 4] {
    ["ACCESS_TOKEN", "REFRESH_TOKEN", "EXPIRES_AT", "USE_OAUTH"]
        .map(|name| format!("{prefix}_{name}"))
}

/// Whether `prefix` makes valid variable names (`[A-Z_][A-Z0-9_]*`): a profile's
/// `token_env_prefix` is checked before anything is exported under it.
pub fn check_env_prefix(prefix: &str) -> Result<(), String> {
    let valid = prefix.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
        && prefix
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "token_env_prefix {prefix:?} cannot name environment variables: use capital \
             letters, digits and `_`, e.g. TESSERA or CLAUDE"
        ))
    }
}

/// Parses an import (a file's bytes): not JSON is refused like a malformed field.
pub fn read_import_bytes(bytes: &[u8]) -> Result<Imported, Malformed> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| malformed("(file)", &format!("is not JSON ({e})")))?;
    read_import(&body)
}

/// A session as an environment block (`NAME=value` lines), named by the profile.
pub fn export_env(session: &StoredSession, names: &[String; 4]) -> String {
    let [access, refresh, expires, use_oauth] = names;
    let mut out = format!("{access}={}\n", session.access_token.expose());
    if let Some(refresh_token) = &session.refresh_token {
        out.push_str(&format!("{refresh}={}\n", refresh_token.expose()));
    }
    out.push_str(&format!(
        "{expires}={}\n{use_oauth}=1\n",
        session.expires_at.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_and_both_units_are_read() {
        let plain = read_import(
            &json!({"access_token": "a", "refresh_token": "r", "expires_at": 1_900_000_000}),
        )
        .unwrap();
        assert_eq!(plain.expires_at, UnixMillis(1_900_000_000_000));
        assert_eq!(plain.shape, Shape::Plain);
        let claude = read_import(&json!({"claudeAiOauth": {"accessToken": "a", "refreshToken": "r", "expiresAt": 1_900_000_000_123u64, "scopes": ["user:inference"]}})).unwrap();
        assert_eq!(claude.expires_at, UnixMillis(1_900_000_000_123));
        assert_eq!(claude.shape, Shape::Claude);
        assert_eq!(claude.scopes.unwrap(), vec!["user:inference"]);
    }

    #[test]
    fn files_that_are_not_json_are_refused_without_echoing_them() {
        let error = read_import_bytes(b"{\"access_token\": \"sk-secret").unwrap_err();
        assert_eq!(error.field, "(file)");
        assert!(!error.to_string().contains("sk-secret"), "{error}");
        let ok = read_import_bytes(br#"{"access_token": "a", "expires_at": 1900000000}"#);
        assert_eq!(ok.unwrap().expires_at, UnixMillis(1_900_000_000_000));
    }

    #[test]
    fn an_env_block_is_named_by_the_prefix_with_milliseconds() {
        let session = read_import(&json!({"access_token": "a", "expires_at": 1_900_000_000}))
            .unwrap()
            .into_session(
                &tessera_engine::Config::new("https://op.example", "cli"),
                UnixMillis(0),
            );
        assert_eq!(
            export_env(&session, &env_names("CLAUDE")),
            "CLAUDE_ACCESS_TOKEN=a\nCLAUDE_EXPIRES_AT=1900000000000\nCLAUDE_USE_OAUTH=1\n"
        );
    }

    #[test]
    fn prefixes_must_make_variable_names() {
        for good in ["TESSERA", "CLAUDE", "MY_APP2", "_X"] {
            check_env_prefix(good).unwrap();
        }
        for bad in ["", "claude", "2FA", "A-B", "A B", "A=B", "É"] {
            assert!(check_env_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_input_names_the_field() {
        let cases = [
            (json!([]), "(body)"),
            (
                json!({"refresh_token": "r", "expires_at": 1}),
                "access_token",
            ),
            (json!({"access_token": 5, "expires_at": 1}), "access_token"),
            (json!({"access_token": "a"}), "expires_at"),
            (json!({"access_token": "a", "expires_at": -1}), "expires_at"),
            (
                json!({"access_token": "a", "expires_at": "soon"}),
                "expires_at",
            ),
            (
                json!({"access_token": "a b", "expires_at": 1}),
                "access_token",
            ),
            (
                json!({"access_token": "a", "expires_at": 1, "scopes": [1]}),
                "scopes",
            ),
            (
                json!({"claudeAiOauth": {"accessToken": "a"}}),
                "claudeAiOauth.expiresAt",
            ),
            (json!({"claudeAiOauth": 3}), "claudeAiOauth"),
        ];
        for (body, field) in cases {
            let error = read_import(&body).expect_err(&body.to_string());
            assert_eq!(error.field, field, "{body}");
        }
    }
}
