//! Who is waiting for what: a host's answers to its callers, matched to the engine's
//! events.
//!
//! Every host turns calls (`access_token()`, `login()`, `logout()`) into inputs and must
//! later answer each call from an [`Event`](crate::Event). Which event answers which call
//! is part of the protocol, not of a host, so the rule lives here, generic over the host's
//! reply handles (oneshot senders natively, promise resolvers in the browser):
//!
//! - token calls carry a [`WaiterId`]; `TokenReady`/`TokenFailed` name the ids they answer;
//! - a `login` input the engine refuses is answered at once: it is the newest call;
//! - `LoggedIn`/`LoginFailed` answer the **oldest** login call: a login replaced by a
//!   newer one fails first, then the newer one gets its own result;
//! - `LoggedOut` answers a `logout` call only when the user asked for it; a session that
//!   ended on its own leaves a pending `logout` call waiting for its own result.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use crate::{LogoutReason, WaiterId};

/// The calls a host has turned into inputs and not answered yet.
pub struct Callers<Token, Login, Logout> {
    token: BTreeMap<WaiterId, Token>,
    next_waiter: u64,
    login: VecDeque<Login>,
    logout: Option<Logout>,
}

impl<Token, Login, Logout> Callers<Token, Login, Logout> {
    pub fn new() -> Self {
        Self {
            token: BTreeMap::new(),
            next_waiter: 1,
            login: VecDeque::new(),
            logout: None,
        }
    }

    /// Registers a token call (`Input::GetToken`, `Input::TokenRejected`): the returned id
    /// goes into the input.
    pub fn wait_for_token(&mut self, reply: Token) -> WaiterId {
        let id = WaiterId(self.next_waiter);
        self.next_waiter += 1;
        self.token.insert(id, reply);
        id
    }

    /// The token calls an event answers (its `waiters`), removed. An id answered before,
    /// or not made here, is skipped: each call is answered once.
    pub fn token_answered(&mut self, waiters: Vec<WaiterId>) -> Vec<Token> {
        waiters
            .into_iter()
            .filter_map(|id| self.token.remove(&id))
            .collect()
    }

    /// Registers a login call, before its `Input::Login` is handled.
    pub fn wait_for_login(&mut self, reply: Login) {
        self.login.push_back(reply);
    }

    /// The login call that has just been refused (the engine rejected its input, or the
    /// host could not start it): the newest.
    pub fn login_refused(&mut self) -> Option<Login> {
        self.login.pop_back()
    }

    /// The login call a `LoggedIn` or `LoginFailed` event answers: the oldest.
    pub fn login_answered(&mut self) -> Option<Login> {
        self.login.pop_front()
    }

    /// Registers a logout call. A logout call still pending is returned: the new one
    /// replaces it, and the host answers the old one (or drops it).
    pub fn wait_for_logout(&mut self, reply: Logout) -> Option<Logout> {
        self.logout.replace(reply)
    }

    /// The logout call a `LoggedOut` event answers: only when the logout was asked for.
    pub fn logout_answered(&mut self, reason: &LogoutReason) -> Option<Logout> {
        match reason {
            LogoutReason::Requested => self.logout.take(),
            LogoutReason::SessionEnded { .. } | LogoutReason::LoggedOutElsewhere => None,
        }
    }
}

impl<Token, Login, Logout> Default for Callers<Token, Login, Logout> {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts only: reply handles say nothing useful, and may not implement `Debug`.
impl<Token, Login, Logout> fmt::Debug for Callers<Token, Login, Logout> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callers")
            .field("token", &self.token.len())
            .field("login", &self.login.len())
            .field("logout", &self.logout.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    type Test = Callers<&'static str, &'static str, &'static str>;

    #[test]
    fn token_calls_are_answered_once_by_id() {
        let mut callers = Test::new();
        let a = callers.wait_for_token("a");
        let b = callers.wait_for_token("b");
        assert_ne!(a, b);
        assert_eq!(callers.token_answered(vec![b, WaiterId(99)]), vec!["b"]);
        assert_eq!(callers.token_answered(vec![a, b]), vec!["a"]);
        assert!(callers.token_answered(vec![a]).is_empty());
    }

    #[test]
    fn a_refused_login_is_the_newest_and_events_answer_the_oldest() {
        let mut callers = Test::new();
        callers.wait_for_login("first");
        callers.wait_for_login("second");
        callers.wait_for_login("refused");
        assert_eq!(callers.login_refused(), Some("refused"));
        assert_eq!(callers.login_answered(), Some("first"));
        assert_eq!(callers.login_answered(), Some("second"));
        assert_eq!(callers.login_answered(), None);
    }

    #[test]
    fn only_a_requested_logout_answers_the_logout_call() {
        let mut callers = Test::new();
        assert_eq!(callers.wait_for_logout("first"), None);
        assert_eq!(callers.wait_for_logout("second"), Some("first"));
        let ended = LogoutReason::SessionEnded {
            error: Error::config("test"),
        };
        assert_eq!(callers.logout_answered(&ended), None);
        assert_eq!(
            callers.logout_answered(&LogoutReason::LoggedOutElsewhere),
            None
        );
        assert_eq!(
            callers.logout_answered(&LogoutReason::Requested),
            Some("second")
        );
        assert_eq!(callers.logout_answered(&LogoutReason::Requested), None);
    }

    #[test]
    fn debug_shows_counts_only() {
        let mut callers = Test::new();
        callers.wait_for_token("secret-reply");
        assert_eq!(
            format!("{callers:?}"),
            "Callers { token: 1, login: 0, logout: false }"
        );
    }
}
