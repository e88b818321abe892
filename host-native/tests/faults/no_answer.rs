//! No answer at all: silence (the request timeout), a connection dropped mid-body, a closed
//! port.

use super::*;

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

/// Slowloris: the server answers 200 at once, then drips its body a byte every 50 ms, so
/// no read ever waits long. `http_timeout_ms` bounds the whole exchange, body included:
/// a transient timeout, and the stored session is unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_answered_a_byte_at_a_time_times_out_at_http_timeout_ms() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            content-length: 100000\r\n\r\n{\"access_token\":\"";
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for _ in 0..1200 {
                    std::thread::sleep(Duration::from_millis(50));
                    if stream
                        .write_all(b"a")
                        .and_then(|()| stream.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    let seeded = session("at-1", "rt-1", 3610, -10);
    let mut host = Host::start(
        tessera::engine::Config {
            http_timeout_ms: 500,
            ..config(&format!("http://{addr}"))
        },
        Some(seeded.clone()),
    )
    .await;
    let (error, _) = host.event(refresh_failed).await;
    assert_eq!(
        transport(&error).0,
        TransportErrorKind::Timeout,
        "{error:?}"
    );

    let started = Instant::now();
    let error = host.token().await.expect_err("times out");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(3000),
        "answered after {elapsed:?}"
    );
    assert_eq!(
        transport(&error).0,
        TransportErrorKind::Timeout,
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(host.stored().await, Some(seeded));
}
