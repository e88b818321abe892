//! The provider's signing keys: its JWK Set (RFC 7517 §5), fetched from the metadata's
//! `jwks_uri`, and the choice of the key an ID token names.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::response::Response;
use crate::error::Error;

/// At most this many keys are kept from one JWK Set.
const MAX_KEYS: usize = 32;
/// RSA moduli accepted, in bits: shorter ones can be factored; longer ones only cost time.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// A public signing key as a JWK (RFC 7518 §6): only the public members are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// RSA modulus and exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve point (P-256: x and y; Ed25519: x alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// A key decoded for verification.
#[cfg(feature = "rust-crypto")]
pub(crate) enum KeyMaterial {
    Rsa(rsa::PublicKey),
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

fn bytes(member: Option<&String>) -> Option<Vec<u8>> {
    let member = member?;
    (member.len() <= 2048)
        .then(|| URL_SAFE_NO_PAD.decode(member).ok())
        .flatten()
        .filter(|b| !b.is_empty())
}

/// The bit length of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    let Some(at) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    (bytes.len() - at) * 8 - bytes[at].leading_zeros() as usize
}

impl SigningKey {
    /// Whether this is a public key of a shape tessera verifies with: an RSA modulus of
    /// 2048–8192 bits (odd) and an exponent from 3 to 2^33 - 1 (odd), a P-256 point of two
    /// 32-byte coordinates, an Ed25519 key of 32 bytes. The same rule whatever does the
    /// arithmetic; whether a point is on its curve is found out when verifying (a key
    /// that is not fails every check).
    pub(crate) fn admissible(&self) -> bool {
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => {
                let (Some(n), Some(e)) = (bytes(self.n.as_ref()), bytes(self.e.as_ref())) else {
                    return false;
                };
                let e_bits = bit_length(&e);
                RSA_BITS.contains(&bit_length(&n))
                    && n.last().is_some_and(|b| b % 2 == 1)
                    && (2..=33).contains(&e_bits)
                    && e.last().is_some_and(|b| b % 2 == 1)
            }
            ("EC", Some("P-256")) => {
                let (x, y) = (bytes(self.x.as_ref()), bytes(self.y.as_ref()));
                x.is_some_and(|x| x.len() == 32) && y.is_some_and(|y| y.len() == 32)
            }
            ("OKP", Some("Ed25519")) => bytes(self.x.as_ref()).is_some_and(|x| x.len() == 32),
            _ => false,
        }
    }

    /// The key, decoded; `None` when it is not a usable public key.
    #[cfg(feature = "rust-crypto")]
    pub(crate) fn material(&self) -> Option<KeyMaterial> {
        if !self.admissible() {
            return None;
        }
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => {
                let n = bytes(self.n.as_ref())?;
                let e = bytes(self.e.as_ref())?;
                if n.len() > RSA_BITS.end() / 8 + 1 || e.len() > 8 {
                    return None;
                }
                let n = rsa::BoxedUint::from_be_slice_vartime(&n);
                let e = rsa::BoxedUint::from_be_slice_vartime(&e);
                rsa::PublicKey::new_with_size_limits(n, e, RSA_BITS)
                    .ok()
                    .map(KeyMaterial::Rsa)
            }
            ("EC", Some("P-256")) => {
                let (x, y) = (bytes(self.x.as_ref())?, bytes(self.y.as_ref())?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                    .ok()
                    .map(KeyMaterial::P256)
            }
            ("OKP", Some("Ed25519")) => {
                let x: [u8; 32] = bytes(self.x.as_ref())?.try_into().ok()?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .ok()
                    .map(KeyMaterial::Ed25519)
            }
            _ => None,
        }
    }
}

/// Reads a JWK Set. Keys that are not public signing keys tessera can use are skipped
/// (RFC 7517 §5: "implementations SHOULD ignore JWKs … that use values they do not
/// understand"); private members are dropped.
pub(crate) fn read_key_set(
    response: &Response<'_>,
    limit: usize,
) -> Result<Vec<SigningKey>, Error> {
    let fields = response.oauth_fields(limit)?;
    let Some(Value::Array(keys)) = fields.get("keys") else {
        return Err(response.missing("keys"));
    };
    Ok(keys
        .iter()
        .filter_map(|key| serde_json::from_value::<PublicMembers>(key.clone()).ok())
        .map(PublicMembers::into_key)
        .filter(SigningKey::admissible)
        .take(MAX_KEYS)
        .collect())
}

/// A JWK as published: like [`SigningKey`], but other members (private ones, `x5c`) are
/// ignored instead of refused.
#[derive(Deserialize)]
struct PublicMembers {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl PublicMembers {
    fn into_key(self) -> SigningKey {
        SigningKey {
            kty: self.kty,
            kid: self.kid,
            alg: self.alg,
            key_use: self.key_use,
            crv: self.crv,
            n: self.n,
            e: self.e,
            x: self.x,
            y: self.y,
        }
    }
}
