//! Redirects from the token endpoint are reported, never followed.

use super::*;

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
