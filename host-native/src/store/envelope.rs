//! The serialized session: a versioned JSON envelope that names its profile.
//!
//! ```json
//! {"format":"tessera-session","version":1,"profile":"default","session":{…StoredSession…}}
//! ```
//!
//! The keyring stores these bytes as the secret; the encrypted file stores them as the
//! plaintext. The `format` marker turns "some other program's secret" or "garbage" into a
//! clear [`StoreError::Corrupt`]; `version` lets a later tessera change the layout and an
//! older one say "upgrade" instead of misreading it; `profile` catches a session file copied
//! or renamed to another profile (a different client or issuer, whose tokens must not be
//! sent to the wrong provider).

use serde::Serialize;
use serde_json::Value;
use tessera_engine::StoredSession;

use super::error::{StoreError, json_detail};

pub(crate) const FORMAT: &str = "tessera-session";
pub(crate) const VERSION: u64 = 1;

/// The largest envelope written or read. Real sessions are a few KiB; a large ID token can
/// take tens. The limit keeps a garbled or hostile store from making us allocate without
/// bound, and stays well inside what the Secret Service accepts in one D-Bus message.
pub(crate) const MAX_SESSION_BYTES: u64 = 512 * 1024;

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    format: &'static str,
    version: u64,
    profile: &'a str,
    session: &'a StoredSession,
}

/// Serializes `session` for `profile`.
pub(crate) fn encode(profile: &str, session: &StoredSession) -> Result<Vec<u8>, StoreError> {
    let bytes = serde_json::to_vec(&EnvelopeOut {
        format: FORMAT,
        version: VERSION,
        profile,
        session,
    })
    .map_err(|err| StoreError::internal(format!("cannot serialize the session: {err}")))?;
    if bytes.len() as u64 > MAX_SESSION_BYTES {
        let size = bytes.len() as u64;
        wipe(bytes);
        return Err(StoreError::TooLarge {
            location: "the session to save".to_owned(),
            size,
            limit: MAX_SESSION_BYTES,
        });
    }
    Ok(bytes)
}

/// Parses an envelope read from `location`, checking that it is for `profile`.
pub(crate) fn decode(
    bytes: &[u8],
    profile: &str,
    location: &str,
) -> Result<StoredSession, StoreError> {
    if bytes.len() as u64 > MAX_SESSION_BYTES {
        return Err(StoreError::TooLarge {
            location: location.to_owned(),
            size: bytes.len() as u64,
            limit: MAX_SESSION_BYTES,
        });
    }
    let corrupt = |detail: String| StoreError::corrupt(location, detail);
    let value: Value = serde_json::from_slice(bytes).map_err(|err| corrupt(json_detail(&err)))?;
    let Value::Object(mut fields) = value else {
        return Err(corrupt("not a JSON object".to_owned()));
    };
    match fields.get("format") {
        Some(Value::String(format)) if format == FORMAT => {}
        Some(Value::String(format)) => {
            return Err(corrupt(format!(
                "its format is {:?}, not {FORMAT:?}",
                shorten(format)
            )));
        }
        _ => return Err(corrupt(format!("no \"format\":{FORMAT:?} marker"))),
    }
    match fields.get("version").and_then(Value::as_u64) {
        Some(VERSION) => {}
        Some(found) => {
            return Err(StoreError::UnsupportedVersion {
                location: location.to_owned(),
                found,
            });
        }
        None => return Err(corrupt("no numeric \"version\"".to_owned())),
    }
    match fields.get("profile") {
        Some(Value::String(found)) if found == profile => {}
        Some(Value::String(found)) => {
            return Err(StoreError::ForeignProfile {
                location: location.to_owned(),
                expected: profile.to_owned(),
                found: shorten(found),
            });
        }
        _ => return Err(corrupt("no \"profile\" name".to_owned())),
    }
    let session = fields
        .remove("session")
        .ok_or_else(|| corrupt("no \"session\"".to_owned()))?;
    serde_json::from_value(session).map_err(|err| corrupt(json_detail(&err)))
}

/// A name from a file we do not trust, cut to a length fit for a message.
fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Overwrites a buffer that held secrets before freeing it.
///
/// Best effort: copies made earlier (by serde, the keyring, the kernel) are out of reach.
/// `black_box` keeps the compiler from dropping the writes as dead stores.
pub(crate) fn wipe(mut bytes: Vec<u8>) {
    bytes.fill(0);
    std::hint::black_box(&bytes);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tessera_engine::{Endpoints, Identity, Secret, UnixMillis};

    /// A session like the engine persists, with an ID token of `id_token_len` bytes.
    pub(crate) fn sample_session(id_token_len: usize) -> StoredSession {
        StoredSession {
            version: tessera_engine::SESSION_FORMAT_VERSION,
            issuer: Some("https://issuer.example".to_owned()),
            client_id: "tessera-cli".to_owned(),
            access_token: Secret::new("access-token-value"),
            refresh_token: Some(Secret::new("refresh-token-value")),
            id_token: Some(Secret::new("i".repeat(id_token_len))),
            obtained_at: UnixMillis(1_700_000_000_000),
            expires_at: UnixMillis(1_700_000_360_000),
            scopes: vec!["openid".to_owned(), "offline_access".to_owned()],
            identity: Some(Identity {
                subject: Some("user-1".to_owned()),
                email: Some("user@example.org".to_owned()),
                ..Identity::default()
            }),
            endpoints: Endpoints {
                token: Some("https://issuer.example/token".to_owned()),
                ..Endpoints::default()
            },
        }
    }

    #[test]
    fn round_trip() {
        let session = sample_session(100);
        let bytes = encode("default", &session).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(
                r#"{"format":"tessera-session","version":1,"profile":"default","session":{"#
            ),
            "{text}"
        );
        assert_eq!(decode(&bytes, "default", "here").unwrap(), session);
    }

    #[test]
    fn another_profile_is_foreign() {
        let bytes = encode("work", &sample_session(10)).unwrap();
        let err = decode(&bytes, "default", "the file").unwrap_err();
        assert!(
            matches!(&err, StoreError::ForeignProfile { expected, found, .. } if expected == "default" && found == "work"),
            "{err:?}"
        );
    }

    #[test]
    fn not_an_envelope_is_corrupt() {
        for (bytes, expect) in [
            (&b""[..], "truncated JSON"),
            (b"\x00\x01garbage", "not valid JSON"),
            (b"[1,2]", "not a JSON object"),
            (br#"{"access_token":"x"}"#, "no \"format\""),
            (br#"{"format":"other"}"#, "its format is \"other\""),
            (br#"{"format":"tessera-session","version":"1"}"#, "no numeric"),
            (
                br#"{"format":"tessera-session","version":1,"profile":"default","session":{"client_id":7}}"#,
                "wrong type or value",
            ),
        ] {
            let err = decode(bytes, "default", "the store").unwrap_err();
            let StoreError::Corrupt { detail, .. } = &err else {
                panic!("{err:?}")
            };
            assert!(detail.contains(expect), "{detail} lacks {expect}");
        }
    }

    #[test]
    fn a_newer_version_says_upgrade() {
        let err = decode(
            br#"{"format":"tessera-session","version":2,"profile":"default","session":{}}"#,
            "default",
            "the store",
        )
        .unwrap_err();
        assert!(matches!(
            err,
            StoreError::UnsupportedVersion { found: 2, .. }
        ));
        assert!(err.to_string().contains("upgrade tessera"));
    }

    #[test]
    fn oversized_sessions_are_refused_both_ways() {
        let err = encode("default", &sample_session(600 * 1024)).unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
        let err = decode(&vec![b' '; 600 * 1024], "default", "x").unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    }

    #[test]
    fn corrupt_details_never_contain_token_values() {
        let mut session = serde_json::to_value(sample_session(10)).unwrap();
        session["expires_at"] = Value::String("leaked-secret-value".into());
        let bytes = serde_json::to_vec(&serde_json::json!({
            "format": FORMAT, "version": 1, "profile": "default", "session": session
        }))
        .unwrap();
        let err = decode(&bytes, "default", "x").unwrap_err();
        assert!(!err.to_string().contains("leaked-secret-value"), "{err}");
    }
}
