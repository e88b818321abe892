//! Who is waiting for what: the calls a host passed in, and which event answers each.
//!
//! - token calls are engine waiters (`WaiterId` = `CallId`): `TokenReady`/`TokenFailed`
//!   name the ones they answer; derived-token calls likewise, by `DerivedTokenReady` and
//!   `DerivedTokenFailed`;
//! - `LoggedIn`/`LoginFailed` answer the **oldest** login call (a login replaced by a newer
//!   one fails first), and every redirect call made during that login;
//! - `LoggedOut` answers the logout calls only when the user asked for it; a session that
//!   ended on its own leaves them waiting for their own result;
//! - a dropped call is forgotten: nothing answers it.

use std::fmt;

use super::io::CallId;
use crate::input::WaiterId;

/// A set of calls, kept as a sorted `Vec`: the sets are small and a host numbers its calls
/// in order, so insertion is mostly a push. Not a `BTreeSet`, whose node code the browser
/// package would carry for this one key type (BENCHMARKS.md, issue 17); `Debug` prints it
/// as a set, as before.
#[derive(Default)]
struct CallSet(Vec<CallId>);

impl CallSet {
    fn insert(&mut self, call: CallId) {
        if let Err(at) = self.0.binary_search(&call) {
            self.0.insert(at, call);
        }
    }

    /// Whether the call was in the set.
    fn remove(&mut self, call: &CallId) -> bool {
        match self.0.binary_search(call) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// The calls, in order, the set left empty.
    fn take(&mut self) -> Vec<CallId> {
        std::mem::take(&mut self.0)
    }
}

impl fmt::Debug for CallSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.0).finish()
    }
}

#[derive(Debug, Default)]
pub(super) struct Calls {
    token: CallSet,
    derived: CallSet,
    /// Oldest first (a `Vec`, not a `VecDeque`: a login or two at a time).
    login: Vec<CallId>,
    redirect: Vec<CallId>,
    logout: Vec<CallId>,
}

impl Calls {
    pub fn wait_for_token(&mut self, call: CallId) -> WaiterId {
        self.token.insert(call);
        WaiterId(call.0)
    }

    /// The token calls an event answers, each once; dropped ones are skipped.
    pub fn token_answered(&mut self, waiters: &[WaiterId]) -> Vec<CallId> {
        waiters
            .iter()
            .map(|w| CallId(w.0))
            .filter(|call| self.token.remove(call))
            .collect()
    }

    pub fn wait_for_derived_token(&mut self, call: CallId) -> WaiterId {
        self.derived.insert(call);
        WaiterId(call.0)
    }

    /// The derived-token calls an event answers, each once; dropped ones are skipped.
    pub fn derived_token_answered(&mut self, waiters: &[WaiterId]) -> Vec<CallId> {
        waiters
            .iter()
            .map(|w| CallId(w.0))
            .filter(|call| self.derived.remove(call))
            .collect()
    }

    pub fn wait_for_login(&mut self, call: CallId) {
        self.login.push(call);
    }

    /// The login call just refused, or ended by the host: the newest.
    pub fn login_refused(&mut self) -> Option<CallId> {
        self.login.pop()
    }

    /// The calls the end of a login answers: the oldest login call and every redirect.
    pub fn login_ended(&mut self) -> Vec<CallId> {
        let mut calls: Vec<CallId> = if self.login.is_empty() {
            Vec::new()
        } else {
            vec![self.login.remove(0)]
        };
        calls.append(&mut self.redirect);
        calls
    }

    pub fn wait_for_redirect_outcome(&mut self, call: CallId) {
        self.redirect.push(call);
    }

    pub fn wait_for_logout(&mut self, call: CallId) {
        self.logout.push(call);
    }

    pub fn logout_answered(&mut self) -> Vec<CallId> {
        std::mem::take(&mut self.logout)
    }

    pub fn dropped(&mut self, call: CallId) {
        self.token.remove(&call);
        self.derived.remove(&call);
        self.login.retain(|c| *c != call);
        self.redirect.retain(|c| *c != call);
        self.logout.retain(|c| *c != call);
    }

    /// Every call still waiting, removed (the host is stopping).
    pub fn all(&mut self) -> Vec<CallId> {
        let mut calls = self.token.take();
        calls.append(&mut self.derived.take());
        calls.append(&mut self.login);
        calls.append(&mut self.redirect);
        calls.append(&mut self.logout);
        calls.sort();
        calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_calls_are_answered_once_and_dropped_ones_never() {
        let mut calls = Calls::default();
        let a = calls.wait_for_token(CallId(1));
        let b = calls.wait_for_token(CallId(2));
        calls.dropped(CallId(2));
        assert_eq!(calls.token_answered(&[a, b]), vec![CallId(1)]);
        assert!(calls.token_answered(&[a]).is_empty());
    }

    #[test]
    fn a_login_end_answers_the_oldest_login_and_every_redirect() {
        let mut calls = Calls::default();
        calls.wait_for_login(CallId(1));
        calls.wait_for_login(CallId(2));
        calls.wait_for_redirect_outcome(CallId(3));
        assert_eq!(calls.login_ended(), vec![CallId(1), CallId(3)]);
        assert_eq!(calls.login_refused(), Some(CallId(2)));
        assert_eq!(calls.all(), vec![]);
    }

    #[test]
    fn a_call_set_is_a_set_in_order() {
        let mut set = CallSet::default();
        for call in [3, 1, 2, 3, 1] {
            set.insert(CallId(call));
        }
        assert_eq!(format!("{set:?}"), "{CallId(1), CallId(2), CallId(3)}");
        assert!(set.remove(&CallId(2)));
        assert!(!set.remove(&CallId(2)));
        assert_eq!(set.take(), vec![CallId(1), CallId(3)]);
        assert_eq!(format!("{set:?}"), "{}");
    }
}
