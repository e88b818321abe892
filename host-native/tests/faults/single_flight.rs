//! 401s from a resource server, and single flight under concurrent callers.

use super::*;

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
