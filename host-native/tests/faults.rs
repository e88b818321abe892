//! What a real authorization server cannot be made to do: the native host (client, session
//! actor, reqwest executor, encrypted session file) against mock servers on 127.0.0.1 that
//! fail on purpose — 5xx HTML pages, truncated or oversized bodies, wrong content types,
//! silence, refused connections, redirects, `slow_down` — and the single-flight guarantees
//! under concurrent callers.
//!
//! Each test asserts what the user sees: the typed error and its message, the session in
//! the encrypted file (decrypted with `SessionStore::load`), and how many requests the
//! provider received. The transcripts in `specs/` pin the engine's decisions with a
//! simulated clock; these tests pin that the host performs them with real sockets, real
//! timers and real storage.
//!
//! Time: every test but one takes two seconds or less (most well under one; those that
//! watch a background retry wait for its real one-second backoff). The device flow test
//! observes a real `slow_down` (the RFC's five seconds cannot be shortened) and takes about
//! eight, which is the whole file's wall time with the default two test threads.
//!
//! `http.rs` is private to the crate, so its header joining and body cap are tested here
//! through their effects (the body-limit tests below) rather than as unit tests.

#[path = "faults/support.rs"]
mod support;

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

// ----- 5xx while the token is still valid, and after it expired -----

/// The token is in its refresh window (100 s left of an hour), so the actor refreshes in
/// the background as soon as it starts. The provider answers 503 with an HTML page.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_503_html_while_token_valid_serves_current_token_and_retries_at_retry_at() {
    let mut server = Server::new_async().await;
    let hits = Hits::default();
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_status(503)
        .with_header("content-type", "text/html; charset=utf-8")
        .with_body_from_request(hits.body(HTML_503))
        .expect_at_least(1)
        .create_async()
        .await;
    let seeded = session("at-1", "rt-1", 3500, 100);
    let mut host = Host::start(config(&server.url()), Some(seeded.clone())).await;

    let (error, retry_at) = host.event(refresh_failed).await;
    let first_hit = hits.times()[0];
    let (status, problem) = unusable(&error);
    assert_eq!(status, 503);
    assert!(
        matches!(problem, ResponseProblem::NotAnObject { content_type: Some(ct), .. } if ct == "text/html"),
        "{problem:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Network);
    assert!(error.is_transient());
    let message = error.to_string();
    assert!(message.contains("HTTP 503"), "{message}");
    assert!(message.contains("text/html"), "{message}");
    let retry_at = retry_at.expect("a transient failure with a valid token is retried");
    let backoff = first_hit.millis_until(retry_at);
    assert!(
        (900..1500).contains(&backoff),
        "first retry after {backoff} ms"
    );
    assert!(retry_at < seeded.expires_at, "never retried past expiry");

    // Callers whose min_ttl the current token meets get it, without asking the provider.
    let token = host.token().await.expect("current token");
    assert_eq!(token.access_token, Secret::new("at-1"));
    assert_eq!(token.expires_at, seeded.expires_at);
    let token = host.token_for(60).await.expect("60 s left");
    assert_eq!(token.access_token, Secret::new("at-1"));
    assert!(now() < retry_at, "the callers above ran before the retry");
    assert_eq!(hits.count(), 1, "callers do not hammer a failing provider");
    assert_eq!(host.stored().await, Some(seeded.clone()), "disk unchanged");

    // The retry comes at retry_at, and the backoff doubles after a second failure.
    let (error, second_retry) = host.event(refresh_failed).await;
    let second_hit = hits.times()[1];
    assert!(second_hit >= retry_at, "{second_hit:?} before {retry_at:?}");
    assert_eq!(unusable(&error).0, 503);
    let backoff = second_hit.millis_until(second_retry.expect("retried again"));
    assert!(
        (1900..2500).contains(&backoff),
        "second retry after {backoff} ms"
    );
    assert_eq!(host.stored().await, Some(seeded), "disk still unchanged");
    mock.assert_async().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_500_html_while_token_valid_then_the_retry_succeeds_and_is_stored() {
    let mut server = Server::new_async().await;
    let failing = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_status(500)
        .with_header("content-type", "text/html")
        .with_body(HTML_500)
        .expect(1)
        .create_async()
        .await;
    let succeeding = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "application/json")
        .with_body(tokens_json("at-2", "rt-2", 3600))
        .expect(1)
        .create_async()
        .await;
    let seeded = session("at-1", "rt-1", 3500, 100);
    let stray = stray_posts(&mut server).await;
    let mut host = Host::start(config(&server.url()), Some(seeded.clone())).await;

    let (error, retry_at) = host.event(refresh_failed).await;
    assert_eq!(unusable(&error).0, 500);
    assert_eq!(error.kind(), ErrorKind::Network);
    assert!(retry_at.is_some());
    let token = host.token().await.expect("current token");
    assert_eq!(token.access_token, Secret::new("at-1"));

    // The background retry succeeds: rotated tokens on disk, callers get the new one.
    let stored = within(async {
        loop {
            match host.stored().await {
                Some(s) if s.access_token == Secret::new("at-2") => break s,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert_eq!(stored.refresh_token, Some(Secret::new("rt-2")));
    let token = host.token().await.expect("new token");
    assert_eq!(token.access_token, Secret::new("at-2"));
    failing.assert_async().await;
    succeeding.assert_async().await;
    stray.assert_async().await;
}

/// The token expired before the process started: the background refresh fails with no
/// retry (nothing left to protect), the caller's own attempt fails with a network error,
/// and the session is kept for when the provider is back.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_503_after_expiry_is_a_network_error_and_keeps_the_session() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_status(503)
        .with_header("content-type", "text/html")
        .with_body(HTML_503)
        .expect(2)
        .create_async()
        .await;
    let seeded = session("at-1", "rt-1", 3610, -10);
    let stray = stray_posts(&mut server).await;
    let mut host = Host::start(config(&server.url()), Some(seeded.clone())).await;

    let (error, retry_at) = host.event(refresh_failed).await;
    assert_eq!(unusable(&error).0, 503);
    assert_eq!(retry_at, None, "no background retry for an expired token");

    let error = host.token().await.expect_err("no usable token");
    assert_eq!(error.kind(), ErrorKind::Network);
    assert_eq!(unusable(&error).0, 503);
    let message = error.to_string();
    assert!(message.contains("HTTP 503"), "{message}");
    assert!(
        message.contains("may be misconfigured or down"),
        "{message}"
    );

    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(
        host.stored().await,
        Some(seeded),
        "not deleted, not changed"
    );
    let status = host.client.status().await.expect("status");
    assert!(status.status.logged_in);
}

// ----- bodies that are not token responses -----

#[tokio::test(flavor = "multi_thread")]
async fn code_exchange_answered_with_an_html_page_fails_the_login_and_stores_nothing() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(code_grant("code-123"))
        .with_header("content-type", "text/html; charset=UTF-8")
        .with_body(HTML_LOGIN_PAGE)
        .expect(1)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let mut host = Host::start(config(&server.url()), None).await;

    let error = host.paste_login("code-123").await.expect_err("login fails");
    let (status, problem) = unusable(&error);
    assert_eq!(status, 200);
    assert_eq!(
        *problem,
        ResponseProblem::NotAnObject {
            content_type: Some("text/html".into()),
            bytes: HTML_LOGIN_PAGE.len(),
        }
    );
    assert_eq!(error.kind(), ErrorKind::Protocol);
    let message = error.to_string();
    assert!(
        message.contains("expected a JSON object, got text/html"),
        "{message}"
    );
    assert!(
        !message.contains("<html"),
        "no server markup in messages: {message}"
    );
    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, None);
    assert!(!host.client.status().await.expect("status").status.logged_in);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_answered_with_an_html_page_fails_and_keeps_the_session() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "text/html")
        .with_body(HTML_LOGIN_PAGE)
        .expect(1)
        .create_async()
        .await;
    let seeded = fresh_session();
    let stray = stray_posts(&mut server).await;
    let host = Host::start(config(&server.url()), Some(seeded.clone())).await;

    let error = host
        .token_for(MORE_THAN_LEFT)
        .await
        .expect_err("refresh fails");
    let (status, problem) = unusable(&error);
    assert_eq!(status, 200);
    assert!(
        matches!(problem, ResponseProblem::NotAnObject { content_type: Some(ct), .. } if ct == "text/html"),
        "{problem:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Protocol);
    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, Some(seeded));
    // The current token still serves callers it satisfies.
    let token = host.token().await.expect("current token");
    assert_eq!(token.access_token, Secret::new("at-1"));
}

const TRUNCATED: &str = r#"{"access_token":"at-2","token_type":"Bearer","expires_in":36"#;

#[tokio::test(flavor = "multi_thread")]
async fn code_exchange_answered_with_truncated_json_fails_the_login() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(code_grant("code-123"))
        .with_header("content-type", "application/json")
        .with_body(TRUNCATED)
        .expect(1)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let mut host = Host::start(config(&server.url()), None).await;

    let error = host.paste_login("code-123").await.expect_err("login fails");
    assert_eq!(
        *unusable(&error).1,
        ResponseProblem::NotAnObject {
            content_type: Some("application/json".into()),
            bytes: TRUNCATED.len(),
        }
    );
    let message = error.to_string();
    assert!(message.contains("(HTTP 200) is unusable"), "{message}");
    assert!(!message.contains("at-2"), "no token in messages: {message}");
    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_answered_with_truncated_json_fails_and_keeps_the_session() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "application/json")
        .with_body(TRUNCATED)
        .expect(1)
        .create_async()
        .await;
    let seeded = fresh_session();
    let stray = stray_posts(&mut server).await;
    let host = Host::start(config(&server.url()), Some(seeded.clone())).await;

    let error = host
        .token_for(MORE_THAN_LEFT)
        .await
        .expect_err("refresh fails");
    assert!(
        matches!(unusable(&error).1, ResponseProblem::NotAnObject { bytes, .. } if *bytes == TRUNCATED.len()),
        "{error:?}"
    );
    assert!(!error.to_string().contains("at-2"));
    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, Some(seeded));
}

/// One mebibyte of (valid) JSON against a 1 KiB limit.
fn one_mebibyte_of_json() -> String {
    format!(
        r#"{{"access_token":"{}","token_type":"Bearer"}}"#,
        "a".repeat(1 << 20)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn code_exchange_answered_with_1_mib_fails_as_too_large() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(code_grant("code-123"))
        .with_header("content-type", "application/json")
        .with_body(one_mebibyte_of_json())
        .expect(1)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let mut host = Host::start(
        tessera::engine::Config {
            max_response_bytes: 1024,
            ..config(&server.url())
        },
        None,
    )
    .await;

    let error = host.paste_login("code-123").await.expect_err("login fails");
    assert_eq!(
        *unusable(&error).1,
        ResponseProblem::TooLarge { limit: 1024 }
    );
    let message = error.to_string();
    assert!(message.contains("larger than 1024 bytes"), "{message}");
    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_answered_with_1_mib_fails_as_too_large_and_keeps_the_session() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "application/json")
        .with_body(one_mebibyte_of_json())
        .expect(1)
        .create_async()
        .await;
    let seeded = fresh_session();
    let stray = stray_posts(&mut server).await;
    let host = Host::start(
        tessera::engine::Config {
            max_response_bytes: 1024,
            ..config(&server.url())
        },
        Some(seeded.clone()),
    )
    .await;

    let error = host
        .token_for(MORE_THAN_LEFT)
        .await
        .expect_err("refresh fails");
    assert_eq!(
        *unusable(&error).1,
        ResponseProblem::TooLarge { limit: 1024 }
    );
    assert!(error.to_string().contains("larger than 1024 bytes"));
    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, Some(seeded));
}

/// A body that would go on for 512 MiB: the host must stop reading after the limit and
/// drop the connection, which the server sees as a failed write long before the end. A
/// host that drained the body would make the server finish (and would hit the timeout).
#[tokio::test(flavor = "multi_thread")]
async fn refresh_body_that_never_ends_is_cut_off_at_the_limit() {
    const CAP: usize = 512 << 20;
    let written = Arc::new(AtomicUsize::new(0));
    let broken = Arc::new(AtomicBool::new(false));
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "application/json")
        .with_chunked_body({
            let (written, broken) = (written.clone(), broken.clone());
            move |w| {
                let chunk = [b' '; 16 * 1024];
                while written.load(Ordering::SeqCst) < CAP {
                    if let Err(error) = w.write_all(&chunk) {
                        broken.store(true, Ordering::SeqCst);
                        return Err(error);
                    }
                    written.fetch_add(chunk.len(), Ordering::SeqCst);
                }
                Ok(())
            }
        })
        .expect(1)
        .create_async()
        .await;
    let seeded = fresh_session();
    let stray = stray_posts(&mut server).await;
    let host = Host::start(
        tessera::engine::Config {
            max_response_bytes: 1024,
            http_timeout_ms: 8_000,
            ..config(&server.url())
        },
        Some(seeded.clone()),
    )
    .await;

    let started = Instant::now();
    let error = host
        .token_for(MORE_THAN_LEFT)
        .await
        .expect_err("refresh fails");
    assert_eq!(
        *unusable(&error).1,
        ResponseProblem::TooLarge { limit: 1024 }
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    within(async {
        while !broken.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let written = written.load(Ordering::SeqCst);
    assert!(
        written < 64 << 20,
        "the server wrote {written} bytes before the host hung up"
    );
    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, Some(seeded));
}

/// The limit is on the body's length: `max_response_bytes` is accepted, one byte more is
/// not (the host reads `limit + 1` bytes so the engine can tell the two apart).
#[tokio::test(flavor = "multi_thread")]
async fn body_of_exactly_max_response_bytes_is_accepted_and_one_byte_more_is_refused() {
    const LIMIT: usize = 1024;
    let padded = |access: &str, refresh: &str, len: usize| {
        let body = tokens_json(access, refresh, 3600);
        format!("{body}{}", " ".repeat(len - body.len()))
    };
    let mut server = Server::new_async().await;
    let at_limit = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "application/json")
        .with_body(padded("at-2", "rt-2", LIMIT))
        .expect(1)
        .create_async()
        .await;
    let over_limit = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-2"))
        .with_header("content-type", "application/json")
        .with_body(padded("at-3", "rt-3", LIMIT + 1))
        .expect(1)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let host = Host::start(
        tessera::engine::Config {
            max_response_bytes: LIMIT,
            ..config(&server.url())
        },
        Some(fresh_session()),
    )
    .await;

    let token = host
        .token_for(MORE_THAN_LEFT)
        .await
        .expect("a body of exactly the limit is read");
    assert_eq!(token.access_token, Secret::new("at-2"));
    let error = host
        .token_for(MORE_THAN_LEFT)
        .await
        .expect_err("one byte over the limit");
    assert_eq!(
        *unusable(&error).1,
        ResponseProblem::TooLarge { limit: LIMIT }
    );
    at_limit.assert_async().await;
    over_limit.assert_async().await;
    stray.assert_async().await;
    let stored = host.stored().await.expect("session");
    assert_eq!(stored.access_token, Secret::new("at-2"));
    assert_eq!(stored.refresh_token, Some(Secret::new("rt-2")));
}

/// A form-encoded body that claims to be JSON: read as JSON (the label says so), refused,
/// and the error names the content type it came with.
#[tokio::test(flavor = "multi_thread")]
async fn code_exchange_answered_with_a_form_body_labelled_json_fails_naming_the_type() {
    const FORM: &str = "access_token=at-2&token_type=bearer&expires_in=3600";
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(code_grant("code-123"))
        .with_header("content-type", "application/json")
        .with_body(FORM)
        .expect(1)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let mut host = Host::start(config(&server.url()), None).await;

    let error = host.paste_login("code-123").await.expect_err("login fails");
    assert_eq!(
        *unusable(&error).1,
        ResponseProblem::NotAnObject {
            content_type: Some("application/json".into()),
            bytes: FORM.len(),
        }
    );
    assert!(error.to_string().contains("application/json"));
    assert!(!error.to_string().contains("at-2"));
    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, None);
}

/// The other way round: a well-formed JSON token response labelled `text/html` (a
/// misconfigured gateway) is read for what it is: the engine decides on the body and uses
/// the label only to recognise form encoding (`engine/src/protocol/response.rs`).
#[tokio::test(flavor = "multi_thread")]
async fn refresh_answered_with_json_labelled_text_html_is_read_as_json() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "text/html")
        .with_body(tokens_json("at-2", "rt-2", 3600))
        .expect(1)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let host = Host::start(config(&server.url()), Some(fresh_session())).await;

    let token = host.token_for(MORE_THAN_LEFT).await.expect("refreshed");
    assert_eq!(token.access_token, Secret::new("at-2"));
    mock.assert_async().await;
    stray.assert_async().await;
    let stored = host.stored().await.expect("session");
    assert_eq!(stored.refresh_token, Some(Secret::new("rt-2")));
}

// ----- no answer at all -----

/// The token expired before the process started, so the actor's own refresh goes first
/// (and fails, with no retry scheduled); then the caller's refresh is timed.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_to_a_server_that_never_answers_times_out_at_http_timeout_ms() {
    let blackhole = Blackhole::start();
    let seeded = session("at-1", "rt-1", 3610, -10);
    let mut host = Host::start(
        tessera::engine::Config {
            http_timeout_ms: 300,
            ..config(&format!("http://{}", blackhole.addr))
        },
        Some(seeded.clone()),
    )
    .await;
    let (error, retry_at) = host.event(refresh_failed).await;
    assert_eq!(transport(&error).0, TransportErrorKind::Timeout);
    assert_eq!(retry_at, None);

    let started = Instant::now();
    let error = host.token().await.expect_err("times out");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1500),
        "answered after {elapsed:?}"
    );
    let (kind, detail) = transport(&error);
    assert_eq!(kind, TransportErrorKind::Timeout);
    assert_eq!(detail, "no answer within 300 ms");
    assert_eq!(error.kind(), ErrorKind::Network);
    let message = error.to_string();
    assert!(
        message.contains("the request to the token endpoint timed out"),
        "{message}"
    );
    assert_eq!(blackhole.accepted(), 2, "one connection per refresh");
    assert_eq!(host.stored().await, Some(seeded));
}

/// The provider (or a proxy) starts a 200 answer and drops the connection mid-body. The
/// refresh token may or may not have been rotated; the host reports a transport failure
/// (transient), never a parse error on half a body, and keeps the session.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_connection_dropped_mid_body_is_a_transient_transport_error() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "application/json")
        .with_chunked_body(|w| {
            w.write_all(br#"{"access_token":"at-2","token_type":"Bea"#)?;
            w.flush()?;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the proxy went away",
            ))
        })
        .expect(2)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let seeded = session("at-1", "rt-1", 3610, -10);
    let mut host = Host::start(config(&server.url()), Some(seeded.clone())).await;
    let (error, retry_at) = host.event(refresh_failed).await;
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(retry_at, None, "expired: no background retry");

    let error = host.token().await.expect_err("no usable token");
    let (kind, detail) = transport(&error);
    assert_eq!(kind, TransportErrorKind::Other, "{detail}");
    assert!(!detail.contains("at-2"), "no body in messages: {detail}");
    assert!(error.is_transient());
    assert_eq!(error.kind(), ErrorKind::Network);
    mock.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, Some(seeded));
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_to_a_closed_port_fails_to_connect() {
    let port = dead_port();
    let seeded = fresh_session();
    let host = Host::start(
        config(&format!("http://127.0.0.1:{port}")),
        Some(seeded.clone()),
    )
    .await;

    let error = host
        .token_for(MORE_THAN_LEFT)
        .await
        .expect_err("nothing listens");
    let (kind, detail) = transport(&error);
    assert_eq!(kind, TransportErrorKind::Connect, "{detail}");
    assert!(!detail.contains("rt-1"));
    assert_eq!(error.kind(), ErrorKind::Network);
    assert!(error.to_string().contains("could not connect"), "{error}");
    assert_eq!(host.stored().await, Some(seeded));
}

// ----- redirects -----

/// A redirect from the token endpoint is reported, not followed: following it would send
/// the refresh token (307/308 keep the body) to wherever the Location points.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_answered_with_a_302_is_not_followed_and_the_error_names_the_status() {
    let mut server = Server::new_async().await;
    let elsewhere = format!("{}/elsewhere", server.url());
    let redirecting = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_status(302)
        .with_header("location", &elsewhere)
        .expect(1)
        .create_async()
        .await;
    let followed_post = server
        .mock("POST", "/elsewhere")
        .with_body(tokens_json("at-evil", "rt-evil", 3600))
        .expect(0)
        .create_async()
        .await;
    let followed_get = server
        .mock("GET", "/elsewhere")
        .with_body(tokens_json("at-evil", "rt-evil", 3600))
        .expect(0)
        .create_async()
        .await;
    let seeded = fresh_session();
    let stray = stray_posts(&mut server).await;
    let host = Host::start(config(&server.url()), Some(seeded.clone())).await;

    let error = host
        .token_for(MORE_THAN_LEFT)
        .await
        .expect_err("a redirect is no token response");
    assert_eq!(transport(&error).0, TransportErrorKind::Redirect);
    assert!(error.to_string().contains("HTTP 302"), "{error}");
    assert!(
        error
            .to_string()
            .contains("redirect, which is not followed"),
        "{error}"
    );
    redirecting.assert_async().await;
    followed_post.assert_async().await;
    followed_get.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, Some(seeded));
}

/// 307 is the dangerous one: a client that followed it would re-post the code and the
/// PKCE verifier to the new location.
#[tokio::test(flavor = "multi_thread")]
async fn code_exchange_answered_with_a_307_is_not_followed() {
    let mut server = Server::new_async().await;
    let elsewhere = format!("{}/elsewhere", server.url());
    let redirecting = server
        .mock("POST", "/token")
        .match_body(code_grant("code-123"))
        .with_status(307)
        .with_header("location", &elsewhere)
        .expect(1)
        .create_async()
        .await;
    let followed = server
        .mock("POST", "/elsewhere")
        .with_body(tokens_json("at-evil", "rt-evil", 3600))
        .expect(0)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let mut host = Host::start(config(&server.url()), None).await;

    let error = host.paste_login("code-123").await.expect_err("login fails");
    assert_eq!(transport(&error).0, TransportErrorKind::Redirect);
    assert!(error.to_string().contains("HTTP 307"), "{error}");
    assert!(
        error
            .to_string()
            .contains("redirect, which is not followed"),
        "{error}"
    );
    redirecting.assert_async().await;
    followed.assert_async().await;
    stray.assert_async().await;
    assert_eq!(host.stored().await, None);
}

// ----- device flow: slow_down -----

/// The one slow test (about 8 s), because RFC 8628 §3.5's step is five real seconds and
/// the host's timer is what is under test. Polls: `authorization_pending` (the interval of
/// 1 s stays), `slow_down` (the next poll waits 1 + 5 s), then tokens. The pending poll
/// comes first so that the 1 s gap it leaves is the baseline the 6 s gap is compared with,
/// measured on the same machine in the same run. That the increase also holds for every
/// later poll is engine arithmetic, pinned with a simulated clock by
/// `specs/device/slow-down-twice.toml`; repeating it here would cost another six seconds.
#[tokio::test(flavor = "multi_thread")]
async fn device_flow_slow_down_adds_five_seconds_to_the_polling_interval() {
    const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
    let mut server = Server::new_async().await;
    let issued = Hits::default();
    let polls = Hits::default();
    let device = server
        .mock("POST", "/device")
        .with_header("content-type", "application/json")
        .with_body_from_request(issued.body(
            r#"{"device_code":"dc-1","user_code":"WDJBMJHT","verification_uri":"https://op.example/device","expires_in":600,"interval":1}"#,
        ))
        .expect(1)
        .create_async()
        .await;
    let mut poll = |body: &str, status: usize| {
        server
            .mock("POST", "/token")
            .match_body(Matcher::AllOf(vec![
                Matcher::UrlEncoded("grant_type".into(), DEVICE_GRANT.into()),
                Matcher::UrlEncoded("device_code".into(), "dc-1".into()),
            ]))
            .with_status(status)
            .with_header("content-type", "application/json")
            .with_body_from_request(polls.body(body))
            .expect(1)
    };
    let pending = poll(r#"{"error":"authorization_pending"}"#, 400)
        .create_async()
        .await;
    let slow_down = poll(r#"{"error":"slow_down"}"#, 400).create_async().await;
    let granted = poll(&tokens_json("at-dev", "rt-dev", 3600), 200)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let mut host = Host::start(config(&server.url()), None).await;

    let login = tokio::spawn({
        let client = host.client.clone();
        async move { client.login(LoginMethod::Device).await }
    });
    let code = host
        .event(|e| match e {
            HostEvent::UserCode(code) => Some(code),
            _ => None,
        })
        .await;
    assert_eq!(code.display_code, "WDJB-MJHT");
    let report = within(login).await.expect("join").expect("device login");
    assert_eq!(report.scopes, vec!["api".to_owned()]);

    let issued = issued.times()[0];
    let polls = polls.times();
    assert_eq!(polls.len(), 3);
    let gaps: Vec<i64> = std::iter::once(issued)
        .chain(polls.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| i64::try_from(w[0].millis_until(w[1])).expect("gap"))
        .collect();
    // issued → pending, pending → slow_down: the provider's interval (1 s).
    assert!((900..1600).contains(&gaps[0]), "gaps {gaps:?}");
    assert!((900..1600).contains(&gaps[1]), "gaps {gaps:?}");
    // slow_down → next poll: five seconds more than the gap before it.
    let step = gaps[2] - gaps[1];
    assert!((4500..5500).contains(&step), "gaps {gaps:?}");

    device.assert_async().await;
    pending.assert_async().await;
    slow_down.assert_async().await;
    granted.assert_async().await;
    stray.assert_async().await;
    let stored = host.stored().await.expect("stored");
    assert_eq!(stored.access_token, Secret::new("at-dev"));
    assert_eq!(stored.refresh_token, Some(Secret::new("rt-dev")));
}

// ----- 401 from a resource server, and single flight -----

/// A token response held back for 300 ms, so concurrent callers all arrive while the one
/// refresh is in flight.
fn slow_tokens(
    access: &str,
    refresh: &str,
) -> impl Fn(&mut dyn std::io::Write) -> std::io::Result<()> + use<> {
    let body = tokens_json(access, refresh, 3600);
    move |w| {
        std::thread::sleep(Duration::from_millis(300));
        w.write_all(body.as_bytes())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_rejected_forces_exactly_one_refresh() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "application/json")
        .with_body(tokens_json("at-2", "rt-2", 3600))
        .expect(1)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let host = Host::start(config(&server.url()), Some(fresh_session())).await;

    // A valid-looking token the resource server refused anyway (revoked, say).
    let token = host.token().await.expect("cached");
    assert_eq!(token.access_token, Secret::new("at-1"));
    let retry = host
        .rejected(token.access_token.clone())
        .await
        .expect("refreshed");
    assert_eq!(retry.access_token, Secret::new("at-2"));
    // On disk before the caller got it.
    let stored = host.stored().await.expect("session");
    assert_eq!(stored.access_token, Secret::new("at-2"));
    assert_eq!(stored.refresh_token, Some(Secret::new("rt-2")));

    // A late 401 for the old token: the newer one, no second refresh.
    let again = host
        .rejected(token.access_token)
        .await
        .expect("newer token");
    assert_eq!(again.access_token, Secret::new("at-2"));
    mock.assert_async().await;
    stray.assert_async().await;
}

/// After a 401 the provider is down: the caller gets the refresh error, not the token the
/// resource server just refused.
#[tokio::test(flavor = "multi_thread")]
async fn token_rejected_while_the_provider_is_down_fails_instead_of_returning_the_same_token() {
    let mut server = Server::new_async().await;
    let hits = Hits::default();
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_status(503)
        .with_header("content-type", "text/html")
        .with_body_from_request(hits.body(HTML_503))
        .expect_at_least(1)
        .create_async()
        .await;
    let seeded = fresh_session();
    let mut host = Host::start(config(&server.url()), Some(seeded.clone())).await;

    let error = host
        .rejected(Secret::new("at-1"))
        .await
        .expect_err("no other token to retry with");
    assert_eq!(unusable(&error).0, 503);
    assert_eq!(error.kind(), ErrorKind::Network);
    let (_, retry_at) = host.event(refresh_failed).await;
    let retry_at = retry_at.expect("the token is still valid: retried later");
    assert!(hits.times().iter().filter(|&&t| t < retry_at).count() == 1);
    mock.assert_async().await;
    assert_eq!(host.stored().await, Some(seeded));
}

/// ADR 003 and `get_token`: after a transient failure "a provider in trouble is not asked
/// again on every call" until the retry is due. A 401 during that backoff should not be an
/// exception: with `BearerAuth`, every failing resource request would otherwise send one
/// more refresh to the provider that is down.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_401s_during_the_refresh_backoff_do_not_reach_the_provider() {
    let mut server = Server::new_async().await;
    let hits = Hits::default();
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_status(503)
        .with_header("content-type", "text/html")
        .with_body_from_request(hits.body(HTML_503))
        .expect_at_least(1)
        .create_async()
        .await;
    let mut host = Host::start(config(&server.url()), Some(fresh_session())).await;

    host.rejected(Secret::new("at-1"))
        .await
        .expect_err("the provider is down");
    let (_, retry_at) = host.event(refresh_failed).await;
    let retry_at = retry_at.expect("retried later");
    // Five more resource requests fail with 401 before the retry is due.
    for _ in 0..5 {
        let error = host
            .rejected(Secret::new("at-1"))
            .await
            .expect_err("still no other token");
        assert_eq!(error.kind(), ErrorKind::Network);
    }
    assert!(now() < retry_at, "the 401s above came before the retry");
    let before_retry = hits.times().iter().filter(|&&t| t < retry_at).count();
    assert_eq!(before_retry, 1, "one refresh until the retry is due");
    mock.assert_async().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_token_rejected_from_five_tasks_refresh_once() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "application/json")
        .with_chunked_body(slow_tokens("at-2", "rt-2"))
        .expect(1)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let host = Host::start(config(&server.url()), Some(fresh_session())).await;

    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let client = host.client.clone();
            tokio::spawn(async move { client.token_rejected(Secret::new("at-1")).await })
        })
        .collect();
    for task in tasks {
        let token = within(task).await.expect("join").expect("refreshed");
        assert_eq!(token.access_token, Secret::new("at-2"));
    }
    mock.assert_async().await;
    stray.assert_async().await;
    let stored = host.stored().await.expect("session");
    assert_eq!(stored.refresh_token, Some(Secret::new("rt-2")));
}

/// The token expired before the process started; fifty callers ask at once (the actor's
/// own background refresh is already on its way). One refresh serves them all.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_access_token_calls_on_an_expired_token_refresh_once() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/token")
        .match_body(refresh_grant("rt-1"))
        .with_header("content-type", "application/json")
        .with_chunked_body(slow_tokens("at-2", "rt-2"))
        .expect(1)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let host = Host::start(
        config(&server.url()),
        Some(session("at-1", "rt-1", 3610, -10)),
    )
    .await;

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = host.client.clone();
            tokio::spawn(async move { client.access_token().await })
        })
        .collect();
    for task in tasks {
        let token = within(task).await.expect("join").expect("refreshed");
        assert_eq!(token.access_token, Secret::new("at-2"));
    }
    mock.assert_async().await;
    stray.assert_async().await;
    let stored = host.stored().await.expect("session");
    assert_eq!(stored.access_token, Secret::new("at-2"));
    assert_eq!(stored.refresh_token, Some(Secret::new("rt-2")));
}
