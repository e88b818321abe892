//! Derived tokens: the login and its refreshes go to the real provider; the derived
//! endpoint is a mockito stand-in (the provider offers none, and no real server can be
//! made to answer 403, 404, HTML or 5xx on demand). The provider's access tokens live 60 s,
//! less than the 5 minutes a derived token is fetched with: every fetch refreshes first.

use std::sync::{Arc, Mutex};

use tessera::engine::{DerivedEndpoint, DerivedProblem, Error};

use super::{current_token, set_profile_key};
use crate::support::*;

/// The profile's `derived` table: each name at `<server>/<name>`.
fn derived_table(server: &str, names: &[&str]) -> toml::Value {
    let table: toml::Table = names
        .iter()
        .map(|name| {
            let mut endpoint = toml::Table::new();
            endpoint.insert("url".into(), format!("{server}/{name}").into());
            ((*name).to_owned(), toml::Value::Table(endpoint))
        })
        .collect();
    toml::Value::Table(table)
}

#[tokio::test(flavor = "multi_thread")]
async fn token_derived_fetches_with_a_refreshed_access_token_and_types_each_failure() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");
    let mut server = mockito::Server::new_async().await;
    let names = ["ws", "denied", "missing", "flaky", "down", "html"];
    set_profile_key(
        tessera.dir.path(),
        "derived",
        derived_table(&server.url(), &names),
    );

    // Success: refreshed first, then POSTed with the new access token as Bearer.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let ws = server
        .mock("POST", "/ws")
        .with_header("content-type", "application/json")
        .with_body_from_request({
            let seen = seen.clone();
            move |request| {
                let authorization = request
                    .header("authorization")
                    .first()
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                seen.lock().expect("lock").push(authorization);
                br#"{"token": "ws-token-1", "expires_in": 300}"#.to_vec()
            }
        })
        .create_async()
        .await;
    let refreshes = provider.refresh_requests().await;
    let derived = tessera.run(&["token", "--derived", "ws"]);
    assert_ok(&derived, "token --derived ws");
    assert_eq!(stdout(&derived), "ws-token-1");
    assert_eq!(
        provider.refresh_requests().await,
        refreshes + 1,
        "the 60 s access token was refreshed first"
    );
    let access_token = current_token(&tessera);
    assert_eq!(
        *seen.lock().expect("lock"),
        [format!("Bearer {access_token}")],
        "sent with the refreshed (and stored) access token"
    );
    assert!(provider.is_active(&access_token).await);
    ws.assert_async().await;

    // 5xx twice, then a token: retried with backoff.
    let unavailable = server
        .mock("POST", "/flaky")
        .with_status(503)
        .expect(2)
        .create_async()
        .await;
    let recovered = server
        .mock("POST", "/flaky")
        .with_body(r#"{"access_token": "ws-token-2", "expires_at": 4102444800}"#)
        .create_async()
        .await;
    let flaky = tessera.run(&["token", "--derived", "flaky"]);
    assert_ok(&flaky, "token --derived flaky");
    assert_eq!(stdout(&flaky), "ws-token-2");
    unavailable.assert_async().await;
    recovered.assert_async().await;

    // Each failure: its exit code, a message naming it, nothing on stdout.
    let down = server
        .mock("POST", "/down")
        .with_status(500)
        .expect(3)
        .create_async()
        .await;
    server
        .mock("POST", "/denied")
        .with_status(403)
        .create_async()
        .await;
    server
        .mock("POST", "/missing")
        .with_status(404)
        .create_async()
        .await;
    server
        .mock("POST", "/html")
        .with_header("content-type", "text/html")
        .with_body("<html><body>Sign in</body></html>")
        .create_async()
        .await;
    for (name, exit, says) in [
        ("denied", 4, "not entitled"),
        ("missing", 7, "does not offer the derived token `missing`"),
        ("down", 5, "could not be fetched (3 attempts)"),
        ("html", 6, "text/html"),
        (
            "voice",
            7,
            "configured: denied, down, flaky, html, missing, ws",
        ),
    ] {
        let failed = tessera.run(&["token", "--derived", name]);
        assert_eq!(
            failed.status.code(),
            Some(exit),
            "{name}: {}",
            stderr(&failed)
        );
        assert!(
            stderr(&failed).contains(says),
            "{name}: {}",
            stderr(&failed)
        );
        assert!(stdout(&failed).is_empty(), "{name}: nothing on stdout");
        assert!(
            !stderr(&failed).contains(&access_token),
            "{name}: no token in the message"
        );
    }
    assert!(
        stderr(&tessera.run(&["token", "--derived", "missing"]))
            .contains("[profiles.default.derived.missing]"),
        "says where the endpoint is configured"
    );
    down.assert_async().await;
    assert_ok(&tessera.run(&["status"]), "the session is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_library_caches_a_derived_token_until_it_expires() {
    let provider = Provider::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = mockito::Server::new_async().await;
    let first = server
        .mock("POST", "/ws")
        .with_body(r#"{"token": "ws-1", "expires_in": 60}"#)
        .create_async()
        .await;
    let second = server
        .mock("POST", "/ws")
        .with_body(r#"{"token": "ws-2", "expires_in": 600}"#)
        .create_async()
        .await;
    let url = format!("{}/ws", server.url());
    let client = crate::library::logged_in_client_with(&provider, dir.path(), |config| {
        config.derived.insert("ws".into(), DerivedEndpoint { url });
    })
    .await;

    let a = client.derived_token("ws").await.expect("derived token");
    let b = client.derived_token("ws").await.expect("cached");
    assert_eq!(a.token.expose(), "ws-1");
    assert_eq!(
        b, a,
        "the second call within validity is served from the cache"
    );
    first.assert_async().await;

    let c = client
        .derived_token_for("ws", 120)
        .await
        .expect("fetched again");
    assert_eq!(
        c.token.expose(),
        "ws-2",
        "60 s left is less than the 120 s asked"
    );
    second.assert_async().await;
    assert!(
        !format!("{c:?}").contains("ws-2"),
        "Debug redacts the token"
    );

    let unknown = client
        .derived_token("voice")
        .await
        .expect_err("not configured");
    assert!(
        matches!(
            &unknown,
            Error::Derived { problem: DerivedProblem::NotConfigured { known }, .. } if known == &["ws"]
        ),
        "{unknown:?}"
    );
    client.stop();
}
