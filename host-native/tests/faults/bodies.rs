//! Bodies that are not token responses: HTML, truncated JSON, oversized or endless bodies,
//! wrong content types.

use super::*;

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
