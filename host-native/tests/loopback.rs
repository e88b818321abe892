//! The loopback redirect receiver over real HTTP.

use std::net::{Ipv4Addr, Ipv6Addr, TcpStream};
use std::time::Duration;

use tessera::loopback::{CallbackPage, LoopbackServer};

fn client() -> reqwest::Client {
    // reqwest insists on a TLS provider even for plain http; another test may have set one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// GETs `url` in the background; the server holds the request until it is answered.
fn get(url: String) -> tokio::task::JoinHandle<(u16, reqwest::header::HeaderMap, String)> {
    tokio::spawn(async move {
        let response = client().get(url).send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body"))
    })
}

async fn nothing_yielded(server: &mut LoopbackServer) {
    let next = tokio::time::timeout(Duration::from_millis(200), server.next_callback()).await;
    assert!(next.is_err(), "unexpected callback: {next:?}");
}

#[tokio::test]
async fn callback_url_is_handed_over_and_the_chosen_page_is_served() {
    let mut server = LoopbackServer::bind(0, "/callback").await.expect("bind");
    let port = server.local_addr().port();
    assert_eq!(
        server.redirect_uri(),
        format!("http://127.0.0.1:{port}/callback")
    );
    let url = format!(
        "{}?code=a%2Fb&state=xyz&iss=https%3A%2F%2Fidp",
        server.redirect_uri()
    );
    let request = get(url.clone());

    let pending = server.next_callback().await.expect("callback");
    assert_eq!(pending.url, url);
    pending.respond(CallbackPage::Success);

    let (status, headers, body) = request.await.expect("join");
    assert_eq!(status, 200);
    assert!(body.contains("Signed in. You can close this tab and return to the terminal."));
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    assert_eq!(
        header("content-security-policy"),
        "default-src 'none'; style-src 'unsafe-inline'"
    );
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
}

#[tokio::test]
async fn the_url_is_rebuilt_from_the_target_not_the_host_header() {
    let mut server = LoopbackServer::bind(0, "/cb").await.expect("bind");
    let target = format!("http://127.0.0.1:{}/cb?code=1", server.local_addr().port());
    let request = tokio::spawn(
        client()
            .get(target.clone())
            .header("host", "evil.example:9999")
            .send(),
    );
    let pending = server.next_callback().await.expect("callback");
    assert_eq!(pending.url, target);
    pending.respond(CallbackPage::Success);
    request.await.expect("join").expect("response");
}

#[tokio::test]
async fn other_paths_get_404_and_end_nothing() {
    let mut server = LoopbackServer::bind(0, "/callback").await.expect("bind");
    let base = format!("http://127.0.0.1:{}", server.local_addr().port());
    for path in [
        "/favicon.ico",
        "/",
        "/callback/x",
        "/callbackx?code=1",
        "/CALLBACK",
    ] {
        let (status, _, _) = get(format!("{base}{path}")).await.expect("join");
        assert_eq!(status, 404, "{path}");
    }
    nothing_yielded(&mut server).await;
}

#[tokio::test]
async fn only_get_is_accepted_on_the_path() {
    let mut server = LoopbackServer::bind(0, "/callback").await.expect("bind");
    let url = format!("{}?code=1", server.redirect_uri());
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::HEAD,
    ] {
        let response = client()
            .request(method.clone(), &url)
            .body("code=1")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 405, "{method}");
        assert_eq!(
            response.headers().get("allow").map(|v| v.as_bytes()),
            Some(&b"GET"[..])
        );
    }
    nothing_yielded(&mut server).await;
}

#[tokio::test]
async fn absurdly_long_targets_get_414() {
    let mut server = LoopbackServer::bind(0, "/callback").await.expect("bind");
    let url = format!("{}?code={}", server.redirect_uri(), "a".repeat(17 * 1024));
    let (status, _, _) = get(url).await.expect("join");
    assert_eq!(status, 414);
    nothing_yielded(&mut server).await;
}

#[tokio::test]
async fn binds_a_fixed_port_on_ipv4_loopback_only() {
    let free = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("probe");
    let port = free.local_addr().expect("probe address").port();
    drop(free);

    let server = LoopbackServer::bind(port, "/oauth/callback")
        .await
        .expect("bind");
    assert_eq!(server.local_addr(), (Ipv4Addr::LOCALHOST, port).into());
    assert_eq!(
        server.redirect_uri(),
        format!("http://127.0.0.1:{port}/oauth/callback")
    );
    assert!(
        TcpStream::connect((Ipv6Addr::LOCALHOST, port)).is_err(),
        "reachable on ::1"
    );
    let taken = LoopbackServer::bind(port, "/oauth/callback").await;
    assert_eq!(
        taken.expect_err("port taken").kind(),
        std::io::ErrorKind::AddrInUse
    );
}

#[tokio::test]
async fn bad_paths_are_refused() {
    for path in ["", "callback", "/cb?x=1", "/cb#f", "/a b"] {
        let error = LoopbackServer::bind(0, path).await.expect_err(path);
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn a_dropped_responder_serves_the_neutral_page() {
    let mut server = LoopbackServer::bind(0, "/callback").await.expect("bind");
    let request = get(format!("{}?code=1", server.redirect_uri()));
    drop(server.next_callback().await.expect("callback"));
    let (status, _, body) = request.await.expect("join");
    assert_eq!(status, 200);
    assert!(body.contains("tessera is still waiting"), "{body}");
}

#[tokio::test]
async fn messages_are_html_escaped() {
    let mut server = LoopbackServer::bind(0, "/callback").await.expect("bind");
    let request = get(format!("{}?error=access_denied", server.redirect_uri()));
    let message = "invalid_grant: <script>alert('x')</script> & more".to_owned();
    let pending = server.next_callback().await.expect("callback");
    pending.respond(CallbackPage::Failed { message });
    let (_, _, body) = request.await.expect("join");
    assert!(
        body.contains("Sign-in failed: invalid_grant: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"),
        "{body}"
    );
    assert!(!body.contains("<script>"), "{body}");
}

#[tokio::test]
async fn callbacks_are_yielded_in_order_and_a_stray_one_ends_nothing() {
    let mut server = LoopbackServer::bind(0, "/callback").await.expect("bind");
    let stray = get(format!("{}?code=old&state=stale", server.redirect_uri()));
    let first = server.next_callback().await.expect("first");
    assert!(first.url.ends_with("?code=old&state=stale"));
    first.respond(CallbackPage::Ignored {
        message: "state does not match".into(),
    });
    let (_, _, body) = stray.await.expect("join");
    assert!(
        body.contains("This request was not for the current sign-in; tessera is still waiting.")
    );
    assert!(body.contains("state does not match"));

    let real = get(format!("{}?code=new&state=good", server.redirect_uri()));
    let second = server.next_callback().await.expect("second");
    assert!(second.url.ends_with("?code=new&state=good"));
    second.respond(CallbackPage::Success);
    assert!(real.await.expect("join").2.contains("Signed in."));
}

#[tokio::test]
async fn shutdown_right_after_respond_still_delivers_the_page_then_frees_the_port() {
    let mut server = LoopbackServer::bind(0, "/callback").await.expect("bind");
    let addr = server.local_addr();
    let request = get(format!("{}?code=1", server.redirect_uri()));
    server
        .next_callback()
        .await
        .expect("callback")
        .respond(CallbackPage::Success);
    server.shutdown();
    let (status, _, body) = request.await.expect("join");
    assert_eq!(status, 200);
    assert!(body.contains("Signed in."), "{body}");

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still listening after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_callback_dropped_after_shutdown_is_told_tessera_stopped_waiting() {
    let mut server = LoopbackServer::bind(0, "/callback").await.expect("bind");
    let request = get(format!("{}?code=1", server.redirect_uri()));
    let pending = server.next_callback().await.expect("callback");
    server.shutdown();
    drop(pending);
    let (status, _, body) = request.await.expect("join");
    assert_eq!(status, 503);
    assert!(body.contains("no longer waiting"), "{body}");
}
