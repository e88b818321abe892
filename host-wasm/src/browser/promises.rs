//! The promises of the `Session` methods: what each waits for, and how the driver's reply
//! settles it.

use js_sys::Function;
use tessera_engine::driver::Reply;
use wasm_bindgen::JsValue;

use super::error::Failure;
use super::events::{self, LoginResult, LogoutResult, StatusReport};
use super::storage::Store;

/// What a promise resolves with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    Token,
    Login,
    Logout,
    Status,
}

/// A pending promise: what it waits for and how to settle it.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub expect: Expect,
    pub resolve: Function,
    pub reject: Function,
}

/// Settles one promise with the driver's reply, as the value it waits for.
pub(crate) fn settle(waiting: Waiting, reply: Reply, store: &Store) {
    let value = match (waiting.expect, reply) {
        (Expect::Token, Reply::Token { access_token, .. }) => {
            Ok(JsValue::from_str(access_token.expose()))
        }
        (Expect::Login, Reply::LoggedIn(login)) => Ok(events::to_js(&LoginResult::from(login))),
        (Expect::Logout, Reply::LoggedOut(logout)) => {
            Ok(events::to_js(&LogoutResult::from(logout)))
        }
        (
            Expect::Status,
            Reply::Status {
                status,
                storage_problem,
            },
        ) => Ok(events::to_js(&StatusReport {
            status,
            storage_error: storage_problem.as_deref().and_then(|p| store.error_kind(p)),
            storage_problem,
            storage_warning: store.warning().map(str::to_owned),
        })),
        (_, Reply::Failed { error }) => Err(Failure::from(error)),
        (_, Reply::Refused { rejected }) => Err(Failure::new("protocol", rejected.to_string())),
        _ => Err(Failure::new("protocol", "an answer of the wrong kind")),
    };
    let _ = match value {
        Ok(value) => waiting.resolve.call1(&JsValue::UNDEFINED, &value),
        Err(failure) => waiting.reject.call1(&JsValue::UNDEFINED, &failure.to_js()),
    };
}
