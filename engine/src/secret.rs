//! A string that must never reach a log line.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// A token, code, verifier or other credential.
///
/// `Debug` prints only its length, so a `{:?}` of any engine type is safe to log. The raw value
/// is reachable only through [`Secret::expose`], which makes every place that uses it easy to
/// find. It serializes as the plain string because hosts must persist it.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw credential, for the one place that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison, for values an attacker may probe (e.g. `state`).
    pub fn ct_eq(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(&other.0)
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("refresh-token-value");
        let shown = format!("{secret:?}");
        assert!(!shown.contains("refresh-token-value"), "{shown}");
        assert!(shown.contains("19 bytes"));
    }

    #[test]
    fn equality_compares_contents() {
        assert_eq!(Secret::new("a"), Secret::new("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert!(!Secret::new("abc").ct_eq("ab"));
    }
}
