//! [`StoreError`]: what went wrong with the stored session, and what the user can do.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// The advice for a session that cannot be used at all: start over.
const START_OVER: &str = "run `tessera logout --force` then `tessera login`";

/// A failure of session storage.
///
/// `Display` says what went wrong and what to do about it in one sentence; it never
/// contains a token, a passphrase or a derived key (details from the keyring or from
/// JSON parsing are sanitized before they get here).
#[derive(Debug)]
pub enum StoreError {
    /// The profile name cannot be used as a file name or keyring account.
    InvalidProfile {
        profile: String,
        reason: &'static str,
    },
    /// `--store keyring` was asked for, but there is no usable keyring.
    KeyringUnavailable { reason: String },
    /// The keyring was usable when the store was opened, but an operation failed.
    Keyring {
        action: &'static str,
        reason: String,
    },
    /// What is stored is not a tessera session (garbled, truncated, another program's).
    Corrupt { location: String, detail: String },
    /// A newer tessera wrote this session in a format this one cannot read.
    UnsupportedVersion { location: String, found: u64 },
    /// The session belongs to another profile (a copied or renamed file).
    ForeignProfile {
        location: String,
        expected: String,
        found: String,
    },
    /// More than a session can reasonably take; refusing to read or write it.
    TooLarge {
        location: String,
        size: u64,
        limit: u64,
    },
    /// The encrypted file does not open with this passphrase (or was tampered with).
    WrongPassphrase { path: PathBuf },
    /// The encrypted file needs a passphrase and there is no way to get one.
    NoPassphrase { path: PathBuf, reason: String },
    /// A file system operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Another process held the refresh lock for longer than we were willing to wait.
    LockTimeout { path: PathBuf, waited: Duration },
    /// Something that should not happen (e.g. the OS random number generator failed).
    Internal { detail: String },
    /// A save was to replace one version of the session, and the store holds another:
    /// another process wrote meanwhile.
    Conflict { location: String },
    /// A store outside tessera (a library user's own) failed; `detail` says how.
    Other { detail: String },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(location: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            location: location.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn internal(detail: impl fmt::Display) -> Self {
        StoreError::Internal {
            detail: detail.to_string(),
        }
    }

    /// Whether starting over (`tessera logout --force`, then `tessera login`) is the fix:
    /// the stored session exists but can never be used by this tessera.
    pub fn is_unreadable_session(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt { .. }
                | StoreError::UnsupportedVersion { .. }
                | StoreError::ForeignProfile { .. }
                | StoreError::TooLarge { .. }
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::InvalidProfile { profile, reason } => write!(
                f,
                "invalid profile name {profile:?} ({reason}); use 1 to 64 letters, digits, \
                 '.', '_' or '-', not starting with '.' or '-'"
            ),
            StoreError::KeyringUnavailable { reason } => write!(
                f,
                "the system keyring is not available: {reason}; use `--store file` to keep \
                 the session in an encrypted file instead"
            ),
            StoreError::Keyring { action, reason } => write!(
                f,
                "the system keyring could not {action} the session: {reason}; unlock the \
                 keyring and try again, or use `--store file`"
            ),
            StoreError::Corrupt { location, detail } => {
                write!(
                    f,
                    "{location} is not a tessera session ({detail}); {START_OVER}"
                )
            }
            StoreError::UnsupportedVersion { location, found } => write!(
                f,
                "{location} was written by a newer tessera (format version {found}, this one \
                 reads version 1); upgrade tessera, or {START_OVER}"
            ),
            StoreError::ForeignProfile {
                location,
                expected,
                found,
            } => write!(
                f,
                "{location} holds the session of profile {found:?}, not {expected:?} (copied \
                 or renamed?); use `--profile {found}`, or {START_OVER}"
            ),
            StoreError::TooLarge {
                location,
                size,
                limit,
            } => write!(
                f,
                "{location} is too large for a tessera session ({size} bytes, the limit is \
                 {limit}); {START_OVER}"
            ),
            StoreError::WrongPassphrase { path } => write!(
                f,
                "wrong passphrase for the encrypted session file {} (or the file was \
                 modified); check TESSERA_PASSPHRASE, or if the passphrase is lost {START_OVER}",
                path.display()
            ),
            StoreError::NoPassphrase { path, reason } => write!(
                f,
                "the encrypted session file {} needs a passphrase, but {reason}; set \
                 TESSERA_PASSPHRASE or run in a terminal",
                path.display()
            ),
            StoreError::Io {
                action,
                path,
                source,
            } => {
                write!(f, "could not {action} {}: {source}", path.display())?;
                if source.kind() == io::ErrorKind::PermissionDenied {
                    f.write_str("; check the owner and permissions of that path")?;
                }
                Ok(())
            }
            StoreError::LockTimeout { path, waited } => write!(
                f,
                "waited {:.1} s for the refresh lock {}: another tessera process is \
                 refreshing this profile's session; try again in a moment",
                waited.as_secs_f64(),
                path.display()
            ),
            StoreError::Internal { detail } => write!(
                f,
                "internal error in tessera's session storage: {detail}; please report it"
            ),
            StoreError::Conflict { location } => write!(
                f,
                "the session in {location} was replaced by another process meanwhile"
            ),
            StoreError::Other { detail } => f.write_str(detail),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A JSON error as a detail that is safe to show: positions and field names, never values.
///
/// serde's "invalid type: string \"…\"" messages quote the offending value, which in a
/// session can be a token, so those are replaced by a generic description.
pub(crate) fn json_detail(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    // Errors from deserializing a `serde_json::Value` have no position (line 0).
    let at = if err.line() > 0 {
        format!(" at line {}, column {}", err.line(), err.column())
    } else {
        String::new()
    };
    match err.classify() {
        Category::Eof => format!("truncated JSON{at}"),
        Category::Syntax => format!("not valid JSON{at}"),
        Category::Io => "could not read the JSON".to_owned(),
        Category::Data => {
            let message = err.to_string();
            let safe = ["missing field", "unknown field", "duplicate field"];
            if safe.iter().any(|prefix| message.starts_with(prefix)) {
                // "unknown field `x`, expected one of …" names only keys, never values.
                let head = message.split(" at line").next().unwrap_or(&message);
                format!("{head}{at}")
            } else {
                format!("a field has the wrong type or value{at}")
            }
        }
    }
}

/// Keeps a detail from outside (keyring, OS) on one short line.
pub(crate) fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX {
        let mut cut = MAX;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_details_never_quote_values() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            n: u32,
        }
        let err = serde_json::from_str::<S>(r#"{"n":"secret-token-value"}"#).unwrap_err();
        let detail = json_detail(&err);
        assert!(!detail.contains("secret-token-value"), "{detail}");
        assert!(detail.contains("wrong type"), "{detail}");

        let err = serde_json::from_str::<S>(r#"{"m":1}"#).unwrap_err();
        assert!(json_detail(&err).starts_with("unknown field `m`"));
        let err = serde_json::from_str::<S>(r#"{}"#).unwrap_err();
        assert_eq!(json_detail(&err), "missing field `n` at line 1, column 2");
        let err = serde_json::from_str::<S>(r#"{"n":1"#).unwrap_err();
        assert!(json_detail(&err).starts_with("truncated JSON"));
    }

    #[test]
    fn messages_say_what_to_do() {
        let err = StoreError::corrupt("/x/default.session", "truncated JSON");
        let text = err.to_string();
        assert!(
            text.contains("is not a tessera session (truncated JSON)"),
            "{text}"
        );
        assert!(text.contains("tessera logout --force"), "{text}");
        assert!(err.is_unreadable_session());
        let err = StoreError::NoPassphrase {
            path: "/x/p.session".into(),
            reason: "there is no terminal".into(),
        };
        assert!(
            err.to_string()
                .contains("set TESSERA_PASSPHRASE or run in a terminal")
        );
    }

    #[test]
    fn one_line_joins_and_truncates() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "é".repeat(400);
        assert!(one_line(&long).chars().count() <= 301);
    }
}
