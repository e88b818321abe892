//! The Rust library against the real provider: a device login driven in-process, then
//! resource requests through the `BearerAuth` middleware, including a 401 that makes the
//! engine refresh once and the request succeed on retry.

use tessera::engine::{Config, Endpoints, LoginMethod};
use tessera::store::{PassphraseSource, StoreChoice, open_store};
use tessera::{BearerAuth, Client, ClientOptions, HostEvent};

use crate::support::Provider;

async fn logged_in_client(provider: &Provider, dir: &std::path::Path) -> Client {
    logged_in_client_with(provider, dir, |_| {}).await
}

/// A client of the test provider, its configuration changed by `change`, after a device
/// login approved at the provider.
pub(crate) async fn logged_in_client_with(
    provider: &Provider,
    dir: &std::path::Path,
    change: impl FnOnce(&mut Config),
) -> Client {
    let store = open_store(
        StoreChoice::File,
        dir,
        "lib",
        PassphraseSource::Fixed("pw".into()),
    )
    .expect("store");
    let mut config = Config {
        scopes: vec!["openid".into(), "email".into()],
        endpoints: Endpoints::default(),
        ..Config::new(provider.issuer.clone(), "tessera-cli")
    };
    change(&mut config);
    let client = Client::start(ClientOptions::new(config, store).open_browser(false))
        .await
        .expect("client starts");
    let mut events = client.events();
    let login = tokio::spawn({
        let client = client.clone();
        async move { client.login(LoginMethod::Device).await }
    });
    let code = loop {
        if let HostEvent::UserCode(code) = events.recv().await.expect("events") {
            break code.user_code;
        }
    };
    assert_eq!(provider.approve_device(&code).await["approved"], true);
    login.await.expect("join").expect("device login");
    client
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_middleware_retries_once_after_a_401_with_a_refreshed_token() {
    let provider = Provider::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let client = logged_in_client(&provider, dir.path()).await;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(client.clone()))
        .build();
    let userinfo = format!("{}/me", provider.issuer);

    let first = http.get(&userinfo).send().await.expect("userinfo");
    assert_eq!(first.status(), 200);
    assert_eq!(provider.refresh_requests().await, 0);

    // The resource server stops accepting the token (revoked behind tessera's back).
    let token = client.access_token().await.expect("token");
    provider.revoke(token.access_token.expose()).await;
    assert!(!provider.is_active(token.access_token.expose()).await);

    let second = http
        .get(&userinfo)
        .send()
        .await
        .expect("userinfo after revocation");
    assert_eq!(second.status(), 200, "retried with a refreshed token");
    assert_eq!(provider.refresh_requests().await, 1, "exactly one refresh");
    let fresh = client.access_token().await.expect("token");
    assert_ne!(fresh.access_token, token.access_token);
    client.stop();
}
