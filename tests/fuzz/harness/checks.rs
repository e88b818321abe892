//! The invariants checked on every text and every save (the list in mod.rs).

use super::*;

impl World {
    pub(super) fn check_text(&self, text: &str, what: &str) {
        let b = text.as_bytes();
        for i in 0..b.len().saturating_sub(11) {
            if b[i] == b's'
                && b[i + 11] == b'e'
                && b[i + 1..i + 3].iter().all(u8::is_ascii_uppercase)
                && b[i + 3..i + 11].iter().all(u8::is_ascii_digit)
            {
                let candidate = &text[i..i + 12];
                assert!(
                    !self.issued.contains(candidate),
                    "secret {candidate} shown in {what}: {text}"
                );
            }
        }
        for secret in &self.secrets {
            assert!(
                !text.contains(secret.as_str()),
                "secret {secret} shown in {what}: {text}"
            );
        }
    }

    /// Invariant 4: a save that replaces the stored session never goes back in a grant's
    /// rotation.
    pub(super) fn check_not_older(&self, saving: &StoredSession) {
        let Some((stored, _)) = &self.stored else {
            return;
        };
        let generation = |s: &StoredSession| {
            s.refresh_token
                .as_ref()
                .and_then(|t| self.refresh_tokens.get(t.expose()).copied())
        };
        if let (Some((g_new, n_new)), Some((g_old, n_old))) =
            (generation(saving), generation(stored))
        {
            assert!(
                g_new != g_old || n_new >= n_old,
                "a save replaces refresh token generation {n_old} of grant {g_old} with the older generation {n_new}"
            );
        }
    }
}
