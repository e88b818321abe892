//! What a real authorization server cannot be made to do: the native host (client, session
//! actor, reqwest executor, encrypted session file) against mock servers on 127.0.0.1 that
//! fail on purpose — 5xx HTML pages, truncated or oversized bodies, wrong content types,
//! silence, refused connections, redirects, `slow_down` — and the single-flight guarantees
//! under concurrent callers.
//!
//! Each test asserts what the user sees: the typed error and its message, the session in
//! the encrypted file (decrypted with `BlockingStore::load`), and how many requests the
//! provider received. The transcripts in `specs/` pin the engine's decisions with a
//! simulated clock; these tests pin that the host performs them with real sockets, real
//! timers and real storage.
//!
//! Time: every test but one takes two seconds or less (most well under one; those that
//! watch a background retry wait for its real one-second backoff). The device flow test
//! observes a real `slow_down` (the RFC's five seconds cannot be shortened) and takes about
//! eight, which is the whole suite's wall time with the default two test threads.
//!
//! `http.rs` is private to the crate, so its header joining and body cap are tested here
//! through their effects (the body-limit tests in `bodies.rs`) rather than as unit tests.
//!
//! One module per theme: `server_errors` (5xx), `bodies` (answers that are not token
//! responses, body limits), `no_answer` (timeouts, dropped connections, closed ports),
//! `redirects`, `device` (`slow_down`), `single_flight` (401s and concurrent callers);
//! `support` holds the mock provider and the host under test.

mod support;

mod bodies;
mod device;
mod no_answer;
mod redirects;
mod server_errors;
mod single_flight;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mockito::{Matcher, Server};
use tessera::HostEvent;
use tessera::engine::{
    Endpoint, Error, ErrorKind, LoginMethod, ResponseProblem, Secret, TransportErrorKind,
    UnixMillis,
};

use support::{
    Blackhole, Hits, Host, config, dead_port, now, session, stray_posts, tokens_json, within,
};

const HTML_503: &str = "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\
<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>\n";
const HTML_500: &str = "<html><body><h1>500 Internal Server Error</h1></body></html>";
const HTML_LOGIN_PAGE: &str = "<!doctype html><html><head><title>Sign in</title></head>\
<body><form method=post action=/login><input name=user></form></body></html>";

fn refresh_grant(refresh_token: &str) -> Matcher {
    Matcher::AllOf(vec![
        Matcher::UrlEncoded("grant_type".into(), "refresh_token".into()),
        Matcher::UrlEncoded("refresh_token".into(), refresh_token.into()),
    ])
}

fn code_grant(code: &str) -> Matcher {
    Matcher::AllOf(vec![
        Matcher::UrlEncoded("grant_type".into(), "authorization_code".into()),
        Matcher::UrlEncoded("code".into(), code.into()),
    ])
}

/// A session valid for an hour and outside its refresh window: nothing refreshes on its
/// own, so every request a test sees was caused by the test.
fn fresh_session() -> tessera::engine::StoredSession {
    session("at-1", "rt-1", 0, 3600)
}

/// More lifetime than a fresh session has left: forces one refresh whose outcome the
/// caller gets.
const MORE_THAN_LEFT: u64 = 3700;

fn unusable(error: &Error) -> (u16, &ResponseProblem) {
    match error {
        Error::Response {
            endpoint: Endpoint::Token,
            status,
            problem,
        } => (*status, problem),
        other => panic!("expected an unusable token response, got {other:?}"),
    }
}

fn transport(error: &Error) -> (TransportErrorKind, &str) {
    match error {
        Error::Transport {
            endpoint: Endpoint::Token,
            kind,
            detail,
        } => (*kind, detail),
        other => panic!("expected a transport error at the token endpoint, got {other:?}"),
    }
}

fn refresh_failed(event: HostEvent) -> Option<(Error, Option<UnixMillis>)> {
    match event {
        HostEvent::RefreshFailed { error, retry_at } => Some((error, retry_at)),
        _ => None,
    }
}
