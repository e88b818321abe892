//! Reading an ID token's claims (OpenID Connect Core §3.1.3.7, steps 2–5, 9–11) and
//! judging its algorithm (step 7). The signature itself is verified against the provider's
//! keys by the state machine (`machine/signatures.rs`), which may have to fetch them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::error::{Error, IdTokenProblem};
use crate::session::Identity;
use crate::time::UnixMillis;

/// What an ID token must match.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub issuer: Option<&'a str>,
    pub client_id: &'a str,
    /// The nonce sent with the authorization request; `None` on refresh.
    pub nonce: Option<&'a str>,
    /// On refresh, the session's subject: a new ID token must name the same user.
    pub subject: Option<&'a str>,
    /// The provider's time: its `Date` header when it sent one, else the local clock.
    pub now: UnixMillis,
    /// How far `exp`, `iat` and `nbf` may be off.
    pub skew_millis: u64,
}

/// Checks the claims and returns who they name.
pub(crate) fn check_claims(token: &str, expected: &Expected<'_>) -> Result<Identity, Error> {
    let fail = |problem| Err(Error::IdToken { problem });
    if let Err(problem) = super::jws::read_header(token) {
        return fail(problem);
    }
    let claims = decode_payload(token).ok_or(Error::IdToken {
        problem: IdTokenProblem::Malformed,
    })?;
    if let Some(issuer) = expected.issuer
        && !issuer_matches(issuer, &claims)
    {
        return fail(IdTokenProblem::IssuerMismatch);
    }
    let (audience_ok, several_audiences) = match claims.get("aud") {
        Some(Value::String(aud)) => (aud == expected.client_id, false),
        Some(Value::Array(auds)) => (
            auds.iter().any(|a| a.as_str() == Some(expected.client_id)),
            auds.len() > 1,
        ),
        _ => (false, false),
    };
    if !audience_ok {
        return fail(IdTokenProblem::AudienceMismatch);
    }
    let azp = claims.get("azp");
    let azp_ok = match azp {
        Some(azp) => azp.as_str() == Some(expected.client_id),
        None => !several_audiences,
    };
    if !azp_ok {
        return fail(IdTokenProblem::AuthorizedPartyMismatch);
    }
    if let Some(nonce) = expected.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return fail(IdTokenProblem::NonceMismatch);
    }
    if let Some(subject) = expected.subject
        && claims.get("sub").and_then(Value::as_str) != Some(subject)
    {
        return fail(IdTokenProblem::SubjectMismatch);
    }
    match claims.get("exp").map(seconds) {
        Some(Some(exp)) if exp.saturating_add(expected.skew_millis) < expected.now.0 => {
            return fail(IdTokenProblem::Expired);
        }
        Some(Some(_)) => {}
        _ => return fail(IdTokenProblem::Malformed),
    }
    for name in ["iat", "nbf"] {
        match claims.get(name).map(seconds) {
            None => {}
            Some(Some(at)) if at > expected.now.0.saturating_add(expected.skew_millis) => {
                return fail(IdTokenProblem::NotYetValid);
            }
            Some(Some(_)) => {}
            Some(None) => return fail(IdTokenProblem::Malformed),
        }
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok(Identity {
        subject: text("sub"),
        email: text("email"),
        name: text("name"),
        preferred_username: text("preferred_username"),
        groups: crate::protocol::groups::read(&claims),
    })
}

/// A NumericDate claim in milliseconds; `None` when it is not a non-negative number.
fn seconds(value: &Value) -> Option<u64> {
    let secs = value.as_f64().filter(|s| s.is_finite() && *s >= 0.0)?;
    Some((secs.min(u64::MAX as f64 / 1000.0) * 1000.0) as u64)
}

/// The issuer's placeholder for the token's tenant (Microsoft's multi-tenant metadata).
const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Whether the token's `iss` is `expected`, with `{tenantid}` standing for the token's
/// `tid`. A tenant is one path segment of letters, digits and `-` (a GUID), so it cannot
/// change what the rest of the issuer says.
fn issuer_matches(expected: &str, claims: &serde_json::Map<String, Value>) -> bool {
    let Some(iss) = claims.get("iss").and_then(Value::as_str) else {
        return false;
    };
    if !expected.contains(TENANT_PLACEHOLDER) {
        return iss == expected;
    }
    let tenant = claims.get("tid").and_then(Value::as_str).filter(|tid| {
        !tid.is_empty() && tid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    tenant.is_some_and(|tid| iss == expected.replace(TENANT_PLACEHOLDER, tid))
}

fn decode_payload(token: &str) -> Option<serde_json::Map<String, Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    // `from_str` after a UTF-8 check rejects exactly what `from_slice` rejects, and the
    // browser build then carries one JSON reader instead of two.
    match serde_json::from_str(std::str::from_utf8(&bytes).ok()?).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// Builds an unsigned (`alg: none`) token with these claims: tessera refuses it, which
/// tests show.
pub fn unsigned_id_token(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// The private half of the transcripts' signing key. It is public on purpose: transcripts
/// and tests sign their ID tokens with it, and a recording re-signs the provider's tokens
/// with it after replacing personal claims. Never a key any provider uses.
#[cfg(feature = "rust-crypto")]
const TRANSCRIPT_KEY_SEED: [u8; 32] = *b"tessera transcripts: not secret!";
/// The `kid` of the transcripts' signing key.
pub const TRANSCRIPT_KEY_ID: &str = "transcript-key";

/// Builds an ID token with these claims, signed (EdDSA) with the transcripts' key.
#[cfg(feature = "rust-crypto")]
pub fn signed_id_token(claims: &Value) -> String {
    use ed25519_dalek::Signer as _;
    let header = URL_SAFE_NO_PAD
        .encode(serde_json::json!({"alg": "EdDSA", "kid": TRANSCRIPT_KEY_ID}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let key = ed25519_dalek::SigningKey::from_bytes(&TRANSCRIPT_KEY_SEED);
    let signature = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes());
    format!("{input}.{signature}")
}

/// The JWK Set (as a `jwks_uri` answers) holding the transcripts' public key.
#[cfg(feature = "rust-crypto")]
pub fn transcript_key_set() -> Value {
    let key = ed25519_dalek::SigningKey::from_bytes(&TRANSCRIPT_KEY_SEED).verifying_key();
    serde_json::json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
        "kid": TRANSCRIPT_KEY_ID, "x": URL_SAFE_NO_PAD.encode(key.to_bytes()),
    }]})
}

#[cfg(all(test, feature = "rust-crypto"))]
mod tests {
    use serde_json::json;

    use super::*;

    fn expected(now: u64) -> Expected<'static> {
        Expected {
            issuer: Some("https://op"),
            client_id: "cli",
            nonce: Some("n1"),
            subject: None,
            now: UnixMillis(now),
            skew_millis: 60_000,
        }
    }

    #[test]
    fn valid_claims_give_identity() {
        let token = signed_id_token(&json!({
            "iss": "https://op", "aud": ["cli", "other"], "azp": "cli", "nonce": "n1",
            "exp": 2_000_000_000, "sub": "alice", "email": "alice@example.test", "groups": ["eng", 1, "ops"]
        }));
        let identity = check_claims(&token, &expected(1_700_000_000_000)).unwrap();
        assert_eq!(identity.subject.as_deref(), Some("alice"));
        assert_eq!(identity.display(), Some("alice@example.test"));
        assert_eq!(identity.groups, ["eng", "ops"]);
    }

    #[test]
    fn each_mismatch_is_named() {
        let base = json!({"iss": "https://op", "aud": "cli", "nonce": "n1", "exp": 2_000_000_000});
        let with = |key: &str, value: Value| {
            let mut claims = base.clone();
            claims[key] = value;
            check_claims(&signed_id_token(&claims), &expected(1_700_000_000_000)).unwrap_err()
        };
        let problem = |e: Error| match e {
            Error::IdToken { problem } => problem,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            problem(with("iss", json!("https://evil"))),
            IdTokenProblem::IssuerMismatch
        );
        assert_eq!(
            problem(with("aud", json!("someone-else"))),
            IdTokenProblem::AudienceMismatch
        );
        assert_eq!(
            problem(with("nonce", json!("n2"))),
            IdTokenProblem::NonceMismatch
        );
        assert_eq!(problem(with("exp", json!(1))), IdTokenProblem::Expired);
        assert_eq!(
            problem(with("exp", json!("soon"))),
            IdTokenProblem::Malformed
        );
        assert_eq!(
            problem(check_claims("not-a-jwt", &expected(0)).unwrap_err()),
            IdTokenProblem::Malformed
        );
        assert_eq!(
            problem(with("azp", json!("another-client"))),
            IdTokenProblem::AuthorizedPartyMismatch
        );
        // Several audiences: the token must say it was issued to this client.
        assert_eq!(
            problem(with("aud", json!(["cli", "other"]))),
            IdTokenProblem::AuthorizedPartyMismatch
        );
    }

    #[test]
    fn one_audience_in_a_list_needs_no_azp() {
        let token = signed_id_token(&json!({
            "iss": "https://op", "aud": ["cli"], "nonce": "n1", "exp": 2_000_000_000
        }));
        assert!(check_claims(&token, &expected(1_700_000_000_000)).is_ok());
    }

    #[test]
    fn a_tenant_placeholder_in_the_issuer_is_the_tokens_tid() {
        let template = "https://login.example/{tenantid}/v2.0";
        let expected = Expected {
            issuer: Some(template),
            ..expected(1_700_000_000_000)
        };
        let check = |claims: Value| {
            let mut claims = claims;
            claims["aud"] = json!("cli");
            claims["nonce"] = json!("n1");
            claims["exp"] = json!(2_000_000_000);
            check_claims(&signed_id_token(&claims), &expected)
        };
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        assert!(
            check(json!({"iss": format!("https://login.example/{tid}/v2.0"), "tid": tid})).is_ok()
        );
        for claims in [
            // Another tenant's issuer.
            json!({"iss": "https://login.example/other/v2.0", "tid": tid}),
            // No tenant to fill in, or the placeholder itself.
            json!({"iss": "https://login.example/x/v2.0"}),
            json!({"iss": template, "tid": "{tenantid}"}),
            // A tenant that would rewrite the issuer's path.
            json!({"iss": "https://login.example/a/b/v2.0", "tid": "a/b"}),
            json!({"iss": "https://login.example//v2.0", "tid": ""}),
        ] {
            assert!(
                matches!(
                    check(claims.clone()),
                    Err(Error::IdToken {
                        problem: IdTokenProblem::IssuerMismatch
                    })
                ),
                "{claims}"
            );
        }
    }
}
