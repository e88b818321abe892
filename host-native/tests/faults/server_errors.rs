//! 5xx answers from the token endpoint, while the token is still valid and after it expired.

use super::*;

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
