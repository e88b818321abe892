//! The context handlers run with, and what every flow shares. The flows' actions are in
//! `login.rs`, `refresh.rs` and `logout.rs`; each returns the state to go to, so the
//! handlers in `mod.rs` read as a transition table.

use crate::effect::ServerCallKind;
use std::collections::BTreeMap;

use statig::prelude::*;

use super::State;
use crate::core::Core;
use crate::error::{Endpoint, Error, TransportErrorKind};
use crate::input::{Input, RequestId};
use crate::protocol::response::Response;
use crate::session::StoredSession;
use crate::time::UnixMillis;

/// Why an input was refused; the engine turns it into [`crate::Rejected`].
#[derive(Debug)]
pub(crate) enum Rejection {
    UnknownRequest(RequestId),
    Unexpected,
    Invalid(Error),
    /// A host used a waiter id of the derived-token flow's range.
    ReservedWaiter,
}

/// The context every handler gets: the time of the input and the shared core.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub now: UnixMillis,
    pub core: &'a mut Core,
    pub rejection: Option<Rejection>,
}

/// Commands come from the user or the app (as opposed to answers to effects).
pub(crate) fn is_command(input: &Input) -> bool {
    matches!(
        input,
        Input::Login { .. }
            | Input::ResumeLogin { .. }
            | Input::GetToken { .. }
            | Input::TokenRejected { .. }
            | Input::Logout { .. }
            | Input::Cancel
    )
}

pub(crate) fn transport(endpoint: Endpoint, kind: TransportErrorKind, detail: &str) -> Error {
    Error::Transport {
        endpoint,
        kind,
        detail: crate::protocol::response::printable(detail, 200),
    }
}

/// RFC 8628 §3.5: on a connection problem, poll less often: double the interval, up to a
/// minute, but never below what the provider asked for.
pub(crate) fn backed_off_interval(interval_secs: u64) -> u64 {
    interval_secs
        .saturating_mul(2)
        .min(interval_secs.max(60))
        .max(1)
}

pub(crate) fn logout_call_endpoint(call: ServerCallKind) -> Endpoint {
    match call {
        ServerCallKind::ServerLogout => Endpoint::ServerLogout,
        ServerCallKind::RevokeRefreshToken | ServerCallKind::RevokeAccessToken => {
            Endpoint::Revocation
        }
    }
}

/// Where a redirect came from.
pub(crate) enum CallbackText<'a> {
    Redirect(&'a str),
    Paste(&'a str),
}

impl Ctx<'_> {
    pub(super) fn response<'b>(
        &self,
        endpoint: Endpoint,
        status: u16,
        headers: &'b BTreeMap<String, String>,
        body: &'b str,
    ) -> Response<'b> {
        Response {
            endpoint,
            status,
            headers,
            body,
        }
    }

    /// Where the engine rests when no flow runs.
    pub(super) fn resting_state(&self) -> State {
        if self.core.session.is_some() {
            State::idle()
        } else {
            State::logged_out()
        }
    }

    pub(crate) fn defer(&mut self, input: &Input) -> Outcome<State> {
        self.core.deferred.push_back(input.clone());
        Handled
    }

    // ----- loading -----

    pub(crate) fn adopt_loaded(&mut self, session: Option<StoredSession>) -> Outcome<State> {
        match session {
            Some(session) if self.core.is_ours(&session) => {
                self.core.session = Some(session);
                self.core.reset_refresh_schedule();
                Transition(State::idle())
            }
            _ => Transition(State::logged_out()),
        }
    }
}
