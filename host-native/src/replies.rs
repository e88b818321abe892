//! The answers to the library's calls: each caller's reply handle, by what it waits for,
//! and the driver's [`Reply`] turned into the type the caller gets.

use tessera_engine::driver::Reply;
use tessera_engine::{Error, Rejected};
use tokio::sync::oneshot;

use crate::events::{DerivedToken, HandedOff, LoginReport, LogoutReport, SharedSecret, Token};
use crate::loopback::{CallbackPage, PendingCallback};
use crate::store::StoreInfo;

/// Where the answer to one call goes.
pub type ReplyTo<T> = oneshot::Sender<Result<T, Error>>;

/// A caller's reply handle, by what it waits for.
#[derive(Debug)]
pub enum Waiting {
    Token(ReplyTo<Token>),
    DerivedToken(ReplyTo<DerivedToken>),
    Login(ReplyTo<LoginReport>),
    HandedOff(ReplyTo<HandedOff>),
    Logout(ReplyTo<LogoutReport>),
    Pasted(oneshot::Sender<Result<(), Rejected>>),
    Status(oneshot::Sender<StatusReport>),
    /// The browser waiting on the loopback server for its result page.
    Page(PendingCallback),
    /// Nobody waits (a cancel).
    Nobody,
}

/// What `status` shows: the engine's projection, where the session is stored, and the
/// last storage problem (e.g. an unreadable session file) so the user learns why they
/// appear logged out.
#[derive(Clone, Debug)]
pub struct StatusReport {
    pub status: tessera_engine::Status,
    pub store: StoreInfo,
    pub storage_problem: Option<String>,
}

/// Answers one caller with the driver's reply, as the type it waits for.
pub(crate) fn answer(waiting: Waiting, reply: Reply) {
    match waiting {
        Waiting::Token(sender) => drop(sender.send(match reply {
            Reply::Token {
                access_token,
                expires_at,
            } => Ok(Token {
                access_token: SharedSecret::from(&access_token),
                expires_at,
            }),
            other => Err(failure(other)),
        })),
        Waiting::DerivedToken(sender) => drop(sender.send(match reply {
            Reply::DerivedToken {
                name,
                token,
                expires_at,
            } => Ok(DerivedToken {
                name,
                token: SharedSecret::from(&token),
                expires_at,
            }),
            other => Err(failure(other)),
        })),
        Waiting::Login(sender) => drop(sender.send(match reply {
            Reply::LoggedIn(login) => Ok(login),
            other => Err(failure(other)),
        })),
        Waiting::HandedOff(sender) => drop(sender.send(match reply {
            Reply::HandedOff { url, login } => Ok(HandedOff { url, login }),
            other => Err(failure(other)),
        })),
        Waiting::Logout(sender) => drop(sender.send(match reply {
            Reply::LoggedOut(logout) => Ok(logout),
            other => Err(failure(other)),
        })),
        Waiting::Pasted(sender) => drop(sender.send(match reply {
            Reply::Refused { rejected } => Err(rejected),
            _ => Ok(()),
        })),
        Waiting::Page(page) => page.respond(match reply {
            Reply::LoggedIn(_) => CallbackPage::Success,
            Reply::Refused { rejected } => CallbackPage::Ignored {
                message: rejected.to_string(),
            },
            Reply::Failed { error } => CallbackPage::Failed {
                message: error.to_string(),
            },
            _ => CallbackPage::Failed {
                message: "the login ended".into(),
            },
        }),
        Waiting::Status(_) | Waiting::Nobody => {}
    }
}

/// The error in a reply that is not the answer a call waits for.
fn failure(reply: Reply) -> Error {
    match reply {
        Reply::Failed { error } => error,
        Reply::Refused { rejected } => Error::RedirectRefused {
            reason: rejected.to_string(),
        },
        _ => Error::Config {
            problem: "an answer of the wrong kind".into(),
        },
    }
}
