//! Per-state tests: each module starts in one state (via [`scenario::Scenario`]) and
//! checks the transitions its handler documents.

mod scenario;

mod awaiting_callback;
mod checking_signature;
mod confirming_grant_loss;
mod derived;
mod discovering;
mod exchanging_code;
mod idle;
mod loading_session;
mod locking_session;
mod logged_out;
mod polling_device;
mod properties;
mod refreshing;
mod revoking;
mod waiting_to_poll;
