//! The signature of an ID token (a compact JWS, RFC 7515 §7.1) and the algorithms tessera
//! accepts (RFC 7518 §3).
//!
//! Only asymmetric algorithms are accepted: `none` proves nothing, and HMAC would be keyed
//! with something the client can read (the provider's public key, in the classic
//! algorithm-confusion attack). The engine chooses the key and the algorithm; the
//! arithmetic of one check ([`SignatureCheck`]) is RustCrypto's, pure Rust with no RNG
//! (feature `rust-crypto`, docs/adr/017), or the host's (WebCrypto in the browser package,
//! docs/adr/018).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::jwks::SigningKey;
use crate::error::IdTokenProblem;

/// The algorithms an ID token may be signed with (RFC 7518 §3.1 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "RS384")]
    Rs384,
    #[serde(rename = "RS512")]
    Rs512,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256, a salt as long as the hash.
    #[serde(rename = "PS256")]
    Ps256,
    #[serde(rename = "PS384")]
    Ps384,
    #[serde(rename = "PS512")]
    Ps512,
    /// ECDSA on P-256 with SHA-256; the signature is R || S (32 bytes each).
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

/// Identifies one [`SignatureCheck`]; its answer
/// ([`Input::SignatureChecked`](crate::Input)) carries it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckId(pub u64);

/// One signature check the engine asks for ([`Effect::VerifySignature`](crate::Effect)):
/// did `key` sign `signing_input` with `algorithm`, giving `signature`? The engine chose
/// the key and the algorithm; the answer is only the arithmetic. Any key that cannot be
/// imported or signature of the wrong shape is "not valid".
///
/// `Debug` shows the algorithm and the key, and the message and signature by length only
/// (the message is the ID token's header and claims).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureCheck {
    pub id: CheckId,
    pub algorithm: SignatureAlgorithm,
    /// The public key as a JWK (its `kty`, `crv`, `n`, `e`, `x`, `y` are what to import).
    pub key: SigningKey,
    /// The JWS signing input, `header.payload` (RFC 7515 §5.2), as the bytes to verify.
    pub signing_input: String,
    /// The signature, base64url without padding as in the JWS.
    pub signature: String,
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCheck")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("key", &self.key)
            .field("signing_input_bytes", &self.signing_input.len())
            .field("signature_bytes", &self.signature.len())
            .finish()
    }
}

pub(crate) use SignatureAlgorithm as Algorithm;

/// A compact JWS's signing input and signature, when the signature is base64url; `None`
/// when no key could verify it.
pub(crate) fn signed_parts(token: &str) -> Option<(&str, &str)> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    URL_SAFE_NO_PAD.decode(signature).ok()?;
    Some((signing_input, signature))
}

impl SignatureAlgorithm {
    /// The name in a JWS header.
    pub fn name(self) -> &'static str {
        self.names()[0]
    }

    fn from_name(name: &str) -> Result<Self, IdTokenProblem> {
        Ok(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "EdDSA" | "Ed25519" => Self::EdDsa,
            "none" => return Err(IdTokenProblem::Unsigned),
            "HS256" | "HS384" | "HS512" => return Err(IdTokenProblem::SymmetricAlgorithm),
            _ => return Err(IdTokenProblem::UnsupportedAlgorithm),
        })
    }

    /// The JWK `alg` names that mean this algorithm.
    pub(crate) fn names(self) -> &'static [&'static str] {
        match self {
            Self::Rs256 => &["RS256"],
            Self::Rs384 => &["RS384"],
            Self::Rs512 => &["RS512"],
            Self::Ps256 => &["PS256"],
            Self::Ps384 => &["PS384"],
            Self::Ps512 => &["PS512"],
            Self::Es256 => &["ES256"],
            Self::EdDsa => &["EdDSA", "Ed25519"],
        }
    }
}

/// What the JWS header says about how to verify it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub alg: SignatureAlgorithm,
    pub kid: Option<String>,
}

/// The header of a compact JWS, with its algorithm judged. A `crit` member names
/// extensions this reader does not implement, so it is refused (RFC 7515 §4.1.11).
pub(crate) fn read_header(token: &str) -> Result<Header, IdTokenProblem> {
    let encoded = token.split('.').next().unwrap_or_default();
    if encoded.len() > 4 * 1024 {
        return Err(IdTokenProblem::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| IdTokenProblem::Malformed)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| IdTokenProblem::Malformed)?;
    let Ok(Value::Object(header)) = serde_json::from_str::<Value>(text) else {
        return Err(IdTokenProblem::Malformed);
    };
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(IdTokenProblem::Malformed)?;
    let alg = Algorithm::from_name(alg)?;
    if header.contains_key("crit") {
        return Err(IdTokenProblem::UnsupportedAlgorithm);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(IdTokenProblem::Malformed),
    };
    Ok(Header { alg, kid })
}

/// Whether `key` may have signed a token with `header`: the same `kid` when the token
/// names one, a key type for its algorithm, and no `alg` or `use` that says otherwise.
pub(crate) fn fits(key: &SigningKey, header: &Header) -> bool {
    let kid_ok = header.kid.is_none() || header.kid == key.kid;
    let alg_ok = key
        .alg
        .as_deref()
        .is_none_or(|alg| header.alg.names().contains(&alg));
    let use_ok = key.key_use.as_deref().is_none_or(|u| u == "sig");
    let kty_ok = match header.alg {
        Algorithm::Es256 => key.kty == "EC" && key.crv.as_deref() == Some("P-256"),
        Algorithm::EdDsa => key.kty == "OKP" && key.crv.as_deref() == Some("Ed25519"),
        _ => key.kty == "RSA",
    };
    kid_ok && alg_ok && use_ok && kty_ok
}

/// The check done by RustCrypto: whether `check.key` signed `check.signing_input` with
/// `check.algorithm`. Any key that cannot be used (wrong size, not a point on the curve)
/// or signature of the wrong shape is simply "not valid".
#[cfg(feature = "rust-crypto")]
pub fn verify_with_rust_crypto(check: &SignatureCheck) -> bool {
    use super::jwks::KeyMaterial;
    use sha2::{Sha256, Sha384, Sha512};
    let Ok(signature) = URL_SAFE_NO_PAD.decode(&check.signature) else {
        return false;
    };
    let message = check.signing_input.as_bytes();
    match (check.algorithm, check.key.material()) {
        (Algorithm::Rs256, Some(KeyMaterial::Rsa(key))) => {
            pkcs1::<Sha256>(key, message, &signature)
        }
        (Algorithm::Rs384, Some(KeyMaterial::Rsa(key))) => {
            pkcs1::<Sha384>(key, message, &signature)
        }
        (Algorithm::Rs512, Some(KeyMaterial::Rsa(key))) => {
            pkcs1::<Sha512>(key, message, &signature)
        }
        (Algorithm::Ps256, Some(KeyMaterial::Rsa(key))) => pss::<Sha256>(key, message, &signature),
        (Algorithm::Ps384, Some(KeyMaterial::Rsa(key))) => pss::<Sha384>(key, message, &signature),
        (Algorithm::Ps512, Some(KeyMaterial::Rsa(key))) => pss::<Sha512>(key, message, &signature),
        (Algorithm::Es256, Some(KeyMaterial::P256(key))) => {
            use p256::ecdsa::signature::Verifier as _;
            // JWS carries R || S (RFC 7518 §3.4), not DER.
            p256::ecdsa::Signature::from_slice(&signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok())
        }
        (Algorithm::EdDsa, Some(KeyMaterial::Ed25519(key))) => {
            ed25519_dalek::Signature::from_slice(&signature)
                .is_ok_and(|signature| key.verify_strict(message, &signature).is_ok())
        }
        _ => false,
    }
}

#[cfg(feature = "rust-crypto")]
fn pkcs1<D>(key: rsa::PublicKey, message: &[u8], signature: &[u8]) -> bool
where
    D: sha2::Digest + sha2::digest::const_oid::AssociatedOid + sha2::digest::FixedOutputReset,
{
    use rsa::signature::Verifier as _;
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<D>::new(key)
        .verify(message, &signature)
        .is_ok()
}

#[cfg(feature = "rust-crypto")]
fn pss<D>(key: rsa::PublicKey, message: &[u8], signature: &[u8]) -> bool
where
    D: sha2::Digest + sha2::digest::FixedOutputReset,
{
    use rsa::signature::Verifier as _;
    let Ok(signature) = rsa::pss::Signature::try_from(signature) else {
        return false;
    };
    // RFC 7518 §3.5: the salt is as long as the hash.
    rsa::pss::VerifyingKey::<D>::new(key)
        .verify(message, &signature)
        .is_ok()
}

#[cfg(all(test, feature = "rust-crypto"))]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Tokens signed by Python's `cryptography` (engine/tests/fixtures/make_signed_tokens.py):
    /// an independent implementation of each algorithm.
    fn fixture() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/signed_tokens.json")).unwrap()
    }

    fn keys(fixture: &Value) -> Vec<SigningKey> {
        serde_json::from_value(fixture["keys"].clone()).unwrap()
    }

    fn verify(token: &str, alg: Algorithm, key: &SigningKey) -> bool {
        let Some((signing_input, signature)) = signed_parts(token) else {
            return false;
        };
        verify_with_rust_crypto(&SignatureCheck {
            id: CheckId(1),
            algorithm: alg,
            key: key.clone(),
            signing_input: signing_input.to_owned(),
            signature: signature.to_owned(),
        })
    }

    fn verifies(token: &str, keys: &[SigningKey]) -> bool {
        let header = read_header(token).unwrap();
        keys.iter()
            .filter(|key| fits(key, &header))
            .any(|key| verify(token, header.alg, key))
    }

    #[test]
    fn every_accepted_algorithm_verifies_with_its_key() {
        let fixture = fixture();
        let keys = keys(&fixture);
        let tokens = fixture["tokens"].as_object().unwrap();
        for alg in [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA",
        ] {
            let token = tokens[alg].as_str().unwrap();
            assert!(verifies(token, &keys), "{alg}");
            // One altered byte of the payload, and it no longer does.
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            let other = if parts[1].starts_with('e') { "f" } else { "e" };
            parts[1].replace_range(0..1, other);
            assert!(!verifies(&parts.join("."), &keys), "{alg} altered");
        }
    }

    #[test]
    fn a_token_signed_by_another_key_under_the_same_kid_does_not_verify() {
        let fixture = fixture();
        let token = fixture["signed_by_another_key"].as_str().unwrap();
        assert!(!verifies(token, &keys(&fixture)));
    }

    #[test]
    fn none_and_hmac_are_refused_before_any_key_is_tried() {
        let fixture = fixture();
        let hs256 = fixture["hs256_keyed_with_public_key"].as_str().unwrap();
        assert_eq!(read_header(hs256), Err(IdTokenProblem::SymmetricAlgorithm));
        let none = crate::unsigned_id_token(&serde_json::json!({"sub": "alice"}));
        assert_eq!(read_header(&none), Err(IdTokenProblem::Unsigned));
        let header = |h: &str| format!("{}.e30.", URL_SAFE_NO_PAD.encode(h));
        assert_eq!(
            read_header(&header(r#"{"alg":"ES512"}"#)),
            Err(IdTokenProblem::UnsupportedAlgorithm)
        );
        assert_eq!(
            read_header(&header(r#"{"alg":"RS256","crit":["exp"]}"#)),
            Err(IdTokenProblem::UnsupportedAlgorithm)
        );
        assert_eq!(
            read_header(&header(r#"{"alg":"RS256","kid":7}"#)),
            Err(IdTokenProblem::Malformed)
        );
        assert_eq!(read_header("%%%.e30."), Err(IdTokenProblem::Malformed));
    }

    #[test]
    fn a_key_of_the_wrong_type_or_alg_does_not_fit() {
        let fixture = fixture();
        let keys = keys(&fixture);
        let es256 = read_header(fixture["tokens"]["ES256"].as_str().unwrap()).unwrap();
        assert_eq!(
            keys.iter()
                .filter(|k| fits(k, &es256))
                .map(|k| k.kid.as_deref())
                .collect::<Vec<_>>(),
            [Some("ec-1")]
        );
        let mut rsa = keys[0].clone();
        rsa.alg = Some("PS256".into());
        let rs256 = read_header(fixture["tokens"]["RS256"].as_str().unwrap()).unwrap();
        assert!(
            !fits(&rsa, &rs256),
            "a key published for PS256 is not used for RS256"
        );
    }

    #[test]
    fn the_transcript_key_signs_what_it_publishes() {
        let keys: Vec<SigningKey> =
            serde_json::from_value(crate::transcript_key_set()["keys"].clone()).unwrap();
        let token = crate::signed_id_token(&serde_json::json!({"sub": "alice"}));
        assert!(verifies(&token, &keys));
    }

    #[test]
    fn weak_or_malformed_keys_are_not_keys() {
        let fixture = fixture();
        assert!(keys(&fixture).iter().all(SigningKey::admissible));
        let mut rsa = keys(&fixture)[0].clone();
        // A 1024-bit modulus.
        rsa.n = Some(URL_SAFE_NO_PAD.encode([0xc5u8; 128]));
        assert!(!rsa.admissible());
        assert!(rsa.material().is_none());
        rsa.n = None;
        assert!(!rsa.admissible());
        let mut ec = keys(&fixture)[1].clone();
        ec.y = ec.x.clone();
        // The right shape: kept, and found out when verifying.
        assert!(ec.admissible());
        assert!(ec.material().is_none(), "not a point on the curve");
        let es256 = fixture["tokens"]["ES256"].as_str().unwrap();
        assert!(!verify(es256, Algorithm::Es256, &ec));
        ec.y = Some(URL_SAFE_NO_PAD.encode([1u8; 31]));
        assert!(!ec.admissible(), "a coordinate of 31 bytes");
    }
}
