//! Randomness for PKCE verifiers, `state` and `nonce`, drawn from the host's seed.
//!
//! The engine never asks the OS for randomness: the host passes 32 bytes of entropy to
//! [`Engine::new`](crate::Engine::new). A ChaCha20 stream keyed by that seed supplies every
//! random value, so the same seed and the same inputs give the same effects byte for byte,
//! which is what makes transcripts replayable.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

pub(crate) struct Entropy(ChaCha20Rng);

impl Entropy {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        Self(ChaCha20Rng::from_seed(seed))
    }

    /// `bytes` random bytes, base64url-encoded without padding (the alphabet RFC 7636 allows).
    pub(crate) fn token(&mut self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        self.0.fill_bytes(&mut buf);
        URL_SAFE_NO_PAD.encode(buf)
    }
}

impl std::fmt::Debug for Entropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entropy(<seeded>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_tokens_and_different_seed_differs() {
        let mut a = Entropy::new([7; 32]);
        let mut b = Entropy::new([7; 32]);
        let mut c = Entropy::new([8; 32]);
        let first = a.token(32);
        assert_eq!(first, b.token(32));
        assert_ne!(first, c.token(32));
        assert_eq!(first.len(), 43);
        assert_ne!(first, a.token(32), "successive draws differ");
    }
}
