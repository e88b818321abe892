//! Encoding requests and reading responses, one module per kind of exchange.
//!
//! These are plain functions from values to values; the state machine decides when to
//! call them and what to do with the result.

pub(crate) mod authorize;
pub(crate) mod device;
pub(crate) mod discovery;
pub(crate) mod id_token;
pub(crate) mod logout;
pub(crate) mod response;
pub(crate) mod token;
