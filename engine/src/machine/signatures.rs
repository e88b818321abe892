//! An ID token's signature (OIDC Core §3.1.3.7 step 6–7), and the provider's keys it
//! needs: known from an earlier fetch, remembered in the session, or fetched from
//! `jwks_uri` now.
//!
//! A token whose key is not at hand makes the flow fetch the key set once (rotation: the
//! provider signs with a new key). Fetches are at least [`REFETCH_AFTER_MILLIS`] apart, so
//! tokens naming keys that do not exist cannot make tessera hammer the provider.
//!
//! At login a token that cannot be verified fails the login. At refresh, keys that cannot
//! be fetched (the provider is down, or answers garbage) do not lose the rotated refresh
//! token: the new ID token is dropped, unused, and the tokens are kept; a signature that
//! does not verify refuses the whole answer, as a failed claim check does.

use std::collections::BTreeMap;

use statig::prelude::*;

use super::{Ctx, State};
use crate::effect::Method;
use crate::error::{Endpoint, Error, IdTokenProblem};
use crate::input::{Input, RequestId};
use crate::protocol::jws::CheckId;
use crate::protocol::token::TokenSet;
use crate::protocol::{jwks, jws};
use crate::time::UnixMillis;

/// The shortest time between two fetches of the key set.
const REFETCH_AFTER_MILLIS: u64 = 30_000;

/// Where an ID token's signature stands when no key at hand verified it.
enum Verdict {
    /// The provider publishes no keys (no `jwks_uri`, none configured): the token is
    /// trusted as the token endpoint's TLS answer, claims checked.
    NoKeys,
    /// The key it names is not at hand; fetch the key set from here.
    FetchKeys(String),
    Refused(Error),
}

fn refused(problem: IdTokenProblem) -> Verdict {
    Verdict::Refused(Error::IdToken { problem })
}

/// An ID token whose signature is being checked (`Effect::VerifySignature`), one fitting
/// key after another, in the order they are at hand: the first that verifies it wins.
#[derive(Clone, Debug)]
pub(crate) struct Checking {
    /// The check in flight.
    pub check: CheckId,
    tokens: TokenSet,
    header: jws::Header,
    /// The key being tried.
    key: jwks::SigningKey,
    /// Fitting keys not yet tried.
    rest: Vec<jwks::SigningKey>,
    /// The key set was fetched for this token already: a key still missing is unknown.
    after_fetch: bool,
}

/// Which flow an ID token belongs to: what follows its verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Login,
    Refresh,
}

/// An answer to the key-set request.
pub(crate) type KeysAnswer<'a> = Result<(u16, &'a BTreeMap<String, String>, &'a str), Error>;

/// The answer to the key-set request `request`, if `event` is it.
pub(super) fn keys_answer(event: &Input, request: RequestId) -> Option<KeysAnswer<'_>> {
    match event {
        Input::HttpResponse {
            id,
            status,
            headers,
            body,
        } if *id == request => Some(Ok((*status, headers, body))),
        Input::HttpFailed { id, kind, detail } if *id == request => {
            Some(Err(super::transport(Endpoint::Jwks, *kind, detail)))
        }
        _ => None,
    }
}

impl Ctx<'_> {
    /// Checks `tokens`' ID token with the keys at hand that fit it, one after another
    /// (`checking_signature_for_*`), or decides at once when none fits.
    fn check_signature(
        &mut self,
        flow: Flow,
        tokens: TokenSet,
        after_fetch: bool,
    ) -> Outcome<State> {
        let Some(id_token) = tokens.id_token.clone() else {
            return self.tokens_verified(flow, tokens);
        };
        let header = match jws::read_header(id_token.expose()) {
            Ok(header) => header,
            Err(problem) => return self.tokens_refused(flow, Error::IdToken { problem }),
        };
        let endpoints = self.core.endpoints();
        let mut known: Vec<jwks::SigningKey> = self
            .core
            .signing_keys
            .iter()
            .chain(&endpoints.signing_keys)
            .filter(|key| jws::fits(key, &header))
            .cloned()
            .collect();
        // A signature no key can verify (not base64url, no signature at all) fails
        // every key without asking.
        if known.is_empty() || jws::signed_parts(id_token.expose()).is_none() {
            let any_fitted = !known.is_empty();
            return self.unverified(flow, tokens, &header, any_fitted, after_fetch);
        }
        let key = known.remove(0);
        self.try_key(
            flow,
            Checking {
                check: CheckId(0),
                tokens,
                header,
                key,
                rest: known,
                after_fetch,
            },
        )
    }

    /// Asks whether `checking.key` signed the ID token.
    fn try_key(&mut self, flow: Flow, mut checking: Checking) -> Outcome<State> {
        let id_token = checking.tokens.id_token.clone().unwrap_or_default();
        // `check_signature` made sure the token has its parts.
        let (signing_input, signature) = jws::signed_parts(id_token.expose()).unwrap_or_default();
        checking.check = self.core.check_signature(
            checking.header.alg,
            checking.key.clone(),
            signing_input,
            signature,
        );
        Transition(match flow {
            Flow::Login => State::checking_signature_for_login(checking),
            Flow::Refresh => State::checking_signature_for_refresh(checking),
        })
    }

    /// The answer to the check in flight, if `event` is it: the tokens go on, the next
    /// key is tried, or no key at hand verified the token.
    pub(crate) fn signature_checked(
        &mut self,
        flow: Flow,
        checking: &Checking,
        event: &Input,
    ) -> Option<Outcome<State>> {
        let Input::SignatureChecked { id, valid } = event else {
            return None;
        };
        if *id != checking.check {
            return None;
        }
        let mut checking = checking.clone();
        if *valid {
            self.core.verified_with = Some(checking.key);
            return Some(self.tokens_verified(flow, checking.tokens));
        }
        if checking.rest.is_empty() {
            let header = checking.header.clone();
            return Some(self.unverified(
                flow,
                checking.tokens,
                &header,
                true,
                checking.after_fetch,
            ));
        }
        checking.key = checking.rest.remove(0);
        Some(self.try_key(flow, checking))
    }

    /// No key at hand verified the ID token (`any_fitted`: some were tried).
    fn unverified(
        &mut self,
        flow: Flow,
        tokens: TokenSet,
        header: &jws::Header,
        any_fitted: bool,
        after_fetch: bool,
    ) -> Outcome<State> {
        match self.judge_unverified(header, any_fitted) {
            Verdict::NoKeys => self.tokens_verified(flow, tokens),
            Verdict::FetchKeys(url) if !after_fetch => {
                let request = self.fetch_keys(&url);
                Transition(match flow {
                    Flow::Login => State::fetching_keys_for_login(request, tokens),
                    Flow::Refresh => State::fetching_keys_for_refresh(request, tokens),
                })
            }
            // Just fetched: the key is not published.
            Verdict::FetchKeys(_) => self.tokens_refused(
                flow,
                Error::IdToken {
                    problem: IdTokenProblem::UnknownKey,
                },
            ),
            Verdict::Refused(error) => self.tokens_refused(flow, error),
        }
    }

    fn judge_unverified(&mut self, header: &jws::Header, any_fitted: bool) -> Verdict {
        let endpoints = self.core.endpoints();
        // A key with the token's own `kid` did not verify it: forged or altered. (Without
        // a `kid` a rotated key may still be on the provider's list.)
        let named_key_failed = any_fitted && header.kid.is_some();
        let fetched_lately = self
            .core
            .keys_fetched_at
            .is_some_and(|at| self.now < at.plus_millis(REFETCH_AFTER_MILLIS));
        match endpoints.jwks {
            _ if named_key_failed => refused(IdTokenProblem::BadSignature),
            Some(url) if !fetched_lately => Verdict::FetchKeys(url),
            None if endpoints.signing_keys.is_empty() => Verdict::NoKeys,
            _ if any_fitted => refused(IdTokenProblem::BadSignature),
            _ => refused(IdTokenProblem::UnknownKey),
        }
    }

    fn fetch_keys(&mut self, url: &str) -> RequestId {
        self.core.keys_fetched_at = Some(self.now);
        self.core.request(Endpoint::Jwks, Method::Get, url, None)
    }

    /// Takes the key set's answer into the cache.
    fn keys_answered(&mut self, answer: KeysAnswer<'_>) -> Result<(), Error> {
        let (status, headers, body) = answer?;
        let response = self.response(Endpoint::Jwks, status, headers, body);
        self.core.signing_keys =
            jwks::read_key_set(&response, self.core.config.max_response_bytes)?;
        Ok(())
    }

    /// Tokens that checked out; their ID token's signature decides whether `flow` goes on.
    pub(crate) fn verify_tokens(&mut self, flow: Flow, tokens: TokenSet) -> Outcome<State> {
        self.check_signature(flow, tokens, false)
    }

    /// The key set's answer, for tokens waiting in `flow`.
    pub(crate) fn signing_keys_answered(
        &mut self,
        flow: Flow,
        mut tokens: TokenSet,
        answer: KeysAnswer<'_>,
    ) -> Outcome<State> {
        if let Err(error) = self.keys_answered(answer) {
            if flow == Flow::Login {
                return self.login_failed(error);
            }
            // The refresh token may have rotated already: keep the tokens, not the ID
            // token nobody could check.
            tokens.id_token = None;
            tokens.identity = None;
            return self.refresh_succeeded(tokens);
        }
        self.check_signature(flow, tokens, true)
    }

    fn tokens_verified(&mut self, flow: Flow, tokens: TokenSet) -> Outcome<State> {
        match flow {
            Flow::Login => self.complete_login(tokens),
            Flow::Refresh => self.refresh_succeeded(tokens),
        }
    }

    fn tokens_refused(&mut self, flow: Flow, error: Error) -> Outcome<State> {
        match flow {
            Flow::Login => self.login_failed(error),
            Flow::Refresh => self.refresh_failed(error),
        }
    }

    /// The provider's time for an ID token's claims: the response's `Date` header when it
    /// has a readable one, so a wrong local clock does not make every token look expired
    /// or not yet valid; else the local clock.
    pub(crate) fn provider_time(&self, headers: &BTreeMap<String, String>) -> UnixMillis {
        headers
            .get("date")
            .and_then(|date| httpdate::parse_http_date(date).ok())
            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|since| u64::try_from(since.as_millis()).ok())
            .map_or(self.now, UnixMillis)
    }
}
