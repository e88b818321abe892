//! The errors promises reject with: a JS `Error` named `TesseraError` with a stable `code`.

use tessera_engine::{Error, ErrorKind};
use wasm_bindgen::JsValue;

use super::glue;

/// Why a call failed, as the embedder sees it. Messages never contain a token, code or
/// verifier: the engine's errors are written that way, and host messages add none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The session was closed (`Session.close()` or the actor stopped).
    pub fn closed() -> Self {
        Self::new(
            "closed",
            "this session is closed; open a new one with Session.open",
        )
    }

    pub fn to_js(&self) -> JsValue {
        glue::tessera_error(self.code, &self.message)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match error.kind() {
            ErrorKind::NotLoggedIn => "not_logged_in",
            ErrorKind::Denied => "denied",
            ErrorKind::Network => "network",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Config => "config",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Storage => "storage",
            ErrorKind::Stopped => return Self::closed(),
        };
        Self::new(code, error.to_string())
    }
}

impl From<Failure> for JsValue {
    fn from(failure: Failure) -> Self {
        failure.to_js()
    }
}
