//! The browser package's signature checks: WebCrypto through `glue.js`'s `verifySignature`
//! (what `Session` answers `Action::VerifySignature` with when built without
//! `rust-crypto`), fed tokens signed by an independent implementation
//! (engine/tests/fixtures/signed_tokens.json, Python's `cryptography`). Every algorithm
//! verifies with its key; a token signed by another key under the same `kid` does not; a
//! tampered payload does not; nor does a token checked under another algorithm. Each
//! answer is also RustCrypto's (this test build has `rust-crypto`).

use serde_json::Value;
use tessera_wasm::engine::{CheckId, SignatureAlgorithm, SignatureCheck, SigningKey};
use tessera_wasm::verify_with_webcrypto;

const ALGORITHMS: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA",
];

fn algorithm(name: &str) -> SignatureAlgorithm {
    serde_json::from_value(Value::from(name)).expect("a JWS algorithm name")
}

/// The fixture's key for `alg`: one RSA key, one P-256 key, one Ed25519 key.
fn key_for(keys: &[SigningKey], alg: &str) -> SigningKey {
    let kty = match alg {
        "ES256" => "EC",
        "EdDSA" => "OKP",
        _ => "RSA",
    };
    keys.iter().find(|k| k.kty == kty).expect("a key").clone()
}

fn check(token: &str, alg: &str, key: &SigningKey) -> SignatureCheck {
    let (signing_input, signature) = token.rsplit_once('.').expect("a compact JWS");
    SignatureCheck {
        id: CheckId(1),
        algorithm: algorithm(alg),
        key: key.clone(),
        signing_input: signing_input.to_owned(),
        signature: signature.to_owned(),
    }
}

/// WebCrypto's answer, after making sure RustCrypto gives the same.
async fn webcrypto(check: &SignatureCheck) -> bool {
    let valid = verify_with_webcrypto(check).await;
    assert_eq!(
        valid,
        tessera_wasm::engine::verify_with_rust_crypto(check),
        "WebCrypto and RustCrypto disagree on {check:?}"
    );
    valid
}

/// Returns a one-line summary for the log.
pub async fn fixtures_verify_with_webcrypto() -> String {
    let fixture: Value = serde_json::from_str(include_str!(
        "../../../engine/tests/fixtures/signed_tokens.json"
    ))
    .unwrap();
    let keys: Vec<SigningKey> = serde_json::from_value(fixture["keys"].clone()).unwrap();
    let mut checks = 0;
    for alg in ALGORITHMS {
        let token = fixture["tokens"][alg].as_str().unwrap();
        let key = key_for(&keys, alg);
        assert!(
            webcrypto(&check(token, alg, &key)).await,
            "{alg} does not verify"
        );
        // One altered byte of the payload, and it no longer does.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let other = if parts[1].starts_with('e') { "f" } else { "e" };
        parts[1].replace_range(0..1, other);
        assert!(
            !webcrypto(&check(&parts.join("."), alg, &key)).await,
            "{alg} altered"
        );
        // The same signature under another algorithm of the same key type.
        let confused = match alg {
            "RS256" => "PS256",
            "PS256" => "RS256",
            "RS384" => "RS512",
            _ => "RS384",
        };
        if key.kty == "RSA" {
            assert!(
                !webcrypto(&check(token, confused, &key)).await,
                "{alg} as {confused}"
            );
        }
        checks += 3;
    }
    let rsa = key_for(&keys, "RS256");
    let forged = fixture["signed_by_another_key"].as_str().unwrap();
    assert!(
        !webcrypto(&check(forged, "RS256", &rsa)).await,
        "signed by another key"
    );
    // A key WebCrypto cannot import (not a point on the curve) is "not valid", not an error.
    let mut ec = key_for(&keys, "ES256");
    ec.y = ec.x.clone();
    let es256 = fixture["tokens"]["ES256"].as_str().unwrap();
    assert!(
        !webcrypto(&check(es256, "ES256", &ec)).await,
        "a point off the curve"
    );
    // A signature that is not base64url.
    let mut garbled = check(
        fixture["tokens"]["EdDSA"].as_str().unwrap(),
        "EdDSA",
        &key_for(&keys, "EdDSA"),
    );
    garbled.signature = "%%%".into();
    assert!(!webcrypto(&garbled).await, "a garbled signature");
    format!(
        "{} WebCrypto signature checks agree with the fixtures and RustCrypto",
        checks + 3
    )
}
